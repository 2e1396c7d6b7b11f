"""Shared, session-scoped dossiers: rendering takes about a second, so each
variant (English, Korean, hostile) is rendered and signed once per run."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from compliance.dossier.issue import dossier_issue
from compliance.dossier.render import RenderResult
from compliance.dossier.sample import sample_context_build
from compliance.dossier.signing import SigningIdentity, signing_identity_load_or_create


@dataclass
class Issued:
    render: RenderResult
    signed: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.signed).hexdigest()


@pytest.fixture(scope="session")
def portal_identity(tmp_path_factory) -> SigningIdentity:
    folder = tmp_path_factory.mktemp("portal-key")
    return signing_identity_load_or_create(key_path=folder / "key.pem", cert_path=folder / "cert.pem", common_name="Test Portal")


@pytest.fixture(scope="session")
def attacker_identity(tmp_path_factory) -> SigningIdentity:
    folder = tmp_path_factory.mktemp("attacker-key")
    return signing_identity_load_or_create(key_path=folder / "key.pem", cert_path=folder / "cert.pem", common_name="Test Portal")


def _issue(identity: SigningIdentity, **sample) -> Issued:
    issued = dossier_issue(context=sample_context_build(**sample), identity=identity)
    return Issued(render=issued.render, signed=issued.pdf_bytes)


@pytest.fixture(scope="session")
def dossier_en(portal_identity) -> Issued:
    return _issue(portal_identity, lang="en", findings=60)


@pytest.fixture(scope="session")
def dossier_ko(portal_identity) -> Issued:
    return _issue(portal_identity, lang="ko", findings=12)


@pytest.fixture(scope="session")
def dossier_hostile(portal_identity) -> Issued:
    return _issue(portal_identity, lang="en", findings=16, hostile=True)


def poppler(tool: str, pdf: bytes, tmp_path, *args: str) -> str:
    """Run a poppler tool (pdftotext, pdffonts) on ``pdf`` and return stdout."""
    if shutil.which(tool) is None:  # a skip would make a green run prove less than it says
        pytest.fail(f"{tool} not installed (apt-get install -y poppler-utils)")
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdf)
    out = [str(tmp_path / "out.txt")] if tool == "pdftotext" else []
    completed = subprocess.run([tool, *args, str(path), *out], capture_output=True, check=True, timeout=60)
    if tool == "pdftotext":
        return (tmp_path / "out.txt").read_text(encoding="utf-8")
    return completed.stdout.decode()

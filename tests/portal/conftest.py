"""Fixtures for the portal room's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _signing_key_dir(tmp_path_factory):
    """One demo key pair per run: RSA-3072 generation takes about a second."""
    from portal.signing import signing_identity_load_or_create

    folder = tmp_path_factory.mktemp("portal-signing")
    signing_identity_load_or_create(key_path=folder / "key.pem", cert_path=folder / "cert.pem",
                                    common_name="Test Portal")
    return folder


@pytest.fixture
def signing_settings(settings, _signing_key_dir):
    """The portal signs checkpoints (and dossiers) with this test key and trusts only it."""
    settings.DOSSIER_SIGNING_KEY = str(_signing_key_dir / "key.pem")
    settings.DOSSIER_SIGNING_CERT = str(_signing_key_dir / "cert.pem")
    settings.DOSSIER_SIGNING_GENERATE = False
    settings.DOSSIER_TRUSTED_CERTS = None
    settings.DOSSIER_SIGNING_PKCS11_MODULE = None
    return settings


@pytest.fixture(scope="session")
def attacker_identity(tmp_path_factory):
    """Another key under the very same name: what a forger would make."""
    from portal.signing import signing_identity_load_or_create

    folder = tmp_path_factory.mktemp("attacker-signing")
    return signing_identity_load_or_create(key_path=folder / "key.pem", cert_path=folder / "cert.pem",
                                           common_name="Test Portal")

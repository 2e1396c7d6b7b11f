"""Render, then sign: the one call a Celery task or a command makes to produce a dossier.

Plain Python (no database): the caller builds the context
(``dossier_context_build``), loads the identity
(``signing_identity_from_settings``), stores the bytes and records the hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance.dossier.context import DossierContext
from compliance.dossier.fetcher import STATIC_ROOT
from compliance.dossier.render import FINDINGS_PER_SEVERITY, DossierRenderError, RenderResult, dossier_render
from compliance.dossier.signing import SigningIdentity, dossier_sign

__all__ = ["IssuedDossier", "dossier_issue"]


@dataclass
class IssuedDossier:
    """A signed dossier ready to store; ``sha256`` is what the registry records."""

    pdf_bytes: bytes
    render: RenderResult
    signer: SigningIdentity
    sign_s: float
    timestamped: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf_bytes).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: hash, size, pages, timings, attachments, refused URLs, signer."""
        rendered = self.render.to_dict()
        return {
            "sha256": self.sha256,
            "size": len(self.pdf_bytes),
            "pages": self.render.pages,
            "render_s": rendered["duration_s"],
            "sign_s": round(self.sign_s, 3),
            "timestamped": self.timestamped,
            "attachments": rendered["attachments"],
            "refused": rendered["refused"],
            "findings_shown": self.render.findings_shown,
            "findings_total": self.render.findings_total,
            "signer": self.signer.to_dict(),
        }


def dossier_issue(
    *,
    context: DossierContext,
    identity: SigningIdentity,
    tsa_url: str | None = None,
    timeout_s: float | None = None,
    findings_per_severity: int = FINDINGS_PER_SEVERITY,
    tagged: bool = False,
    strict: bool = True,
    static_root: Path | str = STATIC_ROOT,
) -> IssuedDossier:
    """Render ``context`` (PDF/A-3b with attachments) and sign it with ``identity``.

    The signer's subject and certificate fingerprint are printed in the
    verification section, so a reader can compare them with the signature
    panel. ``timeout_s`` bounds rendering only (signing takes < 1 s);
    ``tagged`` adds the PDF structure tree for assistive technology.

    ``strict`` (default): a render that asked for anything the fetcher refused
    is not signed. Our templates fetch only the two bundled fonts, so a refusal
    means a template bug or a missing font, and an archival record with
    missing glyphs must not be issued.
    """
    context = dataclasses.replace(
        context, signer_subject=identity.subject, signer_fingerprint=identity.fingerprint_sha256
    )
    rendered = dossier_render(
        context=context, timeout_s=timeout_s, findings_per_severity=findings_per_severity, tagged=tagged, static_root=static_root
    )
    if strict and rendered.refused:
        reasons = "; ".join(f"{r.url}: {r.reason}" for r in rendered.refused[:3])
        raise DossierRenderError(f"dossier not issued: the renderer was refused {len(rendered.refused)} resource(s) ({reasons})")
    started = time.perf_counter()
    signed = dossier_sign(pdf_bytes=rendered.pdf_bytes, identity=identity, tsa_url=tsa_url)
    return IssuedDossier(
        pdf_bytes=signed,
        render=rendered,
        signer=identity,
        sign_s=time.perf_counter() - started,
        timestamped=bool(tsa_url),
    )

"""Signed audit checkpoints: export for a witness, check a signature, and the full audit verdict.

Reads only (checkpoints are written by ``portal.services.audit_checkpoint_create``),
except that :func:`audit_trail_verify` first seals events committed but not yet
chained, which is what the after-commit seal would have done anyway.

A checkpoint export (JSON, one object; ``audit_checkpoint --export`` writes a
list of them) holds the signed fields, ``signed_payload`` (the exact bytes the
signature covers), ``signature`` (detached CMS, DER, base64) and the signer's
certificate, so a witness can check it offline with OpenSSL (README).
"""

from __future__ import annotations

import base64
import binascii
import json
from io import BytesIO
from typing import Any, Iterable

from django.conf import settings

from portal.audit_chain import CHECKPOINT_SCHEMA, CHECKPOINT_SIGNED_FIELDS, GENESIS_HASH, checkpoint_payload
from portal.models import AuditCheckpoint
from portal.selectors import ChainReport, audit_chain_verify

# The name under which a dossier carries the checkpoint it was issued under.
DOSSIER_ATTACHMENT_NAME = "audit-checkpoint.json"


def audit_checkpoint_export(*, checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The JSON a witness keeps: signed fields, the signed bytes, the signature and the certificate."""
    fields = checkpoint.signed_fields()
    return {
        **fields,
        "signed_payload": checkpoint_payload(fields).decode(),
        "signature": {"format": "cms-detached", "encoding": "der-base64", "value": checkpoint.signature},
        "signer_fingerprint_sha256": checkpoint.signer_fingerprint,
        "certificate_pem": checkpoint.certificate_pem,
    }


def audit_checkpoint_check_signature(*, exported: dict[str, Any], trusted_certs: list[bytes] | None = None) -> list[str]:
    """Reasons an exported checkpoint is not one the portal signed; empty when it is.

    The signature is checked over the payload rebuilt from the fields, so
    changing a count or a hash breaks it, and the signer must be a certificate
    the portal trusts (``DOSSIER_SIGNING_CERT``, ``DOSSIER_TRUSTED_CERTS``), never
    the one the checkpoint itself carries.
    """
    from portal.signing import cms_detached_verify, trusted_certificates_from_settings

    if not isinstance(exported, dict) or exported.get("schema") != CHECKPOINT_SCHEMA:
        return [f"not an audit checkpoint (schema is not {CHECKPOINT_SCHEMA})"]
    missing = [name for name in CHECKPOINT_SIGNED_FIELDS if name not in exported]
    if missing:
        return [f"the checkpoint lacks {', '.join(missing)}"]
    payload = checkpoint_payload(exported)
    if "signed_payload" in exported and exported["signed_payload"] != payload.decode():
        return ["its signed_payload does not match its fields (edited after signing)"]
    try:
        signature = base64.b64decode((exported.get("signature") or {}).get("value") or "", validate=True)
    except (binascii.Error, AttributeError, TypeError):
        return ["its signature is not base64"]
    if not signature:
        return ["it carries no signature"]
    if trusted_certs is None:
        trusted_certs = trusted_certificates_from_settings(settings=settings)
    return list(cms_detached_verify(data=payload, cms_der=signature, trusted_certs=trusted_certs).reasons)


def audit_checkpoint_from_pdf(*, pdf_bytes: bytes | None = None, pdf_file=None) -> dict[str, Any] | None:
    """The checkpoint a dossier embeds (its ``audit-checkpoint.json`` attachment), or None.
    ``pdf_file``: a seekable binary file object instead of the bytes (read, not loaded whole)."""
    from pypdf import PdfReader

    try:
        if pdf_file is not None:
            pdf_file.seek(0)
        files = PdfReader(pdf_file if pdf_file is not None else BytesIO(pdf_bytes or b"")).attachments
        if DOSSIER_ATTACHMENT_NAME in files:
            return json.loads(files[DOSSIER_ATTACHMENT_NAME][0])
    except Exception:  # a damaged file simply has no readable checkpoint; the caller says so
        return None
    return None


def _chain_holds(*, checkpoint: dict[str, Any], chain: ChainReport, label: str) -> list[str]:
    """Reasons the chain no longer reproduces the checkpoint's count and head hash."""
    count, head = int(checkpoint["event_count"]), checkpoint["head_hash"]
    found = GENESIS_HASH if count == 0 else chain.hashes_at.get(count)
    if found is None:
        if chain.head_seq < count:
            return [f"events removed after {label}: it signed {count} events, the chain now ends at position "
                    f"{chain.head_seq}"]
        return [f"the entry at position {count}, the head {label} signed, was removed"]
    if found != head:
        return [f"events rewritten before {label}: position {count} now hashes to {found[:16]}…, "
                f"the checkpoint signed {head[:16]}…"]
    return []


def _outside_checkpoint_check(*, name: str, exported: dict[str, Any] | None, chain: ChainReport,
                              stored: dict[int, AuditCheckpoint], what: str) -> dict[str, Any]:
    """Verdict on one checkpoint brought from outside (a dossier's, or a witness's copy)."""
    if exported is None:
        return {"file": name, "ok": False, "checkpoint": None,
                "reasons": [f"{what} carries no readable audit checkpoint"]}
    reasons = audit_checkpoint_check_signature(exported=exported)
    number = exported.get("number")
    label = f"checkpoint {number}"
    if not reasons:
        reasons = _chain_holds(checkpoint=exported, chain=chain, label=label)
        row = stored.get(number)
        if row is None:
            reasons.append(f"{label} is no longer in the portal's database (deleted)")
        elif (row.event_count, row.head_hash) != (exported["event_count"], exported["head_hash"]):
            reasons.append(f"{label} in the portal's database differs from this copy (replaced)")
    return {"file": name, "ok": not reasons, "checkpoint": number, "event_count": exported.get("event_count"),
            "head_hash": exported.get("head_hash"), "reasons": reasons}


def audit_trail_verify(
    *, dossiers: Iterable[tuple[str, bytes]] = (), witnesses: Iterable[tuple[str, bytes]] = (), seal: bool = True,
) -> dict[str, Any]:
    """Check the chain's links, the stored checkpoints and any dossier or witness copy given.

    ``dossiers``: (name, PDF bytes); ``witnesses``: (name, JSON bytes of one
    exported checkpoint or a list). ``ok`` only when every link and hash holds,
    the latest checkpoint's signature is valid and every checkpoint, stored or
    brought, is reproduced by the chain.
    """
    from portal.services import audit_chain_seal

    sealed = audit_chain_seal() if seal else 0
    stored = {row.number: row for row in AuditCheckpoint.objects.order_by("number")}
    outside: list[tuple[str, str, dict[str, Any] | None]] = []
    for name, pdf in dossiers:
        outside.append(("dossier", name, audit_checkpoint_from_pdf(pdf_bytes=pdf)))
    for name, raw in witnesses:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        for item in parsed if isinstance(parsed, list) else [parsed]:
            outside.append(("witness", name, item if isinstance(item, dict) else None))
    positions = {row.event_count for row in stored.values()}
    positions |= {int(cp["event_count"]) for _, _, cp in outside if cp and isinstance(cp.get("event_count"), int)}
    chain = audit_chain_verify(positions=positions)

    reasons = list(chain.reasons)
    latest = stored[max(stored)] if stored else None
    if latest is not None:
        reasons += [f"checkpoint {latest.number} is not validly signed: {r}"
                    for r in audit_checkpoint_check_signature(exported=audit_checkpoint_export(checkpoint=latest))]
        missing = sorted(set(range(1, latest.number + 1)) - set(stored))
        if missing:
            reasons.append(f"checkpoint(s) {', '.join(map(str, missing[:10]))} were deleted from the database")
    for row in stored.values():
        held = _chain_holds(checkpoint={"event_count": row.event_count, "head_hash": row.head_hash}, chain=chain,
                            label=f"checkpoint {row.number}")
        if held and row is not latest:
            forged = audit_checkpoint_check_signature(exported=audit_checkpoint_export(checkpoint=row))
            if forged:  # a checkpoint the portal never signed says nothing about the chain
                reasons.append(f"checkpoint {row.number} is not validly signed: {forged[0]}")
                continue
        reasons += held

    results = {"dossier": [], "witness": []}
    for what, name, exported in outside:
        verdict = _outside_checkpoint_check(name=name, exported=exported, chain=chain, stored=stored,
                                            what="the dossier" if what == "dossier" else "the file")
        results[what].append(verdict)
        reasons += [f"{name}: {r}" for r in verdict["reasons"]]
    return {
        "ok": not reasons,
        "events": chain.events,
        "head_hash": chain.head_hash,
        "head_event_id": chain.head_event_id,
        "first_bad_id": chain.first_bad_id,
        "sealed_now": sealed,
        "unsealed": chain.unsealed,
        "checkpoint": audit_checkpoint_export(checkpoint=latest) if latest else None,
        "checkpoints": len(stored),
        "reasons": reasons,
        "dossiers": results["dossier"],
        "witnesses": results["witness"],
    }

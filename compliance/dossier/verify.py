"""Check that a dossier PDF is one the portal issued, unaltered, and signed by the portal.

Three independent questions, each with its own flag and plain reasons:

``issued``
    The registry knows this exact file: ``known_hashes(sha256)`` returns the
    issuance record (the Dossier row). Without a registry (someone verifying
    offline) it falls back to "signed by the portal and unaltered".
``unaltered``
    The last signature's digest matches and it covers every byte of the file
    (nothing appended after signing, nothing changed inside its container).
``signature_valid``
    That signature is cryptographically valid and made with a trusted
    certificate (one of ``trusted_certs``, pinned by fingerprint or reached by
    path validation with revocation checks soft-failing offline).

Pure Python (pyHanko, pypdf); no Django, no network.
"""

from __future__ import annotations

from compliance.dossier.sync import run_outside_event_loop

import hashlib
import json
import re
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, BinaryIO, Callable, Iterable

__all__ = ["VerifyResult", "dossier_verify", "file_sha256", "trusted_certs_load"]

# A PDF ends with %%EOF, possibly followed by a line end; 1 KB of slack
# tolerates trailing whitespace some transfer tools add.
_EOF_WINDOW = 1024
# The portal's signatures reserve tens of KB for the CMS container; a byte range whose unsigned
# gap is larger is not ours, and is not read into memory to find that out.
_MAX_CONTAINER_BYTES = 2 * 1024 * 1024
# Hashing reads this much at a time: memory per verification stays about one chunk.
_HASH_CHUNK_BYTES = 1024 * 1024


def _xref_at(pdf_file: BinaryIO, offset: int, size: int) -> bool:
    """Whether ``offset`` starts an xref table (``xref``) or an object (``12 0 obj``, an xref stream)."""
    if not 0 <= offset < size:
        return False
    pdf_file.seek(offset)
    return re.match(rb"\s*(xref\b|\d{1,10}\s+\d{1,5}\s+obj\b)", pdf_file.read(64)) is not None


def file_sha256(pdf_file: BinaryIO) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file object, read in chunks from its start."""
    pdf_file.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := pdf_file.read(_HASH_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass
class VerifyResult:
    """Outcome of :func:`dossier_verify`."""

    issued: bool
    unaltered: bool
    signature_valid: bool
    sha256: str
    size: int
    submission: int | str | None = None
    dossier_number: str | None = None
    signer_subject: str | None = None
    signer_fingerprint: str | None = None
    signed_at: str | None = None
    timestamped: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True only when the file is issued, unaltered and validly signed."""
        return self.issued and self.unaltered and self.signature_valid

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result; ``reasons`` lists every problem found, in plain
        words (empty when ``ok``); ``notes`` says how a verdict was reached."""
        return {
            "ok": self.ok,
            "issued": self.issued,
            "unaltered": self.unaltered,
            "signature_valid": self.signature_valid,
            "submission": self.submission,
            "dossier_number": self.dossier_number,
            "sha256": self.sha256,
            "size": self.size,
            "signer_subject": self.signer_subject,
            "signer_fingerprint": self.signer_fingerprint,
            "signed_at": self.signed_at,
            "timestamped": self.timestamped,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
        }


def _cert_asn1(cert: Any):
    """asn1crypto Certificate from PEM/DER bytes, a cryptography cert, or asn1crypto."""
    from asn1crypto import pem, x509 as asn1_x509

    if isinstance(cert, asn1_x509.Certificate):
        return cert
    if hasattr(cert, "public_bytes"):  # cryptography.x509.Certificate
        from cryptography.hazmat.primitives.serialization import Encoding

        return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    if isinstance(cert, str):
        cert = cert.encode()
    if isinstance(cert, (bytes, bytearray)):
        data = bytes(cert)
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        return asn1_x509.Certificate.load(data)
    raise TypeError(f"cannot read a certificate from {type(cert).__name__}")


def trusted_certs_load(*, pem_bundle: bytes) -> list:
    """All certificates in a PEM bundle, as asn1crypto certificates."""
    from asn1crypto import pem, x509 as asn1_x509

    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(pem_bundle, multiple=True)]


def _fingerprint(cert) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def _subject(cert) -> str:
    try:
        return cert.subject.human_friendly
    except Exception:  # pragma: no cover - malformed subject
        return "(unreadable subject)"


def _container_tampered(pdf_file: BinaryIO, byte_range: list[int]) -> str | None:
    """Check the unsigned gap of the byte range: ``<hex>`` holding the CMS DER
    then zero padding. Bytes there are not covered by the digest, so a flip in
    the padding would otherwise go unnoticed."""
    if len(byte_range) != 4:
        return "signature byte range is malformed"
    start, length, second, _ = (int(v) for v in byte_range)
    if second - (start + length) > _MAX_CONTAINER_BYTES:
        return "the signature container is larger than any the portal writes"
    pdf_file.seek(start + length)
    gap = pdf_file.read(max(0, second - (start + length)))
    if len(gap) < 2 or gap[:1] != b"<" or gap[-1:] != b">":
        return "signature container is not a hex string where the byte range says it is"
    hexdigits = gap[1:-1]
    if not re.fullmatch(rb"[0-9A-Fa-f]*", hexdigits):
        return "signature container holds non-hex bytes (changed after signing)"
    raw = bytes.fromhex(hexdigits.decode("ascii")) if len(hexdigits) % 2 == 0 else None
    if raw is None or len(raw) < 2 or raw[0] != 0x30:
        return "signature container does not start with a DER structure"
    # DER length: short form, or long form with N length bytes.
    if raw[1] < 0x80:
        total = 2 + raw[1]
    else:
        count = raw[1] & 0x7F
        total = 2 + count + int.from_bytes(raw[2 : 2 + count], "big")
    if total > len(raw):
        return "signature container is shorter than its DER header says"
    if any(raw[total:]):
        return "bytes after the signature inside its container were changed after signing"
    return None


def _manifest_read(pdf_file: BinaryIO) -> dict[str, Any] | None:
    """manifest.json from the PDF's embedded files, or None. Called only on a file the portal's
    signature covers whole (pypdf reads a damaged file whole while repairing it)."""
    try:
        from pypdf import PdfReader

        pdf_file.seek(0)
        reader = PdfReader(pdf_file)
        files = reader.attachments
        if "manifest.json" in files:
            return json.loads(files["manifest.json"][0])
    except Exception:
        return None
    return None


def dossier_verify(
    *,
    pdf_bytes: bytes | None = None,
    pdf_file: BinaryIO | None = None,
    sha256: str | None = None,
    trusted_certs: Iterable[Any],
    known_hashes: Callable[[str], dict[str, Any] | None] | None = None,
) -> VerifyResult:
    """Verify a dossier file; see the module docstring for the three flags.

    The file is ``pdf_file`` (a seekable binary file object, read in chunks and never whole:
    an anonymous upload on disk) or ``pdf_bytes``. ``sha256``: its digest when the caller
    already hashed it while receiving it (else it is hashed here, in chunks).
    ``trusted_certs``: the portal's signing certificate(s) (PEM/DER bytes,
    cryptography or asn1crypto certificates). ``known_hashes``: looks a
    SHA-256 hex digest up in the portal's registry of issued dossiers and
    returns its record (a dict with at least ``submission``) or None.
    """
    if pdf_file is None:
        pdf_file = BytesIO(pdf_bytes or b"")
    if sha256 is None:
        sha256, size = file_sha256(pdf_file)
    else:
        size = pdf_file.seek(0, 2)
    result = VerifyResult(issued=False, unaltered=False, signature_valid=False, sha256=sha256, size=size)
    reasons = result.reasons

    record = known_hashes(sha256) if known_hashes is not None else None
    if known_hashes is not None:
        if record is None:
            reasons.append(
                f"the portal never issued a file with SHA-256 {sha256}: this file was altered, truncated or forged"
            )
        else:
            result.issued = True
            result.record = dict(record)
            result.submission = record.get("submission")
            result.dossier_number = record.get("dossier_number")

    pdf_file.seek(0)
    if not pdf_file.read(5).startswith(b"%PDF-"):
        reasons.append("not a PDF file (it does not start with %PDF-)")
        return result
    pdf_file.seek(max(0, size - _EOF_WINDOW))
    tail = pdf_file.read(_EOF_WINDOW)
    if b"%%EOF" not in tail:
        reasons.append(f"the file ends after {size:,} bytes without the PDF end marker %%EOF (truncated download?)")
    if b"startxref" not in tail:
        # Every PDF ends "startxref <offset> %%EOF". Without it pyHanko looks for it backwards one
        # byte at a time, about 3 s of CPU per MB for a file of one long line (issue #12's 63 MB fake
        # PDF cost 21 s), so such a file is refused here, before any parser sees it.
        reasons.append("the PDF structure cannot be read (no cross-reference pointer, startxref, at its end); "
                       "the file is damaged or truncated")
        return result
    pointers = list(re.finditer(rb"startxref\s+(\d{1,12})\s+%%EOF", tail))
    pointer = pointers[-1] if pointers else None  # the last revision's, as a reader takes it
    if pointer is None or not _xref_at(pdf_file, int(pointer.group(1)), size):
        # pyHanko reads what the pointer points at one byte at a time until whitespace: a pointer
        # into a run of digits costs about 3 s of CPU per MB (bench/verify_upload.py, pyHanko 0.38). The portal's dossiers
        # point at an xref table or an xref stream object; anything else is not one of them.
        reasons.append("the PDF structure cannot be read (its cross-reference pointer does not point at a "
                       "cross-reference section); the file is damaged or truncated")
        return result

    try:
        trusted = [_cert_asn1(cert) for cert in trusted_certs]
    except Exception as exc:
        reasons.append(f"could not read the trusted certificates: {exc}")
        trusted = []
    trusted_fingerprints = {_fingerprint(cert) for cert in trusted}

    try:
        from pyhanko.pdf_utils.reader import PdfFileReader

        pdf_file.seek(0)
        reader = PdfFileReader(pdf_file, strict=False)
        signatures = list(reader.embedded_signatures)
    except Exception as exc:
        reasons.append(f"the PDF structure cannot be read ({type(exc).__name__}: {str(exc)[:200]}); the file is damaged or truncated")
        return result
    if not signatures:
        reasons.append("the file carries no signature; every dossier the portal issues is signed by the portal")
        return result

    # The signature that matters is the one covering the most bytes (the
    # latest revision); an attacker's counter-signature appended after ours
    # would be that one, and ours would no longer cover the whole file.
    def covered_end(sig) -> int:
        try:
            byte_range = [int(v) for v in sig.byte_range]
            return byte_range[2] + byte_range[3]
        except Exception:
            return -1

    signature = max(signatures, key=covered_end)

    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        context = ValidationContext(trust_roots=trusted, allow_fetching=False, revocation_mode="soft-fail")
        status = run_outside_event_loop(
            validate_pdf_signature,
            signature,
            signer_validation_context=context,
            # Our demo certificate sets digitalSignature + nonRepudiation;
            # a CA-issued one may set either, so require just one of them.
            key_usage_settings=KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False),
        )
    except Exception as exc:
        reasons.append(f"the signature cannot be checked ({type(exc).__name__}: {str(exc)[:200]}); its container is damaged")
        return result

    cert = status.signing_cert
    result.signer_subject = _subject(cert)
    result.signer_fingerprint = _fingerprint(cert)
    if status.signer_reported_dt is not None:
        result.signed_at = status.signer_reported_dt.isoformat()
    result.timestamped = status.timestamp_validity is not None

    intact = bool(status.intact)
    whole_file = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not intact:
        reasons.append("the signed content was changed after signing (its digest no longer matches the signature)")
    if intact and not whole_file:
        end = covered_end(signature)
        extra = size - end if end > 0 else None
        reasons.append(
            "the signature does not cover the whole file"
            + (f": {extra:,} bytes were appended after signing (an edit or another signature)" if extra and extra > 0 else "")
        )
    container_problem = _container_tampered(pdf_file, [int(v) for v in signature.byte_range]) if intact else None
    if container_problem:
        reasons.append(container_problem)
    result.unaltered = intact and whole_file and container_problem is None

    pinned = result.signer_fingerprint in trusted_fingerprints
    if not status.valid:
        reasons.append("the signature value does not verify against the signer's certificate")
    elif not (pinned or status.trusted):
        reasons.append(
            f"signed by {result.signer_subject!r} (certificate SHA-256 {result.signer_fingerprint}), "
            "which is not the portal's signing certificate"
        )
    result.signature_valid = bool(status.valid and intact and (pinned or status.trusted))
    if len(signatures) > 1 and not result.signature_valid:
        reasons.append(
            f"the file holds {len(signatures)} signatures and the last one is not the portal's: "
            "it was re-signed after issue"
        )

    if known_hashes is None:
        result.issued = result.signature_valid and result.unaltered
        if result.issued:
            result.notes.append("no registry consulted: issuance inferred from the portal's signature over the whole file")
    if result.signature_valid and result.unaltered and result.submission is None:
        manifest = _manifest_read(pdf_file)
        if manifest:
            result.submission = manifest.get("submission_id")
            result.dossier_number = result.dossier_number or manifest.get("dossier_number")
    return result

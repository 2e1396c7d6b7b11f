"""Sign dossiers with the portal's key (PAdES, whole file, optional RFC 3161 timestamp).

The key and certificate are loaded by ``portal.signing`` (re-exported here), which audit
checkpoints sign with too; its docstring lists the ``DOSSIER_SIGNING_*`` settings. Nothing is
fetched from the network unless a TSA is configured:

``DOSSIER_TSA_URL``
    RFC 3161 time-stamping authority; when set, every signature carries a
    timestamp token (PAdES B-T) so its time does not rest on our clock.

pyHanko signs by incremental update: the PDF/A-3b body WeasyPrint wrote is
kept byte for byte, and the invisible signature widget gets the print flag
that PDF/A requires (pyHanko's default ``InvisSigSettings``).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from portal.signing import (
    SigningError,
    SigningIdentity,
    run_outside_event_loop,
    signing_identity_from_settings,
    signing_identity_load_or_create,
    trusted_certificates_from_settings,
)

__all__ = [
    "DossierSigningError",
    "SigningIdentity",
    "dossier_sign",
    "trusted_certificates_from_settings",
    "signing_identity_from_settings",
    "signing_identity_load_or_create",
]

SIGNATURE_FIELD = "PortalSignature"
# Room for the CMS blob: RSA-3072 signature + one certificate (~1.5 KB) +
# a TSA token with its chain (~6 KB); 16 KB avoids a second signing pass.
_SIGNATURE_BYTES = 16_384


# The identity (key, certificate, the demo pair made at first start) is the portal's,
# shared with the audit checkpoints; this module keeps only the PDF signing.
DossierSigningError = SigningError


def _producer_kept_consistent(writer: Any) -> None:
    """Keep the Info /Producer and the XMP pdf:Producer equal, as PDF/A requires.

    pyHanko 0.38 appends itself to Info /Producer ("WeasyPrint 70.0; pyHanko
    0.38.0") but writes XMP pdf:Producer = "pyHanko 0.38.0": a PDF/A-3b
    validator rejects the mismatch (ISO 19005-3, 6.6.3). After pyHanko's own
    metadata update we copy the Info value into the XMP. Relies on pyHanko
    internals (``_update_meta``, ``MetadataStream._xmp``), hence the exact pin.
    """
    from pyhanko.pdf_utils.metadata import model as meta_model
    from pyhanko.pdf_utils.metadata import xmp_xml

    original = writer._update_meta

    def update_meta() -> None:
        original()
        info = writer._info.get_object() if writer._info is not None else None
        metadata = writer.root.get("/Metadata")
        metadata = metadata.get_object() if metadata is not None else None
        if info is None or "/Producer" not in info or not isinstance(metadata, xmp_xml.MetadataStream):
            return
        producer = str(info["/Producer"])
        for root in metadata.xmp:
            fields = root._fields
            if meta_model.PDF_PRODUCER in fields:
                fields[meta_model.PDF_PRODUCER] = meta_model.XmpValue(producer)
        metadata._reserialise()
        metadata._encoded_data = None
        writer.update_container(metadata)

    writer._update_meta = update_meta


def dossier_sign(
    *,
    pdf_bytes: bytes,
    identity: SigningIdentity,
    tsa_url: str | None = None,
    reason: str = "Compliance dossier issued by the portal",
    location: str = "",
    field_name: str = SIGNATURE_FIELD,
    timestamper: Any = None,
) -> bytes:
    """Return ``pdf_bytes`` with a PAdES signature covering the whole file.

    Incremental: the original bytes are kept as the file's first revision.
    With ``tsa_url``, the signature embeds an RFC 3161 timestamp (PAdES B-T);
    ``timestamper`` (any pyHanko ``TimeStamper``) overrides it, e.g. a TSA
    client with authentication, or pyHanko's ``DummyTimeStamper`` in tests.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    if identity.signer is None:
        raise DossierSigningError("signing identity has no signer; load it with signing_identity_load_or_create")
    if not pdf_bytes.startswith(b"%PDF-"):
        raise DossierSigningError("refusing to sign: input is not a PDF (no %PDF- header)")
    if timestamper is None and tsa_url:
        from pyhanko.sign.timestamps import HTTPTimeStamper

        timestamper = HTTPTimeStamper(tsa_url, timeout=30)
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf_bytes), strict=False)
        _producer_kept_consistent(writer)
        metadata = signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            location=location or None,
            name=identity.subject,
        )
        pdf_signer = signers.PdfSigner(metadata, signer=identity.signer, timestamper=timestamper)
        output = run_outside_event_loop(pdf_signer.sign_pdf, writer, bytes_reserved=_SIGNATURE_BYTES)
    except Exception as exc:  # pyHanko raises many kinds; the caller needs one
        raise DossierSigningError(f"signing failed: {type(exc).__name__}: {exc}") from exc
    return output.getvalue()

"""Signing and verification: the portal's file passes, every kind of fake fails with a reason."""

from __future__ import annotations

import hashlib
from io import BytesIO
from types import SimpleNamespace

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from compliance.dossier.signing import (
    DossierSigningError,
    dossier_sign,
    signing_identity_from_settings,
    signing_identity_load_or_create,
)
from compliance.dossier.verify import dossier_verify, trusted_certs_load


def _registry(*issued):
    """known_hashes callable backed by the portal's record of issued files."""
    table = {i.sha256: {"submission": 42, "dossier_number": "SAIF-2026-07-S42-D001"} for i in issued}
    return table.get


def test_signature_validates_with_pyhanko_and_covers_the_whole_file(dossier_en, portal_identity):
    reader = PdfFileReader(BytesIO(dossier_en.signed))
    (signature,) = reader.embedded_signatures
    context = ValidationContext(trust_roots=trusted_certs_load(pem_bundle=portal_identity.cert_pem), allow_fetching=False)
    status = validate_pdf_signature(signature, signer_validation_context=context)
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert signature.field_name == "PortalSignature"


def test_issued_dossier_verifies(dossier_en, portal_identity):
    result = dossier_verify(pdf_bytes=dossier_en.signed, trusted_certs=[portal_identity.cert_pem], known_hashes=_registry(dossier_en))
    data = result.to_dict()
    assert data["ok"] and data["issued"] and data["unaltered"] and data["signature_valid"]
    assert data["submission"] == 42
    assert data["sha256"] == hashlib.sha256(dossier_en.signed).hexdigest()
    assert data["signer_fingerprint"] == portal_identity.fingerprint_sha256
    assert data["reasons"] == []


def test_offline_verification_reads_the_submission_from_the_signed_manifest(dossier_en, portal_identity):
    result = dossier_verify(pdf_bytes=dossier_en.signed, trusted_certs=[portal_identity.cert_pem], known_hashes=None)
    assert result.ok and result.submission == 42
    assert result.dossier_number == "SAIF-2026-07-S42-D001"


@pytest.mark.parametrize("where", ["start", "middle", "signature_container", "end"])
def test_one_flipped_byte_fails(dossier_en, portal_identity, where):
    data = bytearray(dossier_en.signed)
    positions = {
        "start": 200,
        "middle": len(data) // 2,
        # Inside the hex of the signature container, in its zero padding:
        # not covered by the digest, caught by the container check.
        "signature_container": data.rindex(b"0000000000>") + 2,
        "end": len(data) - 40,
    }
    data[positions[where]] ^= 0x01
    result = dossier_verify(pdf_bytes=bytes(data), trusted_certs=[portal_identity.cert_pem], known_hashes=_registry(dossier_en))
    assert not result.ok
    assert not result.issued  # the registry knows the original bytes only
    assert not (result.unaltered and result.signature_valid)
    assert any("changed" in r or "damaged" in r or "cannot be read" in r for r in result.reasons), result.reasons
    # Offline, without the registry, the flip is still caught by the signature.
    offline = dossier_verify(pdf_bytes=bytes(data), trusted_certs=[portal_identity.cert_pem], known_hashes=None)
    assert not offline.ok


def test_truncated_dossier_fails(dossier_en, portal_identity):
    truncated = dossier_en.signed[: len(dossier_en.signed) // 2]
    result = dossier_verify(pdf_bytes=truncated, trusted_certs=[portal_identity.cert_pem], known_hashes=_registry(dossier_en))
    assert not result.ok and not result.issued
    assert any("truncated" in reason for reason in result.reasons), result.reasons


def test_unsigned_forgery_fails(dossier_en, portal_identity):
    # A forger renders the same template (unsigned render output) and sends it.
    result = dossier_verify(pdf_bytes=dossier_en.render.pdf_bytes, trusted_certs=[portal_identity.cert_pem], known_hashes=_registry(dossier_en))
    assert not result.ok and not result.issued and not result.signature_valid
    assert any("no signature" in reason for reason in result.reasons)


def test_dossier_signed_with_another_key_fails_even_under_the_same_name(dossier_en, portal_identity, attacker_identity):
    assert attacker_identity.subject == portal_identity.subject  # same CN, different key
    forged = dossier_sign(pdf_bytes=dossier_en.render.pdf_bytes, identity=attacker_identity)
    result = dossier_verify(pdf_bytes=forged, trusted_certs=[portal_identity.cert_pem], known_hashes=_registry(dossier_en))
    assert not result.ok and not result.signature_valid and not result.issued
    assert any("not the portal's signing certificate" in reason for reason in result.reasons)


def test_dossier_countersigned_after_issue_fails(dossier_en, portal_identity, attacker_identity):
    resigned = dossier_sign(pdf_bytes=dossier_en.signed, identity=attacker_identity, field_name="Second")
    result = dossier_verify(pdf_bytes=resigned, trusted_certs=[portal_identity.cert_pem], known_hashes=None)
    assert not result.ok and not result.signature_valid
    assert any("re-signed after issue" in reason for reason in result.reasons)


def test_appended_bytes_after_signing_fail(dossier_en, portal_identity):
    tampered = dossier_en.signed + b"\n% appended\n"
    result = dossier_verify(pdf_bytes=tampered, trusted_certs=[portal_identity.cert_pem], known_hashes=None)
    assert not result.ok and not result.unaltered


def test_garbage_is_not_a_pdf(portal_identity):
    result = dossier_verify(pdf_bytes=b"<html>not a pdf</html>", trusted_certs=[portal_identity.cert_pem], known_hashes=None)
    assert not result.ok and result.reasons == ["not a PDF file (it does not start with %PDF-)"]


def test_identity_is_created_once_and_reused(tmp_path):
    first = signing_identity_load_or_create(key_path=tmp_path / "k.pem", cert_path=tmp_path / "c.pem", common_name="Demo")
    second = signing_identity_load_or_create(key_path=tmp_path / "k.pem", cert_path=tmp_path / "c.pem", common_name="Demo")
    assert first.created and not second.created
    assert first.fingerprint_sha256 == second.fingerprint_sha256
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0  # key readable by its owner only
    assert "CN=Demo" in first.subject


def test_half_a_key_pair_is_an_error_not_a_silent_replacement(tmp_path):
    signing_identity_load_or_create(key_path=tmp_path / "k.pem", cert_path=tmp_path / "c.pem")
    (tmp_path / "c.pem").unlink()
    with pytest.raises(DossierSigningError, match="c.pem: missing while its pair exists"):
        signing_identity_load_or_create(key_path=tmp_path / "k.pem", cert_path=tmp_path / "c.pem")


def test_settings_without_generate_refuse_to_invent_a_production_key(tmp_path):
    settings = SimpleNamespace(DOSSIER_SIGNING_KEY=str(tmp_path / "k.pem"), DOSSIER_SIGNING_CERT=str(tmp_path / "c.pem"), DOSSIER_SIGNING_GENERATE=False)
    with pytest.raises(DossierSigningError, match="no signing key"):
        signing_identity_from_settings(settings=settings)
    settings.DOSSIER_SIGNING_GENERATE = True
    assert signing_identity_from_settings(settings=settings).created


def test_signing_refuses_non_pdf(portal_identity):
    with pytest.raises(DossierSigningError, match="not a PDF"):
        dossier_sign(pdf_bytes=b"hello", identity=portal_identity)


def test_fingerprint_printed_in_the_dossier_matches_the_signing_certificate(dossier_en, portal_identity, tmp_path):
    from tests.compliance.dossier.conftest import poppler

    text = "".join(poppler("pdftotext", dossier_en.signed, tmp_path).split())
    assert portal_identity.fingerprint_sha256 in text


def test_timestamped_signature_is_reported(dossier_en, portal_identity, tmp_path):
    """With a TSA (pyHanko's in-process dummy TSA here: no network), the
    signature carries an RFC 3161 token and verification says so."""
    import datetime as dt

    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the dummy TSA is RSA-only
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    tsa_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tsa_key = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    signed = dossier_sign(
        pdf_bytes=dossier_en.render.pdf_bytes, identity=portal_identity, timestamper=DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key)
    )
    result = dossier_verify(pdf_bytes=signed, trusted_certs=[portal_identity.cert_pem, tsa_cert], known_hashes=None)
    assert result.ok and result.timestamped


def test_trusted_certificates_from_settings_include_rotated_ones_and_create_nothing(tmp_path, portal_identity, attacker_identity, dossier_en):
    from compliance.dossier.signing import trusted_certificates_from_settings

    old_bundle = tmp_path / "old-certs.pem"
    old_bundle.write_bytes(attacker_identity.cert_pem)  # stands for a certificate from before a rotation
    settings = SimpleNamespace(
        DOSSIER_SIGNING_CERT=portal_identity.cert_path, DOSSIER_TRUSTED_CERTS=str(old_bundle), DOSSIER_SIGNING_GENERATE=True
    )
    certs = trusted_certificates_from_settings(settings=settings)
    assert len(certs) == 2
    assert dossier_verify(pdf_bytes=dossier_en.signed, trusted_certs=certs, known_hashes=None).ok
    missing = SimpleNamespace(DOSSIER_SIGNING_CERT=str(tmp_path / "none.pem"), DOSSIER_SIGNING_GENERATE=True)
    assert trusted_certificates_from_settings(settings=missing) == []
    assert not (tmp_path / "none.pem").exists()

"""The portal's signing identity: one key and certificate, loaded here, used by every signer.

Audit checkpoints (``portal.checkpoints``) and dossiers (``compliance.dossier.signing``)
both sign with it; it lives in ``portal`` so that imports keep pointing one way
(``compliance`` -> ``projects`` -> ``portal``). The settings keep their historical
``DOSSIER_SIGNING_*`` names so existing deployments need no change:

``DOSSIER_SIGNING_KEY``
    Path to the portal's private key (PEM, unencrypted or with
    ``DOSSIER_SIGNING_KEY_PASSPHRASE``).
``DOSSIER_SIGNING_CERT``
    Path to its certificate (PEM). With ``DOSSIER_SIGNING_CHAIN`` (optional)
    naming a PEM bundle of intermediate certificates to embed.
``DOSSIER_SIGNING_PKCS11_MODULE``, ``DOSSIER_SIGNING_PKCS11_TOKEN_LABEL``,
``DOSSIER_SIGNING_PKCS11_KEY_LABEL``, ``DOSSIER_SIGNING_PKCS11_CERT_LABEL``,
``DOSSIER_SIGNING_PKCS11_PIN``
    Use a hardware token or HSM instead of key files (GPKI-style). Needs the
    ``python-pkcs11`` package; the PIN should come from the environment.
``DOSSIER_SIGNING_GENERATE``
    When true (the embedded default), a missing key/cert pair at the two paths
    above is created as a self-signed demo certificate on first use; when
    false (production), a missing key is an error.
``DOSSIER_SIGNING_COMMON_NAME``
    Subject CN of that demo certificate.
``DOSSIER_TRUSTED_CERTS``
    Optional PEM bundle of earlier signing certificates, still trusted when
    verifying what was signed before a key rotation.

Besides loading, this module makes and checks detached CMS (PKCS#7) signatures
over arbitrary bytes with pyHanko's CMS helpers (``cms_detached_sign``,
``cms_detached_verify``): what a witness can also check offline with
``openssl cms -verify -binary -inform DER -content FILE -CAfile cert.pem``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "SigningError",
    "SigningIdentity",
    "cms_detached_sign",
    "cms_detached_verify",
    "run_outside_event_loop",
    "signing_identity_from_settings",
    "signing_identity_load_or_create",
    "trusted_certificates_from_settings",
]


def run_outside_event_loop(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run pyHanko's synchronous API (which calls ``asyncio.run``) from any caller.

    Inside a thread that already runs an event loop (an ASGI view, a
    Playwright-driven test) the call moves to a short-lived thread with its own loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyhanko") as pool:
        return pool.submit(fn, *args, **kwargs).result()


class SigningError(RuntimeError):
    """Loading the identity or signing failed; the message says what to fix."""


@dataclass
class SigningIdentity:
    """The portal's signing key and certificate, ready to sign."""

    subject: str
    fingerprint_sha256: str
    cert_pem: bytes
    not_valid_after: dt.datetime | None = None
    key_path: str = ""
    cert_path: str = ""
    created: bool = False  # True when this call generated a demo key pair
    source: str = "files"  # files | pkcs11 | demo
    signer: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "fingerprint_sha256": self.fingerprint_sha256,
            "not_valid_after": self.not_valid_after.isoformat() if self.not_valid_after else None,
            "key_path": self.key_path,
            "cert_path": self.cert_path,
            "created": self.created,
            "source": self.source,
        }


def _demo_certificate_create(*, key_path: Path, cert_path: Path, common_name: str, valid_days: int) -> None:
    """Write a fresh RSA-3072 key (mode 0600) and a self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    # RSA-3072: accepted by every PDF reader in use (some still reject ECDSA)
    # and at the 128-bit level NIST SP 800-57 asks for beyond 2030.
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo signing certificate (self-signed)"),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Write to temporary names then rename: another worker never sees half a key.
    tmp_key = key_path.with_name(key_path.name + f".tmp{os.getpid()}")
    tmp_cert = cert_path.with_name(cert_path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_cert, cert_path)
    os.replace(tmp_key, key_path)


@contextlib.contextmanager
def _file_lock(path: Path):
    """Exclusive lock so two workers starting together create one key, not two."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: best effort
            pass
        yield


def _identity_from_cert(*, cert_pem: bytes, signer: Any, **extra: Any) -> SigningIdentity:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(cert_pem)
    der = cert.public_bytes(Encoding.DER)
    return SigningIdentity(
        subject=cert.subject.rfc4514_string(),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        cert_pem=cert_pem,
        not_valid_after=cert.not_valid_after_utc,
        signer=signer,
        **extra,
    )


def signing_identity_load_or_create(
    *,
    key_path: str | Path,
    cert_path: str | Path,
    common_name: str = "Sovereign AI Governance Portal (demo)",
    passphrase: bytes | None = None,
    chain_path: str | Path | None = None,
    create: bool = True,
    valid_days: int = 3650,
) -> SigningIdentity:
    """Load the key and certificate at the given paths; create a self-signed demo
    pair there first when both are missing and ``create`` is true.

    One file present without the other is an error, never silently replaced:
    replacing a production key would orphan every dossier it signed.
    """
    from pyhanko.sign import signers

    key_path, cert_path = Path(key_path), Path(cert_path)
    created = False
    with _file_lock(key_path.with_name(key_path.name + ".lock")):
        key_exists, cert_exists = key_path.exists(), cert_path.exists()
        if key_exists != cert_exists:
            missing = cert_path if key_exists else key_path
            raise SigningError(
                f"{missing}: missing while its pair exists; restore it from backup or point "
                "DOSSIER_SIGNING_KEY / DOSSIER_SIGNING_CERT at a matching pair"
            )
        if not key_exists:
            if not create:
                raise SigningError(f"{key_path}: no signing key; set DOSSIER_SIGNING_KEY and DOSSIER_SIGNING_CERT")
            _demo_certificate_create(key_path=key_path, cert_path=cert_path, common_name=common_name, valid_days=valid_days)
            created = True
    signer = signers.SimpleSigner.load(
        key_file=str(key_path),
        cert_file=str(cert_path),
        ca_chain_files=[str(chain_path)] if chain_path else None,
        key_passphrase=passphrase,
    )
    if signer is None:
        raise SigningError(f"{key_path} / {cert_path}: could not load the key or certificate (wrong passphrase or not PEM?)")
    return _identity_from_cert(
        cert_pem=cert_path.read_bytes(),
        signer=signer,
        key_path=str(key_path),
        cert_path=str(cert_path),
        created=created,
        source="demo" if created else "files",
    )


def _pkcs11_identity(settings: Any) -> SigningIdentity:
    """Signer backed by a PKCS#11 token (needs python-pkcs11; not exercised in tests)."""
    try:
        from pyhanko.sign import pkcs11
    except ImportError as exc:  # pragma: no cover
        raise SigningError("DOSSIER_SIGNING_PKCS11_MODULE is set but python-pkcs11 is not installed") from exc
    from cryptography.hazmat.primitives import serialization
    from cryptography import x509

    session = pkcs11.open_pkcs11_session(
        settings.DOSSIER_SIGNING_PKCS11_MODULE,
        token_label=getattr(settings, "DOSSIER_SIGNING_PKCS11_TOKEN_LABEL", None),
        user_pin=getattr(settings, "DOSSIER_SIGNING_PKCS11_PIN", None) or os.environ.get("DOSSIER_SIGNING_PKCS11_PIN"),
    )
    signer = pkcs11.PKCS11Signer(
        session,
        cert_label=getattr(settings, "DOSSIER_SIGNING_PKCS11_CERT_LABEL", None),
        key_label=getattr(settings, "DOSSIER_SIGNING_PKCS11_KEY_LABEL", None),
    )
    cert_der = signer.signing_cert.dump()
    cert_pem = x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM)
    return _identity_from_cert(cert_pem=cert_pem, signer=signer, source="pkcs11")


def signing_identity_from_settings(*, settings: Any, default_dir: str | Path | None = None) -> SigningIdentity:
    """The portal's signing identity from Django settings (or any object with
    the same attribute names; see the module docstring).

    Precedence: a PKCS#11 token; then ``DOSSIER_SIGNING_KEY`` +
    ``DOSSIER_SIGNING_CERT`` (created as a self-signed demo pair only when
    ``DOSSIER_SIGNING_GENERATE`` is true, as in the embedded default); then,
    when neither path is set, a demo pair under ``default_dir``
    (``<BASE_DIR>/var/dossier-signing``).
    """
    if getattr(settings, "DOSSIER_SIGNING_PKCS11_MODULE", None):
        return _pkcs11_identity(settings)
    key = getattr(settings, "DOSSIER_SIGNING_KEY", None)
    cert = getattr(settings, "DOSSIER_SIGNING_CERT", None)
    passphrase = getattr(settings, "DOSSIER_SIGNING_KEY_PASSPHRASE", None)
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    common_name = getattr(settings, "DOSSIER_SIGNING_COMMON_NAME", None) or "Sovereign AI Governance Portal (demo)"
    if key or cert:
        if not (key and cert):
            raise SigningError("set both DOSSIER_SIGNING_KEY and DOSSIER_SIGNING_CERT, or neither (demo key)")
        return signing_identity_load_or_create(
            key_path=key,
            cert_path=cert,
            common_name=common_name,
            passphrase=passphrase,
            chain_path=getattr(settings, "DOSSIER_SIGNING_CHAIN", None),
            create=bool(getattr(settings, "DOSSIER_SIGNING_GENERATE", False)),
        )
    if default_dir is None:
        base = Path(getattr(settings, "BASE_DIR", Path.cwd()))
        default_dir = base / "var" / "dossier-signing"
    default_dir = Path(default_dir)
    return signing_identity_load_or_create(
        key_path=default_dir / "key.pem",
        cert_path=default_dir / "cert.pem",
        common_name=common_name,
    )


def trusted_certificates_from_settings(*, settings: Any) -> list[bytes]:
    """PEM certificates a verifier should trust: the current signing certificate
    (``DOSSIER_SIGNING_CERT``, or the token's) and those in ``DOSSIER_TRUSTED_CERTS``.

    Never creates a key: verifying must not have the side effect of minting an
    identity. Missing files are skipped; an empty list means nothing verifies.
    """
    from asn1crypto import pem

    pems: list[bytes] = []
    if getattr(settings, "DOSSIER_SIGNING_PKCS11_MODULE", None):
        pems.append(_pkcs11_identity(settings).cert_pem)
    for setting in ("DOSSIER_SIGNING_CERT", "DOSSIER_TRUSTED_CERTS"):
        path = getattr(settings, setting, None)
        if not path or not Path(path).is_file():
            continue
        data = Path(path).read_bytes()
        for kind, _headers, der in pem.unarmor(data, multiple=True):
            if kind == "CERTIFICATE":
                pems.append(pem.armor("CERTIFICATE", der))
    return pems


def _certificates_asn1(pems: list[bytes]) -> list[Any]:
    """asn1crypto certificates from PEM or DER bytes (one certificate each)."""
    from asn1crypto import pem, x509 as asn1_x509

    certs = []
    for data in pems:
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        certs.append(asn1_x509.Certificate.load(data))
    return certs


def cms_detached_sign(*, data: bytes, identity: SigningIdentity) -> bytes:
    """A detached CMS SignedData (DER) over ``data``, with the signer's certificate inside.

    pyHanko's generic CMS signer, the same one that signs dossiers, so a key on a
    PKCS#11 token works here too.
    """
    if identity.signer is None:
        raise SigningError("signing identity has no signer; load it with signing_identity_load_or_create")

    def sign() -> Any:
        return asyncio.run(identity.signer.async_sign_general_data(data, "sha256", detached=True))

    try:
        content_info = run_outside_event_loop(sign)
    except Exception as exc:  # pyHanko raises many kinds; the caller needs one
        raise SigningError(f"signing failed: {type(exc).__name__}: {exc}") from exc
    return content_info.dump()


@dataclass(frozen=True)
class CmsCheck:
    """Outcome of :func:`cms_detached_verify`: ``valid`` only when every reason is absent."""

    valid: bool
    signer_subject: str | None
    signer_fingerprint: str | None
    reasons: tuple[str, ...]


def cms_detached_verify(*, data: bytes, cms_der: bytes, trusted_certs: list[bytes]) -> CmsCheck:
    """Check a detached CMS signature over ``data`` and that its signer is one of ``trusted_certs``.

    Trusted means the signing certificate is one of them (pinned by SHA-256) or
    chains to one; revocation soft-fails because a witness verifies offline.
    """
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext

    try:
        trusted = _certificates_asn1(trusted_certs)
    except Exception as exc:
        return CmsCheck(False, None, None, (f"could not read the trusted certificates: {exc}",))
    if not trusted:
        return CmsCheck(False, None, None, ("no trusted signing certificate is configured (DOSSIER_SIGNING_CERT)",))
    pinned = {hashlib.sha256(cert.dump()).hexdigest() for cert in trusted}
    try:
        signed_data = cms.ContentInfo.load(cms_der)["content"]
        context = ValidationContext(trust_roots=trusted, allow_fetching=False, revocation_mode="soft-fail")
        status = run_outside_event_loop(lambda: asyncio.run(async_validate_detached_cms(
            data, signed_data, signer_validation_context=context,
            # The demo certificate sets digitalSignature + nonRepudiation; a CA-issued one may set either.
            key_usage_settings=KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"},
                                                   match_all_key_usages=False),
        )))
    except Exception as exc:
        return CmsCheck(False, None, None, (f"the signature cannot be read ({type(exc).__name__}: {str(exc)[:200]})",))
    cert = status.signing_cert
    subject = cert.subject.human_friendly if cert is not None else None
    fingerprint = hashlib.sha256(cert.dump()).hexdigest() if cert is not None else None
    reasons = []
    if not status.intact:
        reasons.append("the signed content was changed after signing (its digest no longer matches the signature)")
    elif not status.valid:
        reasons.append("the signature value does not verify against the signer's certificate")
    elif not (fingerprint in pinned or status.trusted):
        reasons.append(f"signed by {subject!r} (certificate SHA-256 {fingerprint}), "
                       "which is not the portal's signing certificate")
    return CmsCheck(not reasons, subject, fingerprint, tuple(reasons))

"""Second factor at sign-in: who needs one, enrolment, verification, recovery codes, resets.

django-otp does the one-time-password work (RFC 6238 TOTP with its own throttling of wrong
codes, single-use static recovery codes, the verified-device marker in the session); this module
holds the portal's rules around it:

- ministry staff (administrators, officers, reviewers, auditors) must have a second factor: until
  they set one up, every page but the set-up page sends them there;
- anyone who has one must use it at every sign-in (vendors may opt in);
- a programme can require it of its vendors (``projects`` registers that rule through
  ``settings.PORTAL_SECOND_FACTOR_RULES``, because portal never imports projects);
- an administrator's reset removes a person's devices, audited; they enrol again at next sign-in.

WebAuthn passkeys come from django-otp-webauthn (a django-otp device plugin on py_webauthn): its
views run the registration and authentication ceremonies (portal.views wraps them), its credential
is a django-otp device, so a passkey passes SecondFactorMiddleware exactly as a TOTP code does.
Passkeys are added beside the authenticator app, never instead of it: registering one needs a
session that already passed a second factor, so the recovery codes issued with the authenticator
always exist and a password alone can never register an attacker's passkey.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from portal.models import MINISTRY_ROLES
from portal.services import audit_record

RECOVERY_CODE_COUNT = 10
PENDING_NAME = "pending"


def user_requires_second_factor(*, user) -> bool:
    """Whether this signed-in person must pass a second factor before using the portal."""
    if not getattr(settings, "PORTAL_SECOND_FACTOR_ENFORCED", True):
        return False
    if not getattr(user, "is_authenticated", False):
        return False
    profile = getattr(user, "profile", None)
    if user.is_superuser or (profile is not None and profile.role in MINISTRY_ROLES):
        return True
    if user_has_device(user, confirmed=True):
        return True  # opted in: a factor once set up is always asked for
    return any(import_string(rule)(user=user) for rule in getattr(settings, "PORTAL_SECOND_FACTOR_RULES", ()))


def user_has_second_factor(*, user) -> bool:
    return user_has_device(user, confirmed=True)


@transaction.atomic
def totp_pending(*, user) -> TOTPDevice:
    """The unconfirmed authenticator being set up (made once, so a reload shows the same QR code)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name=PENDING_NAME).first()
    return device or TOTPDevice.objects.create(user=user, confirmed=False, name=PENDING_NAME)


@transaction.atomic
def totp_confirm(*, user, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the authenticator with a code it shows; returns fresh recovery codes, or None when the
    code is wrong. Any earlier authenticator and recovery codes are replaced."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6 or not device.verify_token(code):
        return None
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.name = "authenticator"
    device.confirmed = True
    device.save(update_fields=["name", "confirmed"])
    codes = recovery_codes_replace(user=user)
    audit_record(actor=user, action="second_factor.enrolled", object_type="user", object_id=user.pk,
                 object_label=user.get_username(), data={"method": "totp", "recovery_codes": len(codes)})
    return codes


@transaction.atomic
def recovery_codes_replace(*, user) -> list[str]:
    """Ten new single-use recovery codes (the old ones stop working)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    # 16 hexadecimal characters (64 bits; django-otp stores at most 16), shown as two groups of 8.
    secrets_ = [secrets.token_hex(8) for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=value) for value in secrets_])
    return [f"{value[:8]}-{value[8:]}" for value in secrets_]


def second_factor_verify(*, user, code: str):
    """The device that accepts this code (authenticator first, then a recovery code), or None.
    Wrong authenticator codes slow down (django-otp's throttling); sign-in lockout covers passwords."""
    code = (code or "").strip().replace(" ", "").replace("-", "").lower()
    if not code:
        return None
    for device in devices_for_user(user, confirmed=True, for_verify=True):
        if isinstance(device, StaticDevice):
            continue
        if device.verify_is_allowed()[0] and device.verify_token(code):
            return device
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(code):
            audit_record(actor=user, action="second_factor.recovery_code_used", object_type="user",
                         object_id=user.pk, object_label=user.get_username(),
                         data={"remaining": device.token_set.count()})
            return device
    return None


def second_factor_wait_seconds(*, user) -> int:
    """After wrong codes django-otp refuses every code for a doubling delay; how long is left (0 when
    a code would be tried now)."""
    from django.utils import timezone

    wait = 0
    for device in devices_for_user(user, confirmed=None):
        allowed, data = device.verify_is_allowed()
        if not allowed and data and data.get("locked_until"):
            wait = max(wait, int((data["locked_until"] - timezone.now()).total_seconds()) + 1)
    return wait


@transaction.atomic
def second_factor_reset(*, actor, user) -> int:
    """An administrator removes a person's second factor (lost phone or security key): the
    authenticator, the recovery codes and every passkey; audited. They set up a new one at their
    next sign-in. Returns how many devices were removed."""
    removed = 0
    for model in (TOTPDevice, StaticDevice, WebAuthnCredential):
        removed += model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
    audit_record(actor=actor, action="second_factor.reset", object_type="user", object_id=user.pk,
                 object_label=user.get_username(), data={"devices_removed": removed})
    return removed


PASSKEY_NAME_MAX = 64  # django-otp's Device.name holds 64 characters


def passkeys_for_user(*, user):
    """A person's passkeys, oldest first (the page lists them with their last use)."""
    return WebAuthnCredential.objects.filter(user=user).order_by("created_at", "pk")


@transaction.atomic
def passkey_registered(*, user, device_id: int) -> WebAuthnCredential:
    """Called once the library has verified and saved a new passkey: give it a provisional name
    (the page renames it to what the person typed) and audit the registration."""
    device = WebAuthnCredential.objects.select_for_update().get(user=user, pk=device_id)
    count = WebAuthnCredential.objects.filter(user=user).count()
    from django.utils.translation import gettext

    device.name = gettext("Passkey %(number)s") % {"number": count}  # in the language of the page
    device.save(update_fields=["name"])
    audit_record(actor=user, action="second_factor.passkey_registered", object_type="user", object_id=user.pk,
                 object_label=user.get_username(),
                 data={"passkey": device.pk, "aaguid": device.aaguid, "discoverable": device.discoverable})
    return device


def passkey_rename(*, user, device_id: int, name: str) -> WebAuthnCredential | None:
    """Name one of the person's own passkeys ("Office laptop"); None when it is not theirs or the
    name is empty."""
    name = " ".join((name or "").split())[:PASSKEY_NAME_MAX]
    device = WebAuthnCredential.objects.filter(user=user, pk=device_id).first()
    if device is None or not name:
        return None
    device.name = name
    device.save(update_fields=["name"])
    return device


@transaction.atomic
def passkey_remove(*, user, device_id: int) -> WebAuthnCredential | None:
    """Remove one of the person's own passkeys (lost key, old laptop); audited. The authenticator
    app and recovery codes stay, so removing the last passkey never leaves them without a factor."""
    device = WebAuthnCredential.objects.filter(user=user, pk=device_id).first()
    if device is None:
        return None
    audit_record(actor=user, action="second_factor.passkey_removed", object_type="user", object_id=user.pk,
                 object_label=user.get_username(), data={"passkey": device.pk, "name": device.name})
    device.delete()
    return device

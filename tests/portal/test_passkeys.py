"""Passkeys (WebAuthn, django-otp-webauthn) as a second factor: registered beside the authenticator
app from a verified session, used alone at the verify step, listed, renamed, removed, audited, and
removed by an administrator's reset. The ceremonies run end to end against the library's real
verification with a software authenticator (tests/portal/soft_authenticator.py); the browser test
with Chromium's virtual authenticator is tests/e2e/test_passkeys.py."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_otp_webauthn.models import WebAuthnCredential

from portal.models import AuditEvent
from tests.portal.soft_authenticator import SoftAuthenticator
from tests.portal.test_second_factor import _set_up, _sign_in

pytestmark = pytest.mark.django_db

BASE = "/account/two-factor/passkey"


@pytest.fixture(autouse=True)
def _enforced(settings):
    settings.PORTAL_SECOND_FACTOR_ENFORCED = True


def _post_json(client: Client, url: str, body=None):
    return client.post(url, json.dumps(body) if body is not None else "", content_type="application/json")


def _register(client: Client, authenticator: SoftAuthenticator):
    begin = _post_json(client, f"{BASE}/registration/begin/")
    assert begin.status_code == 200, begin.content
    return _post_json(client, f"{BASE}/registration/complete/", authenticator.create(begin.json()))


def _authenticate(client: Client, authenticator: SoftAuthenticator, *, next_: str = ""):
    begin = _post_json(client, f"{BASE}/authentication/begin/")
    assert begin.status_code == 200, begin.content
    assertion = authenticator.get(begin.json(), rp_id="localhost")
    return _post_json(client, f"{BASE}/authentication/complete/" + (f"?next={next_}" if next_ else ""), assertion), \
        assertion


def test_staff_register_a_passkey_then_pass_the_second_factor_with_it_alone(world):
    client = _sign_in(world.officer)
    _set_up(client)
    key = SoftAuthenticator()
    done = _register(client, key)
    assert done.status_code == 200
    device = WebAuthnCredential.objects.get(user=world.officer)
    event = AuditEvent.objects.get(action="second_factor.passkey_registered", actor=world.officer)
    assert event.data["passkey"] == device.pk
    # The page names it with what the person typed and lists it.
    named = client.post(f"/account/passkeys/{device.pk}/name/", {"name": "  Office   laptop "})
    assert named.status_code == 302
    page = client.get("/account/passkeys/").content.decode()
    assert 'value="Office laptop"' in page and "never" in page

    # Next sign-in: the password, then the passkey instead of a code.
    later = _sign_in(world.officer, address="192.0.2.20")
    asked = later.get("/dashboard/")
    assert asked.status_code == 302 and asked.headers["Location"].startswith("/account/two-factor/verify/")
    verify_page = later.get("/account/two-factor/verify/").content.decode()
    assert 'id="passkey-verification-button"' in verify_page and 'id="otp_webauthn_config"' in verify_page
    answer, _ = _authenticate(later, key, next_="/projects/")
    assert answer.status_code == 200 and answer.json()["redirect_url"] == "/projects/"
    assert later.get("/dashboard/").status_code == 200
    device.refresh_from_db()
    assert device.sign_count == 1 and device.last_used_at is not None


def test_registering_needs_a_session_that_passed_a_second_factor(world):
    # No factor yet: a password alone cannot make a passkey the first factor (recovery codes come
    # with the authenticator app).
    fresh = _sign_in(world.reviewer)
    refused = _post_json(fresh, f"{BASE}/registration/begin/")
    assert refused.status_code == 403 and "authenticator app" in refused.json()["detail"]
    assert fresh.get("/account/passkeys/").headers["Location"].startswith("/account/two-factor/setup/")
    # A factor exists but this session has not passed it (a stolen password): refused too.
    _set_up(fresh)
    thief = _sign_in(world.reviewer, address="192.0.2.21")
    assert _post_json(thief, f"{BASE}/registration/begin/").status_code == 403
    assert _post_json(thief, f"{BASE}/registration/complete/", SoftAuthenticator().create(
        {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA"})).status_code == 403
    assert not WebAuthnCredential.objects.filter(user=world.reviewer).exists()
    # Vendors who never set up a factor are not verified either.
    vendor = _sign_in(world.vendor_user, address="192.0.2.22")
    assert _post_json(vendor, f"{BASE}/registration/begin/").status_code == 403
    assert AuditEvent.objects.filter(action="second_factor.passkey_registered").count() == 0


def test_wrong_origin_another_persons_passkey_and_replay_are_refused(world):
    owner = _sign_in(world.officer)
    _set_up(owner)
    # A page at another origin (phishing) cannot register.
    assert _register(owner, SoftAuthenticator(origin="https://evil.example")).status_code >= 400
    assert not WebAuthnCredential.objects.filter(user=world.officer).exists()
    key = SoftAuthenticator()
    assert _register(owner, key).status_code == 200

    # The auditor's session cannot pass its second factor with the officer's passkey.
    other = _sign_in(world.auditor, address="192.0.2.23")
    _set_up(other)
    other = _sign_in(world.auditor, address="192.0.2.24")
    refused, _ = _authenticate(other, key)
    assert refused.status_code >= 400
    assert other.get("/dashboard/").headers["Location"].startswith("/account/two-factor/verify/")

    # A recorded assertion cannot be replayed: the challenge is used once.
    later = _sign_in(world.officer, address="192.0.2.25")
    ok, assertion = _authenticate(later, key)
    assert ok.status_code == 200
    again = _sign_in(world.officer, address="192.0.2.26")
    assert _post_json(again, f"{BASE}/authentication/complete/", assertion).status_code >= 400
    _post_json(again, f"{BASE}/authentication/begin/")
    assert _post_json(again, f"{BASE}/authentication/complete/", assertion).status_code >= 400
    assert again.get("/dashboard/").status_code == 302
    # Passwordless sign-in is off: without a session nothing begins.
    assert _post_json(Client(), f"{BASE}/authentication/begin/").status_code == 403


def test_removing_is_audited_and_only_ones_own(world):
    owner = _sign_in(world.officer)
    _set_up(owner)
    assert _register(owner, SoftAuthenticator()).status_code == 200
    device = WebAuthnCredential.objects.get(user=world.officer)
    stranger = _sign_in(world.auditor, address="192.0.2.27")
    _set_up(stranger)
    assert stranger.post(f"/account/passkeys/{device.pk}/remove/").status_code == 404
    assert stranger.post(f"/account/passkeys/{device.pk}/name/", {"name": "mine"}).status_code == 404
    assert WebAuthnCredential.objects.filter(pk=device.pk, name="Passkey 1").exists()
    removed = owner.post(f"/account/passkeys/{device.pk}/remove/", follow=True)
    assert "can no longer be used" in removed.content.decode()
    assert not WebAuthnCredential.objects.filter(pk=device.pk).exists()
    event = AuditEvent.objects.get(action="second_factor.passkey_removed", actor=world.officer)
    assert event.data == {"passkey": device.pk, "name": "Passkey 1"}
    # The authenticator app still guards the account.
    assert _sign_in(world.officer, address="192.0.2.28").get("/dashboard/").status_code == 302


def test_administrator_reset_removes_passkeys_too(world):
    owner = _sign_in(world.officer)
    _set_up(owner)
    assert _register(owner, SoftAuthenticator()).status_code == 200
    assert _register(owner, SoftAuthenticator()).status_code == 200
    world.admin.is_staff = True
    world.admin.save(update_fields=["is_staff"])
    admin = _sign_in(world.admin, address="192.0.2.29")
    _set_up(admin)
    admin.post("/admin/portal/profile/", {"action": "second_factor_reset_action",
                                          "_selected_action": [world.officer.profile.pk]})
    assert not WebAuthnCredential.objects.filter(user=world.officer).exists()
    event = AuditEvent.objects.get(action="second_factor.reset", object_id=str(world.officer.pk))
    assert event.data["devices_removed"] == 4  # authenticator, recovery codes, two passkeys


def test_passkey_pages_and_script_texts_in_korean(world):
    client = _sign_in(world.officer)
    _set_up(client)
    client.cookies["django_language"] = "ko"
    page = client.get("/account/passkeys/").content.decode()
    assert "패스키" in page and 'id="passkey-register-button"' in page
    # The library's script texts (it ships no Korean) come from locale/ko/LC_MESSAGES/djangojs.po.
    catalog = client.get(f"{BASE}/jsi18n/").content.decode()
    assert '"Registering...": "' + "등록 중...".encode("unicode_escape").decode() + '"' in catalog


def test_ceremonies_need_the_pages_csrf_token(world):
    """The library's endpoints are ordinary Django views: a cross-site POST without the token the
    page hands its script is refused before any ceremony begins."""
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="192.0.2.30")
    client.force_login(world.officer)
    for step in ("registration/begin/", "authentication/begin/"):
        assert _post_json(client, f"{BASE}/{step}").status_code == 403
    assert "otp_webauthn_authentication_state" not in client.session

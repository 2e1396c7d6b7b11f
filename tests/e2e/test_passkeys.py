"""Passkeys in a real browser: Chromium's own WebAuthn stack with a virtual authenticator (Chrome
DevTools Protocol ``WebAuthn`` domain: CTAP2, built-in, resident keys, user verification that
always succeeds), the portal's real CSP, and django-otp-webauthn's static scripts.

A staff member signs in (password, then the authenticator app: the conftest ``login``), adds a
passkey with a name, signs out, signs in again and passes the second step with the passkey alone.
The page is served at http://localhost:<port> (pytest-django's live server): localhost is a
secure context, so WebAuthn is available over plain HTTP; 127.0.0.1 could not serve as the RP ID
(WebAuthn refuses IP addresses). Screenshots go to var/screenshots/ for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import expect

from portal.models import AuditEvent
from tests.e2e.conftest import login
from tests.e2e.test_accessibility import axe_violations, stored_passkey, violations_describe
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"


def _virtual_authenticator(page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    created = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, created["authenticatorId"]


def test_staff_add_a_passkey_and_pass_the_second_factor_with_it_alone(new_page, world, settings, live_server):
    assert live_server.url.startswith("http://localhost:"), "WebAuthn needs a secure context: localhost"
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page, errors = new_page()
    cdp, authenticator = _virtual_authenticator(page)

    login(page, username=world.officer.username, password=PASSWORD)
    page.goto("/account/passkeys/")
    expect(page.locator("main")).to_contain_text("You have no passkey.")
    page.locator("#passkey-new-name").fill("Office laptop")
    page.locator("#passkey-register-button").click()
    # The library's script registers it; ours then saves the typed name and reloads the list.
    expect(page.locator("main .messages")).to_contain_text("Your passkey “Office laptop” is saved.")
    expect(page.locator("main table input[name=name]")).to_have_value("Office laptop")
    page.screenshot(path=str(SCREENSHOTS / "passkeys-registered-1280.png"), full_page=True)
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(stored) == 1 and stored[0]["isResidentCredential"] and stored[0]["rpId"] == "localhost"
    assert WebAuthnCredential.objects.filter(user=world.officer, name="Office laptop").count() == 1
    assert AuditEvent.objects.filter(action="second_factor.passkey_registered", actor=world.officer).exists()

    page.locator("header form.logout-form button[type=submit]").click()
    page.wait_for_load_state()
    page.goto("/accounts/login/")
    page.locator("main input[name=username]").fill(world.officer.username)
    page.locator("main input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/account/two-factor/verify/"))
    expect(page.locator("#passkey-verification-button")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "passkeys-verify-1280.png"), full_page=True)
    # No code is typed: the passkey alone passes the second factor.
    page.locator("#passkey-verification-button").click()
    expect(page).to_have_url(re.compile(r"/dashboard/"))
    expect(page.locator("header form.logout-form")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "passkeys-signed-in-1280.png"), full_page=True)
    assert cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0]["signCount"] >= 1
    assert WebAuthnCredential.objects.get(user=world.officer).last_used_at is not None
    assert not errors, errors


def test_korean_passkey_page_and_script_texts(new_page, world, settings, live_server):
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page, errors = new_page(locale="ko-KR")
    _virtual_authenticator(page)
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto("/account/passkeys/")
    expect(page.locator("h1")).to_have_text("패스키")
    page.locator("#passkey-register-button").click()
    expect(page.locator("main .messages")).to_contain_text("패스키 “패스키 1”을(를) 저장했습니다.")
    page.screenshot(path=str(SCREENSHOTS / "passkeys-registered-ko-1280.png"), full_page=True)
    assert not errors, errors


def test_verify_page_with_a_passkey_is_accessible(new_page, world):
    """The verify step offering a passkey beside the code (axe needs the CSP bypassed to run)."""
    page, _ = new_page(bypass_csp=True)
    login(page, username=world.auditor.username, password=PASSWORD)
    stored_passkey(world.auditor)
    page.locator("header form.logout-form button[type=submit]").click()
    page.wait_for_load_state()
    page.goto("/accounts/login/")
    page.locator("main input[name=username]").fill(world.auditor.username)
    page.locator("main input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/account/two-factor/verify/"))
    expect(page.locator("#passkey-verification-button")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, violations_describe(violations)

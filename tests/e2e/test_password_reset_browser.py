"""A vendor who forgot the password gets back in through the e-mailed link, in Chromium: from the
sign-in page's link, through Django's in-memory outbox (the live server runs in this process), to
the new password signing in. Screenshots of each step go to var/screenshots/ for a person to look
at; axe checks the two forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_accessibility import axe_violations, violations_describe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
NEW_PASSWORD = "a-new-and-longer-passphrase"


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"password-reset-{name}.png"), full_page=True)


def test_a_vendor_resets_the_password_by_e_mail_and_signs_in(new_page, world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    page, errors = new_page(bypass_csp=False)
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    _shot(page, "1-ask")
    page.get_by_label("Email").fill(world.vendor_user.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your e-mail")
    _shot(page, "2-sent")

    [message] = mail.outbox
    link = re.search(r"https?://\S+(/accounts/reset/\S+/)", message.body).group(1)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a password")
    _shot(page, "3-choose")
    page.locator("main input[name=new_password1]").fill(NEW_PASSWORD)
    page.locator("main input[name=new_password2]").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Password set")
    _shot(page, "4-done")
    assert page.locator("header form.logout-form").count() == 0, "a reset never signs in by itself"

    login(page, username=world.vendor_user.username, password=NEW_PASSWORD)
    expect(page.locator("header form.logout-form")).to_be_visible()
    _shot(page, "5-signed-in")
    assert not errors, errors


def test_the_reset_pages_pass_axe(new_page, world):
    page, _ = new_page(bypass_csp=True, locale="ko-KR")
    for name, path in (("ko-ask", "/accounts/password/reset/"), ("ko-sent", "/accounts/password/reset/sent/"),
                       ("ko-login", "/accounts/login/")):
        page.goto(path)
        _shot(page, name)
        violations = axe_violations(page)
        assert not violations, f"{path}: {violations_describe(violations)}"

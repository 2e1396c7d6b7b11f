"""Forgotten passwords: the link arrives by e-mail (Django's in-memory outbox), works once, sets a
password that signs in, lifts the account's sign-in pause, and never skips the second factor.
Asking answers the same whether or not the address belongs to anyone, and is budgeted."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client

from portal.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ASK = "/accounts/password/reset/"
NEW_PASSWORD = "a-new-and-longer-passphrase"


@pytest.fixture(autouse=True)
def _outbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PORTAL_BASE_URL = "https://portal.example.go.kr"


def _link_from_outbox() -> str:
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    match = re.search(r"https://portal\.example\.go\.kr(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox[0].body)
    assert match, mail.outbox[0].body
    return match.group(1)


def _choose(client: Client, link: str, password: str = NEW_PASSWORD):
    """Follow the e-mailed link as a browser does (Django swaps the token into the session and
    redirects to .../set-password/), then post the new password twice."""
    opened = client.get(link, follow=True)
    assert opened.status_code == 200 and 'name="new_password1"' in opened.content.decode()
    form_url = opened.redirect_chain[-1][0]
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_the_login_page_links_to_the_reset_page():
    page = Client().get("/accounts/login/").content.decode()
    assert f'href="{ASK}"' in page and "Forgot your password?" in page


def test_a_vendor_resets_by_e_mail_and_signs_in_with_the_new_password(world):
    client = Client(REMOTE_ADDR="192.0.2.10")
    asked = client.post(ASK, {"email": world.vendor_user.email})
    assert asked.status_code == 302 and asked.headers["Location"] == "/accounts/password/reset/sent/"
    assert "If the address you gave belongs to a portal account" in client.get(asked.headers["Location"]).content.decode()
    link = _link_from_outbox()
    assert mail.outbox[0].to == [world.vendor_user.email]
    assert world.vendor_user.username in mail.outbox[0].body

    done = _choose(client, link)
    assert done.status_code == 302 and done.headers["Location"] == "/accounts/password/reset/complete/"
    assert "_auth_user_id" not in client.session, "a reset never signs in by itself"
    # The old password no longer works, the new one does.
    fresh = Client(REMOTE_ADDR="192.0.2.11")
    assert fresh.post("/accounts/login/", {"username": world.vendor_user.username, "password": PASSWORD}).status_code == 200
    assert fresh.post("/accounts/login/", {"username": world.vendor_user.username,
                                           "password": NEW_PASSWORD}).status_code == 302
    # The link works once.
    again = client.get(link, follow=True).content.decode()
    assert "already used or has expired" in again
    assert AuditEvent.objects.filter(action="password.reset_requested", object_id=str(world.vendor_user.pk)).count() == 1
    completed = AuditEvent.objects.get(action="password.reset_completed")
    assert completed.actor == world.vendor_user and completed.data["ip_address"] == "192.0.2.10"


def test_an_unknown_address_gets_the_same_answer_and_no_e_mail(world):
    known = Client(REMOTE_ADDR="192.0.2.20").post(ASK, {"email": world.vendor_user.email})
    unknown = Client(REMOTE_ADDR="192.0.2.21").post(ASK, {"email": "nobody-here@example.org"})
    assert (known.status_code, known.headers["Location"]) == (unknown.status_code, unknown.headers["Location"])
    assert [m.to for m in mail.outbox] == [[world.vendor_user.email]]
    # Nothing about the unknown address is recorded, so nothing about it can be read back.
    assert not AuditEvent.objects.filter(data__icontains="nobody-here").exists()


def test_the_e_mail_is_in_the_recipients_language(world):
    profile = world.vendor_user.profile
    profile.language = "ko"
    profile.save(update_fields=["language"])
    Client(REMOTE_ADDR="192.0.2.30").post(ASK, {"email": world.vendor_user.email})
    assert "비밀번호" in mail.outbox[0].subject and "비밀번호" in mail.outbox[0].body


def test_asking_is_budgeted_per_address_and_per_client(world, settings):
    settings.PORTAL_PASSWORD_RESET_RATE_PER_ACCOUNT = "3/hour"
    settings.PORTAL_PASSWORD_RESET_RATE_PER_CLIENT = "5/hour"
    # One address asked for from many clients: three e-mails, then 429, for a known and an
    # unknown address alike (the 429 says nothing about accounts).
    for address in (world.vendor_user.email, "nobody-here@example.org"):
        answers = [Client(REMOTE_ADDR=f"198.51.100.{i}").post(ASK, {"email": address}).status_code for i in range(4)]
        assert answers == [302, 302, 302, 429]
    assert len(mail.outbox) == 3
    # One client asking about many addresses: five, then 429 with a Retry-After.
    # (A forged X-Forwarded-For changes nothing: the address is the one the operator trusts.)
    answers = [Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
               .post(ASK, {"email": f"probe{i}@example.org"}) for i in range(6)]
    assert [a.status_code for a in answers] == [302] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert "Too many reset links" in answers[-1].content.decode()


def test_a_reset_lifts_the_accounts_sign_in_pause_but_not_the_guessing_address(world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    for i in range(3):
        attacker.post("/accounts/login/", {"username": world.vendor_user.username, "password": f"guess-{i}"})
    owner = Client(REMOTE_ADDR="192.0.2.40")
    assert owner.post("/accounts/login/", {"username": world.vendor_user.username,
                                           "password": PASSWORD}).status_code == 429
    owner.post(ASK, {"email": world.vendor_user.email})
    assert _choose(owner, _link_from_outbox()).status_code == 302
    assert owner.post("/accounts/login/", {"username": world.vendor_user.username,
                                           "password": NEW_PASSWORD}).status_code == 302
    completed = AuditEvent.objects.get(action="password.reset_completed")
    assert completed.data["signin_pause_lifted"] is True
    # Not recorded as an administrator's unlock: the owner's reset did it, and says so.
    assert not AuditEvent.objects.filter(action="signin.unlocked").exists()
    assert not AccessAttempt.objects.filter(username=world.vendor_user.username).exists()
    # The guessing address stays paused, even with the new password.
    assert attacker.post("/accounts/login/", {"username": world.vendor_user.username,
                                              "password": NEW_PASSWORD}).status_code == 429


def test_a_reset_does_not_skip_the_second_factor(world, settings):
    settings.PORTAL_SECOND_FACTOR_ENFORCED = True
    client = Client(REMOTE_ADDR="192.0.2.50")
    client.post(ASK, {"email": world.officer.email})
    _choose(client, _link_from_outbox())
    signed = client.post("/accounts/login/", {"username": world.officer.username, "password": NEW_PASSWORD})
    assert signed.status_code == 302
    # Signed in by password only: every page still sends the officer to the second factor first.
    page = client.get("/dashboard/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/account/two-factor/")


def test_the_invitation_link_still_sets_the_first_password(world):
    from projects.services import vendor_member_invite

    member, path = vendor_member_invite(user=world.officer, organisation=world.vendor_a, username="invited",
                                        email="invited@example.org")
    client = Client()
    assert _choose(client, path).status_code == 302
    assert Client().post("/accounts/login/", {"username": "invited", "password": NEW_PASSWORD}).status_code == 302


def test_the_reset_pages_read_in_korean():
    client = Client(HTTP_ACCEPT_LANGUAGE="ko")
    page = client.get(ASK).content.decode()
    assert "비밀번호를 잊으셨나요?" in page
    assert "메일을 확인하세요" in client.get("/accounts/password/reset/sent/").content.decode()

"""Sign-in throttling: thirty wrong passwords no longer end with the right one logging in.

Real sign-ins through the login form (django-axes counts them in the database); the lockout page
must not reveal whether an account exists, every lockout is an audit event, and an administrator
can lift it (audited too).
"""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from portal.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _sign_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(world, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client(REMOTE_ADDR="198.51.100.10")
    answers = [_sign_in(client, world.vendor_user.username, f"wrong-{i}").status_code for i in range(5)]
    # The first four are the ordinary form with its error; the fifth trips the lock.
    assert answers[:4] == [200, 200, 200, 200] and answers[4] == 429
    right = _sign_in(client, world.vendor_user.username, PASSWORD)
    assert right.status_code == 429 and not _signed_in(client)
    page = right.content.decode()
    assert "too many failed sign-ins" in page and "15 minutes" in page
    assert int(right.headers["Retry-After"]) == 15 * 60
    # From another address, the same account stays locked (lock by account) ...
    elsewhere = Client(REMOTE_ADDR="203.0.113.5")
    assert _sign_in(elsewhere, world.vendor_user.username, PASSWORD).status_code == 429
    events = AuditEvent.objects.filter(action="signin.locked_out")
    assert events.count() >= 1
    assert events.first().data["username"] == world.vendor_user.username


def test_one_address_trying_many_accounts_is_locked_out(world, settings):
    settings.AXES_FAILURE_LIMIT = 5
    spray = Client(REMOTE_ADDR="198.51.100.20")
    names = ["officer", "reviewer", "auditor", "admin", "vendor-b"]
    for name in names:
        _sign_in(spray, name, "Winter2026!")
    # A sixth account, with its right password, from the same address: refused.
    assert _sign_in(spray, world.vendor_user.username, PASSWORD).status_code == 429
    # The same account from an honest address still signs in.
    honest = Client(REMOTE_ADDR="192.0.2.44")
    assert _sign_in(honest, world.vendor_user.username, PASSWORD).status_code == 302 and _signed_in(honest)


def test_lockout_page_is_the_same_for_an_account_that_does_not_exist(world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    real, ghost = Client(REMOTE_ADDR="198.51.100.30"), Client(REMOTE_ADDR="198.51.100.31")
    for i in range(3):
        real_answer = _sign_in(real, world.officer.username, f"x{i}")
        ghost_answer = _sign_in(ghost, "nobody-by-this-name", f"x{i}")
    assert real_answer.status_code == ghost_answer.status_code == 429
    import re

    def strip(html: str) -> str:  # the CSRF token differs on every page
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        return html.replace(world.officer.username, "").replace("nobody-by-this-name", "")

    assert strip(real_answer.content.decode()) == strip(ghost_answer.content.decode())


def test_lockout_page_in_korean(world, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = Client(REMOTE_ADDR="198.51.100.40")
    client.cookies["django_language"] = "ko"
    for i in range(2):
        answer = _sign_in(client, world.reviewer.username, f"x{i}")
    assert answer.status_code == 429
    assert "로그인" in answer.content.decode() and "15분" in answer.content.decode()


def test_administrator_lifts_the_lock_and_it_is_audited(world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR="198.51.100.50")
    for i in range(3):
        _sign_in(client, world.auditor.username, f"x{i}")
    assert _sign_in(client, world.auditor.username, PASSWORD).status_code == 429
    call_command("axes_reset_username", world.auditor.username)
    assert not AccessAttempt.objects.filter(username=world.auditor.username).exists()
    unlocked = AuditEvent.objects.filter(action="signin.unlocked", object_id=world.auditor.username)
    # Three failures, and the refused fourth attempt with the right password counted too.
    assert unlocked.count() == 1 and unlocked.get().data["failures"] == 4
    # The address lock lifts with it only when the administrator resets the address too.
    call_command("axes_reset_ip", "198.51.100.50")
    assert _sign_in(client, world.auditor.username, PASSWORD).status_code == 302 and _signed_in(client)


def test_admin_page_lists_attempts_for_administrators(world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR="198.51.100.60")
    for i in range(3):
        _sign_in(client, world.vendor_user.username, f"x{i}")
    admin = Client()
    world.admin.is_staff = True
    world.admin.save(update_fields=["is_staff"])
    admin.force_login(world.admin)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and world.vendor_user.username in listing.content.decode()

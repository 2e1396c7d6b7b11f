"""Second factor at sign-in: ministry staff cannot reach a page beyond setting one up until they
have one; a code or a single-use recovery code passes; vendors may opt in and a programme can
require it of them; an administrator's reset is audited. Real sign-ins through the login form."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _enforced(settings):
    settings.PORTAL_SECOND_FACTOR_ENFORCED = True


def _sign_in(user, *, address="192.0.2.1") -> Client:
    client = Client(REMOTE_ADDR=address)
    answer = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, "the password step should pass"
    return client


def _set_up(client: Client) -> list[str]:
    page = client.get("/account/two-factor/setup/").content.decode()
    key = re.search(r'<code class="hash" id="otp-key">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    done = client.post("/account/two-factor/setup/", {"code": f"{TOTP(b32decode(key)).token():06d}", "next": "/projects/"})
    assert done.status_code == 200
    return re.findall(r"<li><code>([0-9a-f]{8}-[0-9a-f]{8})</code></li>", done.content.decode())


def test_staff_must_set_up_a_second_factor_before_any_page(world):
    client = _sign_in(world.officer)
    for path in ("/dashboard/", "/projects/", "/audit/", f"/projects/{world.project.pk}/"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/account/two-factor/setup/")
    # The API through the same session says why instead of redirecting.
    api = client.get("/api/projects/")
    assert api.status_code == 403 and "Second factor" in api.json()["detail"]
    # A wrong code keeps them on the page with the error beside the field.
    wrong = client.post("/account/two-factor/setup/", {"code": "000000"})
    assert wrong.status_code == 400 and 'id="otp-code-error"' in wrong.content.decode()
    # Guessing is slowed: right after a wrong code even the right one is refused, and the page says
    # how long to wait.
    assert "checked only after 1 seconds" in wrong.content.decode() or "checked only after 2 seconds" in wrong.content.decode()
    time.sleep(2.1)
    codes = _set_up(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/dashboard/").status_code == 200
    assert AuditEvent.objects.filter(action="second_factor.enrolled", actor=world.officer).count() == 1


def test_next_sign_in_asks_for_a_code_and_recovery_codes_work_once(world):
    codes = _set_up(_sign_in(world.reviewer))
    again = _sign_in(world.reviewer, address="192.0.2.2")
    asked = again.get("/projects/")
    assert asked.status_code == 302 and asked.headers["Location"].startswith("/account/two-factor/verify/")
    bad = again.post("/account/two-factor/verify/", {"code": "123456"})
    assert bad.status_code == 400 and "not valid" in bad.content.decode()
    time.sleep(2.1)  # the delay after one wrong code
    ok = again.post("/account/two-factor/verify/", {"code": codes[0], "next": "/projects/"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/projects/"
    assert again.get("/projects/").status_code == 200
    assert AuditEvent.objects.filter(action="second_factor.recovery_code_used", actor=world.reviewer).exists()
    # The same recovery code never works twice.
    third = _sign_in(world.reviewer, address="192.0.2.3")
    time.sleep(2.1)
    assert third.post("/account/two-factor/verify/", {"code": codes[0]}).status_code == 400
    assert StaticToken.objects.filter(device__user=world.reviewer).count() == 9


def test_authenticator_code_passes_and_next_cannot_leave_the_portal(world):
    _set_up(_sign_in(world.auditor))
    device = TOTPDevice.objects.get(user=world.auditor, confirmed=True)
    client = _sign_in(world.auditor, address="192.0.2.4")
    answer = client.post("/account/two-factor/verify/", {
        "code": f"{TOTP(device.bin_key, drift=1).token():06d}", "next": "https://evil.example/phish"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_vendors_are_not_forced_but_may_opt_in(world):
    client = _sign_in(world.vendor_user)
    assert client.get("/projects/").status_code == 200
    _set_up(client)
    later = _sign_in(world.vendor_user, address="192.0.2.5")
    assert later.get("/projects/").headers["Location"].startswith("/account/two-factor/verify/")


def test_a_programme_can_require_it_of_its_vendors(world):
    world.programme.vendor_second_factor_required = True
    world.programme.save(update_fields=["vendor_second_factor_required"])
    client = _sign_in(world.vendor_user)
    assert client.get("/projects/").headers["Location"].startswith("/account/two-factor/setup/")
    # A vendor of a project in another programme is not affected: here vendor B is in the same
    # programme, so it is required of them too.
    other = _sign_in(world.other_vendor_user, address="192.0.2.6")
    assert other.get("/projects/").status_code == 302


def test_administrator_reset_is_audited_and_forces_a_new_set_up(world):
    _set_up(_sign_in(world.officer))
    admin = Client()
    world.admin.is_staff = True
    world.admin.save(update_fields=["is_staff"])
    # The administrator passes their own second factor first, through the real pages.
    admin = _sign_in(world.admin, address="192.0.2.7")
    _set_up(admin)
    answer = admin.post("/admin/portal/profile/", {"action": "second_factor_reset_action",
                                                   "_selected_action": [world.officer.profile.pk]}, follow=True)
    assert answer.status_code == 200
    assert not TOTPDevice.objects.filter(user=world.officer).exists()
    event = AuditEvent.objects.get(action="second_factor.reset", object_id=str(world.officer.pk))
    assert event.actor == world.admin and event.data["devices_removed"] == 2
    fresh = _sign_in(world.officer, address="192.0.2.8")
    assert fresh.get("/dashboard/").headers["Location"].startswith("/account/two-factor/setup/")


def test_setup_page_in_korean(world):
    client = _sign_in(world.officer)
    client.cookies["django_language"] = "ko"
    page = client.get("/account/two-factor/setup/").content.decode()
    assert "2단계 인증" in page

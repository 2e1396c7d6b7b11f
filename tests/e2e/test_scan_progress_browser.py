"""In a browser: while a licence scan of a large archive runs, the submission page and the
dashboard say how many of its files it has checked and how many results came from earlier scans,
with the progress bar at the same point, in English and Korean, under the real CSP. Screenshots
go to var/screenshots/ for a person to look at."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from compliance.models import CheckRun
from tests.compliance.test_scan_progress import _tar_gz, _tree
from tests.e2e.conftest import login
from tests.factories import PASSWORD, signed_submission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
STEP = "detecting licences file by file: 21437 of 50000 files checked, 3037 from earlier results"
SHOWN = {"en-GB": "detecting licences file by file: 21,437 of 50,000 files checked, 3,037 from earlier results",
         "ko-KR": "파일마다 라이선스를 찾는 중: 파일 50,000개 중 21,437개 확인, 이전 결과 재사용 3,037개"}


@pytest.mark.parametrize("locale", ["en-GB", "ko-KR"])
def test_a_running_licence_scan_says_how_far_it_has_got(new_page, world, locale):
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", _tar_gz(_tree()))},
                                   submit=True)
    CheckRun.objects.filter(submission=submission, check_name="licenses").update(
        state=CheckRun.State.RUNNING, progress=0.05 + 0.8 * 21437 / 50000, step=STEP, worker="checks-1")
    page, errors = new_page(locale=locale)
    login(page, username=world.admin.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    row = page.locator("#runs tr", has_text=SHOWN[locale])
    expect(row).to_be_visible()
    assert float(row.locator("progress").get_attribute("value")) == pytest.approx(0.393, abs=0.001)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    row.scroll_into_view_if_needed()
    page.locator("#runs").screenshot(path=str(SCREENSHOTS / f"scan-progress-runs-{locale}.png"))

    page.goto("/dashboard/")
    running = page.locator("#h-running + ul li", has_text=SHOWN[locale])
    expect(running).to_be_visible()
    running.screenshot(path=str(SCREENSHOTS / f"scan-progress-dashboard-{locale}.png"))
    assert errors == []


@pytest.mark.parametrize("locale", ["en-GB", "ko-KR"])
def test_a_running_scan_and_a_failure_read_on_a_phone(new_page, world, locale):
    """At 390 px the long progress step wraps instead of pushing the page sideways, on the submission
    page, the dashboard and the workers page; the workers page names the checks (running and failed)
    in the reader's language; and the pages still pass axe with the progress bars in them."""
    from tests.e2e.test_accessibility import axe_violations, violations_describe
    from tests.e2e.test_krds import PHONE, page_width, widest_elements

    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", _tar_gz(_tree()))},
                                   submit=True)
    CheckRun.objects.filter(submission=submission, check_name="licenses").update(
        state=CheckRun.State.RUNNING, progress=0.05 + 0.8 * 21437 / 50000, step=STEP, worker="checks-1@worker-host-a",
        started_at=timezone.now() - timedelta(minutes=4))
    CheckRun.objects.filter(submission=submission, check_name="code").update(
        state=CheckRun.State.FAILED, worker="checks-2@worker-host-b", started_at=timezone.now() - timedelta(minutes=9),
        finished_at=timezone.now() - timedelta(minutes=2),
        error="the check was interrupted 3 times (worker killed or out of memory?)")
    label = {"en-GB": ("Licences", "Code provenance"), "ko-KR": ("라이선스", "코드 출처")}[locale]
    page, errors = new_page(bypass_csp=True, locale=locale)
    login(page, username=world.admin.username, password=PASSWORD)
    page.set_viewport_size(PHONE)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, url, shown in (("runs", f"/submissions/{submission.pk}/", "#runs"),
                             ("dashboard", "/dashboard/", "#h-running + ul"),
                             ("workers", "/workers/", "main")):
        page.goto(url)
        expect(page.locator(shown)).to_contain_text(SHOWN[locale])
        assert page_width(page) <= PHONE["width"], f"{url} ({locale}): {widest_elements(page)}"
        page.screenshot(path=str(SCREENSHOTS / f"scan-progress-{name}-{locale}-390.png"), full_page=True)
        violations = axe_violations(page)
        assert not violations, f"{url} ({locale}, 390 px):\n{violations_describe(violations)}"
    running, failed = page.locator("main ul").nth(0), page.locator("main ul").nth(1)
    expect(running).to_contain_text(label[0])
    expect(failed).to_contain_text(label[1])
    expect(failed).to_contain_text({"en-GB": "the check was interrupted 3 times (worker killed or out of memory?)",
                                    "ko-KR": "점검이 3번 중단되었습니다"}[locale])
    expect(running).to_contain_text({"en-GB": "since 4\xa0minutes", "ko-KR": "경과 4"}[locale])
    expect(page.locator("main table")).to_contain_text("checks-2@worker-host-b")
    assert "licenses" not in running.inner_text() and " · code · " not in failed.inner_text()
    assert errors == []

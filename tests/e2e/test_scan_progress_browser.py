"""In a browser: while a licence scan of a large archive runs, the submission page and the
dashboard say how many of its files it has checked and how many results came from earlier scans,
with the progress bar at the same point, in English and Korean, under the real CSP. Screenshots
go to var/screenshots/ for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
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

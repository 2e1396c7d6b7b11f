"""In a browser: the submission page's check-run table says what each run reused (issue #16), in
English and Korean, under the real CSP. Screenshots go to var/screenshots/ for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.compliance.test_reuse_shown import (FILES_EN, FILES_KO, LINEAGE_EN, LINEAGE_KO,
                                               _submission_with_cached_runs)
from tests.e2e.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.mark.parametrize(("locale", "files", "lineage"), [("en-GB", FILES_EN, LINEAGE_EN),
                                                           ("ko-KR", FILES_KO, LINEAGE_KO)])
def test_the_check_run_table_says_what_was_reused(new_page, world, locale, files, lineage):
    submission = _submission_with_cached_runs(world)
    page, errors = new_page(locale=locale)
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    runs = page.locator("#runs")
    expect(runs.locator(".reuse-note", has_text=files)).to_be_visible()
    expect(runs.locator(".reuse-note", has_text=lineage)).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    runs.scroll_into_view_if_needed()
    runs.screenshot(path=str(SCREENSHOTS / f"reuse-runs-{locale}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"reuse-page-{locale}.png"), full_page=True)
    assert errors == []

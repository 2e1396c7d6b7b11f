"""In a browser: a check that could not run because intake holds the file says why in the
reader's language, to the vendor who must act and to the reviewer, on a phone. Screenshots go to
var/screenshots/ for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.compliance.test_check_dependencies import _bomb_submission, _execute, _run
from tests.e2e.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
REASON = {"en-GB": "intake quarantined src.zip until a reviewer decides the intake findings that hold it",
          "ko-KR": "반입 검사가 src.zip 파일을 격리했습니다. 이 파일을 붙잡고 있는 반입 검사 결과를 검토자가 결정하면 풀립니다"}


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("locale", ["en-GB", "ko-KR"])
@pytest.mark.parametrize("role", ["vendor", "reviewer"])
def test_a_check_held_by_intake_says_why_in_the_readers_language(new_page, world, tmp_path, locale, role, width):
    from tests.e2e.test_krds import DESKTOP, PHONE, page_width

    viewport = PHONE if width == PHONE["width"] else DESKTOP

    submission = _bomb_submission(world, tmp_path)
    _execute(_run(submission, "intake"))  # the bomb is quarantined; the licence and code checks are held
    user = {"vendor": world.vendor_user, "reviewer": world.reviewer}[role]
    page, errors = new_page(locale=locale)
    page.set_viewport_size(viewport)
    login(page, username=user.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    row = page.locator("#runs tr", has_text=REASON[locale]).first
    expect(row).to_be_visible()
    if locale == "ko-KR":
        # The portal's own sentence is never left in English for a Korean reader outside the
        # ministry's record of the stored words ("Statistics and evidence", closed).
        assert page.locator("#runs", has_text="intake quarantined").count() == 0
    assert page_width(page) <= viewport["width"], "the reason pushes the page sideways"
    # The long state badge wraps inside its own cell: it never runs under the progress bar next to it.
    b, c = row.locator(".state-blocked").first.evaluate(
        "e => [e.getBoundingClientRect(), e.closest('td').getBoundingClientRect()].map(r => [r.left, r.right])")
    assert b[0] >= c[0] - 1 and b[1] <= c[1] + 1, f"the state badge {b} runs out of its cell {c}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    row.scroll_into_view_if_needed()
    row.screenshot(path=str(SCREENSHOTS / f"blocked-reason-{role}-{locale}-{width}.png"))
    assert errors == []

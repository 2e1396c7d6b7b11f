"""In a browser: a vendor whose sharded model is missing a shard is told on the draft, before
submitting, and again when trying to submit, in their language, on a phone and at desktop width.
Screenshots go to var/screenshots/ for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.compliance.test_sharded_model_completeness import _files
from tests.compliance.engine.lineage import tinymodels as tm
from tests.e2e.conftest import login
from tests.factories import PASSWORD, signed_submission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
SAID = {"en-GB": "lists 1 shard(s) that were not uploaded to its folder",
        "ko-KR": "샤드 1개가 같은 폴더에 업로드되지 않았습니다"}


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("locale", ["en-GB", "ko-KR"])
def test_a_missing_shard_is_said_on_the_draft_and_on_submit(new_page, world, tmp_path, locale, width):
    from tests.e2e.test_krds import page_width

    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    tm.model_write(tm.llama_make(seed=5), tmp_path / "model", shards=2)
    submission = signed_submission(world=world, files=_files(tmp_path / "model", leave_out="model-00002"))
    page, errors = new_page(locale=locale)
    page.set_viewport_size({"width": width, "height": 900})
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/edit/")
    step = page.locator('.next-actions [data-action="shards"]')
    expect(step).to_contain_text(SAID[locale])
    expect(step).to_contain_text("model-00002-of-00002.safetensors")
    assert page.locator('.next-actions [data-action="submit"]').count() == 0
    assert page_width(page) <= width, "the sentence pushes the page sideways"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"missing-shard-draft-{locale}-{width}.png"))
    page.once("dialog", lambda dialog: dialog.accept())  # "Submit this version for checking?"
    page.locator("#submit-submission").click()
    page.wait_for_url(f"**/submissions/{submission.pk}/edit/")
    expect(page.locator(".messages, [role=alert]").first).to_contain_text(SAID[locale])
    page.screenshot(path=str(SCREENSHOTS / f"missing-shard-refused-{locale}-{width}.png"))
    assert errors == []

"""In a browser: the vendor opens v2 from v1 (the default), sees the carried-over files, submits,
and sees which check results were reused, with a link to the version they came from."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from compliance.models import CheckRun
from compliance.services.runs import check_run_execute
from tests.e2e.conftest import login
from tests.factories import PASSWORD, signed_submission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_vendor_sees_carried_over_files_and_reused_results(new_page, world):
    v1 = signed_submission(world=world, files={"config.json": ("config", b'{"model_type": "llama"}'),
                                               "notes.txt": ("other", b"plain notes\n")}, submit=True)
    for run in CheckRun.objects.filter(submission=v1):
        check_run_execute(run_id=run.pk, worker="e2e-inline")

    page, errors = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto(f"/projects/{world.project.pk}/")
    carry = page.get_by_role("radio", name=re.compile(r"^v1: its files carried over"))
    expect(carry).to_be_checked()
    expect(page.get_by_role("radio", name=re.compile(r"^Empty"))).not_to_be_checked()
    page.get_by_role("button", name="Open a new submission").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Submission v2 \(draft\)"))
    rows = page.locator("#artifact-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="carried over from v1")).to_have_count(2)

    page.get_by_label("Your full name").fill("Kim Vendor")
    page.get_by_label(re.compile("I declare that this declaration is true")).check()
    page.get_by_role("button", name="Sign the declaration").click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Submit this version?" (data-confirm)
    page.get_by_role("button", name="Submit for checking").click()
    runs = page.locator("#runs tbody tr.run")
    expect(runs).to_have_count(2)
    reused = page.get_by_role("link", name="reused from v1")
    expect(reused).to_have_count(2)
    expect(page.locator("#runs [data-live-active]")).to_have_count(0)  # nothing left to run
    reused.first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("submission v1")
    assert errors == []

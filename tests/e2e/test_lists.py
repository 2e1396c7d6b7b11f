"""The lists in a real browser (CSP enforced, so no inline script helps): sort by a column header,
save the filter, follow it from the link above the list, and download an export."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.factories import PASSWORD
from tests.listing import waiting_submission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sort_save_follow_and_export_the_queue(new_page, world):
    waiting_submission(project=world.project, vendor_user=world.vendor_user, days_ago=20, findings=(("high", "open"),))
    waiting_submission(project=world.other_project, vendor_user=world.other_vendor_user, days_ago=2,
                       findings=(("critical", "open"),))
    page, _ = new_page()
    login(page, username=world.officer.username, password=PASSWORD)
    page.goto("/queue/")
    rows = page.locator("table tbody tr td:first-child a")
    expect(rows).to_have_text(["alpha v1", "beta v1"])  # longest waiting first
    expect(page.locator("tbody")).to_contain_text("waiting 20 days of 14")
    expect(page.locator("tbody")).to_contain_text("Overdue")

    page.get_by_role("link", name="Highest open severity").click()  # least severe first
    header = page.locator("th", has=page.get_by_role("link", name="Highest open severity"))
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(rows).to_have_text(["alpha v1", "beta v1"])
    page.get_by_role("link", name="Highest open severity").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows).to_have_text(["beta v1", "alpha v1"])

    page.get_by_label("Service level").select_option("false")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(rows).to_have_text(["beta v1"])
    assert "sort=-severity" in page.url, "filtering keeps the sort"

    page.get_by_label("Name", exact=True).fill("Not overdue, worst first")
    page.get_by_role("button", name="Save this filter").click()
    page.goto("/queue/")
    expect(rows).to_have_text(["alpha v1", "beta v1"])
    page.get_by_role("link", name="Not overdue, worst first").click()
    expect(rows).to_have_text(["beta v1"])

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    body = open(download.value.path(), encoding="utf-8-sig").read()
    exported = list(csv.reader(io.StringIO(body)))
    assert [row[2] for row in exported[1:]] == ["beta"], "the export carries the saved filter"

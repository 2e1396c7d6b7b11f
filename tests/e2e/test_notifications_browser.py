"""Notifications in the browser: the header shows how many are unread, the list opens from it,
and marking read lowers the count; the list and settings pages pass axe's serious and critical
rules. The real Content-Security-Policy stays on."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.models import Notification
from portal.notifications import notify
from tests.e2e.conftest import login
from tests.e2e.test_accessibility import axe_violations, violations_describe
from tests.factories import PASSWORD, build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def header_contrast(page, selector: str) -> float:
    """WCAG contrast of an element's text against its own background, or the header's where it has none."""
    return page.evaluate("""(selector) => {
        const el = document.querySelector(selector);
        const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92
            : Math.pow((v + 0.055) / 1.055, 2.4)).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
        let bg = getComputedStyle(el).backgroundColor, node = el;
        while (rgb(bg).length === 4 && rgb(bg)[3] === 0 && node.parentElement) {
            node = node.parentElement; bg = getComputedStyle(node).backgroundColor;
        }
        const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(bg))];
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }""", selector)


def test_header_count_list_and_marking_read(new_page):
    world = build_world()
    for n in (1, 2, 3):
        notify(kind=Notification.Kind.SUBMISSION_DECIDED, recipients=[world.vendor_user], url=f"/projects/{world.project.pk}/",
               params={"submission": f"alpha v{n}", "decision_label": "Approved"}, actor=world.reviewer)
    page, errors = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)

    badge = page.locator("header #notification-badge")
    expect(badge.locator(".count")).to_have_text("3")
    expect(badge).to_have_accessible_name(re.compile(r"3 unread notifications"))
    # The word is readable on the white header (it was once white on white: axe leaves text over a
    # header it cannot see through as "incomplete", so the contrast is measured here).
    assert header_contrast(page, "header #notification-badge") >= 4.5
    assert header_contrast(page, "header #notification-badge .count") >= 4.5
    badge.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    expect(page.get_by_role("status").filter(has_text="unread")).to_have_text("3 unread notifications.")

    page.get_by_role("button", name=re.compile(r"^Mark as read\W+alpha v2 was decided")).click()
    expect(badge.locator(".count")).to_have_text("2")
    # Following a notification opens its page and counts it as read.
    page.get_by_role("link", name="alpha v3 was decided: Approved").click()
    expect(page).to_have_url(re.compile(rf"/projects/{world.project.pk}/$"))
    expect(badge.locator(".count")).to_have_text("1")
    badge.click()
    page.get_by_role("button", name="Mark all as read").click()
    expect(badge.locator(".count")).to_have_text("0")
    expect(badge).to_have_accessible_name(re.compile(r"0 unread notifications"))
    assert Notification.objects.filter(recipient=world.vendor_user, read_at__isnull=True).count() == 0
    assert not errors, errors


def test_notification_pages_pass_axe(new_page):
    world = build_world()
    notify(kind=Notification.Kind.CHECKS_FINISHED, recipients=[world.reviewer], url="/dashboard/",
           params={"submission": "alpha v1", "open_risks": 2})
    page, _errors = new_page(bypass_csp=True)
    login(page, username=world.reviewer.username, password=PASSWORD)
    for path in ["/notifications/", "/notifications/settings/"]:
        page.goto(path)
        violations = axe_violations(page)
        assert not violations, f"{path}:\n{violations_describe(violations)}"

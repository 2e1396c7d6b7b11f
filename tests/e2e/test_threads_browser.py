"""A conversation on a finding as its users meet it: the vendor replies twice and both replies
stay; a reviewer asks a question and the vendor's page says the finding waits for them. Headless
Chromium against the live server, with the Content-Security-Policy on."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from compliance.models import CheckRun, Finding, FindingMessage
from tests.e2e.conftest import login
from tests.factories import PASSWORD, signed_submission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _post(page, finding: Finding, text: str, button: str) -> None:
    card = page.locator(f"#finding-{finding.pk}")
    card.locator("textarea[name=body]").fill(text)
    card.get_by_role("button", name=button, exact=True).click()
    expect(page.locator(f"#finding-{finding.pk} .thread")).to_contain_text(text)


def test_the_vendor_replies_twice_and_answers_the_reviewers_question(new_page, world):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="lineage",
                                     code="derived", title="Encoder layers match a known model")
    url = f"/submissions/{submission.pk}/"

    vendor, vendor_errors = new_page()
    login(vendor, username=world.vendor_user.username, password=PASSWORD)
    vendor.goto(url)
    _post(vendor, finding, "We re-initialised the encoder before training.", "Reply")
    _post(vendor, finding, "The step-0 checkpoint is in the v2 archive.", "Reply")
    thread = vendor.locator(f"#finding-{finding.pk} .thread-message")
    expect(thread).to_have_count(2)
    expect(thread.nth(0)).to_contain_text("We re-initialised the encoder before training.")
    expect(thread.nth(1)).to_contain_text("The step-0 checkpoint is in the v2 archive.")
    expect(vendor.get_by_test_id(f"waiting-{finding.pk}")).to_have_text("Waiting for a reviewer")

    reviewer, reviewer_errors = new_page()
    login(reviewer, username=world.reviewer.username, password=PASSWORD)
    reviewer.goto(url)
    expect(reviewer.locator(f"#finding-{finding.pk} .thread-message")).to_have_count(2)
    _post(reviewer, finding, "Which seed did the re-initialisation use?", "Ask the vendor")
    expect(reviewer.get_by_test_id(f"waiting-{finding.pk}")).to_have_text("Waiting for the vendor")

    vendor.goto(url)
    expect(vendor.get_by_test_id(f"waiting-{finding.pk}")).to_have_text("Waiting for you")
    expect(vendor.locator(f"#finding-{finding.pk} .thread-message")).to_have_count(3)
    expect(vendor.locator(f"#finding-{finding.pk} .thread-message").nth(2)).to_contain_text("Ministry")

    # An empty answer is refused beside the field; the page keeps the other findings' state.
    card = vendor.locator(f"#finding-{finding.pk}")
    card.locator("textarea[name=body]").fill("   ")
    card.get_by_role("button", name="Reply", exact=True).click()
    expect(vendor.locator(f"#fm-{finding.pk}-body-error")).to_have_text("Write a message.")
    assert list(FindingMessage.objects.filter(finding=finding).values_list("side", flat=True)) == [
        "vendor", "vendor", "ministry"]
    assert vendor_errors == [] and reviewer_errors == []


def test_a_thread_and_a_refused_form_stay_accessible(new_page, world):
    from compliance.services.threads import message_post
    from tests.e2e.test_accessibility import axe_violations, violations_describe

    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="lineage",
                                     code="derived", title="Encoder layers match a known model")
    message_post(user=world.reviewer, finding=finding, body="Which checkpoint did training start from?")
    message_post(user=world.vendor_user, finding=finding, body="From scratch.", kind="")
    page, _ = new_page(bypass_csp=True)
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    card = page.locator(f"#finding-{finding.pk}")
    card.locator("textarea[name=body]").fill(" ")
    card.get_by_role("button", name="Reply", exact=True).click()
    expect(page.locator(f"#fm-{finding.pk}-body")).to_have_attribute("aria-invalid", "true")
    violations = axe_violations(page)
    assert not violations, violations_describe(violations)

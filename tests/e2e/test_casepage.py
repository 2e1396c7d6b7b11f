"""The submission page in a real browser (headless Chromium, the portal's CSP on): what to do next is
at the top, the page updates itself when checks end, final actions ask first, refused forms come
back focused on the field, and the copied-code view never widens the page."""

from __future__ import annotations

import datetime
import pickle
import re

import pytest
from playwright.sync_api import expect

from compliance.models import CheckRun, Finding, FindingDecision, SubmissionDecision
from compliance.services import decisions
from tests.compliance.test_casework import _Pickle, checked_with_findings, decide_every_finding, run_all_checks
from tests.e2e.conftest import login
from tests.factories import PASSWORD, signed_submission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_vendor_sees_the_instructions_and_the_next_action_at_the_top_after_changes_requested(new_page, world):
    submission = checked_with_findings(world)
    decide_every_finding(world, submission)
    decisions.submission_decide(user=world.reviewer, submission=submission, decision="changes_requested",
                                justification="Replace model.bin with a safetensors file.")
    page, errors = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    state = page.locator("section.case-state")
    expect(state).to_contain_text("Changes requested")
    expect(state).to_contain_text("Replace model.bin with a safetensors file.")
    button = state.get_by_role("button", name="Open a new version")
    expect(button).to_be_visible()
    viewport = page.viewport_size["height"]
    assert button.bounding_box()["y"] + button.bounding_box()["height"] <= viewport, \
        "the next action is in the first screen, without scrolling"
    button.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Submission v2 \(draft\)"))
    # The new draft repeats the instructions it answers, and what to do first.
    expect(page.locator("#previous-decision-text")).to_contain_text("Replace model.bin with a safetensors file.")
    # The files were carried over from v1 (by reference); the declaration came over unsigned.
    expect(page.locator('[data-action="sign"]')).to_be_visible()
    assert errors == []


def test_checks_table_state_and_findings_update_without_reload_when_the_checks_end(new_page, world):
    submission = signed_submission(world=world, files={
        "config.json": ("weights", b'{"model_type": "llama", "hidden_size": 64}'),
        "model.bin": ("weights", pickle.dumps(_Pickle(), protocol=2)),
    }, submit=True)
    page, errors = new_page()
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    findings = page.locator("#findings")
    expect(findings.locator("[data-findings-state]")).to_have_attribute("data-findings-state", "running")
    expect(findings).to_contain_text("Checks are still running")
    expect(findings).not_to_contain_text("No findings.")
    assert page.locator("#runs [data-live-active]").count() > 0
    page.evaluate("window.__sameDocument = true")

    run_all_checks(submission)  # as a worker would, in this process
    assert not CheckRun.objects.filter(submission=submission).exclude(state__in=CheckRun.FINISHED_STATES).exists()

    expect(page.locator("#runs [data-live-active]")).to_have_count(0)
    expect(findings.locator("[data-findings-state]")).not_to_have_attribute("data-findings-state", "running")
    some_finding = Finding.objects.filter(submission=submission).exclude(severity="info").first()
    expect(page.locator(f"#finding-{some_finding.pk}")).to_be_visible()
    expect(page.locator("[data-case-status]")).to_have_attribute("data-case-status", "checked")
    expect(page.locator('#case-state [data-action="decide_findings"]')).to_be_visible()
    assert page.evaluate("window.__sameDocument === true"), "updated in place, not reloaded"
    assert errors == []


def _reviewer_on_decidable(new_page, world):
    submission = checked_with_findings(world)
    decide_every_finding(world, submission)
    page, errors = new_page()
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    return submission, page, errors


def test_approve_asks_first_and_dismissing_records_nothing(new_page, world):
    submission, page, errors = _reviewer_on_decidable(new_page, world)
    asked = []
    form = page.locator("#submission-decision-form")
    form.get_by_label("Decision").select_option(label="Approved")
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    form.get_by_role("button", name="Record decision").click()
    page.wait_for_timeout(500)  # nothing is sent: give a stray submit the time to arrive
    assert asked and "Approved" in asked[0]
    assert not SubmissionDecision.objects.filter(submission=submission).exists()
    assert page.url.endswith(f"/submissions/{submission.pk}/")
    page.once("dialog", lambda d: d.accept())
    form.get_by_role("button", name="Record decision").click()
    expect(page.locator("section.case-state")).to_contain_text("Approved")
    assert SubmissionDecision.objects.get(submission=submission).decision == "approved"
    assert errors == []


def test_a_refused_waiver_comes_back_with_waived_chosen_and_the_justification_focused(new_page, world):
    submission = checked_with_findings(world)
    finding = Finding.objects.filter(submission=submission, status="open").exclude(severity="info").first()
    page, errors = new_page()
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    page.on("dialog", lambda d: d.accept())
    card = page.locator(f"#finding-{finding.pk}")
    expect(card.get_by_label("Decision")).to_have_value("")
    card.get_by_label("Decision").select_option(label="Waived")
    card.get_by_role("button", name="Decide").click()
    card = page.locator(f"#finding-{finding.pk}")
    expect(card.get_by_label("Decision")).to_have_value("waived")
    justification = card.get_by_label("Justification")
    expect(justification).to_be_focused()
    expect(justification).to_have_attribute("aria-invalid", "true")
    expect(card).to_contain_text("needs a justification")
    assert not FindingDecision.objects.filter(finding=finding).exists()
    assert errors == []


LONG_LINE = "    output = self.very_long_function_name(" + ", ".join(f"argument_{i}=value_{i}" for i in range(40)) + ")"


@pytest.mark.parametrize("width", [1280, 390])
def test_the_copied_code_view_never_widens_the_page(new_page, world, width):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    vendor = "\n".join(["def forward(self, x):", LONG_LINE, "    return output"] + [f"    s{i} = {i}" for i in range(20)])
    reference = "\n".join(["def forward(self, x):", "    # from upstream", LONG_LINE, "    return output"]
                          + [f"    s{i} = {i}" for i in range(20)])
    CheckRun.objects.create(
        artifact=run.artifact, submission=submission, check_name="code", state=CheckRun.State.SUCCEEDED,
        queued_at=datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc),
        summary={"matches": [{
            "path": "src/" + "very_long_directory_name/" * 8 + "model.py", "lines": [10, 32],
            "origin": {"name": "transformers", "version": "4.46.0", "path": "models/llama/modeling_llama.py",
                       "lines": [200, 223], "excerpt": reference},
            "excerpt": vendor, "license_expression": "Apache-2.0", "label": "inference", "score": 40,
            "query_coverage": 0.91, "origin_coverage": 0.05}]})
    page, errors = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    region = page.locator("article.code-region").first
    expect(region).to_contain_text("Similarity 0.91")
    region.locator("details.region-full summary").click()
    expect(region.locator("details.region-full table.code-align")).to_be_visible()
    sizes = page.evaluate("""() => {
        const r = document.querySelector('article.code-region');
        const box = r.getBoundingClientRect();
        return {right: box.right, regionScroll: r.scrollWidth, regionClient: r.clientWidth,
                page: document.documentElement.scrollWidth, viewport: window.innerWidth};
    }""")
    assert sizes["right"] <= sizes["viewport"], sizes
    assert sizes["regionScroll"] <= sizes["regionClient"] + 1, sizes
    assert sizes["page"] <= sizes["viewport"], f"the page is wider than the window at {width} px: {sizes}"
    # The long line is all there, wrapped inside its cell.
    assert LONG_LINE.strip() in region.locator("table.code-align").first.inner_text().replace("\n", "")
    assert errors == []


def test_a_refused_declaration_keeps_what_was_typed_and_focuses_the_bad_field(new_page, world):
    from projects import services

    draft = services.submission_open(user=world.vendor_user, project=world.project)
    page, errors = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto(f"/submissions/{draft.pk}/edit/")
    summary = "Korean and English web text, 2 B tokens, deduplicated.\n" * 30
    page.get_by_label("Training data summary").fill(summary)
    page.get_by_label(re.compile("Base models used")).fill("backbone | llama-3 | hf | llama3\nengine | oops")
    page.get_by_label("Training compute (GPU-hours)").fill("120")
    page.get_by_role("button", name="Save declaration").click()
    base = page.get_by_label(re.compile("Base models used"))
    expect(base).to_be_focused()
    expect(base).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_base_models_error")).to_contain_text("Line 2: the component must be one of")
    expect(page.get_by_label("Training data summary")).to_have_value(summary)
    expect(page.get_by_label("Training compute (GPU-hours)")).to_have_value("120")
    assert errors == []

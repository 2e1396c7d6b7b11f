"""The submission page as people read it: the state of the case first, forms that keep what was
typed with the error beside the field, no decision chosen for the reviewer, and never a clean
"No findings." while a check is unfinished or failed."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from compliance.models import CheckRun, Finding, FindingDecision, SubmissionDecision
from compliance.services import decisions
from tests.compliance.test_casework import checked_with_findings, decide_every_finding, run_all_checks
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.content.decode(), "html.parser")


def chosen(select) -> str:
    """The value a browser shows as chosen: the option marked selected, else the first."""
    option = select.select_one("option[selected]") or select.find("option")
    return option["value"]


def textarea_value(node) -> str:
    # Browsers drop the newline right after <textarea>; Django writes one there.
    text = node.get_text()
    return text[1:] if text.startswith("\n") else text


def text_of(node) -> str:
    return re.sub(r"\s+", " ", node.get_text(" ")).strip()


def test_the_page_opens_with_the_state_the_instructions_and_the_next_action(client, world):
    submission = checked_with_findings(world)
    decide_every_finding(world, submission)
    instructions = "Remove model.bin.\nUpload the weights as safetensors, then sign again."
    decisions.submission_decide(user=world.reviewer, submission=submission, decision="changes_requested",
                                justification=instructions)
    client.force_login(world.vendor_user)
    page = soup_of(client.get(reverse("submission-detail", args=[submission.pk])))
    main = page.find("main")
    first_section = main.find("section")
    assert first_section.find("h2").get_text() == "State of the case"
    state = text_of(first_section)
    assert "Changes requested" in state
    assert "Remove model.bin." in state and "Upload the weights as safetensors, then sign again." in state
    action = first_section.select_one('[data-action="open_new_version"]')
    assert action is not None
    form = action.find("form")
    assert form["action"] == reverse("submission-open", args=[world.project.pk]) and form["method"] == "post"
    # Everything else (declaration, artifacts, checks, findings) comes after it.
    headings = [h.get("id") for h in main.find_all("h2")]
    assert headings[0] == "h-case" and headings.index("h-findings") > 0


def test_the_finding_decision_starts_with_nothing_chosen(client, world):
    submission = checked_with_findings(world)
    client.force_login(world.reviewer)
    page = soup_of(client.get(reverse("submission-detail", args=[submission.pk])))
    selects = page.select("form.finding-decide select[name=decision]")
    assert selects, "the reviewer sees a decision form per finding"
    for select in selects + page.select("#submission-decision-form select[name=decision]"):
        options = select.find_all("option")
        assert options[0]["value"] == "" and options[0].get_text() == "Choose…"
        assert chosen(select) == "", "no decision is preselected"
        assert select.has_attr("required")
    finding = Finding.objects.filter(submission=submission, status="open").first()
    response = client.post(reverse("finding-decide", args=[finding.pk]), {"decision": "", "justification": ""})
    assert response.status_code == 400
    assert not FindingDecision.objects.filter(finding=finding).exists()
    assert "Choose a decision." in text_of(soup_of(response).select_one(f"#finding-{finding.pk}"))


def test_a_waiver_without_justification_keeps_waived_and_shows_the_error_beside_the_justification(client, world):
    submission = checked_with_findings(world)
    finding = Finding.objects.filter(submission=submission, status="open").exclude(severity="info").first()
    client.force_login(world.reviewer)
    response = client.post(reverse("finding-decide", args=[finding.pk]), {"decision": "waived", "justification": ""})
    assert response.status_code == 400, "the page comes back as it was sent (400), not a redirect"
    assert not FindingDecision.objects.filter(finding=finding).exists()
    page = soup_of(response)
    card = page.select_one(f"#finding-{finding.pk}")
    select = card.select_one("select[name=decision]")
    assert chosen(select) == "waived"
    justification = card.select_one("[name=justification]")
    assert justification["aria-invalid"] == "true"
    error_id = justification["aria-describedby"]
    error = page.find(id=error_id)
    assert error is not None and "needs a justification" in error.get_text()
    # The error sits in the same field group as the justification, not in a banner at the top.
    assert error.find_parent("div", class_="field") is justification.find_parent("div", class_="field")
    assert not page.select(".messages .error, .messages li"), "no banner"
    # Other findings' forms stay empty.
    others = [s for s in page.select("form.finding-decide select[name=decision]") if s is not select]
    assert others and all(chosen(s) == "" for s in others)


def test_a_submission_decision_refused_keeps_the_choice_and_the_text(client, world):
    submission = checked_with_findings(world)
    client.force_login(world.reviewer)
    response = client.post(reverse("submission-decide", args=[submission.pk]),
                           {"decision": "approved", "justification": "Looks fine to me."})
    assert response.status_code == 400
    assert not SubmissionDecision.objects.filter(submission=submission).exists()
    form = soup_of(response).select_one("#submission-decision-form")
    assert chosen(form.select_one("select[name=decision]")) == "approved"
    assert textarea_value(form.select_one("[name=justification]")) == "Looks fine to me."
    assert "Decide every open critical and high finding before approving." in text_of(form)


def test_the_declaration_keeps_every_field_and_shows_the_error_beside_the_bad_line(client, world):
    submission = signed_submission(world=world)
    client.force_login(world.vendor_user)
    summary = "Korean web text, 2 B tokens.\n" * 40
    sent = {"from_scratch": "on", "base_models": "backbone | llama-3 | hf | llama3\nengine | oops",
            "third_party_code": "vllm | 0.6 | Apache-2.0 | inference", "gpu_hours": "120.5",
            "training_flops": "3.2e+20", "data_summary": summary}
    response = client.post(reverse("declaration-save", args=[submission.pk]), sent)
    assert response.status_code == 400, "re-rendered (400), not redirected"
    page = soup_of(response)
    form = page.select_one(f'form[action="{reverse("declaration-save", args=[submission.pk])}"]')
    assert form.select_one("[name=from_scratch]").has_attr("checked")
    assert textarea_value(form.select_one("[name=base_models]")) == sent["base_models"]
    assert textarea_value(form.select_one("[name=third_party_code]")) == sent["third_party_code"]
    assert form.select_one("[name=gpu_hours]")["value"] == "120.5"
    assert form.select_one("[name=training_flops]")["value"] == "3.2e+20"
    assert textarea_value(form.select_one("[name=data_summary]")) == summary
    base = form.select_one("[name=base_models]")
    assert base["aria-invalid"] == "true"
    error = page.find(id=base["aria-describedby"].split()[-1])
    assert "Line 2: the component must be one of" in error.get_text()
    assert error.find_parent("div") is base.find_parent("div")
    submission.declaration.refresh_from_db()
    assert submission.declaration.data_summary == "test data", "nothing was saved"


def test_no_findings_never_shows_while_a_check_is_unfinished(client, world):
    submission = signed_submission(world=world, files={"notes.txt": ("other", b"plain notes\n")}, submit=True)
    client.force_login(world.reviewer)
    url = reverse("submission-detail", args=[submission.pk])
    runs = CheckRun.objects.filter(submission=submission)
    total = runs.count()
    for fragment in ("", "?fragment=findings"):
        body = text_of(soup_of(client.get(url + fragment)))
        assert "No findings." not in body
        assert f"Checks are still running (0 of {total} ended); findings so far:" in body
    run_all_checks(submission)
    assert not runs.exclude(state__in=CheckRun.FINISHED_STATES).exists()
    # A failed run is said, never read as clean.
    failed = runs.first()
    CheckRun.objects.filter(pk=failed.pk).update(state=CheckRun.State.FAILED, error="worker lost")
    Finding.objects.filter(submission=submission).delete()
    body = text_of(soup_of(client.get(url + "?fragment=findings")))
    assert "No findings." not in body and "did not complete" in body
    CheckRun.objects.filter(submission=submission).update(state=CheckRun.State.SUCCEEDED)
    body = text_of(soup_of(client.get(url + "?fragment=findings")))
    assert "No findings." in body


@pytest.mark.parametrize("fragment,marker", [("state", 'id="h-case"'), ("runs", "<table"),
                                             ("artifacts", 'id="artifact-'), ("findings", "data-findings-state"),
                                             ("dossiers", "No dossier yet.")])
def test_each_live_fragment_answers_alone(client, world, fragment, marker):
    submission = signed_submission(world=world, submit=True)
    client.force_login(world.officer)
    response = client.get(reverse("submission-detail", args=[submission.pk]) + f"?fragment={fragment}")
    body = response.content.decode()
    assert response.status_code == 200 and marker in body
    assert "<html" not in body, "a fragment, not the page"


def test_final_actions_ask_first(client, world):
    submission = checked_with_findings(world)
    client.force_login(world.reviewer)
    page = soup_of(client.get(reverse("submission-detail", args=[submission.pk])))
    assert page.select_one("#submission-decision-form")["data-confirm"]
    assert all(f.get("data-confirm") for f in page.select("form.finding-decide"))


def test_the_draft_page_asks_before_submitting_or_removing_and_says_what_is_next(client, world):
    submission = signed_submission(world=world)
    client.force_login(world.vendor_user)
    page = soup_of(client.get(reverse("submission-edit", args=[submission.pk])))
    assert page.select_one(f'form[action="{reverse("submission-submit", args=[submission.pk])}"]')["data-confirm"]
    removes = page.select("#artifact-table form")
    assert removes and all(f.get("data-confirm") for f in removes)
    assert page.find("main").find("section").find("h2").get_text() == "State of the case"
    assert page.select_one('[data-action="submit"] a')["href"].endswith("#h-submit")

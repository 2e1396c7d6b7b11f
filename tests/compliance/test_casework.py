"""What each person is told to do next on a submission (compliance.casework.next_actions), and the
submission's history (compliance.selectors.submission_timeline), per role and state."""

from __future__ import annotations

import pickle

import pytest
from django.utils import timezone

from compliance.casework import next_actions
from compliance.models import CheckRun, Finding, FindingDecision
from compliance.selectors import submission_timeline
from compliance.services import decisions
from compliance.services import threads
from compliance.services.runs import check_run_execute
from projects import services
from projects.models import Submission
from tests.factories import signed_submission, upload_bytes

pytestmark = pytest.mark.django_db


class _Pickle:
    def __reduce__(self):  # never loaded: intake only reads the opcodes
        return (print, ("hello",))


def codes(actions) -> list[str]:
    return [a.code for a in actions]


def run_all_checks(submission: Submission) -> None:
    """Run every check in this process, as a worker would, until none is left queued."""
    for _round in range(4):
        queued = list(CheckRun.objects.filter(submission=submission, state=CheckRun.State.QUEUED))
        if not queued:
            break
        for run in queued:
            check_run_execute(run_id=run.pk, worker="test-inline")
    submission.refresh_from_db()


def checked_with_findings(world) -> Submission:
    """A submitted version whose checks all ran: a pickle declared as weights gives open findings."""
    submission = signed_submission(world=world, files={
        "config.json": ("weights", b'{"model_type": "llama", "hidden_size": 64}'),
        "model.bin": ("weights", pickle.dumps(_Pickle(), protocol=2)),
    }, submit=True)
    run_all_checks(submission)
    assert submission.status == Submission.Status.CHECKED, submission.status
    assert Finding.objects.filter(submission=submission, status="open").exclude(severity="info").exists()
    return submission


def decide_every_finding(world, submission) -> None:
    for finding in Finding.objects.filter(submission=submission, status="open"):
        decisions.finding_decide(user=world.reviewer, finding=finding, decision="waived",
                                 justification="Accepted for this test.")


# --- vendor -----------------------------------------------------------------------------------

def test_vendor_on_an_empty_draft_uploads_then_signs(world):
    submission = services.submission_open(user=world.vendor_user, project=world.project)
    assert codes(next_actions(user=world.vendor_user, submission=submission)) == ["upload", "sign"]
    upload_bytes(user=world.vendor_user, submission=submission, name="notes.txt", data=b"x\n")
    assert codes(next_actions(user=world.vendor_user, submission=submission)) == ["sign"]


def test_vendor_on_a_signed_draft_submits(world):
    submission = signed_submission(world=world)
    actions = next_actions(user=world.vendor_user, submission=submission)
    assert codes(actions) == ["submit"]
    assert actions[0].url.endswith(f"/submissions/{submission.pk}/edit/#h-submit")


def test_vendor_waits_while_checks_run_and_is_told_how_far_they_are(world):
    submission = signed_submission(world=world, submit=True)
    actions = next_actions(user=world.vendor_user, submission=submission)
    assert codes(actions) == ["wait_checks"]
    total = CheckRun.objects.filter(submission=submission).count()
    assert f"0 of {total} ended" in actions[0].text


def test_vendor_answers_each_open_finding_with_a_link_to_it(world):
    submission = checked_with_findings(world)
    open_findings = Finding.objects.filter(submission=submission, status="open").exclude(severity="info")
    actions = next_actions(user=world.vendor_user, submission=submission)
    assert codes(actions) == ["answer_findings", "wait_review"]
    links = [url for _label, url in actions[0].links]
    assert sorted(links) == sorted(f"/submissions/{submission.pk}/#finding-{f.pk}" for f in open_findings)
    assert f"{len(links)} findings" in actions[0].text or len(links) == 1
    # An answered finding is no longer asked for.
    first = open_findings.first()
    threads.message_post(user=world.vendor_user, finding=first, body="This file is optimizer state.")
    actions = next_actions(user=world.vendor_user, submission=submission)
    answer = [a for a in actions if a.code == "answer_findings"]
    assert not answer or len(answer[0].links) == len(links) - 1


def test_vendor_after_changes_requested_opens_a_new_version_then_continues_it(world):
    submission = checked_with_findings(world)
    decisions.submission_decide(user=world.reviewer, submission=submission, decision="changes_requested",
                                justification="Remove the pickle and upload safetensors.")
    actions = next_actions(user=world.vendor_user, submission=submission)
    new_version = [a for a in actions if a.code == "open_new_version"]
    assert new_version and new_version[0].post and new_version[0].url == f"/projects/{world.project.pk}/submissions/new/"
    draft = services.submission_open(user=world.vendor_user, project=world.project)
    actions = next_actions(user=world.vendor_user, submission=submission)
    assert "open_new_version" not in codes(actions)
    assert [a.url for a in actions if a.code == "continue_draft"] == [f"/submissions/{draft.pk}/edit/"]


def test_vendor_after_approval_has_nothing_to_do(world):
    submission = checked_with_findings(world)
    decide_every_finding(world, submission)
    decisions.submission_decide(user=world.reviewer, submission=submission, decision="approved")
    actions = next_actions(user=world.vendor_user, submission=submission)
    assert codes(actions) == ["done"] and actions[0].kind == "none"


# --- reviewer ---------------------------------------------------------------------------------

def test_reviewer_waits_for_the_vendor_on_a_draft(world):
    submission = signed_submission(world=world)
    assert codes(next_actions(user=world.reviewer, submission=submission)) == ["wait_vendor"]


def test_reviewer_decides_findings_then_the_submission(world):
    submission = checked_with_findings(world)
    waiting = Finding.objects.filter(submission=submission, status="open").exclude(severity="info").count()
    actions = next_actions(user=world.reviewer, submission=submission)
    assert codes(actions) == ["decide_findings"]
    assert len(actions[0].links) == waiting
    decide_every_finding(world, submission)
    actions = next_actions(user=world.reviewer, submission=submission)
    assert codes(actions) == ["decide_submission"]
    assert actions[0].url == f"/submissions/{submission.pk}/#h-decision"
    decisions.submission_decide(user=world.reviewer, submission=submission, decision="approved")
    assert codes(next_actions(user=world.reviewer, submission=submission)) == ["done"]


def test_reviewer_is_told_to_wait_for_running_checks(world):
    submission = signed_submission(world=world, submit=True)
    assert codes(next_actions(user=world.reviewer, submission=submission)) == ["wait_checks"]


# --- officer, auditor -------------------------------------------------------------------------

def test_officer_is_asked_to_assign_a_reviewer_only_where_none_is(world):
    other = services.submission_open(user=world.other_vendor_user, project=world.other_project)
    actions = next_actions(user=world.officer, submission=other)
    assert codes(actions)[0] == "assign_reviewer"
    assert actions[0].url == f"/projects/{world.other_project.pk}/"
    services.reviewer_assign(user=world.officer, project=world.other_project, reviewer=world.reviewer_unassigned)
    assert "assign_reviewer" not in codes(next_actions(user=world.officer, submission=other))
    # The world's own project has a reviewer from the start.
    mine = signed_submission(world=world)
    assert "assign_reviewer" not in codes(next_actions(user=world.officer, submission=mine))


def test_auditor_has_nothing_to_do_and_is_told_so(world):
    submission = checked_with_findings(world)
    actions = next_actions(user=world.auditor, submission=submission)
    assert codes(actions) == ["read_only"]
    assert actions[0].kind == "none" and "auditors" in actions[0].text


# --- timeline ---------------------------------------------------------------------------------

def test_timeline_tells_the_history_in_order_with_links(world):
    submission = checked_with_findings(world)
    finding = Finding.objects.filter(submission=submission, status="open").exclude(severity="info").first()
    threads.message_post(user=world.vendor_user, finding=finding, body="Optimizer state, not weights.")
    decide_every_finding(world, submission)
    record = decisions.submission_decide(user=world.reviewer, submission=submission, decision="changes_requested",
                                         justification="Upload safetensors.")
    entries = submission_timeline(submission=submission, include_dossiers=False)
    kinds = [e.kind for e in entries]
    times = [e.at for e in entries]
    assert times == sorted(times)
    assert kinds[0] == "opened"
    for kind in ("submitted", "check_started", "check_ended", "findings_raised", "finding_reply",
                 "finding_decided", "decided", "declaration_sign"):
        assert kind in kinds, kind
    assert kinds.index("submitted") < kinds.index("check_started") < kinds.index("check_ended")
    assert kinds.index("finding_decided") < kinds.index("decided")
    runs = CheckRun.objects.filter(submission=submission, started_at__isnull=False)
    assert kinds.count("check_started") == runs.count()
    decided = [e for e in entries if e.kind == "decided"]
    assert decided[0].url == f"/submissions/{submission.pk}/#decision-{record.pk}"
    reply = [e for e in entries if e.kind == "finding_reply"]
    assert reply[0].url == f"/submissions/{submission.pk}/#finding-{finding.pk}"
    assert all(e.url for e in entries if e.kind != "opened" and e.kind != "submitted"
               and e.kind != "declaration_sign")
    assert FindingDecision.objects.filter(finding__submission=submission).count() == kinds.count("finding_decided")


def test_timeline_leaves_out_what_has_not_happened(world):
    submission = signed_submission(world=world, submit=True)
    kinds = [e.kind for e in submission_timeline(submission=submission, include_dossiers=True)]
    assert "check_ended" not in kinds and "decided" not in kinds and "dossier_issued" not in kinds
    assert submission.submitted_at <= timezone.now()


def test_officer_may_review_so_is_given_the_reviewer_actions_too(world):
    submission = checked_with_findings(world)
    assert codes(next_actions(user=world.officer, submission=submission)) == ["decide_findings"]


def test_timeline_lists_issued_dossiers_for_the_ministry_only(world):
    from compliance.models import Dossier

    submission = checked_with_findings(world)
    dossier = Dossier.objects.create(submission=submission, number="TEST-0001", state=Dossier.State.READY,
                                     rendered_at=timezone.now())
    Dossier.objects.create(submission=submission, number="TEST-0002", state=Dossier.State.QUEUED)
    issued = [e for e in submission_timeline(submission=submission, include_dossiers=True)
              if e.kind == "dossier_issued"]
    assert [(e.text, e.url) for e in issued] == [("Dossier TEST-0001 issued", f"/dossiers/{dossier.pk}/download/")]
    assert not [e for e in submission_timeline(submission=submission, include_dossiers=False)
                if e.kind == "dossier_issued"]

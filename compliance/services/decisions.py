"""Decisions: reviewers decide findings and submissions (conversations on findings: ``threads``)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from compliance.models import CheckRun, Finding, FindingDecision, SubmissionDecision
from compliance.notifications import finding_decided_notify, submission_decided_notify
from portal.services import audit_record
from projects.limits import limit_text
from projects.models import Artifact, Submission
from projects.selectors import user_can_review
from projects.services import submission_status_set

def finding_decide(*, user, finding: Finding, decision: str, justification: str = "") -> FindingDecision:
    """A reviewer confirms, waives (with a justification) or dismisses a finding."""
    if not user_can_review(user=user, project=finding.submission.project):
        raise PermissionDenied(_("Only reviewers assigned to this project may decide its findings."))
    if decision not in FindingDecision.Decision.values:
        raise ValidationError({"decision": _("Choose confirmed, waived or false positive.")})
    justification = limit_text(field="justification", value=(justification or "").strip())
    if decision in {FindingDecision.Decision.WAIVED, FindingDecision.Decision.FALSE_POSITIVE} and not justification:
        raise ValidationError({"justification": _("Say why: a waiver or a false positive needs a justification.")})
    with transaction.atomic():
        record = FindingDecision.objects.create(finding=finding, decision=decision, justification=justification,
                                                decided_by=user)
        Finding.objects.filter(pk=finding.pk).update(status=decision)
        finding.status = decision
        audit_record(actor=user, action="finding.decide", object_type="finding", object_id=finding.pk,
                     object_label=finding.title, submission_id=finding.submission_id,
                     project_id=finding.submission.project_id,
                     data={"decision": decision, "justification": justification})
        artifact_quarantine_follow(user=user, finding=finding, decision=decision)
        finding_decided_notify(user=user, finding=finding, decision=decision)
    return record


# Intake findings at these severities hold an artifact in quarantine (the engine's verdict rule:
# medium quarantines; a compression bomb is high yet quarantines).
_HOLDING_SEVERITIES = ("critical", "high", "medium")
_CLEARED = (Finding.Status.WAIVED, Finding.Status.FALSE_POSITIVE)


def artifact_quarantine_follow(*, user, finding: Finding, decision: str) -> str:
    """A reviewer's decision on an intake finding decides a quarantined artifact: confirming a
    finding that holds it rejects it; once every finding that holds it is waived or a false
    positive, it is released (accepted), and the checks that waited for it are sent. Only a
    quarantine that intake itself pronounced can be lifted: an artifact whose intake failed was
    never examined. Returns what happened to the artifact ('' for nothing)."""
    from compliance.services.runs import check_runs_release

    run = finding.check_run
    if run.check_name != "intake" or run.state != CheckRun.State.SUCCEEDED or finding.severity not in _HOLDING_SEVERITIES:
        return ""
    artifact = Artifact.objects.select_for_update().get(pk=run.artifact_id)
    if artifact.status != Artifact.Status.QUARANTINED:
        return ""
    if decision == FindingDecision.Decision.CONFIRMED:
        outcome, status = "rejected", Artifact.Status.REJECTED
    elif Finding.objects.filter(check_run=run, severity__in=_HOLDING_SEVERITIES).exclude(status__in=_CLEARED).exists():
        return ""
    else:
        outcome, status = "released", Artifact.Status.ACCEPTED
    Artifact.objects.filter(pk=artifact.pk).update(status=status)
    audit_record(actor=user, action=f"artifact.{outcome}", object_type="artifact", object_id=artifact.pk,
                 object_label=artifact.original_name, submission_id=artifact.submission_id,
                 project_id=finding.submission.project_id, data={"finding": finding.pk, "decision": decision})
    check_runs_release(submission_id=artifact.submission_id)
    return outcome


DECIDABLE = {Submission.Status.CHECKED, Submission.Status.APPROVED, Submission.Status.CHANGES_REQUESTED,
             Submission.Status.REJECTED}


def submission_decide(*, user, submission: Submission, decision: str, justification: str = "") -> SubmissionDecision:
    """Approve, request changes or reject a submission whose checks have all ended."""
    if not user_can_review(user=user, project=submission.project):
        raise PermissionDenied(_("Only reviewers assigned to this project may decide its submissions."))
    if decision not in SubmissionDecision.Decision.values:
        raise ValidationError({"decision": _("Choose approved, changes requested or rejected.")})
    if submission.status not in DECIDABLE:
        raise ValidationError(_("Wait until every check has ended before deciding the submission."))
    justification = limit_text(field="justification", value=(justification or "").strip())
    if decision != SubmissionDecision.Decision.APPROVED and not justification:
        raise ValidationError({"justification": _("Say why the submission is not approved.")})
    if decision == SubmissionDecision.Decision.APPROVED and submission.findings.filter(
            severity__in=["critical", "high"], status=Finding.Status.OPEN).exists():
        raise ValidationError(_("Decide every open critical and high finding before approving."))
    with transaction.atomic():
        record = SubmissionDecision.objects.create(submission=submission, decision=decision,
                                                   justification=justification, decided_by=user)
        submission_status_set(submission=submission, status=decision)
        audit_record(actor=user, action="submission.decide", object_type="submission", object_id=submission.pk,
                     object_label=str(submission), submission_id=submission.pk, project_id=submission.project_id,
                     data={"decision": decision, "justification": justification})
        submission_decided_notify(user=user, submission=submission, decision=decision)
    return record

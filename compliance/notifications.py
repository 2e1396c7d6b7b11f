"""Who the judgement room tells, and what: one function per event, each calling
``portal.notifications.notify`` inside the caller's transaction (the e-mails leave after commit).

The services call these so their own bodies say only *that* someone is told; the recipients
(assigned reviewers, the vendor's members, whoever requested a dossier) are decided here.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation

from compliance.models import Dossier, Finding, FindingDecision, SubmissionDecision
from portal.models import Notification
from portal.notifications import notify
from projects.models import Submission
from projects.selectors import project_reviewer_ids, project_vendor_member_ids

Kind = Notification.Kind


def _submission_url(submission_id: int, anchor: str = "") -> str:
    return reverse("submission-detail", kwargs={"pk": submission_id}) + (f"#{anchor}" if anchor else "")


def _msgid(label) -> str:
    """A model choice's label as its English msgid, translated again when the notification is read."""
    with translation.override("en"):
        return str(label)


def checks_finished_notify(*, submission_id: int) -> None:
    """Every check of the submission has ended: its vendor and its reviewers are told, with the
    number of open risks (Finding.is_open_risk) waiting for review."""
    submission = Submission.objects.select_related("project").get(pk=submission_id)
    open_risks = sum(1 for f in Finding.objects.filter(submission_id=submission_id).only("status", "severity")
                     if f.is_open_risk)
    notify(kind=Kind.CHECKS_FINISHED,
           recipients=[*project_vendor_member_ids(project=submission.project),
                       *project_reviewer_ids(project=submission.project)],
           url=_submission_url(submission_id, "h-findings"),
           params={"submission": str(submission), "open_risks": open_risks})


def findings_raised_notify(*, submission: Submission, check_label, findings: list[dict]) -> None:
    """A check's attempt recorded findings above information: the assigned reviewers are told.
    Information findings record facts (a declared base model confirmed) and tell nobody."""
    risks = [f for f in findings if f.get("severity") != Finding.Severity.INFO]
    if not risks:
        return
    notify(kind=Kind.FINDING_RAISED, recipients=project_reviewer_ids(project=submission.project),
           url=_submission_url(submission.pk, "h-findings"),
           params={"submission": str(submission), "count": len(risks), "check_label": _msgid(check_label)})


def finding_decided_notify(*, user, finding: Finding, decision: str) -> None:
    """A reviewer decided a finding: the vendor's members are told (a confirmed finding waits on them)."""
    submission = finding.submission
    notify(kind=Kind.FINDING_DECIDED, recipients=project_vendor_member_ids(project=submission.project),
           url=_submission_url(submission.pk, f"finding-{finding.pk}"), actor=user,
           params={"submission": str(submission), "finding": finding.title[:200],
                   "decision_label": _msgid(FindingDecision.Decision(decision).label)})


def finding_reply_notify(*, user, finding: Finding) -> None:
    """The vendor answered a finding: the assigned reviewers are told (compliance.services.threads)."""
    submission = finding.submission
    notify(kind=Kind.REPLY_RECEIVED, recipients=project_reviewer_ids(project=submission.project),
           url=_submission_url(submission.pk, f"finding-{finding.pk}"), actor=user,
           params={"submission": str(submission), "finding": finding.title[:200]})


def finding_question_notify(*, user, finding: Finding) -> None:
    """A reviewer asked the vendor a question on a finding: the vendor's members are told (the
    finding now waits on them)."""
    submission = finding.submission
    notify(kind=Kind.QUESTION_RECEIVED, recipients=project_vendor_member_ids(project=submission.project),
           url=_submission_url(submission.pk, f"finding-{finding.pk}"), actor=user,
           params={"submission": str(submission), "finding": finding.title[:200]})


def submission_decided_notify(*, user, submission: Submission, decision: str) -> None:
    """A reviewer decided the submission: the vendor's members are told."""
    notify(kind=Kind.SUBMISSION_DECIDED, recipients=project_vendor_member_ids(project=submission.project),
           url=_submission_url(submission.pk, "h-decision"), actor=user,
           params={"submission": str(submission),
                   "decision_label": _msgid(SubmissionDecision.Decision(decision).label)})


def dossier_issued_notify(*, dossier: Dossier) -> None:
    """A dossier is stored and signed: whoever requested it and the assigned reviewers are told."""
    submission = dossier.submission
    notify(kind=Kind.DOSSIER_ISSUED,
           recipients=[dossier.requested_by_id, *project_reviewer_ids(project=submission.project)],
           url=_submission_url(submission.pk, "h-dossiers"),
           params={"dossier": dossier.number, "submission": str(submission)})

"""What happens next on a submission, for the person looking at it.

One function, ``next_actions``, answers for every role and state, so the submission page, the
vendor's draft page and their live fragments say the same thing. It reads rows (runs, findings,
the project's reviewers) but writes nothing; pass the runs and findings a page already loaded
to save the queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from compliance.models import CheckRun, Finding
from portal.models import Role
from portal.selectors import user_can_manage, user_role
from projects.models import Submission
from projects.selectors import draft_next_steps, user_can_review, user_can_submit

Status = Submission.Status


@dataclass(frozen=True)
class NextAction:
    """One thing to do (or, with ``kind="none"``, a plain statement that there is nothing to do).

    ``url`` is a link, or with ``post=True`` the action of a one-button form (``button`` is its
    text, ``confirm`` the question asked first). ``links`` point at each object concerned, such as
    every finding to answer."""

    code: str
    text: str
    kind: str = "do"  # "do": the person acts; "wait": someone else acts; "none": nothing for anyone here
    url: str = ""
    post: bool = False
    button: str = ""
    confirm: str = ""
    links: tuple = field(default_factory=tuple)  # ((label, url), ...)


def runs_progress(runs) -> tuple[int, int]:
    """(ended, total) check runs."""
    runs = list(runs)
    return sum(1 for r in runs if r.state in CheckRun.FINISHED_STATES), len(runs)


def findings_to_answer(findings) -> list[Finding]:
    """Findings the vendor should answer: open, above information, and either never answered by
    the vendor or asked about by a reviewer since (Finding.waiting_on is the vendor)."""
    def answered(finding) -> bool:
        return any(m.side == "vendor" for m in finding.messages.all())

    return [f for f in findings if f.status == Finding.Status.OPEN and f.severity != Finding.Severity.INFO
            and (not answered(f) or f.waiting_on == Finding.WaitingOn.VENDOR)]


def findings_to_decide(findings) -> list[Finding]:
    """Findings that wait for a reviewer: open and above information. Information findings
    record facts (a declared base model confirmed) and never hold the submission decision."""
    return [f for f in findings if f.status == Finding.Status.OPEN and f.severity != Finding.Severity.INFO]


def _finding_links(submission: Submission, findings) -> tuple:
    page = reverse("submission-detail", kwargs={"pk": submission.pk})
    return tuple((f.title, f"{page}#finding-{f.pk}") for f in findings)


def _project_has_reviewer(project) -> bool:
    from guardian.shortcuts import get_users_with_perms

    return get_users_with_perms(project, only_with_perms_in=["review_project"], with_group_users=False).exists()


def _vendor_actions(submission: Submission, runs, findings) -> list[NextAction]:
    page = reverse("submission-detail", kwargs={"pk": submission.pk})
    if submission.status == Status.DRAFT:
        return [NextAction(code=code, text=text, url=url) for code, text, url in draft_next_steps(submission=submission)]
    actions = []
    to_answer = findings_to_answer(findings)
    if to_answer and submission.status in {Status.SUBMITTED, Status.CHECKING, Status.CHECKED,
                                           Status.CHANGES_REQUESTED}:
        actions.append(NextAction(
            code="answer_findings",
            text=ngettext("Answer this finding: say what it is or what you changed.",
                          "Answer these %(n)d findings: say what each is or what you changed.",
                          len(to_answer)) % {"n": len(to_answer)},
            url=f"{page}#finding-{to_answer[0].pk}", links=_finding_links(submission, to_answer)))
    if submission.status == Status.CHANGES_REQUESTED:
        draft = submission.project.submissions.filter(status=Status.DRAFT).first()
        if draft is not None:
            actions.append(NextAction(
                code="continue_draft",
                text=_("Continue version %(n)d, which answers the reviewer's instructions above.") % {"n": draft.number},
                url=reverse("submission-edit", kwargs={"pk": draft.pk})))
        else:
            actions.append(NextAction(
                code="open_new_version",
                text=_("Open a new version that follows the reviewer's instructions above."),
                url=reverse("submission-open", kwargs={"pk": submission.project_id}), post=True,
                button=_("Open a new version")))
    elif submission.status in {Status.SUBMITTED, Status.CHECKING}:
        ended, total = runs_progress(runs)
        actions.append(NextAction(
            code="wait_checks", kind="wait",
            text=_("The checks are running (%(ended)d of %(total)d ended); this page updates by itself.")
            % {"ended": ended, "total": total}))
    elif submission.status == Status.CHECKED:
        actions.append(NextAction(code="wait_review", kind="wait",
                                  text=_("The checks have ended; a reviewer decides next.")))
    elif submission.status == Status.APPROVED:
        actions.append(NextAction(code="done", kind="none", text=_("Approved: nothing more to do on this version.")))
    elif submission.status == Status.REJECTED:
        actions.append(NextAction(code="done", kind="none",
                                  text=_("Rejected: this version takes no more changes. The reasons are above.")))
    return actions


def _reviewer_actions(submission: Submission, runs, findings) -> list[NextAction]:
    page = reverse("submission-detail", kwargs={"pk": submission.pk})
    if submission.status == Status.DRAFT:
        return [NextAction(code="wait_vendor", kind="wait",
                           text=_("Nothing to do yet: the vendor has not submitted this version."))]
    actions = []
    to_decide = findings_to_decide(findings)
    if to_decide:
        actions.append(NextAction(
            code="decide_findings",
            text=ngettext("This finding waits for your decision.",
                          "These %(n)d findings wait for your decision.", len(to_decide)) % {"n": len(to_decide)},
            url=f"{page}#finding-{to_decide[0].pk}", links=_finding_links(submission, to_decide)))
    if submission.status in {Status.SUBMITTED, Status.CHECKING}:
        ended, total = runs_progress(runs)
        actions.append(NextAction(
            code="wait_checks", kind="wait",
            text=_("The checks are running (%(ended)d of %(total)d ended): decide the submission when they end.")
            % {"ended": ended, "total": total}))
    elif submission.status == Status.CHECKED and not to_decide:
        actions.append(NextAction(code="decide_submission",
                                  text=_("Every finding is decided: record the submission decision."),
                                  url=f"{page}#h-decision"))
    elif submission.status in {Status.APPROVED, Status.CHANGES_REQUESTED, Status.REJECTED} and not to_decide:
        actions.append(NextAction(code="done", kind="none",
                                  text=_("Decided: nothing to do until the vendor sends a new version.")))
    return actions


def next_actions(*, user, submission: Submission, runs=None, findings=None) -> list[NextAction]:
    """What ``user`` should do next on ``submission``, most urgent first; never empty.

    Vendors: finish a draft (upload, sign, submit), answer open findings, open a new version after
    "changes requested". Reviewers (and officers and administrators, who may review): decide the
    open findings, then the submission. Officers and administrators: assign a reviewer to a project
    that has none. Auditors only read."""
    if runs is None:
        runs = list(submission.check_runs.all())
    if findings is None:
        findings = list(submission.findings.all())
    role = user_role(user=user)
    if role == Role.AUDITOR:
        return [NextAction(code="read_only", kind="none",
                           text=_("Nothing to do: auditors read the record and do not act on it."))]
    if user_can_submit(user=user, project=submission.project):
        return _vendor_actions(submission, runs, findings)
    actions = []
    if user_can_manage(user=user) and not _project_has_reviewer(submission.project):
        actions.append(NextAction(code="assign_reviewer",
                                  text=_("This project has no reviewer: assign one."),
                                  url=reverse("project-detail", kwargs={"pk": submission.project_id})))
    if user_can_review(user=user, project=submission.project):
        actions.extend(_reviewer_actions(submission, runs, findings))
    if not actions:
        actions.append(NextAction(code="nothing", kind="none", text=_("Nothing to do for you on this submission.")))
    return actions

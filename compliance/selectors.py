"""Reads of the compliance room, always scoped to what the user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import (Case, CharField, Count, DateTimeField, IntegerField, Min, OuterRef, Prefetch, Q, QuerySet,
                              Subquery, Value, When)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.models import CheckRun, Dossier, Finding, FindingMessage
from portal.exports import ExportColumn
from portal.models import AuditEvent, Role
from portal import permissions as perms
from portal.selectors import user_role, user_sees_everything
from projects.models import Milestone, Programme, Project, Submission
from projects.selectors import get_or_404, project_ids_with_perm, projects_visible_to, submissions_visible_to


def findings_visible_to(*, user) -> QuerySet:
    return Finding.objects.filter(submission__in=submissions_visible_to(user=user))


def check_runs_visible_to(*, user) -> QuerySet:
    return CheckRun.objects.filter(submission__in=submissions_visible_to(user=user))


def dossiers_visible_to(*, user) -> QuerySet:
    """Dossiers are ministry records: vendors do not download them."""
    if user_role(user=user) == Role.VENDOR:
        return Dossier.objects.none()
    return Dossier.objects.filter(submission__in=submissions_visible_to(user=user))


def finding_get_for_user(*, user, pk) -> Finding:
    return get_or_404(findings_visible_to(user=user).select_related("submission", "submission__project",
                                                                      "check_run", "check_run__artifact"), pk=pk)


def finding_message_get_for_user(*, user, pk) -> FindingMessage:
    """A message, seen by whoever sees its finding (404 for missing and forbidden alike)."""
    return get_or_404(FindingMessage.objects.filter(finding__in=findings_visible_to(user=user))
                      .select_related("attachment", "finding__submission"), pk=pk)


def finding_messages(*, finding: Finding) -> QuerySet:
    """The finding's conversation, oldest first, with authors and attachments."""
    return finding.messages.select_related("author", "author__profile", "attachment").order_by("created_at", "id")


def findings_with_waiting_on(queryset: QuerySet) -> QuerySet:
    """Annotate ``waiting_on_value`` (Finding.WaitingOn) in the same query, for lists such as
    the review queue: the same rule as ``Finding.waiting_on`` (FindingMessage.waiting_on_after),
    in SQL: decided, nobody; open, the vendor after a question, else a reviewer."""
    last_turn = (FindingMessage.objects.filter(finding=OuterRef("pk"), kind__in=FindingMessage.TURN_KINDS)
                 .order_by("-created_at", "-id").values("kind")[:1])
    return queryset.annotate(last_turn_kind=Subquery(last_turn)).annotate(waiting_on_value=Case(
        When(~Q(status=Finding.Status.OPEN), then=Value(Finding.WaitingOn.NOBODY.value)),
        When(last_turn_kind=FindingMessage.Kind.QUESTION.value, then=Value(Finding.WaitingOn.VENDOR.value)),
        default=Value(Finding.WaitingOn.REVIEWER.value), output_field=CharField()))


def check_run_get_for_user(*, user, pk) -> CheckRun:
    return get_or_404(check_runs_visible_to(user=user).select_related("artifact", "submission",
                                                                        "submission__project"), pk=pk)


def dossier_get_for_user(*, user, pk) -> Dossier:
    return get_or_404(dossiers_visible_to(user=user).select_related("submission", "submission__project"), pk=pk)


def audit_events_visible_to(*, user) -> QuerySet:
    """Ministry-wide roles read the whole trail; others read events of projects they see."""
    if user_sees_everything(user=user):
        return AuditEvent.objects.all()
    if not getattr(user, "is_authenticated", False):
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(project_id__in=projects_visible_to(user=user).values("pk"))


# Rank of each severity, most severe first (0): "the highest open severity" is the smallest rank.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Finding.SEVERITY_ORDER)}


def severity_rank_expression(field: str = "severity") -> Case:
    return Case(*[When(**{field: severity}, then=Value(rank)) for severity, rank in SEVERITY_RANK.items()],
                output_field=IntegerField())


def severity_label_of_rank(rank: int | None) -> str:
    return Finding.Severity(Finding.SEVERITY_ORDER[rank]).label if rank is not None else ""


def _top_open_severity_rank(**outer) -> Subquery:
    """The rank of the most severe open finding of the outer row (null when none is open)."""
    return Subquery(Finding.objects.filter(status=Finding.Status.OPEN, **outer)
                    .annotate(rank=severity_rank_expression()).order_by("rank").values("rank")[:1],
                    output_field=IntegerField())


def submissions_annotate_waiting(queryset: QuerySet) -> QuerySet:
    """Each submission's ``waiting_since`` (submitted, or the vendor's last reply to a finding when
    later: the ball is back with the reviewer from then) and ``top_severity_rank`` (its most severe
    open finding), so lists filter and sort on them in the database."""
    last_vendor_reply = (FindingMessage.objects.filter(finding__submission_id=OuterRef("pk"),
                                                       side=FindingMessage.Side.VENDOR)
                         .order_by("-created_at").values("created_at")[:1])
    return queryset.annotate(
        last_vendor_action_at=Subquery(last_vendor_reply, output_field=DateTimeField()),
        waiting_since=Greatest("submitted_at", Coalesce(Subquery(last_vendor_reply, output_field=DateTimeField()),
                                                        "submitted_at"), output_field=DateTimeField()),
        top_severity_rank=_top_open_severity_rank(submission_id=OuterRef("pk")))


def ids_with_top_open_severity(*, severity: str, group_by: str) -> QuerySet:
    """Ids (``submission_id`` or ``submission__project_id``) whose most severe open finding is
    ``severity``: one grouped query, not a subquery per row. Filtering on the correlated
    ``top_severity_rank`` annotation instead took the dashboard 18.5 s over 1,000 projects on
    SQLite (every aggregate of the page re-ran it); this takes it to well under a second."""
    return (Finding.objects.filter(status=Finding.Status.OPEN).order_by().values(group_by)
            .annotate(top=Min(severity_rank_expression())).filter(top=SEVERITY_RANK[severity])
            .values(group_by))


def projects_annotate_severity(queryset: QuerySet) -> QuerySet:
    """Each project's ``top_severity_rank``: its most severe open finding over all its submissions."""
    return queryset.annotate(top_severity_rank=_top_open_severity_rank(submission__project_id=OuterRef("pk")))


def submissions_overdue_q(*, now) -> Q:
    """Submissions that waited longer than their programme's service level. One OR term per distinct
    ``review_sla_days`` (a handful of programmes), which every database compares on an index, rather
    than date arithmetic on a column, which SQLite and PostgreSQL spell differently."""
    q = Q(pk__in=[])
    for days in Programme.objects.order_by().values_list("review_sla_days", flat=True).distinct():
        q |= Q(project__programme__review_sla_days=days, waiting_since__lt=now - timedelta(days=days))
    return q


def review_queue(*, user) -> QuerySet:
    """Submissions waiting on this reviewer: checks running or done, not yet decided; the ones that
    waited longest first, with their waiting time and most severe open finding annotated."""
    if user_role(user=user) in {Role.ADMIN, Role.OFFICER}:
        base = Submission.objects.all()
    elif user_role(user=user) == Role.REVIEWER:
        base = Submission.objects.filter(project__in=project_ids_with_perm(user=user, perm=perms.PROJECT_REVIEW))
    else:
        base = Submission.objects.none()  # annotated all the same, so filters and sorts apply to nothing
    return submissions_annotate_waiting(
        base.filter(status__in=QUEUE_STATES).select_related("project", "project__programme", "project__vendor")
    ).order_by("waiting_since", "id")


QUEUE_STATES = (Submission.Status.SUBMITTED, Submission.Status.CHECKING, Submission.Status.CHECKED)


def submission_waiting(submission, *, now) -> tuple[int, int, bool]:
    """(whole days waited, the programme's service level in days, overdue?) of an annotated submission."""
    sla = submission.project.programme.review_sla_days
    since = getattr(submission, "waiting_since", None) or submission.submitted_at
    if since is None:
        return 0, sla, False
    waited = now - since
    return waited.days, sla, waited > timedelta(days=sla)


def submissions_with_open_counts(submissions, *, now=None) -> list:
    """Attach open and critical finding counts to a page of submissions, in one query
    (counting inside the page query would aggregate every submission before paging), and the
    waiting time against the programme's service level (``waiting_days``, ``sla_days``, ``overdue``)."""
    now = now or timezone.now()
    submissions = list(submissions)
    counts = (Finding.objects.filter(submission_id__in=[s.pk for s in submissions], status=Finding.Status.OPEN)
              .values_list("submission_id").annotate(n=Count("pk"),
                                                     critical=Count("pk", filter=Q(severity="critical"))))
    by_id = {sid: (n, critical) for sid, n, critical in counts}
    for submission in submissions:
        submission.open_findings, submission.critical_findings = by_id.get(submission.pk, (0, 0))
        submission.waiting_days, submission.sla_days, submission.overdue = submission_waiting(submission, now=now)
        submission.top_severity_label = severity_label_of_rank(getattr(submission, "top_severity_rank", None))
    return submissions


def queue_export_columns() -> list[ExportColumn]:
    """The columns of the review queue's CSV/XLSX export (page and API)."""
    now = timezone.now()
    phases, statuses = _labels(Project.Phase.choices), _labels(Submission.Status.choices)
    severities = [str(Finding.Severity(severity).label) for severity in Finding.SEVERITY_ORDER]
    yes, no = str(_("yes")), str(_("no"))

    def waiting(s, index):
        return submission_waiting(s, now=now)[index]

    return [
        ExportColumn(_("Id"), lambda s: s.pk),
        ExportColumn(_("Programme"), lambda s: s.project.programme.code),
        ExportColumn(_("Project"), lambda s: s.project.code),
        ExportColumn(_("Version"), lambda s: s.number),
        ExportColumn(_("Vendor"), lambda s: s.project.vendor.name),
        ExportColumn(_("Phase"), lambda s: phases.get(s.project.phase, s.project.phase)),
        ExportColumn(_("Status"), lambda s: statuses.get(s.status, s.status)),
        ExportColumn(_("Submitted"), lambda s: s.submitted_at),
        ExportColumn(_("Waiting since"), lambda s: s.waiting_since),
        ExportColumn(_("Days waiting"), lambda s: waiting(s, 0)),
        ExportColumn(_("Service level (days)"), lambda s: waiting(s, 1)),
        ExportColumn(_("Overdue"), lambda s: yes if waiting(s, 2) else no),
        ExportColumn(_("Highest open severity"),
                     lambda s: severities[s.top_severity_rank] if s.top_severity_rank is not None else ""),
        ExportColumn(_("Note to reviewers"), lambda s: s.note),
    ]


def findings_list(*, user) -> QuerySet:
    """Findings the user may see, for the findings list and its export: the newest first, with what
    the rows show (project, programme, check, whom it waits on) joined in."""
    return (findings_with_waiting_on(findings_visible_to(user=user))
            .select_related("check_run", "submission", "submission__project", "submission__project__programme",
                            "submission__project__vendor")
            .annotate(severity_rank=severity_rank_expression())
            .order_by("-id"))


def finding_title(finding: Finding) -> str:
    """The finding's title in the reader's language, as the submission page and the dossier word
    it (Finding.text, compliance.finding_texts; the stored English for a code it does not know).
    The findings list and its export are ministry pages, so the reviewers' wording."""
    from compliance.finding_texts import REVIEWER

    return finding.text(REVIEWER).title


def findings_titled(findings) -> list:
    findings = list(findings)
    for finding in findings:
        finding.title = finding_title(finding)
    return findings


def _labels(choices) -> dict:
    """A choice's labels resolved once per export, not once per cell (5,000 findings spent 0.9 s of
    1.6 s translating the same few lazy labels again and again)."""
    return {value: str(label) for value, label in choices}


def finding_export_columns() -> list[ExportColumn]:
    severities, statuses = _labels(Finding.Severity.choices), _labels(Finding.Status.choices)
    return [
        ExportColumn(_("Id"), lambda f: f.pk),
        ExportColumn(_("Programme"), lambda f: f.submission.project.programme.code),
        ExportColumn(_("Project"), lambda f: f.submission.project.code),
        ExportColumn(_("Submission"), lambda f: f"{f.submission.project.code} v{f.submission.number}"),
        ExportColumn(_("Check"), lambda f: f.check_run.check_name),
        ExportColumn(_("Severity"), lambda f: severities.get(f.severity, f.severity)),
        ExportColumn(_("Status"), lambda f: statuses.get(f.status, f.status)),
        ExportColumn(_("Code"), lambda f: f.code),
        ExportColumn(_("Title"), finding_title),
        ExportColumn(_("Waiting on"), lambda f: str(Finding.WaitingOn(
            getattr(f, "waiting_on_value", None) or f.waiting_on).label)),
        ExportColumn(_("Found"), lambda f: f.created_at),
    ]


def dashboard_data(*, user, projects: QuerySet) -> dict:
    """Everything the dashboard shows about ``projects`` (the dashboard's filtered list), in a
    fixed number of queries whatever the data size."""
    projects = projects.order_by()
    project_ids = projects.values("pk")
    by_status = dict(projects.order_by().values_list("status").annotate(n=Count("pk")))
    by_phase = dict(projects.order_by().values_list("phase").annotate(n=Count("pk")))
    findings = Finding.objects.filter(submission__project__in=project_ids, status=Finding.Status.OPEN)
    by_severity = dict(findings.order_by().values_list("severity").annotate(n=Count("pk")))
    running = list(CheckRun.objects.filter(submission__project__in=project_ids,
                                           state__in=[CheckRun.State.RUNNING, CheckRun.State.QUEUED,
                                                      CheckRun.State.WAITING])
                   .select_related("artifact", "submission", "submission__project")
                   .order_by("-state", "queued_at")[:20])
    overdue = list(Milestone.objects.filter(project__in=project_ids, completed_on__isnull=True,
                                            due_on__lt=timezone.localdate())
                   .select_related("project").order_by("due_on")[:20])
    activity = list(audit_events_visible_to(user=user).filter(
        Q(project_id__isnull=True) | Q(project_id__in=project_ids)).order_by("-id")[:15])
    return {
        "projects_by_status": [(Project.Status(s).label, by_status.get(s, 0)) for s in Project.Status.values],
        "projects_by_phase": [(Project.Phase(p).label, by_phase.get(p, 0)) for p in Project.Phase.values],
        "findings_by_severity": [(Finding.Severity(s).label, by_severity.get(s, 0)) for s in Finding.SEVERITY_ORDER],
        "severity_counts": {s: by_severity.get(s, 0) for s in Finding.SEVERITY_ORDER},
        "project_total": sum(by_status.values()),
        "running_checks": running,
        "overdue_milestones": overdue,
        "recent_activity": activity,
    }


def projects_with_open_counts(projects) -> list:
    """Attach open and critical finding counts to a page of projects, in one query."""
    projects = list(projects)
    counts = (Finding.objects.filter(submission__project_id__in=[p.pk for p in projects],
                                     status=Finding.Status.OPEN)
              .values_list("submission__project_id").annotate(n=Count("pk"),
                                                              critical=Count("pk", filter=Q(severity="critical"))))
    by_id = {pid: (n, critical) for pid, n, critical in counts}
    for project in projects:
        project.open_findings, project.critical_findings = by_id.get(project.pk, (0, 0))
    return projects


def submission_findings_grouped(*, submission: Submission) -> list[tuple[str, str, list[Finding]]]:
    """Findings of a submission grouped by severity, most severe first."""
    findings = list(submission.findings.select_related("check_run", "check_run__artifact",
                                                       "carried_from__submission")
                    .prefetch_related("decisions__decided_by", "carried_from__decisions__decided_by",
                                      Prefetch("messages", queryset=FindingMessage.objects.select_related(
                                          "author", "author__profile", "attachment")))
                    .order_by("id"))
    groups = []
    for severity in Finding.SEVERITY_ORDER:
        items = [f for f in findings if f.severity == severity]
        if items:
            groups.append((severity, Finding.Severity(severity).label, items))
    return groups


def worker_activity(*, since_hours: int = 24) -> list[dict]:
    """Per worker: what runs now, how many finished and failed recently, and average duration."""
    since = timezone.now() - timedelta(hours=since_hours)
    rows = (CheckRun.objects.exclude(worker="").filter(Q(started_at__gte=since) | Q(state=CheckRun.State.RUNNING))
            .values("worker")
            .annotate(running=Count("pk", filter=Q(state=CheckRun.State.RUNNING)),
                      succeeded=Count("pk", filter=Q(state=CheckRun.State.SUCCEEDED)),
                      inconclusive=Count("pk", filter=Q(state=CheckRun.State.INCONCLUSIVE)),
                      failed=Count("pk", filter=Q(state=CheckRun.State.FAILED)))
            .order_by("worker"))
    return list(rows)



@dataclass(frozen=True)
class TimelineEntry:
    """One dated step of a submission's history, linking to the object it is about."""

    at: object  # datetime
    kind: str  # submitted, check_started, check_ended, findings_raised, finding_answered, finding_decided, ...
    text: str
    url: str = ""
    actor: str = ""


# Audit actions the timeline tells (the rows say the rest: runs, findings, decisions, dossiers).
_TIMELINE_AUDIT = ("declaration.sign", "finding.reply", "finding.message", "artifact.released", "artifact.rejected",
                   "check.rerun")


def submission_timeline(*, submission: Submission, include_dossiers: bool, runs=None,
                        findings=None) -> list[TimelineEntry]:
    """The submission's history oldest first: opened, declaration signed, submitted, each check
    started and ended, findings raised (one entry per check that raised them), findings answered
    and decided, submission decisions, dossiers issued. Built from the rows and the audit trail,
    not stored twice. ``include_dossiers`` is false for vendors (dossiers are ministry records)."""
    from django.urls import reverse
    from django.utils.translation import gettext as _
    from django.utils.translation import ngettext

    from compliance.models import FindingDecision, SubmissionDecision

    page = reverse("submission-detail", kwargs={"pk": submission.pk})
    runs = list(submission.check_runs.select_related("artifact")) if runs is None else list(runs)
    findings = list(submission.findings.all()) if findings is None else list(findings)
    entries = [TimelineEntry(at=submission.created_at, kind="opened",
                             text=_("Version %(n)d opened") % {"n": submission.number})]
    if submission.submitted_at:
        entries.append(TimelineEntry(at=submission.submitted_at, kind="submitted", text=_("Submitted for checking")))
    for run in runs:
        what = {"check": run.check_name, "file": run.artifact.original_name}
        if run.started_at:
            entries.append(TimelineEntry(at=run.started_at, kind="check_started", url=f"{page}#run-{run.pk}",
                                         text=_("Check %(check)s of %(file)s started") % what))
        if run.finished_at and run.state in CheckRun.FINISHED_STATES:
            entries.append(TimelineEntry(at=run.finished_at, kind="check_ended", url=f"{page}#run-{run.pk}",
                                         text=_("Check %(check)s of %(file)s ended: %(state)s")
                                         % {**what, "state": run.get_state_display()}))
    by_run: dict[int, list] = {}
    for finding in findings:
        by_run.setdefault(finding.check_run_id, []).append(finding)
    run_names = {run.pk: run for run in runs}
    for run_id, raised in by_run.items():
        run = run_names.get(run_id)
        first = min(raised, key=lambda f: (f.created_at, f.pk))
        entries.append(TimelineEntry(
            at=first.created_at, kind="findings_raised", url=f"{page}#finding-{first.pk}",
            text=ngettext("%(n)d finding raised by %(check)s", "%(n)d findings raised by %(check)s", len(raised))
            % {"n": len(raised), "check": run.check_name if run else "?"}))
    titles = {f.pk: f.title for f in findings}
    for decision in FindingDecision.objects.filter(finding__submission=submission).select_related("decided_by"):
        entries.append(TimelineEntry(
            at=decision.decided_at, kind="finding_decided", url=f"{page}#finding-{decision.finding_id}",
            actor=str(decision.decided_by),
            text=_("Finding decided, %(decision)s: %(title)s")
            % {"decision": decision.get_decision_display(), "title": titles.get(decision.finding_id, "")}))
    for decision in SubmissionDecision.objects.filter(submission=submission).select_related("decided_by"):
        entries.append(TimelineEntry(at=decision.decided_at, kind="decided", url=f"{page}#decision-{decision.pk}",
                                     actor=str(decision.decided_by),
                                     text=_("Submission decided: %(decision)s")
                                     % {"decision": decision.get_decision_display()}))
    audit_sentences = {
        "declaration.sign": _("Declaration signed"),
        "finding.reply": _("Vendor answered a finding: %(label)s"),
        "artifact.released": _("File released from quarantine: %(label)s"),
        "artifact.rejected": _("File rejected: %(label)s"),
        "check.rerun": _("Check queued again: %(label)s"),
    }
    message_sentences = {  # compliance.services.threads: who wrote, and what kind of message
        "vendor": ("finding_reply", _("Vendor answered a finding: %(label)s")),
        "question": ("finding_question", _("Reviewer asked the vendor about a finding: %(label)s")),
        "note": ("finding_note", _("Reviewer added a note to a finding: %(label)s")),
    }
    for event in AuditEvent.objects.filter(submission_id=submission.pk, action__in=_TIMELINE_AUDIT):
        anchor = {"finding": "finding", "artifact": "artifact", "check_run": "run"}.get(event.object_type)
        url = f"{page}#{anchor}-{event.object_id}" if anchor else ""
        if event.action == "finding.message":
            data = event.data or {}
            kind, sentence = message_sentences.get("vendor" if data.get("side") == "vendor" else data.get("kind"),
                                                   message_sentences["note"])
        else:
            kind, sentence = event.action.replace(".", "_"), audit_sentences[event.action]
        entries.append(TimelineEntry(at=event.created_at, kind=kind, url=url, actor=event.actor_label,
                                     text=sentence % {"label": event.object_label}))
    if include_dossiers:
        for dossier in submission.dossiers.filter(state=Dossier.State.READY, rendered_at__isnull=False):
            entries.append(TimelineEntry(at=dossier.rendered_at, kind="dossier_issued",
                                         url=reverse("dossier-download", kwargs={"pk": dossier.pk}),
                                         text=_("Dossier %(number)s issued") % {"number": dossier.number}))
    return sorted(entries, key=lambda e: e.at)

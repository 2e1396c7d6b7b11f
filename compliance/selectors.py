"""Reads of the compliance room, always scoped to what the user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Case, CharField, Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from compliance.models import CheckRun, Dossier, Finding, FindingMessage
from portal.models import AuditEvent, Role
from portal import permissions as perms
from portal.selectors import user_role, user_sees_everything
from projects.models import Milestone, Project, Submission
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


def review_queue(*, user) -> QuerySet:
    """Submissions waiting on this reviewer: checks running or done, not yet decided."""
    open_states = [Submission.Status.SUBMITTED, Submission.Status.CHECKING, Submission.Status.CHECKED]
    if user_role(user=user) in {Role.ADMIN, Role.OFFICER}:
        base = Submission.objects.all()
    elif user_role(user=user) == Role.REVIEWER:
        base = Submission.objects.filter(project__in=project_ids_with_perm(user=user, perm=perms.PROJECT_REVIEW))
    else:
        return Submission.objects.none()
    return (base.filter(status__in=open_states)
            .select_related("project", "project__programme", "project__vendor")
            .order_by("submitted_at", "id"))


def submissions_with_open_counts(submissions) -> list:
    """Attach open and critical finding counts to a page of submissions, in one query
    (counting inside the page query would aggregate every submission before paging)."""
    submissions = list(submissions)
    counts = (Finding.objects.filter(submission_id__in=[s.pk for s in submissions], status=Finding.Status.OPEN)
              .values_list("submission_id").annotate(n=Count("pk"),
                                                     critical=Count("pk", filter=Q(severity="critical"))))
    by_id = {sid: (n, critical) for sid, n, critical in counts}
    for submission in submissions:
        submission.open_findings, submission.critical_findings = by_id.get(submission.pk, (0, 0))
    return submissions


@dataclass
class DashboardFilters:
    programme: int | None = None
    phase: int | None = None
    status: str | None = None
    q: str = ""


def dashboard_projects(*, user, filters: DashboardFilters) -> QuerySet:
    projects = projects_visible_to(user=user)
    if filters.programme:
        projects = projects.filter(programme_id=filters.programme)
    if filters.phase:
        projects = projects.filter(phase=filters.phase)
    if filters.status:
        projects = projects.filter(status=filters.status)
    if filters.q:
        q = filters.q.strip()
        projects = projects.filter(Q(title__icontains=q) | Q(title_ko__icontains=q) | Q(code__icontains=q)
                                   | Q(vendor__name__icontains=q) | Q(vendor__name_ko__icontains=q))
    return projects


def dashboard_data(*, user, filters: DashboardFilters) -> dict:
    """Everything the dashboard shows, in a fixed number of queries whatever the data size."""
    projects = dashboard_projects(user=user, filters=filters)
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
    findings = list(submission.findings.select_related("check_run", "check_run__artifact")
                    .prefetch_related("decisions__decided_by",
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


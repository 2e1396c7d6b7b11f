"""Filters and sort of the compliance room's lists (review queue, findings, dashboard projects),
shared by the pages and the API: the same querystring means the same rows on both."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.models import Finding
from compliance.selectors import (QUEUE_STATES, findings_with_waiting_on, ids_with_top_open_severity,
                                  submissions_overdue_q)
from portal.filters import IdFilter
from portal.listing import SortFilter
from projects.filters import ProjectFilterSet, ReviewerFilterMixin, reviewers_all
from projects.models import Project, Submission

SEVERITY_CHOICES = Finding.Severity.choices


def _top_severity_filter(group_by: str):
    """A filter method: rows whose most severe open finding is the value chosen."""

    def filter_top_severity(queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(pk__in=ids_with_top_open_severity(severity=value, group_by=group_by))

    return filter_top_severity


class QueueFilterSet(ReviewerFilterMixin, django_filters.FilterSet):
    """The review queue: submissions waiting for a decision (``compliance.selectors.review_queue``)."""

    reviewer_path = "project_id"

    programme = IdFilter(field_name="project__programme_id", label=_("Programme"))
    phase = django_filters.ChoiceFilter(field_name="project__phase", choices=Project.Phase.choices, label=_("Phase"))
    status = django_filters.ChoiceFilter(choices=[(s.value, s.label) for s in QUEUE_STATES], label=_("Status"))
    severity = django_filters.ChoiceFilter(choices=SEVERITY_CHOICES, method=_top_severity_filter("submission_id"),
                                           label=_("Highest open severity"))
    reviewer = django_filters.ModelChoiceFilter(queryset=reviewers_all(), method="filter_reviewer",
                                                label=_("Reviewer"), help_text="Id of an assigned reviewer.")
    waited = django_filters.NumberFilter(method="filter_waited", min_value=0, max_value=36500, label=_("Waiting at least (days)"))
    overdue = django_filters.BooleanFilter(method="filter_overdue", label=_("Overdue"),
                                           help_text="true: waited longer than the programme's review service level.")
    sort = SortFilter(columns={"submission": ("project__code", "number"), "vendor": ("project__vendor__name",),
                               "programme": ("project__programme__code",), "status": ("status",),
                               "submitted": ("submitted_at",), "waiting": ("-waiting_since",),
                               "severity": ("-top_severity_rank",)},
                      default=("waiting_since",))

    class Meta:
        model = Submission
        fields: list[str] = []

    def filter_waited(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(waiting_since__lte=timezone.now() - timedelta(days=int(value)))

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        overdue = submissions_overdue_q(now=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class FindingFilterSet(ReviewerFilterMixin, django_filters.FilterSet):
    """Findings (``compliance.selectors.findings_list``); the API keeps its earlier exact filters."""

    reviewer_path = "submission__project_id"

    WAITING_ON = (("vendor", _("the vendor")), ("reviewer", _("a reviewer")))

    programme = IdFilter(field_name="submission__project__programme_id", label=_("Programme"))
    phase = django_filters.ChoiceFilter(field_name="submission__project__phase", choices=Project.Phase.choices,
                                        label=_("Phase"))
    severity = django_filters.ChoiceFilter(choices=SEVERITY_CHOICES, label=_("Severity"))
    status = django_filters.ChoiceFilter(choices=Finding.Status.choices, label=_("Status"))
    check = django_filters.CharFilter(field_name="check_run__check_name", label=_("Check"))
    waiting_on = django_filters.ChoiceFilter(
        choices=WAITING_ON, method="filter_waiting_on", label=_("Waiting on"),
        help_text="vendor: open and not answered by the vendor yet; reviewer: open and answered by the vendor.")
    reviewer = django_filters.ModelChoiceFilter(queryset=reviewers_all(), method="filter_reviewer",
                                                label=_("Reviewer"), help_text="Id of an assigned reviewer.")
    submission = IdFilter(field_name="submission_id")
    category = django_filters.CharFilter()
    code = django_filters.CharFilter()
    sort = SortFilter(columns={"id": ("id",), "severity": ("-severity_rank",), "status": ("status",),
                               "check": ("check_run__check_name",), "project": ("submission__project__code",),
                               "found": ("created_at",)},
                      default=("-id",))

    class Meta:
        model = Finding
        fields: list[str] = []

    def filter_waiting_on(self, queryset, name, value):
        # The conversation's rule (Finding.waiting_on, compliance.selectors.findings_with_waiting_on):
        # an open finding waits on the vendor after a reviewer's question, on a reviewer otherwise;
        # decided findings wait on nobody.
        if value not in ("vendor", "reviewer", "nobody"):
            return queryset
        if "waiting_on_value" not in queryset.query.annotations:
            queryset = findings_with_waiting_on(queryset)
        return queryset.filter(waiting_on_value=value)


class DashboardProjectFilterSet(ProjectFilterSet):
    """The dashboard's projects: the project list's filters and the highest open finding severity."""

    severity = django_filters.ChoiceFilter(choices=SEVERITY_CHOICES,
                                           method=_top_severity_filter("submission__project_id"),
                                           label=_("Highest open severity"))
    sort = SortFilter(columns={**ProjectFilterSet.base_filters["sort"].columns,
                               "severity": ("-top_severity_rank", "code")},
                      default=("programme__code", "code"))

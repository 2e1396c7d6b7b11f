"""Filters and sort of the project list, shared by the page (/projects/) and the API (/api/projects/)."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from portal import permissions as perms
from portal.filters import IdFilter
from portal.listing import SortFilter
from portal.models import Role
from portal.selectors import user_is_ministry
from projects.models import Project, ProjectUserObjectPermission


def reviewers_all() -> QuerySet:
    """Every user with the reviewer role, for the reviewer filter (ministry staff only see it)."""
    return get_user_model().objects.filter(profile__role=Role.REVIEWER).order_by("username")


def project_ids_reviewed_by(reviewer) -> QuerySet:
    """Ids of the projects a reviewer is assigned to (guardian's direct-FK user permission rows)."""
    return (ProjectUserObjectPermission.objects
            .filter(user=reviewer, permission__codename=perms.PROJECT_REVIEW_CODENAME)
            .values("content_object_id"))


class ReviewerFilterMixin:
    """The reviewer filter names ministry staff, so only ministry users have it: for anyone else
    ``?reviewer=`` is an unknown parameter and changes nothing. ``reviewer_path`` leads from the
    list's rows to their project's id."""

    reviewer_path = "pk"

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, user=None):
        super().__init__(data=data, queryset=queryset, request=request, prefix=prefix)
        user = user if user is not None else getattr(request, "user", None)
        if not user_is_ministry(user=user):
            self.filters.pop("reviewer", None)

    def filter_reviewer(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(**{f"{self.reviewer_path}__in": project_ids_reviewed_by(value)})


PROJECT_SORT_COLUMNS = {
    "code": ("code", "programme__code"),
    "title": ("title",),
    "programme": ("programme__code", "code"),
    "vendor": ("vendor__name", "code"),
    "phase": ("phase", "code"),
    "status": ("status", "code"),
    "funding": ("funding_krw",),
    "created": ("created_at",),
}


class ProjectFilterSet(ReviewerFilterMixin, django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label=_("Search"),
                                  help_text="Text in the code, title (English or Korean) or vendor name.")
    programme = IdFilter(field_name="programme_id", label=_("Programme"))
    phase = django_filters.ChoiceFilter(choices=Project.Phase.choices, label=_("Phase"))
    status = django_filters.ChoiceFilter(choices=Project.Status.choices, label=_("Status"))
    vendor = IdFilter(field_name="vendor_id", label=_("Vendor"))
    reviewer = django_filters.ModelChoiceFilter(queryset=reviewers_all(), method="filter_reviewer",
                                                label=_("Reviewer"), help_text="Id of an assigned reviewer.")
    sort = SortFilter(columns=PROJECT_SORT_COLUMNS, default=("programme__code", "code"))

    class Meta:
        model = Project
        fields: list[str] = []

    def filter_q(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(Q(title__icontains=value) | Q(title_ko__icontains=value) | Q(code__icontains=value)
                               | Q(vendor__name__icontains=value) | Q(vendor__name_ko__icontains=value))

"""Reads of the registry, always scoped to what the user may see.

Missing and forbidden answer the same ``Http404`` so nobody can probe which ids exist.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from portal import permissions as perms
from portal.models import Role
from portal.selectors import user_role, user_sees_everything
from projects.models import Artifact, Programme, Project, Submission, UploadSession


def projects_visible_to(*, user, queryset: QuerySet | None = None) -> QuerySet:
    """Every project for administrators, officers and auditors; assigned ones for
    reviewers; their own organisation's for vendor members; nothing for anyone else."""
    queryset = Project.objects.all() if queryset is None else queryset
    if user_sees_everything(user=user):
        return queryset
    if user_role(user=user) not in {Role.REVIEWER, Role.VENDOR}:
        return queryset.none()
    # accept_global_perms=False: a model-level permission must never widen the view.
    return get_objects_for_user(user, perms.PROJECT_VIEW, klass=queryset, accept_global_perms=False)


def project_ids_with_perm(*, user, perm: str) -> QuerySet:
    return get_objects_for_user(user, perm, klass=Project, accept_global_perms=False).values("pk")


def programmes_visible_to(*, user) -> QuerySet:
    if user_sees_everything(user=user):
        return Programme.objects.all()
    return Programme.objects.filter(projects__in=projects_visible_to(user=user)).distinct()


def submissions_visible_to(*, user) -> QuerySet:
    return Submission.objects.filter(project__in=projects_visible_to(user=user))


def artifacts_visible_to(*, user) -> QuerySet:
    return Artifact.objects.filter(submission__project__in=projects_visible_to(user=user))


def get_or_404(queryset: QuerySet, **lookup):
    """The one object matching, or Http404 for missing and forbidden alike (and for malformed ids)."""
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("not found") from None


def programme_get_for_user(*, user, pk) -> Programme:
    return get_or_404(programmes_visible_to(user=user), pk=pk)


def project_get_for_user(*, user, pk) -> Project:
    return get_or_404(projects_visible_to(user=user).select_related("programme", "vendor"), pk=pk)


def submission_get_for_user(*, user, pk) -> Submission:
    return get_or_404(submissions_visible_to(user=user).select_related("project", "project__programme",
                                                                        "project__vendor"), pk=pk)


def artifact_get_for_user(*, user, pk) -> Artifact:
    return get_or_404(artifacts_visible_to(user=user).select_related("submission", "submission__project"), pk=pk)


def upload_session_get_for_user(*, user, pk) -> UploadSession:
    """Upload sessions belong to their creator alone."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("not found")
    return get_or_404(UploadSession.objects.filter(created_by=user).select_related("submission__project"), pk=pk)


def user_can_submit(*, user, project: Project) -> bool:
    return user_role(user=user) == Role.VENDOR and user.has_perm(perms.PROJECT_SUBMIT, project)


def user_can_review(*, user, project: Project) -> bool:
    """Administrators and officers may decide anywhere; reviewers only where assigned."""
    role = user_role(user=user)
    if role in {Role.ADMIN, Role.OFFICER}:
        return True
    return role == Role.REVIEWER and user.has_perm(perms.PROJECT_REVIEW, project)


def project_export_columns() -> list:
    """The columns of the project list's CSV/XLSX export (page and API), in the reader's language."""
    from django.utils.translation import gettext_lazy as _

    from portal.exports import ExportColumn

    return [
        ExportColumn(_("Id"), lambda p: p.pk),
        ExportColumn(_("Programme"), lambda p: p.programme.code),
        ExportColumn(_("Code"), lambda p: p.code),
        ExportColumn(_("Title"), lambda p: p.title),
        ExportColumn(_("Korean title"), lambda p: p.title_ko),
        ExportColumn(_("Vendor"), lambda p: p.vendor.name),
        ExportColumn(_("Phase"), lambda p: p.get_phase_display()),
        ExportColumn(_("Status"), lambda p: p.get_status_display()),
        ExportColumn(_("Funding (KRW)"), lambda p: p.funding_krw),
        ExportColumn(_("Registered"), lambda p: p.created_at),
    ]

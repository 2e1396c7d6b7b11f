"""Reads of the registry, always scoped to what the user may see.

Missing and forbidden answer the same ``Http404`` so nobody can probe which ids exist.
"""

from __future__ import annotations

import json
import re

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from portal import permissions as perms
from portal.models import Role
from portal.selectors import user_role, user_sees_everything
from projects.models import Artifact, Declaration, Programme, Project, Submission, UploadSession


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
    # ValidationError: a malformed UUID (upload sessions); ValueError/TypeError: a malformed integer.
    except (queryset.model.DoesNotExist, ValueError, TypeError, ValidationError):
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


def user_second_factor_required_by_programme(*, user) -> bool:
    """A vendor member of a project whose programme requires vendors to use a second factor
    (settings.PORTAL_SECOND_FACTOR_RULES; portal.second_factor asks)."""
    profile = getattr(user, "profile", None)
    if profile is None or profile.role != Role.VENDOR:
        return False
    return Project.objects.filter(vendor_id=profile.organisation_id,
                                  programme__vendor_second_factor_required=True).exists()


# --- who is told (portal.notifications) ----------------------------------------------------------

def project_reviewer_ids(*, project: Project) -> list[int]:
    """Reviewers assigned to the project (their direct review permission on it, projects.services.reviewer_assign)."""
    from projects.models import ProjectUserObjectPermission

    return list(ProjectUserObjectPermission.objects.filter(
        content_object=project, permission__codename=perms.PROJECT_REVIEW_CODENAME,
        user__profile__role=Role.REVIEWER).values_list("user_id", flat=True))


def project_vendor_member_ids(*, project: Project) -> list[int]:
    """The vendor organisation's members, who see and submit the project."""
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(profile__organisation_id=project.vendor_id,
                                                profile__role=Role.VENDOR).values_list("pk", flat=True))


def programme_officer_ids() -> list[int]:
    """Programme officers, who run every programme's registry."""
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(profile__role=Role.OFFICER).values_list("pk", flat=True))


# A shard index larger than this is not read at submission (a 100B-class model's index is about
# 100 KB); intake and the lineage check still read it.
SHARD_INDEX_MAX_BYTES = 16 * 1024 * 1024


def shards_missing(*, submission: Submission) -> dict[str, list[str]]:
    """{index file: shard names it lists that are not uploaded beside it}, for each sharded model's
    ``model.safetensors.index.json`` of the submission. A sharded model missing a shard cannot be
    fingerprinted (the lineage check would fail on it after the upload), so the vendor hears it
    before submitting. An index that cannot be read or parsed here is left to intake, which reports it."""
    artifacts = list(submission.artifacts.only("pk", "original_name", "file", "size"))
    names_by_folder: dict[str, set[str]] = {}
    for artifact in artifacts:
        folder, _sep, base = artifact.original_name.rpartition("/")
        names_by_folder.setdefault(folder, set()).add(base)
    missing: dict[str, list[str]] = {}
    for artifact in artifacts:
        folder, _sep, base = artifact.original_name.rpartition("/")
        if base != "model.safetensors.index.json" or not 0 < (artifact.size or 0) <= SHARD_INDEX_MAX_BYTES:
            continue
        try:
            with artifact.file.open("rb") as handle:
                weight_map = json.loads(handle.read(SHARD_INDEX_MAX_BYTES + 1)).get("weight_map")
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if not isinstance(weight_map, dict):
            continue
        shards = {v for v in weight_map.values() if isinstance(v, str) and v and "/" not in v and "\\" not in v}
        absent = sorted(shards - names_by_folder.get(folder, set()))
        if absent:
            missing[artifact.original_name] = absent
    return missing


# llama.cpp's split GGUF names ("{stem}-00001-of-0000N.gguf"); the same pattern as
# compliance.engine.weights.GGUF_SPLIT_NAME, which reads such a model as one (`projects` does not
# import `compliance`, so the pattern is repeated here).
_GGUF_SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def gguf_splits_missing(*, submission: Submission) -> dict[str, tuple[int, list[str]]]:
    """{a split GGUF model's name pattern ("gguf/m-NNNNN-of-00003.gguf"): (its file count, the names of
    its files not uploaded to its folder)}, for each split GGUF model of which some file was uploaded."""
    uploaded: dict[tuple[str, str, int], set[int]] = {}
    suffixes: dict[tuple[str, str, int], str] = {}
    for name in submission.artifacts.values_list("original_name", flat=True):
        folder, _sep, base = name.rpartition("/")
        match = _GGUF_SPLIT_NAME.match(base)
        if not match or int(match["count"]) < 2 or not 1 <= int(match["no"]) <= int(match["count"]):
            continue
        key = (folder, match["stem"], int(match["count"]))
        uploaded.setdefault(key, set()).add(int(match["no"]))
        suffixes[key] = base[-len(".gguf"):]
    missing = {}
    for (folder, stem, count), numbers in sorted(uploaded.items()):
        absent = [f"{stem}-{i:05d}-of-{count:05d}{suffixes[folder, stem, count]}"
                  for i in range(1, count + 1) if i not in numbers]
        if absent:
            prefix = f"{folder}/" if folder else ""
            missing[f"{prefix}{stem}-NNNNN-of-{count:05d}{suffixes[folder, stem, count]}"] = (count, absent)
    return missing


def _names_shown(names: list[str]) -> str:
    return ", ".join(names[:10]) + (" …" if len(names) > 10 else "")


def shards_missing_sentences(*, submission: Submission) -> list[str]:
    """What `shards_missing` and `gguf_splits_missing` find, one sentence per model for the vendor
    (page, API, next steps)."""
    from django.utils.translation import gettext as _

    sentences = [_("%(index)s lists %(count)s shard(s) that were not uploaded to its folder: %(names)s. Upload them "
                   "before submitting: without every shard the model's lineage cannot be tested.")
                 % {"index": index, "count": len(names), "names": _names_shown(names)}
                 for index, names in shards_missing(submission=submission).items()]
    sentences += [_("%(model)s is a GGUF model split into %(total)s files; %(count)s of them were not uploaded to "
                    "its folder: %(names)s. Upload them before submitting: without every file the model's lineage "
                    "cannot be tested.")
                  % {"model": model, "total": total, "count": len(names), "names": _names_shown(names)}
                  for model, (total, names) in gguf_splits_missing(submission=submission).items()]
    return sentences


def draft_next_steps(*, submission: Submission) -> list[tuple[str, str, str]]:
    """What the vendor still has to do before a draft can be submitted, in order, as
    ``(code, sentence, url)``: upload, sign, submit. The same rules ``submission_submit``
    enforces (at least one artifact, a signed declaration), said before the vendor tries.
    ``compliance.casework.next_actions`` uses it for drafts, so both pages say the same."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    edit = reverse("submission-edit", kwargs={"pk": submission.pk})
    steps = []
    if not submission.artifacts.exists():
        steps.append(("upload", _("Upload the artifacts of this version."), f"{edit}#h-artifacts"))
    steps.extend(("shards", sentence, f"{edit}#h-artifacts") for sentence in shards_missing_sentences(submission=submission))
    # Read from the table, not a declaration cached on the submission object before it was signed.
    if not Declaration.objects.filter(submission=submission, signed_at__isnull=False).exists():
        steps.append(("sign", _("Fill in and sign the declaration."), f"{edit}#h-decl"))
    if not steps:
        steps.append(("submit", _("Submit this version for checking."), f"{edit}#h-submit"))
    return steps


def submission_previous_decision(*, submission: Submission) -> dict | None:
    """The decision on the version before this one, from the audit trail (``submission.decide``
    events carry the decision and its justification in full): a vendor opening version N+1 after
    "changes requested" reads the reviewer's instructions on the draft itself. ``None`` when there
    is no earlier version or it was never decided."""
    from portal.models import AuditEvent

    previous = (Submission.objects.filter(project_id=submission.project_id, number__lt=submission.number)
                .order_by("-number").first())
    if previous is None:
        return None
    event = (AuditEvent.objects.filter(submission_id=previous.pk, action="submission.decide")
             .order_by("-created_at", "-id").first())
    if event is None:
        return None
    return {"submission": previous, "decision": event.data.get("decision", ""),
            "justification": event.data.get("justification", ""), "at": event.created_at,
            "by": event.actor_label}


def submission_draft_history(*, submission: Submission) -> list:
    """The draft's own history, oldest first: opened, files uploaded and removed, declaration
    saved and signed (the audit events of this submission)."""
    from django.utils.translation import gettext as _

    from portal.models import AuditEvent

    sentences = {
        "submission.open": _("Version opened"),
        "artifact.upload": _("File uploaded: %(label)s"),
        "artifact.delete": _("File removed: %(label)s"),
        "declaration.update": _("Declaration saved"),
        "declaration.sign": _("Declaration signed"),
    }
    events = (AuditEvent.objects.filter(submission_id=submission.pk, action__in=list(sentences))
              .order_by("created_at", "id")[:200])
    return [{"at": e.created_at, "text": sentences[e.action] % {"label": e.object_label}, "actor": e.actor_label}
            for e in events]


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

"""Writes of the registry and intake: programmes, projects, submissions, artifacts, declarations.

Every write checks who may do it, records an audit event and leaves no half-made
rows: a failure inside a service rolls back its transaction, and files written
before the failure are removed.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, remove_perm

from portal import permissions as perms
from portal.models import Notification, Organisation, Role
from portal.notifications import notify
from portal.selectors import user_can_manage, user_role
from portal.services import audit_record, organisation_group, user_create
from projects import limits
from projects.models import Artifact, Declaration, Milestone, Programme, Project, Submission
from projects.selectors import (programme_officer_ids, project_reviewer_ids, project_vendor_member_ids,
                                shards_missing_sentences,
                                user_can_submit)
from projects.signals import submission_submitted


def _require_manager(user) -> None:
    if not user_can_manage(user=user):
        raise PermissionDenied(_("Only ministry administrators and programme officers may do this."))


def programme_create(*, user, name: str, code: str, ministry: Organisation, budget_krw: Decimal, starts_on,
                     ends_on, name_ko: str = "", max_artifact_bytes: int | None = None,
                     review_sla_days: int | None = None, vendor_second_factor_required: bool = False) -> Programme:
    """Register a programme. Its compliance policy is created by the compliance room on first edit."""
    _require_manager(user)
    if ends_on < starts_on:
        raise ValidationError({"ends_on": _("The programme must end after it starts.")})
    if Programme.objects.filter(code=code).exists():
        raise ValidationError({"code": _("A programme with this code already exists.")})
    with transaction.atomic():
        programme = Programme(name=name, name_ko=name_ko, code=code, ministry=ministry, budget_krw=budget_krw,
                              starts_on=starts_on, ends_on=ends_on,
                              vendor_second_factor_required=vendor_second_factor_required)
        if max_artifact_bytes:
            programme.max_artifact_bytes = max_artifact_bytes
        if review_sla_days:
            programme.review_sla_days = review_sla_days
        programme.full_clean()
        programme.save()
        audit_record(actor=user, action="programme.create", object_type="programme", object_id=programme.pk,
                     object_label=str(programme), data={"code": code, "budget_krw": str(budget_krw)})
    return programme


def project_create(*, user, programme: Programme, code: str, title: str, vendor: Organisation,
                   funding_krw: Decimal, phase: int = 1, consortium_members: list[str] | None = None,
                   title_ko: str = "", milestones: list[tuple[str, object]] = ()) -> Project:
    """Register a funded project and give the vendor organisation's members access to it."""
    _require_manager(user)
    if vendor.kind != Organisation.Kind.VENDOR:
        raise ValidationError({"vendor": _("The project's organisation must be a vendor.")})
    if Project.objects.filter(programme=programme, code=code).exists():
        raise ValidationError({"code": _("This programme already has a project with this code.")})
    with transaction.atomic():
        project = Project(programme=programme, code=code, title=title, title_ko=title_ko, vendor=vendor,
                          funding_krw=funding_krw, phase=phase, consortium_members=consortium_members or [])
        project.full_clean()
        project.save()
        for milestone_title, due_on in milestones:
            Milestone.objects.create(project=project, title=milestone_title, due_on=due_on)
        group = organisation_group(vendor)
        assign_perm(perms.PROJECT_VIEW_CODENAME, group, project)
        assign_perm(perms.PROJECT_SUBMIT_CODENAME, group, project)
        audit_record(actor=user, action="project.create", object_type="project", object_id=project.pk,
                     object_label=str(project), project_id=project.pk,
                     data={"programme": programme.code, "vendor": vendor.name, "funding_krw": str(funding_krw)})
    return project


def reviewer_assign(*, user, project: Project, reviewer) -> None:
    """Let a reviewer see and decide the project's submissions."""
    _require_manager(user)
    if user_role(user=reviewer) != Role.REVIEWER:
        raise ValidationError(_("Only users with the reviewer role can be assigned."))
    with transaction.atomic():
        assign_perm(perms.PROJECT_VIEW_CODENAME, reviewer, project)
        assign_perm(perms.PROJECT_REVIEW_CODENAME, reviewer, project)
        audit_record(actor=user, action="project.reviewer_assign", object_type="project", object_id=project.pk,
                     object_label=str(project), project_id=project.pk, data={"reviewer": reviewer.username})


def reviewer_unassign(*, user, project: Project, reviewer) -> None:
    _require_manager(user)
    with transaction.atomic():
        remove_perm(perms.PROJECT_VIEW_CODENAME, reviewer, project)
        remove_perm(perms.PROJECT_REVIEW_CODENAME, reviewer, project)
        audit_record(actor=user, action="project.reviewer_unassign", object_type="project", object_id=project.pk,
                     object_label=str(project), project_id=project.pk, data={"reviewer": reviewer.username})


def vendor_member_invite(*, user, organisation: Organisation, username: str, email: str,
                         display_name: str = "") -> tuple[object, str]:
    """Create a vendor member without a password; returns the user and the path of a
    one-time link where they choose one (Django's password-reset token)."""
    _require_manager(user)
    if organisation.kind != Organisation.Kind.VENDOR:
        raise ValidationError(_("Vendor members belong to a vendor organisation."))
    from django.contrib.auth import get_user_model

    if get_user_model().objects.filter(username=username).exists():
        raise ValidationError({"username": _("This username is taken.")})
    with transaction.atomic():
        member = user_create(username=username, password=None, organisation=organisation, role=Role.VENDOR,
                             email=email, display_name=display_name)
        audit_record(actor=user, action="user.invite", object_type="user", object_id=member.pk,
                     object_label=username, data={"organisation": organisation.name, "email": email})
    uid = urlsafe_base64_encode(force_bytes(member.pk))
    token = default_token_generator.make_token(member)
    return member, f"/accounts/reset/{uid}/{token}/"


def submission_open(*, user, project: Project, note: str = "", carry_over: bool = True) -> Submission:
    """Open the next numbered submission of a project; refused while a draft is open.

    By default the new version starts from the latest one, whatever its status
    (``submission_carry_over``): its files by reference, its declaration as an unsigned draft.
    ``carry_over=False`` starts empty."""
    if not user_can_submit(user=user, project=project):
        raise PermissionDenied(_("Only the project's vendor members may open submissions."))
    if project.status == Project.Status.ELIMINATED:
        raise ValidationError(_("This project was eliminated from the programme; it takes no submissions."))
    limits.limit_text(field="note", value=note)
    try:
        with transaction.atomic():
            number = (project.submissions.aggregate(n=Max("number"))["n"] or 0) + 1
            # The latest version: never a draft, since a second open draft is refused (one_draft_per_project).
            previous = project.submissions.order_by("-number").first() if carry_over else None
            submission = Submission.objects.create(project=project, number=number, note=note, created_by=user)
            audit_record(actor=user, action="submission.open", object_type="submission", object_id=submission.pk,
                         object_label=str(submission), submission_id=submission.pk, project_id=project.pk,
                         data={"carry_over": previous is not None,
                               "carried_from_version": previous.number if previous else None})
            if previous is not None:
                submission_carry_over(user=user, source=previous, target=submission)
            else:
                Declaration.objects.create(submission=submission)
    except IntegrityError:
        raise ValidationError(_("This project already has an open draft submission; finish or submit it first.")) \
            from None
    return submission


def submission_carry_over(*, user, source: Submission, target: Submission) -> list[Artifact]:
    """Start ``target`` from ``source``: each artifact as a new row pointing at the same stored
    object (same file name, SHA-256, size, detected kind, intake state and storage identity; ``carried_from`` the
    source row), so no byte is copied or uploaded; the declaration as an unsigned draft.

    Called inside ``submission_open``'s transaction. Deleting a carried row later removes the
    stored object only if no other row uses it (projects.storage.stored_artifact_file_release)."""
    carried = Artifact.objects.bulk_create([
        Artifact(submission=target, kind=a.kind, original_name=a.original_name, file=a.file.name, size=a.size,
                 sha256=a.sha256, detected_kind=a.detected_kind, status=a.status, uploaded_by=a.uploaded_by,
                 carried_from=a, stored_identity=a.stored_identity)
        for a in source.artifacts.order_by("uploaded_at", "id")])
    for artifact in carried:
        audit_record(actor=user, action="artifact.carry_over", object_type="artifact", object_id=artifact.pk,
                     object_label=artifact.original_name, submission_id=target.pk, project_id=target.project_id,
                     data={"sha256": artifact.sha256, "size": artifact.size, "from_artifact": artifact.carried_from_id,
                           "from_version": source.number})
    earlier = Declaration.objects.filter(submission=source).first()
    declaration = Declaration(submission=target)
    if earlier is not None:
        # The facts are copied; the signature is not (signatory, time, signer, SHA-256): the
        # vendor signs this version's declaration anew before submitting it.
        for name in DECLARATION_FACTS:
            setattr(declaration, name, getattr(earlier, name))
    declaration.save()
    audit_record(actor=user, action="declaration.carry_over", object_type="submission", object_id=target.pk,
                 object_label=str(target), submission_id=target.pk, project_id=target.project_id,
                 data={"from_version": source.number, "signed": False,
                       "from_signed_sha256": earlier.signed_sha256 if earlier else ""})
    return carried


# What a declaration states (copied to the next version); the signature fields are not among them.
DECLARATION_FACTS = ("from_scratch", "base_models", "third_party_code", "gpu_hours", "training_flops",
                     "data_summary")


def _require_draft_owner(user, submission: Submission) -> None:
    if not user_can_submit(user=user, project=submission.project):
        raise PermissionDenied(_("Only the project's vendor members may change its submissions."))
    if submission.status != Submission.Status.DRAFT:
        raise ValidationError(_("This submission was already submitted; open a new version to change it."))


def declaration_canonical_json(declaration: Declaration) -> bytes:
    """The bytes a signature covers: every declared fact in a fixed order."""
    payload = {
        "submission": declaration.submission_id,
        "from_scratch": declaration.from_scratch,
        "base_models": declaration.base_models,
        "gpu_hours": str(declaration.gpu_hours) if declaration.gpu_hours is not None else None,
        "training_flops": declaration.training_flops,
        "data_summary": declaration.data_summary,
        "signatory_name": declaration.signatory_name,
    }
    # Added after declarations were first signed: present only when filled in, so the
    # SHA-256 of a declaration signed before the field existed can still be recomputed.
    if declaration.third_party_code:
        payload["third_party_code"] = declaration.third_party_code
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


VALID_COMPONENTS = {c.value for c in Declaration.Component}
VALID_CODE_USES = [c.value for c in Declaration.CodeUse]  # training, inference, other: the order users read


def third_party_code_clean(entries) -> list[dict]:
    """Validate the declared third-party code: a name each, a known use, bounded lengths
    (projects.limits: refused with the limit, never cut silently)."""
    if entries in (None, ""):
        return []
    if not isinstance(entries, list):
        raise ValidationError({"third_party_code": _("Give a list of entries.")})
    limits.limit_rows(field="third_party_code", rows=entries[:limits.THIRD_PARTY_CODE_ROWS + 1])
    cleaned = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValidationError({"third_party_code": _("Entry %(n)d must be an object.") % {"n": i + 1}})
        name = str(entry.get("name", "")).strip()
        use = str(entry.get("use", "") or "other").strip().lower()
        if not name:
            raise ValidationError({"third_party_code": _("Entry %(n)d: name the project the code comes from.")
                                   % {"n": i + 1}})
        if use not in VALID_CODE_USES:
            raise ValidationError({"third_party_code": _("Entry %(n)d: use must be one of %(u)s.")
                                   % {"n": i + 1, "u": ", ".join(VALID_CODE_USES)}})
        cleaned.append({"name": name, "version": str(entry.get("version", "")).strip(),
                        "license": str(entry.get("license", "")).strip(), "use": use,
                        "source": str(entry.get("source", "")).strip()})
    return limits.limit_rows(field="third_party_code", rows=cleaned)


def base_models_clean(entries) -> list[dict]:
    """Validate the declared base models: a known component and a name each, bounded lengths."""
    if entries in (None, ""):
        return []
    if not isinstance(entries, list):
        raise ValidationError({"base_models": _("Give a list of entries.")})
    limits.limit_rows(field="base_models", rows=entries[:limits.BASE_MODEL_ROWS + 1])
    cleaned = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValidationError({"base_models": _("Entry %(n)d must be an object.") % {"n": i + 1}})
        component = str(entry.get("component", "")).strip()
        name = str(entry.get("name", "")).strip()
        if component not in VALID_COMPONENTS:
            raise ValidationError({"base_models": _("Entry %(n)d: component must be one of %(c)s.")
                                   % {"n": i + 1, "c": ", ".join(sorted(VALID_COMPONENTS))}})
        if not name:
            raise ValidationError({"base_models": _("Entry %(n)d: name the base model.") % {"n": i + 1}})
        cleaned.append({"component": component, "name": name, "source": str(entry.get("source", "")),
                        "license": str(entry.get("license", ""))})
    return limits.limit_rows(field="base_models", rows=cleaned)


def declaration_update(*, user, submission: Submission, from_scratch: bool, base_models: list[dict],
                       gpu_hours=None, training_flops=None, data_summary: str = "",
                       third_party_code: list[dict] | None = None) -> Declaration:
    """Fill in the declaration; changing it removes an earlier signature."""
    _require_draft_owner(user, submission)
    limits.limit_text(field="data_summary", value=data_summary or "")
    third_party = third_party_code_clean(third_party_code)
    cleaned = base_models_clean(base_models)
    if from_scratch and any(e["component"] == "backbone" for e in cleaned):
        raise ValidationError({"from_scratch": _("A backbone trained from scratch has no base model; "
                                                 "remove the backbone entry or the from-scratch claim.")})
    if gpu_hours is not None and Decimal(gpu_hours) < 0:
        raise ValidationError({"gpu_hours": _("GPU-hours cannot be negative.")})
    if training_flops is not None and float(training_flops) < 0:
        raise ValidationError({"training_flops": _("FLOPs cannot be negative.")})
    limits.limit_compute(gpu_hours=gpu_hours, training_flops=training_flops)
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update().get(submission=submission)
        declaration.from_scratch = from_scratch
        declaration.base_models = cleaned
        declaration.third_party_code = third_party
        declaration.gpu_hours = gpu_hours
        declaration.training_flops = training_flops
        declaration.data_summary = data_summary
        declaration.signed_at = None
        declaration.signed_by = None
        declaration.signed_sha256 = ""
        declaration.save()
        audit_record(actor=user, action="declaration.update", object_type="submission", object_id=submission.pk,
                     object_label=str(submission), submission_id=submission.pk, project_id=submission.project_id,
                     data={"from_scratch": from_scratch, "base_models": cleaned, "third_party_code": third_party})
    return declaration


def declaration_sign(*, user, submission: Submission, signatory_name: str, attest: bool) -> Declaration:
    """Sign the declaration as it stands; the SHA-256 of its canonical JSON is recorded."""
    _require_draft_owner(user, submission)
    if attest is not True:  # a real boolean: the text "false" is truthy (issue #10)
        raise ValidationError({"attest": _("Confirm that the declaration is true and complete to sign it.")})
    if not isinstance(signatory_name, str) or not signatory_name.strip():
        raise ValidationError({"signatory_name": _("Type your full name to sign.")})
    limits.limit_text(field="signatory_name", value=signatory_name.strip())
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update().get(submission=submission)
        declaration.signatory_name = signatory_name.strip()
        declaration.signed_sha256 = hashlib.sha256(declaration_canonical_json(declaration)).hexdigest()
        declaration.signed_by = user
        declaration.signed_at = timezone.now()
        declaration.save()
        audit_record(actor=user, action="declaration.sign", object_type="submission", object_id=submission.pk,
                     object_label=str(submission), submission_id=submission.pk, project_id=submission.project_id,
                     data={"sha256": declaration.signed_sha256, "signatory": declaration.signatory_name})
    return declaration


def submission_submit(*, user, submission: Submission) -> Submission:
    """Hand the submission in: needs artifacts and a signed declaration. Checks are
    enqueued by the compliance room after the transaction commits."""
    _require_draft_owner(user, submission)
    if not submission.artifacts.exists():
        raise ValidationError(_("Upload at least one artifact before submitting."))
    declaration = Declaration.objects.get(submission=submission)
    if not declaration.is_signed:
        raise ValidationError(_("Sign the declaration before submitting."))
    missing = shards_missing_sentences(submission=submission)
    if missing:
        raise ValidationError(missing)
    with transaction.atomic():
        updated = Submission.objects.filter(pk=submission.pk, status=Submission.Status.DRAFT).update(
            status=Submission.Status.SUBMITTED, submitted_at=timezone.now())
        if updated != 1:
            raise ValidationError(_("This submission was already submitted."))
        submission.refresh_from_db()
        audit_record(actor=user, action="submission.submit", object_type="submission", object_id=submission.pk,
                     object_label=str(submission), submission_id=submission.pk, project_id=submission.project_id,
                     data={"artifacts": list(submission.artifacts.values_list("sha256", flat=True)),
                           "declaration_sha256": declaration.signed_sha256})
        submission_submitted.send(sender=Submission, submission=submission, user=user)
        notify(kind=Notification.Kind.SUBMISSION_RECEIVED,
               recipients=[*programme_officer_ids(), *project_reviewer_ids(project=submission.project)],
               url=reverse("submission-detail", kwargs={"pk": submission.pk}), actor=user,
               params={"submission": str(submission), "vendor": submission.project.vendor.name})
    return submission


def submission_status_set(*, submission: Submission, status: str) -> None:
    """Set a submission's status without touching anything else (used by the compliance room)."""
    Submission.objects.filter(pk=submission.pk).update(status=status, updated_at=timezone.now())
    submission.status = status


MILESTONE_DONE_PROJECTS = (Project.Status.ELIMINATED, Project.Status.COMPLETED)


def milestone_reminders_send(*, today=None) -> dict:
    """Tell each open milestone's vendor members and the programme officers that it is due
    within ``NOTIFY_MILESTONE_DAYS`` days, and again once it is overdue: once per milestone,
    state and due date (a milestone moved to a later date is announced again), however often
    this runs. Daily from beat (``projects.milestone_reminders``)."""
    from datetime import timedelta

    from django.conf import settings

    today = today or timezone.localdate()
    horizon = today + timedelta(days=settings.NOTIFY_MILESTONE_DAYS)
    officers = programme_officer_ids()
    counts = {"due": 0, "overdue": 0}
    milestones = (Milestone.objects.filter(completed_on__isnull=True, due_on__lte=horizon)
                  .exclude(project__status__in=MILESTONE_DONE_PROJECTS).select_related("project"))
    for milestone in milestones:
        overdue = milestone.due_on < today
        kind = Notification.Kind.MILESTONE_OVERDUE if overdue else Notification.Kind.MILESTONE_DUE
        due_on = milestone.due_on.isoformat()
        told = set(Notification.objects.filter(kind=kind, params__milestone=milestone.pk, params__due_on=due_on)
                   .values_list("recipient_id", flat=True))
        recipients = set(officers) | set(project_vendor_member_ids(project=milestone.project))
        if not recipients - told:
            continue
        with transaction.atomic():
            rows = notify(kind=kind, recipients=recipients - told,
                          url=reverse("project-detail", kwargs={"pk": milestone.project_id}),
                          params={"milestone": milestone.pk, "due_on": due_on, "title": milestone.title,
                                  "project": str(milestone.project)})
        counts["overdue" if overdue else "due"] += len(rows)
    return counts

"""Registry and vendor intake pages. Thin: fetch through selectors, write through services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.exports import export_requested, export_response
from portal.selectors import user_can_manage, user_is_ministry
from portal.views import form_apply, form_post_apply
from projects import services, uploads
from projects.forms import (ArtifactUploadForm, DeclarationForm, DeclarationSignForm, ProgrammeForm, ProjectForm,
                            ReviewerAssignForm, SubmissionOpenForm, VendorInviteForm)
from projects.models import Artifact, Project
from projects.filters import ProjectFilterSet, reviewers_all
from projects.selectors import (artifact_get_for_user, draft_next_steps, programme_get_for_user,
                                programmes_visible_to, project_export_columns, project_get_for_user,
                                projects_visible_to, submission_draft_history, submission_get_for_user,
                                submission_previous_decision, user_can_submit)


def _errors_to_messages(request: HttpRequest, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


def _require_manager(request: HttpRequest) -> None:
    if not user_can_manage(user=request.user):
        # Vendors must not learn that staff pages exist; ministry staff get a plain refusal.
        if user_is_ministry(user=request.user):
            raise PermissionDenied(_("Only ministry administrators and programme officers may do this."))
        raise Http404("not found")


@login_required
def programme_list(request: HttpRequest) -> HttpResponse:
    programmes = programmes_visible_to(user=request.user).select_related("ministry").order_by("-starts_on", "code")
    return render(request, "projects/programme_list.html", {"programmes": programmes})


@login_required
def programme_create(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = ProgrammeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            programme = services.programme_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, _("Programme %(code)s registered. Set its compliance policy next.")
                             % {"code": programme.code})
            return redirect("policy-edit", pk=programme.pk)
    return render(request, "projects/programme_form.html", {"form": form})


@login_required
def programme_detail(request: HttpRequest, pk: int) -> HttpResponse:
    programme = programme_get_for_user(user=request.user, pk=pk)
    projects = projects_visible_to(user=request.user).filter(programme=programme).select_related("vendor")
    return render(request, "projects/programme_detail.html", {"programme": programme, "projects": projects})


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    """Projects the user may see, filtered and sorted by ``ProjectFilterSet`` (programme, phase, status,
    reviewer, a search text; ``?sort=``), or exported as CSV/XLSX (``?export=``) with the same filters."""
    filterset = ProjectFilterSet(request.GET, request=request,
                                 queryset=projects_visible_to(user=request.user).select_related("programme", "vendor"))
    fmt = export_requested(request)
    if fmt:
        return export_response(fmt=fmt, columns=project_export_columns(), rows=filterset.qs, filename="projects")
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    return render(request, "projects/project_list.html", {
        "page": page, "filterset": filterset, "form": filterset.form,
        "programmes": programmes_visible_to(user=request.user).order_by("code"),
        "statuses": Project.Status.choices, "phases": Project.Phase.choices,
        "reviewers": reviewers_all() if "reviewer" in filterset.filters else None})


@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    initial = {"programme": request.GET.get("programme")} if request.GET.get("programme") else None
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = services.project_create(
                user=request.user, programme=data["programme"], code=data["code"], title=data["title"],
                title_ko=data["title_ko"], vendor=data["vendor"], funding_krw=data["funding_krw"],
                phase=data["phase"], consortium_members=data["consortium"], milestones=data["milestones"])
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, _("Project %(code)s registered.") % {"code": project.code})
            return redirect("project-detail", pk=project.pk)
    return render(request, "projects/project_form.html", {"form": form})


@login_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from guardian.shortcuts import get_users_with_perms

    project = project_get_for_user(user=request.user, pk=pk)
    can_manage = user_can_manage(user=request.user)
    context = {
        "project": project,
        "milestones": project.milestones.all(),
        "submissions": project.submissions.select_related("created_by").order_by("-number"),
        "latest_submission": project.submissions.order_by("-number").first(),
        "can_submit": user_can_submit(user=request.user, project=project),
        "can_manage": can_manage,
    }
    if user_is_ministry(user=request.user):
        reviewers = get_users_with_perms(project, only_with_perms_in=["review_project"], with_group_users=False)
        context["reviewers"] = reviewers.order_by("username")
        context["vendor_members"] = get_user_model().objects.filter(profile__organisation=project.vendor)
    if can_manage:
        context["assign_form"] = ReviewerAssignForm()
        context["invite_form"] = VendorInviteForm()
    return render(request, "projects/project_detail.html", context)


@login_required
@require_POST
def project_reviewer_assign(request: HttpRequest, pk: int) -> HttpResponse:
    project = project_get_for_user(user=request.user, pk=pk)
    _require_manager(request)
    form = ReviewerAssignForm(request.POST)
    if form.is_valid():
        try:
            if request.POST.get("remove"):
                services.reviewer_unassign(user=request.user, project=project, reviewer=form.cleaned_data["reviewer"])
            else:
                services.reviewer_assign(user=request.user, project=project, reviewer=form.cleaned_data["reviewer"])
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, _("Reviewers updated."))
    else:
        messages.error(request, _("Choose a reviewer."))
    return redirect("project-detail", pk=project.pk)


@login_required
@require_POST
def project_vendor_invite(request: HttpRequest, pk: int) -> HttpResponse:
    project = project_get_for_user(user=request.user, pk=pk)
    _require_manager(request)
    form_post_apply(request, VendorInviteForm(request.POST),
                    lambda **data: services.vendor_member_invite(user=request.user, organisation=project.vendor,
                                                                 **data),
                    success=lambda invited: _("Invited %(user)s. Send them this one-time link to choose a "
                                              "password: %(link)s")
                    % {"user": invited[0].username, "link": request.build_absolute_uri(invited[1])})
    return redirect("project-detail", pk=project.pk)


@login_required
@require_POST
def submission_open(request: HttpRequest, pk: int) -> HttpResponse:
    project = project_get_for_user(user=request.user, pk=pk)
    form = SubmissionOpenForm(request.POST)
    form.is_valid()
    try:
        submission = services.submission_open(user=request.user, project=project,
                                              note=form.cleaned_data.get("note", ""),
                                              carry_over=form.cleaned_data.get("start") != SubmissionOpenForm.EMPTY)
    except ValidationError as exc:
        _errors_to_messages(request, exc)
        return redirect("project-detail", pk=project.pk)
    return redirect("submission-edit", pk=submission.pk)


def _draft_page(request: HttpRequest, submission, *, declaration_form: DeclarationForm | None = None) -> HttpResponse:
    """The draft page; ``declaration_form`` is the form the vendor just sent, with its errors."""
    declaration = submission.declaration
    next_steps = draft_next_steps(submission=submission)
    context = {
        "submission": submission,
        "project": submission.project,
        "artifacts": submission.artifacts.select_related("uploaded_by", "carried_from__submission"),
        "pending_uploads": submission.upload_sessions.filter(artifact__isnull=True, created_by=request.user),
        "upload_form": ArtifactUploadForm(),
        "declaration": declaration,
        "declaration_form": declaration_form or DeclarationForm(initial=DeclarationForm.initial_from(declaration)),
        "sign_form": DeclarationSignForm(initial={"signatory_name": declaration.signatory_name}),
        "kinds": Artifact.UPLOAD_KIND_CHOICES,
        "max_bytes": submission.project.programme.max_artifact_bytes,
        # The same steps compliance.casework.next_actions gives a vendor on a draft.
        "next_steps": next_steps,
        # The step indicator reads the same answer instead of reading the shard indexes again.
        "files_missing": any(code == "shards" for code, _text, _url in next_steps),
        "previous_decision": submission_previous_decision(submission=submission),
        "history": submission_draft_history(submission=submission),
    }
    return render(request, "projects/submission_edit.html", context)


@login_required
def submission_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The vendor's draft: upload artifacts, fill and sign the declaration, submit."""
    submission = submission_get_for_user(user=request.user, pk=pk)
    if not user_can_submit(user=request.user, project=submission.project) or submission.status != "draft":
        return redirect("submission-detail", pk=submission.pk)
    return _draft_page(request, submission)


@login_required
@require_POST
def artifact_upload(request: HttpRequest, pk: int) -> HttpResponse:
    submission = submission_get_for_user(user=request.user, pk=pk)
    form = ArtifactUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("submission-edit", pk=submission.pk)
    upload = form.cleaned_data["file"]
    try:
        artifact = uploads.artifact_upload_file(user=request.user, submission=submission,
                                                kind=form.cleaned_data["kind"], filename=upload.name, fileobj=upload)
    except ValidationError as exc:
        _errors_to_messages(request, exc)
    else:
        messages.success(request, _("Uploaded %(name)s, SHA-256 %(sha)s.") % {"name": artifact.original_name,
                                                                              "sha": artifact.sha256})
    return redirect("submission-edit", pk=submission.pk)


@login_required
@require_POST
def artifact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    artifact = artifact_get_for_user(user=request.user, pk=pk)
    submission_pk = artifact.submission_id
    try:
        uploads.artifact_delete(user=request.user, artifact=artifact)
    except ValidationError as exc:
        _errors_to_messages(request, exc)
    else:
        messages.success(request, _("Removed %(name)s.") % {"name": artifact.original_name})
    return redirect("submission-edit", pk=submission_pk)


@login_required
@require_POST
def declaration_save(request: HttpRequest, pk: int) -> HttpResponse:
    """On an error the draft page comes back with the form as sent (every field kept, the error
    beside its field), never a redirect that would empty a long data summary."""
    submission = submission_get_for_user(user=request.user, pk=pk)
    form = DeclarationForm(request.POST)
    done, _declaration = form_apply(form, lambda **data: services.declaration_update(
        user=request.user, submission=submission, **data))
    if done:
        messages.success(request, _("Declaration saved. Sign it before submitting."))
        return redirect("submission-edit", pk=submission.pk)
    if not user_can_submit(user=request.user, project=submission.project) or submission.status != "draft":
        for error in form.non_field_errors():
            messages.error(request, error)
        return redirect("submission-detail", pk=submission.pk)
    response = _draft_page(request, submission, declaration_form=form)
    response.status_code = 400
    return response


@login_required
@require_POST
def declaration_sign(request: HttpRequest, pk: int) -> HttpResponse:
    submission = submission_get_for_user(user=request.user, pk=pk)
    form_post_apply(request, DeclarationSignForm(request.POST),
                    lambda **data: services.declaration_sign(user=request.user, submission=submission, **data),
                    success=lambda declaration: _("Declaration signed (SHA-256 %(sha)s).")
                    % {"sha": declaration.signed_sha256})
    return redirect("submission-edit", pk=submission.pk)


@login_required
@require_POST
def submission_submit(request: HttpRequest, pk: int) -> HttpResponse:
    submission = submission_get_for_user(user=request.user, pk=pk)
    try:
        services.submission_submit(user=request.user, submission=submission)
    except ValidationError as exc:
        _errors_to_messages(request, exc)
        return redirect("submission-edit", pk=submission.pk)
    messages.success(request, _("Submitted. The checks start when workers are available; this page shows their progress."))
    return redirect("submission-detail", pk=submission.pk)


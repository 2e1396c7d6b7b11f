"""Pages that show judgement: dashboard, review queue, submission page, decisions, policies."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from compliance import dossiers
from compliance.services import decisions, runs, threads
from compliance.services import policy as policy_services
from compliance.charts import bar_chart_svg, layer_map_svg
from compliance.checks import finding_text
from compliance.forms import FindingDecisionForm, FindingMessageForm, PolicyForm, SubmissionDecisionForm
from compliance.models import CheckRun, Dossier, Finding, FindingMessage, ReferenceModel
from compliance.selectors import (DashboardFilters, check_run_get_for_user, dashboard_data, dashboard_projects,
                                  dossier_get_for_user, finding_message_get_for_user,
                                  finding_get_for_user, projects_with_open_counts, review_queue, submission_findings_grouped,
                                  submissions_with_open_counts,
                                  worker_activity)
from portal.selectors import user_can_manage, user_is_ministry
from portal.views import form_post_apply
from projects.models import Artifact, Project
from projects.selectors import (programme_get_for_user, programmes_visible_to, submission_get_for_user,
                                user_can_review, user_can_submit)


def _require_ministry(request: HttpRequest) -> None:
    if not user_is_ministry(user=request.user):
        raise Http404("not found")


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Projects by status and phase, open findings by severity, running checks, overdue
    milestones and recent activity, for everything the user may see."""
    _require_ministry(request)
    status = request.GET.get("status", "")
    filters = DashboardFilters(programme=_int_or_none(request.GET.get("programme")),
                               phase=_int_or_none(request.GET.get("phase")),
                               status=status if status in Project.Status.values else None,
                               q=request.GET.get("q", "")[:100])
    data = dashboard_data(user=request.user, filters=filters)
    projects = (dashboard_projects(user=request.user, filters=filters).select_related("programme", "vendor")
                .order_by("programme__code", "code"))
    page = Paginator(projects, 25).get_page(request.GET.get("page"))
    page.object_list = projects_with_open_counts(page.object_list)
    charts = {
        # 360 px: the width of a dashboard column, so labels print at their real size.
        "status": bar_chart_svg(title=_("Projects by status"), items=data["projects_by_status"], width=360),
        "phase": bar_chart_svg(title=_("Projects by phase"), items=data["projects_by_phase"], width=360),
        "severity": bar_chart_svg(title=_("Open findings by severity"), items=data["findings_by_severity"],
                                  width=360),
    }
    context = {"data": data, "charts": charts, "page": page, "filters": filters,
               "programmes": programmes_visible_to(user=request.user).order_by("code"),
               "statuses": Project.Status.choices, "phases": Project.Phase.choices}
    if request.GET.get("fragment") == "live":
        return render(request, "compliance/_dashboard_live.html", context)
    return render(request, "compliance/dashboard.html", context)


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    _require_ministry(request)
    page = Paginator(review_queue(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "compliance/queue.html",
                  {"submissions": submissions_with_open_counts(page.object_list), "page": page})


def _finding_presentation(groups) -> None:
    """Evidence as readable JSON, and the per-layer lineage map drawn as SVG where there is one."""
    for _severity, _label, findings in groups:
        for finding in findings:
            text = finding_text(code=finding.code, evidence=finding.evidence)
            if text:  # the pipeline's own findings, in the reader's language
                finding.title, finding.explanation = text
            finding.evidence_json = json.dumps(finding.evidence, indent=2, ensure_ascii=False, sort_keys=True)
            layers = finding.evidence.get("layers") if isinstance(finding.evidence, dict) else None
            finding.chart_svg = (layer_map_svg(title=_("Which layers match"), layers=layers)
                                 if isinstance(layers, list) and layers else "")


def _finding_conversations(groups, *, user, failed_form) -> None:
    """Each finding's thread, who is waited on (in the reader's words: the vendor reads "waiting
    for you"), and its message form: empty, or the refused one as it was sent."""
    side = None
    for _severity, _label, findings in groups:
        for finding in findings:
            if side is None:
                side = threads.message_side_for(user=user, finding=finding) or ""
            finding.thread = list(finding.messages.all())  # prefetched with authors and attachments
            waiting = finding.waiting_on
            finding.waiting_on_text = (_("Waiting for you") if waiting == Finding.WaitingOn.VENDOR
                                       and side == FindingMessage.Side.VENDOR else Finding.WaitingOn(waiting).label)
            finding.waiting_on_value = waiting
            finding.message_side = side
            if failed_form is not None and failed_form[0] == finding.pk:
                finding.message_form = failed_form[1]
            else:
                finding.message_form = FindingMessageForm(auto_id=f"fm-{finding.pk}-%s")


def _submission_context(request: HttpRequest, submission, *, failed_form=None) -> dict:
    project = submission.project
    groups = submission_findings_grouped(submission=submission)
    _finding_presentation(groups)
    _finding_conversations(groups, user=request.user, failed_form=failed_form)
    runs = list(submission.check_runs.select_related("artifact").order_by("artifact_id", "check_name"))
    return {
        "submission": submission,
        "project": project,
        # The same open risks as the dossier's summary (Finding.is_open_risk), most severe first.
        "open_risks": [finding for _severity, _label, findings in groups for finding in findings if finding.is_open_risk],
        "declaration": getattr(submission, "declaration", None),
        "artifacts": submission.artifacts.select_related("uploaded_by"),
        "runs": runs,
        "runs_finished": all(r.state in CheckRun.FINISHED_STATES for r in runs),
        "finding_groups": groups,
        "decisions": submission.decisions.select_related("decided_by"),
        "can_review": user_can_review(user=request.user, project=project),
        "can_reply": user_can_submit(user=request.user, project=project),
        "can_manage": user_can_manage(user=request.user),
        "is_ministry": user_is_ministry(user=request.user),
        "decision_form": SubmissionDecisionForm(),
        "finding_decision_form": FindingDecisionForm(),
    }


def _licences_filter(licences: list[dict], needle: str) -> list[dict]:
    return [lic for lic in licences if not needle or needle in (lic.get("key") or "").lower()
            or needle in (lic.get("category") or "").lower() or needle in (lic.get("name") or "").lower()]


CODE_LABELS = ("training", "inference", "other")


def _provenance_context(runs, *, licence_filter: str, code_filter: str = "", code_label: str = "") -> dict:
    """Licence inventories and code matches of finished runs, for their tables.

    The licence inventory lists, beside each artifact's detected licences, the licences its copied
    code carries (from the code run), so one table answers "under which licences is this shipped"."""
    needle = licence_filter.lower()
    licence_runs = [r for r in runs if r.check_name == "licenses" and (r.summary or {}).get("inventory")]
    for run in licence_runs:
        run.licences = _licences_filter(run.summary["inventory"].get("licenses", []), needle)
    code_runs = [r for r in runs if r.check_name == "code" and (r.summary or {}).get("matches") is not None]
    code_needle = code_filter.lower()
    for run in code_runs:
        run.carried_licences = _licences_filter(((run.summary.get("inventory") or {}).get("licenses") or []), needle)
        run.shown_matches = [
            m for m in run.summary["matches"]
            if (not code_label or m.get("label", "other") == code_label)
            and (not code_needle or code_needle in m.get("path", "").lower()
                 or code_needle in (m.get("origin") or {}).get("name", "").lower()
                 or code_needle in (m.get("origin") or {}).get("path", "").lower()
                 or code_needle in (m.get("license_expression") or "").lower())
        ][:100]
    carried_runs = [r for r in code_runs if (r.summary.get("inventory") or {}).get("licenses")]
    return {"licence_runs": licence_runs, "code_runs": code_runs, "carried_runs": carried_runs,
            "licence_filter": licence_filter, "code_filter": code_filter, "code_label": code_label,
            "code_labels": CODE_LABELS}


@login_required
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _submission_page(request, submission_get_for_user(user=request.user, pk=pk))


def _submission_page(request: HttpRequest, submission, *, failed_form=None, status: int = 200) -> HttpResponse:
    """The submission page; ``failed_form`` (finding id, bound form) shows a message form that
    was refused with its input and errors in place of that finding's empty form."""
    context = _submission_context(request, submission, failed_form=failed_form)
    if request.GET.get("fragment") == "runs":
        return render(request, "compliance/_check_runs.html", context)
    label = request.GET.get("kind", "")
    context.update(_provenance_context(context["runs"], licence_filter=request.GET.get("licence", "").strip()[:100],
                                       code_filter=request.GET.get("code", "").strip()[:100],
                                       code_label=label if label in CODE_LABELS else ""))
    context["dossiers"] = submission.dossiers.order_by("-created_at") if user_is_ministry(user=request.user) else []
    context["can_request_dossier"] = dossiers.user_can_request_dossier(user=request.user, submission=submission)
    return render(request, "compliance/submission_detail.html", context, status=status)


@login_required
@require_POST
def finding_decide(request: HttpRequest, pk: int) -> HttpResponse:
    finding = finding_get_for_user(user=request.user, pk=pk)
    form_post_apply(request, FindingDecisionForm(request.POST),
                    lambda **data: decisions.finding_decide(user=request.user, finding=finding, **data),
                    success=_("Decision recorded."))
    return redirect(f"{_submission_url(finding.submission_id)}#finding-{finding.pk}")


@login_required
@require_POST
def finding_message(request: HttpRequest, pk: int) -> HttpResponse:
    """Post a message on a finding: the vendor's reply, a reviewer's question or note. On an error
    the submission page is shown again with this form as it was sent and the error beside the field."""
    finding = finding_get_for_user(user=request.user, pk=pk)
    form = FindingMessageForm(request.POST, request.FILES, auto_id=f"fm-{finding.pk}-%s")
    if form.is_valid():
        upload = form.cleaned_data["attachment"]
        try:
            threads.message_post(user=request.user, finding=finding, body=form.cleaned_data["body"],
                                 kind=form.cleaned_data["kind"], attachment_name=upload.name if upload else "",
                                 attachment_file=upload)
        except ValidationError as exc:
            _message_errors_to_form(form, exc)
        else:
            messages.success(request, _("Message posted."))
            return redirect(f"{_submission_url(finding.submission_id)}#finding-{finding.pk}")
    submission = submission_get_for_user(user=request.user, pk=finding.submission_id)
    return _submission_page(request, submission, failed_form=(finding.pk, form), status=400)


# The service names the attached file's problems after the upload's own fields.
_ATTACHMENT_ERROR_FIELDS = {"filename": "attachment", "file": "attachment", "size": "attachment"}


def _message_errors_to_form(form: FindingMessageForm, exc: ValidationError) -> None:
    """The service's errors beside the field they concern (the form-wide list for the others)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        field = _ATTACHMENT_ERROR_FIELDS.get(field, field)
        form.add_error(field if field in form.fields else None, errors)


@login_required
def finding_message_attachment(request: HttpRequest, pk: int) -> HttpResponse:
    """A message's attached file, for whoever sees the finding, once intake accepted it: a
    quarantined or rejected file is never served (THREAT_MODEL: uploads are not served unscanned)."""
    message = finding_message_get_for_user(user=request.user, pk=pk)
    artifact = message.attachment
    if artifact is None or artifact.status != Artifact.Status.ACCEPTED:
        raise Http404("not available")
    # Always a download of opaque bytes: a vendor's HTML or SVG must never render in the portal's origin.
    response = FileResponse(artifact.file.open("rb"), as_attachment=True, content_type="application/octet-stream",
                            filename=artifact.original_name.rsplit("/", 1)[-1])
    response["X-Content-SHA256"] = artifact.sha256
    return response


def _submission_url(pk: int) -> str:
    from django.urls import reverse

    return reverse("submission-detail", kwargs={"pk": pk})


@login_required
@require_POST
def submission_decide(request: HttpRequest, pk: int) -> HttpResponse:
    submission = submission_get_for_user(user=request.user, pk=pk)
    form_post_apply(request, SubmissionDecisionForm(request.POST),
                    lambda **data: decisions.submission_decide(user=request.user, submission=submission, **data),
                    success=_("Submission decision recorded."))
    return redirect("submission-detail", pk=submission.pk)


@login_required
@require_POST
def check_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    run = check_run_get_for_user(user=request.user, pk=pk)
    runs.check_run_rerun(user=request.user, run=run)
    messages.success(request, _("The check was queued again."))
    return redirect("submission-detail", pk=run.submission_id)


@login_required
def policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    programme = programme_get_for_user(user=request.user, pk=pk)
    if not user_can_manage(user=request.user):
        if user_is_ministry(user=request.user):
            raise PermissionDenied
        raise Http404("not found")
    policy = policy_services.programme_policy_get_or_create(programme=programme)
    form = PolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            policy_services.programme_policy_update(
                user=request.user, programme=programme, allowed=data["allowed_licenses"],
                denied=data["denied_licenses"], review=data["review_licenses"],
                from_scratch_required=data["from_scratch_required"], reference_models=data["reference_models"],
                code_corpora=data["code_corpora"], denied_categories=data["denied_categories"],
                review_categories=data["review_categories"], allowed_categories=data["allowed_categories"],
                accept_model_use_restrictions=data["accept_model_use_restrictions"],
                expected_monthly_users=data["expected_monthly_users"],
                require_declared_license=data["require_declared_license"],
                outbound_license=data["outbound_license"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("Policy saved."))
            return redirect("programme-detail", pk=programme.pk)
    return render(request, "compliance/policy_form.html", {"form": form, "programme": programme})


@login_required
def workers(request: HttpRequest) -> HttpResponse:
    """Staff view: what runs where, for how long, and what failed."""
    if not user_can_manage(user=request.user) and not request.user.is_staff:
        raise Http404("not found")
    running = (CheckRun.objects.filter(state=CheckRun.State.RUNNING)
               .select_related("artifact", "submission__project").order_by("started_at"))
    failed = (CheckRun.objects.filter(state=CheckRun.State.FAILED)
              .select_related("artifact", "submission__project").order_by("-finished_at")[:50])
    return render(request, "compliance/workers.html", {"rows": worker_activity(), "running": running,
                                                       "failed": failed})


@login_required
def reference_list(request: HttpRequest) -> HttpResponse:
    _require_ministry(request)
    return render(request, "compliance/reference_list.html",
                  {"references": ReferenceModel.objects.order_by("name")})




@login_required
@require_POST
def dossier_request(request: HttpRequest, pk: int) -> HttpResponse:
    submission = submission_get_for_user(user=request.user, pk=pk)
    _require_ministry(request)
    lang = request.POST.get("lang", "en")
    try:
        dossier = dossiers.dossier_request(user=request.user, submission=submission, lang=lang)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Dossier %(number)s queued; it appears below when signed.")
                         % {"number": dossier.number})
    return redirect(f"{_submission_url(submission.pk)}#h-dossiers")


@login_required
@require_POST
def dossier_retry(request: HttpRequest, pk: int) -> HttpResponse:
    dossier = dossier_get_for_user(user=request.user, pk=pk)
    try:
        dossiers.dossier_retry(user=request.user, dossier=dossier)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Dossier %(number)s queued again under the same number.")
                         % {"number": dossier.number})
    return redirect(f"{_submission_url(dossier.submission_id)}#h-dossiers")


@login_required
def dossier_download(request: HttpRequest, pk: int) -> HttpResponse:
    dossier = dossier_get_for_user(user=request.user, pk=pk)
    if dossier.state != Dossier.State.READY:
        raise Http404("not ready")
    dossiers.dossier_download_record(user=request.user, dossier=dossier)
    response = FileResponse(dossier.file.open("rb"), as_attachment=True, filename=f"{dossier.number}.pdf",
                            content_type="application/pdf")
    response["X-Content-SHA256"] = dossier.sha256
    return response


# A dossier of 10,000 findings is a few MB; refuse anything past 64 MB before reading it.
MAX_VERIFY_UPLOAD_BYTES = 64 * 1024 * 1024


def dossier_verify_page(request: HttpRequest) -> HttpResponse:
    """Anyone holding a dossier may check it: issued by the portal, unaltered, validly signed."""
    result = None
    error = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        sha256 = request.POST.get("sha256", "").strip()
        try:
            if upload is not None:
                if upload.size > MAX_VERIFY_UPLOAD_BYTES:
                    raise ValidationError(_("This file is larger than any dossier the portal issues."))
                result = dossiers.dossier_verify_bytes(pdf_bytes=upload.read())
            elif sha256:
                result = dossiers.dossier_verify_hash(sha256=sha256)
            else:
                raise ValidationError(_("Choose a dossier PDF or paste its SHA-256."))
        except ValidationError as exc:
            error = " ".join(exc.messages)
    return render(request, "compliance/verify.html", {"result": result, "error": error})

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
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from compliance import dossiers
from compliance.services import decisions, runs, threads
from compliance.services import policy as policy_services
from compliance.casework import next_actions
from compliance.charts import bar_chart_svg, layer_map_svg
from compliance.checks import check_registry
from compliance.codealign import region_align
from compliance.finding_texts import REVIEWER, VENDOR, evidence_for_vendor
from compliance.forms import FindingDecisionForm, FindingMessageForm, PolicyForm, SubmissionDecisionForm
from compliance.filters import DashboardProjectFilterSet, FindingFilterSet, QueueFilterSet
from compliance.models import CheckRun, Dossier, Finding, FindingMessage, ReferenceModel
from compliance.selectors import (check_run_get_for_user, dashboard_data, dossier_get_for_user, finding_export_columns,
                                  finding_get_for_user, finding_message_get_for_user, findings_list, findings_titled, projects_annotate_severity,
                                  projects_with_open_counts, queue_export_columns, review_queue,
                                  severity_label_of_rank, submission_findings_grouped, submission_timeline,
                                  submissions_with_open_counts,
                                  worker_activity)
from portal.exports import export_requested, export_response
from portal.listing import querystring_filters
from portal.selectors import user_can_manage, user_is_ministry
from portal.views import form_apply
from projects.filters import reviewers_all
from projects.models import Artifact, Project
from projects.selectors import (programme_get_for_user, programmes_visible_to, projects_visible_to,
                                submission_get_for_user, user_can_review, user_can_submit)


def _require_ministry(request: HttpRequest) -> None:
    if not user_is_ministry(user=request.user):
        raise Http404("not found")


def _programme_choices(request: HttpRequest) -> list[tuple[int, str]]:
    return list(programmes_visible_to(user=request.user).order_by("code").values_list("pk", "code"))


def _reviewer_choices(filterset) -> list[tuple[int, str]] | None:
    """Reviewers for the reviewer filter, or None where the filter is not offered (vendors)."""
    if "reviewer" not in filterset.filters:
        return None
    return list(reviewers_all().values_list("pk", "username"))


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Projects by status and phase, open findings by severity, running checks, overdue
    milestones and recent activity, for everything the user may see, narrowed by the project
    filters (``DashboardProjectFilterSet``); the charts and live fragment follow the same filters."""
    _require_ministry(request)
    filterset = DashboardProjectFilterSet(
        request.GET, request=request,
        queryset=projects_annotate_severity(projects_visible_to(user=request.user)).select_related("programme",
                                                                                                   "vendor"))
    projects = filterset.qs
    data = dashboard_data(user=request.user, projects=projects)
    page = Paginator(projects, 25).get_page(request.GET.get("page"))
    page.object_list = projects_with_open_counts(page.object_list)
    for project in page.object_list:
        project.top_severity_label = severity_label_of_rank(project.top_severity_rank)
    charts = {
        # 360 px: the width of a dashboard column, so labels print at their real size.
        "status": bar_chart_svg(title=_("Projects by status"), items=data["projects_by_status"], width=360),
        "phase": bar_chart_svg(title=_("Projects by phase"), items=data["projects_by_phase"], width=360),
        "severity": bar_chart_svg(title=_("Open findings by severity"), items=data["findings_by_severity"],
                                  width=360),
    }
    context = {"data": data, "charts": charts, "page": page, "filterset": filterset, "form": filterset.form,
               "programmes": _programme_choices(request),
               "statuses": Project.Status.choices, "phases": Project.Phase.choices,
               "severities": Finding.Severity.choices,
               "reviewers": _reviewer_choices(filterset),
               "live_query": querystring_filters(request.GET)}
    if request.GET.get("fragment") == "live":
        return render(request, "compliance/_dashboard_live.html", context)
    return render(request, "compliance/dashboard.html", context)


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """Submissions waiting for review, filtered and sorted by ``QueueFilterSet``; each shows how long
    it has waited against its programme's service level. ``?export=csv|xlsx`` downloads the list."""
    _require_ministry(request)
    filterset = QueueFilterSet(request.GET, request=request, queryset=review_queue(user=request.user))
    fmt = export_requested(request)
    if fmt:
        return export_response(fmt=fmt, columns=queue_export_columns(), rows=filterset.qs, filename="review-queue")
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    return render(request, "compliance/queue.html", {
        "submissions": submissions_with_open_counts(page.object_list), "page": page, "filterset": filterset,
        "form": filterset.form, "programmes": _programme_choices(request),
        "phases": Project.Phase.choices, "statuses": filterset.filters["status"].extra["choices"],
        "severities": Finding.Severity.choices,
        "reviewers": _reviewer_choices(filterset)})


@login_required
def finding_list(request: HttpRequest) -> HttpResponse:
    """Every finding ministry staff may see, across submissions: filtered by programme, severity,
    status, check and whom it waits on (``FindingFilterSet``), exported with ``?export=csv|xlsx``."""
    _require_ministry(request)
    filterset = FindingFilterSet(request.GET, request=request, queryset=findings_list(user=request.user))
    fmt = export_requested(request)
    if fmt:
        return export_response(fmt=fmt, columns=finding_export_columns(), rows=filterset.qs, filename="findings")
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    page.object_list = findings_titled(page.object_list)
    return render(request, "compliance/finding_list.html", {
        "page": page, "filterset": filterset, "form": filterset.form,
        "programmes": _programme_choices(request),
        "severities": Finding.Severity.choices, "statuses": Finding.Status.choices,
        "checks": [(name, spec.label) for name, spec in check_registry().items()],
        "waiting_on": FindingFilterSet.WAITING_ON,
        "reviewers": _reviewer_choices(filterset)})


def _finding_presentation(groups, *, internals: bool,
                          bound: tuple[int, FindingDecisionForm] | None = None) -> None:
    """Evidence as readable JSON (without our internals for vendors: compliance.finding_texts),
    the per-layer lineage map drawn as SVG where there is one, and each finding's decision form:
    empty, or the one the reviewer just sent back with its errors. The words are the template
    tag's ({% finding_text %})."""
    for _severity, _label, findings in groups:
        for finding in findings:
            # In memory only: lists that name a finding by its title (the open risks) read it in
            # the reader's language too; the stored English stays as found.
            finding.title = finding.text(REVIEWER if internals else VENDOR).title
            evidence = finding.evidence if internals else evidence_for_vendor(finding.evidence)
            finding.evidence_json = json.dumps(evidence, indent=2, ensure_ascii=False, sort_keys=True)
            layers = finding.evidence.get("layers") if isinstance(finding.evidence, dict) else None
            finding.chart_svg = (layer_map_svg(title=_("Which layers match"), layers=layers)
                                 if isinstance(layers, list) and layers else "")
            if bound is not None and bound[0] == finding.pk:
                finding.decision_form = bound[1]
            else:
                finding.decision_form = FindingDecisionForm(auto_id=_finding_form_id(finding.pk))


def _finding_form_id(pk: int) -> str:
    return f"fd{pk}-%s"


def _findings_state(runs: list) -> dict:
    """How far the checks are, for the findings section: an unfinished or failed check never
    reads as a clean result ("No findings." only when every run ended successfully)."""
    ended = [r for r in runs if r.state in CheckRun.FINISHED_STATES]
    incomplete = [r for r in ended if r.state != CheckRun.State.SUCCEEDED]
    if not runs:
        state = "not_started"
    elif len(ended) < len(runs):
        state = "running"
    elif incomplete:
        state = "incomplete"
    else:
        state = "complete"
    return {"findings_state": state, "runs_ended": len(ended), "runs_total": len(runs), "runs_incomplete": incomplete}


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


def _submission_context(request: HttpRequest, submission, *, finding_form=None, decision_form=None,
                        failed_form=None) -> dict:
    project = submission.project
    groups = submission_findings_grouped(submission=submission)
    _finding_presentation(groups, internals=user_is_ministry(user=request.user), bound=finding_form)
    _finding_conversations(groups, user=request.user, failed_form=failed_form)
    runs = list(submission.check_runs.select_related("artifact", "reused_from__submission")
                .order_by("artifact_id", "check_name"))
    findings = [finding for _severity, _label, items in groups for finding in items]
    decisions_made = list(submission.decisions.select_related("decided_by"))
    is_ministry = user_is_ministry(user=request.user)
    return {
        "submission": submission,
        "project": project,
        # The same open risks as the dossier's summary (Finding.is_open_risk), most severe first.
        "open_risks": [finding for finding in findings if finding.is_open_risk],
        "declaration": getattr(submission, "declaration", None),
        "artifacts": submission.artifacts.select_related("uploaded_by", "carried_from__submission"),
        "runs": runs,
        "runs_finished": all(r.state in CheckRun.FINISHED_STATES for r in runs),
        **_findings_state(runs),
        "finding_groups": groups,
        "decisions": decisions_made,
        "latest_decision": decisions_made[-1] if decisions_made else None,
        "next_actions": next_actions(user=request.user, submission=submission, runs=runs, findings=findings),
        "timeline": submission_timeline(submission=submission, include_dossiers=is_ministry, runs=runs,
                                        findings=findings),
        "can_review": user_can_review(user=request.user, project=project),
        "can_reply": user_can_submit(user=request.user, project=project),
        "can_manage": user_can_manage(user=request.user),
        "is_ministry": is_ministry,
        "decision_form": decision_form or SubmissionDecisionForm(auto_id="sd-%s"),
    }


def _licences_filter(licences: list[dict], needle: str) -> list[dict]:
    return [lic for lic in licences if not needle or needle in (lic.get("key") or "").lower()
            or needle in (lic.get("category") or "").lower() or needle in (lic.get("name") or "").lower()]


CODE_LABELS = ("training", "inference", "other")
# Aligned rows shown before "show the whole region": enough to judge a copy at a glance
# without ten regions of 80 lines making the page thousands of pixels long.
REGION_PREVIEW_ROWS = 12


def _match_alignment(match: dict) -> None:
    """Pair the region's vendor and reference lines (compliance.codealign) for the side-by-side view."""
    vendor, origin = match.get("excerpt"), (match.get("origin") or {}).get("excerpt")
    if vendor is None or origin is None:
        match["aligned"] = None
        return
    region = region_align(vendor=vendor, origin=origin, vendor_first=(match.get("lines") or [1])[0],
                          origin_first=((match.get("origin") or {}).get("lines") or [1])[0])
    match["aligned"] = region
    match["aligned_preview"] = region.rows[:REGION_PREVIEW_ROWS]
    match["aligned_more"] = len(region.rows) > REGION_PREVIEW_ROWS
    match["identical_percent"] = round(100 * region.identical_share)
    lines = match.get("lines") or [0, 0]
    match["region_lines"] = lines[1] - lines[0] + 1 if len(lines) == 2 else None


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
        for match in run.shown_matches:
            _match_alignment(match)
    carried_runs = [r for r in code_runs if (r.summary.get("inventory") or {}).get("licenses")]
    return {"licence_runs": licence_runs, "code_runs": code_runs, "carried_runs": carried_runs,
            "licence_filter": licence_filter, "code_filter": code_filter, "code_label": code_label,
            "code_labels": CODE_LABELS}


# The parts of the submission page that change on the server, each re-fetched in place by
# portal.js (``?fragment=<name>``) while checks or dossiers are under way.
FRAGMENTS = {
    "state": "compliance/_case_state.html",
    "runs": "compliance/_check_runs.html",
    "artifacts": "compliance/_submission_artifacts.html",
    "findings": "compliance/_findings_section.html",
    "dossiers": "compliance/_dossiers.html",
}


def _submission_page(request: HttpRequest, submission, *, finding_form=None, decision_form=None,
                     failed_form=None, status: int = 200, fragment: str = "") -> HttpResponse:
    """The submission page, or one of its live fragments. ``failed_form`` (finding id, bound form)
    shows a refused message form with its input and errors in place of that finding's empty one."""
    if fragment == "runs":  # polled every 2 s while checks run: only what the table needs
        runs = submission.check_runs.select_related("artifact").order_by("artifact_id", "check_name")
        return render(request, FRAGMENTS["runs"], {"runs": runs, "can_manage": user_can_manage(user=request.user)})
    context = _submission_context(request, submission, finding_form=finding_form, decision_form=decision_form,
                                  failed_form=failed_form)
    context["dossiers"] = submission.dossiers.order_by("-created_at") if context["is_ministry"] else []
    context["can_request_dossier"] = dossiers.user_can_request_dossier(user=request.user, submission=submission)
    if fragment in FRAGMENTS:
        return render(request, FRAGMENTS[fragment], context)
    label = request.GET.get("kind", "")
    context.update(_provenance_context(context["runs"], licence_filter=request.GET.get("licence", "").strip()[:100],
                                       code_filter=request.GET.get("code", "").strip()[:100],
                                       code_label=label if label in CODE_LABELS else ""))
    return render(request, "compliance/submission_detail.html", context, status=status)


@login_required
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    submission = submission_get_for_user(user=request.user, pk=pk)
    return _submission_page(request, submission, fragment=request.GET.get("fragment", ""))


@login_required
@require_POST
def finding_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """On a refused decision the submission page comes back with this finding's form as sent (the
    choice kept, the error beside its field), never a redirect that resets it."""
    finding = finding_get_for_user(user=request.user, pk=pk)
    form = FindingDecisionForm(request.POST, auto_id=_finding_form_id(finding.pk))
    done, _record = form_apply(form, lambda **data: decisions.finding_decide(user=request.user, finding=finding,
                                                                              **data))
    if not done:
        submission = submission_get_for_user(user=request.user, pk=finding.submission_id)
        response = _submission_page(request, submission, finding_form=(finding.pk, form))
        response.status_code = 400
        return response
    messages.success(request, _("Decision recorded."))
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
    form = SubmissionDecisionForm(request.POST, auto_id="sd-%s")
    done, _record = form_apply(form, lambda **data: decisions.submission_decide(user=request.user,
                                                                                 submission=submission, **data))
    if not done:
        response = _submission_page(request, submission, decision_form=form)
        response.status_code = 400
        return response
    messages.success(request, _("Submission decision recorded."))
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
                outbound_license=data["outbound_license"],
                challenge_reply_days=data["challenge_reply_days"])
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
# The multipart envelope and the form's other fields around the file.
VERIFY_FORM_OVERHEAD_BYTES = 64 * 1024


@csrf_exempt
def dossier_verify_page(request: HttpRequest) -> HttpResponse:
    """Anyone holding a dossier may check it: issued by the portal, unaltered, validly signed.

    The upload is streamed to a temporary file and hashed on the way (portal.upload_handlers),
    never held in memory; the handler must be chosen before CSRF checking reads the body, so the
    check runs inside (``_dossier_verify_page``)."""
    from portal.upload_handlers import hashing_upload_handlers

    request.upload_handlers = hashing_upload_handlers(request)
    return _dossier_verify_page(request)


@csrf_protect
def _dossier_verify_page(request: HttpRequest) -> HttpResponse:
    from portal.throttles import request_body_length, verify_upload_allowed

    result = None
    error = None
    if request.method == "POST":
        # Refused on the announced length before Django reads a byte of the body.
        if request_body_length(request) > MAX_VERIFY_UPLOAD_BYTES + VERIFY_FORM_OVERHEAD_BYTES:
            return render(request, "compliance/verify.html", {"result": None, "error": _(
                "This file is larger than any dossier the portal issues.")}, status=413)
        allowed, wait = verify_upload_allowed(request)
        if not allowed:
            response = render(request, "compliance/verify.html", {"result": None, "error": _(
                "Too many dossiers were checked from your address. Try again in %(seconds)s seconds, or "
                "paste the file's SHA-256 instead, which is not limited.") % {"seconds": wait or 60}}, status=429)
            if wait:
                response["Retry-After"] = str(wait)
            return response
        upload = request.FILES.get("file")
        sha256 = request.POST.get("sha256", "").strip()
        try:
            if upload is not None:
                if upload.size > MAX_VERIFY_UPLOAD_BYTES:
                    raise ValidationError(_("This file is larger than any dossier the portal issues."))
                result = dossiers.dossier_verify_file(pdf_file=upload.file, sha256=getattr(upload, "sha256", None))
            elif sha256:
                result = dossiers.dossier_verify_hash(sha256=sha256)
            else:
                raise ValidationError(_("Choose a dossier PDF or paste its SHA-256."))
        except ValidationError as exc:
            error = " ".join(exc.messages)
        finally:
            if upload is not None:
                upload.close()  # the temporary file goes now, not when the request object is collected
    return render(request, "compliance/verify.html", {"result": result, "error": error})

"""Pages of public challenges (issue #15): anonymous filing and confirmation, the officers'
triage, the vendor's reply, the public register. Writes go through compliance.services.challenges."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from compliance.models import Challenge, ChallengeFile, ReferenceModel
from compliance.services import challenges as services
from portal.selectors import user_can_manage, user_sees_everything
from portal.throttles import ChallengeThrottle, client_address, request_body_length
from projects.models import Project
from projects.selectors import get_or_404, user_can_review, user_can_submit

FUNDED = (Project.Status.ACTIVE, Project.Status.UNDER_REVIEW, Project.Status.COMPLETED)
PUBLIC = (Challenge.Status.UPHELD, Challenge.Status.NOT_UPHELD, Challenge.Status.REJECTED)


def challenge_get_for_user(*, user, pk, acting: bool = False) -> Challenge:
    """Officers, administrators and auditors see every confirmed challenge; once it is put to the
    vendor, the project's vendor members and its assigned reviewers see it too (reviewers read only:
    with ``acting``, for the officers' steps and the vendor's reply, they are not let through), as
    the API's ``challenges_visible_to`` and the evidence downloads have it; everyone else gets the
    same 404 as for a missing id."""
    queryset = Challenge.objects.select_related("project", "project__programme", "merged_into")
    if user.is_authenticated and user_sees_everything(user=user):
        return get_or_404(queryset.exclude(status=Challenge.Status.UNCONFIRMED), pk=pk)
    challenge = get_or_404(queryset.exclude(status__in=(Challenge.Status.UNCONFIRMED, Challenge.Status.FILED,
                                                        Challenge.Status.MERGED)), pk=pk)
    if user.is_authenticated and (user_can_submit(user=user, project=challenge.project) or (
            not acting and user_can_review(user=user, project=challenge.project))):
        return challenge
    return get_or_404(Challenge.objects.none(), pk=pk)


def challenge_file_get_for_user(*, user, challenge_pk, pk) -> ChallengeFile:
    """An evidence file, only once intake accepted it: to officers, administrators and auditors
    (any confirmed challenge), to the project's assigned reviewers and vendor members once the
    challenge was put to the vendor, and to anyone when the decision published it. Everyone else
    gets the same 404 as for a missing id; the vendor's own files are never published."""
    row = get_or_404(ChallengeFile.objects.select_related("challenge", "challenge__project")
                     .filter(challenge_id=challenge_pk, intake_status="accepted")
                     .exclude(challenge__status=Challenge.Status.UNCONFIRMED), pk=pk)
    challenge = row.challenge
    if row.published and row.side == ChallengeFile.Side.CHALLENGER and challenge.status in PUBLIC:
        return row
    if user.is_authenticated:
        if user_sees_everything(user=user):
            return row
        put_to_vendor = challenge.status not in (Challenge.Status.FILED, Challenge.Status.MERGED)
        if put_to_vendor and (user_can_submit(user=user, project=challenge.project)
                              or user_can_review(user=user, project=challenge.project)):
            return row
    return get_or_404(ChallengeFile.objects.none(), pk=pk)


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def challenge_new(request: HttpRequest) -> HttpResponse:
    """Anyone files a challenge against a funded project (name and programme only are shown)."""
    projects = Project.objects.filter(status__in=FUNDED).select_related("programme").order_by("programme__name",
                                                                                              "title")
    context = {"projects": projects, "claims": Challenge.Claim.choices, "values": {}, "error": None}
    if request.method == "POST":
        # Refused on the announced length before Django reads a byte of the body.
        if request_body_length(request) > services.CHALLENGE_BODY_MAX_BYTES:
            context["error"] = _("A challenge with its files is at most %(limit)s MiB.") % {
                "limit": f"{services.CHALLENGE_BODY_MAX_BYTES // (1024 * 1024):,}"}
            return render(request, "compliance/challenge_new.html", context, status=413)
        context["values"] = request.POST
        throttle = ChallengeThrottle()
        if not throttle.allow_request(request, None):
            wait = int(throttle.wait() or 60) + 1
            context["error"] = _("Too many challenges were filed from your address. Try again in %(seconds)s "
                                 "seconds.") % {"seconds": wait}
            response = render(request, "compliance/challenge_new.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
        project = projects.filter(pk=request.POST.get("project") or 0).first() if (
            request.POST.get("project") or "").isdigit() else None
        try:
            if project is None:
                raise ValidationError(_("Choose a funded project."))
            files = [(f.name, f.file) for f in request.FILES.getlist("files")]
            services.challenge_file(
                project=project, model_named=request.POST.get("model_named", ""), claim=request.POST.get("claim", ""),
                claimed_source=request.POST.get("claimed_source", ""), statement=request.POST.get("statement", ""),
                figures=request.POST.get("figures", ""), contact_email=request.POST.get("contact_email", ""),
                client_address=client_address(request), files=files,
                confirm_base_url=request.build_absolute_uri("/").rstrip("/"))
        except ValidationError as exc:
            context["error"] = _error_text(exc)
            return render(request, "compliance/challenge_new.html", context, status=400)
        return render(request, "compliance/challenge_sent.html", {})
    return render(request, "compliance/challenge_new.html", context)


def challenge_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the confirmation e-mail. GET shows a button (mail scanners follow links);
    POST confirms."""
    if request.method == "POST":
        try:
            challenge = services.challenge_confirm(token=token)
        except ValidationError as exc:
            return render(request, "compliance/challenge_confirm.html", {"error": _error_text(exc)}, status=400)
        return render(request, "compliance/challenge_confirm.html", {"confirmed": challenge})
    return render(request, "compliance/challenge_confirm.html", {"token": token})


@login_required
def challenge_list(request: HttpRequest) -> HttpResponse:
    """The officers' triage list: every confirmed challenge, open ones first."""
    if not user_sees_everything(user=request.user):
        raise Http404("not found")
    rows = (Challenge.objects.exclude(status=Challenge.Status.UNCONFIRMED)
            .select_related("project", "project__programme").order_by("decided_at", "-confirmed_at"))
    return render(request, "compliance/challenge_list.html", {"challenges": rows})


@login_required
def challenge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_get_for_user(user=request.user, pk=pk)
    officer = user_can_manage(user=request.user)
    others = (Challenge.objects.filter(project_id=challenge.project_id,
                                       status__in=(Challenge.Status.FILED, Challenge.Status.ACCEPTED))
              .exclude(pk=challenge.pk)) if officer else []
    files = list(challenge.files.all())
    return render(request, "compliance/challenge_detail.html", {
        "challenge": challenge, "officer": officer, "others": others,
        "retested_claim": challenge.claim in services.RETESTED_CLAIMS,
        "reference_open": officer and challenge.claim == Challenge.Claim.DERIVED_FROM_MODEL and challenge.status in (
            Challenge.Status.FILED, Challenge.Status.ACCEPTED),
        "references": ReferenceModel.objects.exclude(bundle="").order_by("name") if officer else [],
        "publishable": [f for f in files if f.side == ChallengeFile.Side.CHALLENGER and f.intake_status == "accepted"],
        "reply_overdue": bool(challenge.status == Challenge.Status.ACCEPTED and not challenge.vendor_replied_at
                              and challenge.reply_due_on and challenge.reply_due_on < timezone.localdate()),
        "vendor": user_can_submit(user=request.user, project=challenge.project),
        "files": files, "outcomes": [(v, Challenge.Status(v).label) for v in services.DECIDED]})


@login_required
@require_POST
def challenge_act(request: HttpRequest, pk: int) -> HttpResponse:
    """One form target for the officer's steps and the vendor's reply."""
    challenge = challenge_get_for_user(user=request.user, pk=pk, acting=True)
    action = request.POST.get("action", "")
    reasons = request.POST.get("reasons", "")
    try:
        if action == "accept":
            services.challenge_accept(user=request.user, challenge=challenge, reasons=reasons)
        elif action == "reject":
            services.challenge_reject(user=request.user, challenge=challenge, reasons=reasons)
        elif action == "merge":
            into = Challenge.objects.filter(pk=request.POST.get("into") or 0).first() if (
                request.POST.get("into") or "").isdigit() else None
            if into is None:
                raise ValidationError(_("Choose the challenge to merge into."))
            services.challenge_merge(user=request.user, challenge=challenge, into=into, reasons=reasons)
        elif action == "retest":
            services.challenge_retest_request(user=request.user, challenge=challenge)
        elif action == "reply":
            services.challenge_reply(user=request.user, challenge=challenge, body=request.POST.get("body", ""),
                                     files=[(f.name, f.file) for f in request.FILES.getlist("files")])
        elif action == "decide":
            services.challenge_decide(user=request.user, challenge=challenge, outcome=request.POST.get("outcome", ""),
                                      reasons=reasons, summary=request.POST.get("summary", ""),
                                      publish_files=[v for v in request.POST.getlist("publish_files") if v.isdigit()])
        elif action == "reference":
            _reference_choose(request, challenge)
        else:
            raise ValidationError(_("Choose an action."))
    except PermissionDenied:
        raise
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("challenge-detail", pk=challenge.pk)
    messages.success(request, _("Saved."))
    return redirect("challenge-detail", pk=challenge.pk)


def _reference_choose(request: HttpRequest, challenge: Challenge) -> None:
    """An existing reference picked from the list, or a fingerprint bundle uploaded."""
    bundle = request.FILES.get("bundle")
    if bundle is not None:
        services.challenge_reference_register(
            user=request.user, challenge=challenge, bundle=bundle.file, bundle_name=bundle.name,
            name=request.POST.get("name", ""), publisher=request.POST.get("publisher", ""),
            license_expression=request.POST.get("license_expression", ""))
        return
    picked = request.POST.get("reference") or ""
    reference = ReferenceModel.objects.exclude(bundle="").filter(pk=picked).first() if picked.isdigit() else None
    if reference is None:
        raise ValidationError(_("Choose a registered reference or upload a fingerprint bundle."))
    services.challenge_reference_register(user=request.user, challenge=challenge, reference=reference)


def challenge_file_download(request: HttpRequest, pk: int, file_pk: int) -> HttpResponse:
    """An evidence file as a download of opaque bytes (never rendered in the portal's origin),
    for whoever ``challenge_file_get_for_user`` allows; each download is on the audit trail."""
    row = challenge_file_get_for_user(user=request.user, challenge_pk=pk, pk=file_pk)
    services.challenge_file_downloaded(user=request.user, file=row)
    response = FileResponse(row.file.open("rb"), as_attachment=True, content_type="application/octet-stream",
                            filename=row.original_name.rsplit("/", 1)[-1] or "evidence")
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Content-SHA256"] = row.sha256
    return response


def challenge_register(request: HttpRequest) -> HttpResponse:
    """The public register: decided challenges with their outcome, reasons and the portal's
    published figures; nothing of the vendor's unpublished artifacts."""
    published = ChallengeFile.objects.filter(published=True, side=ChallengeFile.Side.CHALLENGER,
                                             intake_status="accepted")
    rows = (Challenge.objects.filter(status__in=PUBLIC).select_related("project", "project__programme")
            .prefetch_related(Prefetch("files", queryset=published, to_attr="published_files"))
            .order_by("-decided_at")[:500])
    return render(request, "compliance/challenge_register.html", {"challenges": rows})

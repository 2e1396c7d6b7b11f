"""Portal pages: home, the audit trail, the workers view."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.filters import AuditEventFilterSet
from portal.models import AuditEvent, Role, SavedFilter
from portal.selectors import (audit_chain_verify, saved_filter_get_for_user, user_is_ministry, user_role,
                              user_sees_everything)
from portal.services import saved_filter_delete, saved_filter_save


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if user_is_ministry(user=request.user):
        return redirect("dashboard")
    if user_role(user=request.user) == Role.VENDOR:
        return redirect("project-list")
    raise Http404("no role")


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit trail, read-only, for administrators, officers and auditors: filtered by person,
    object, dates and action (``portal.filters.AuditEventFilterSet``), newest first by default."""
    if not user_sees_everything(user=request.user):
        raise Http404("not found")
    filterset = AuditEventFilterSet(request.GET, queryset=AuditEvent.objects.all())
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    chain = audit_chain_verify() if request.GET.get("verify") == "1" else None
    return render(request, "portal/audit_log.html", {"page": page, "filterset": filterset, "chain": chain})


# Saved filters of list pages
@login_required
@require_POST
def saved_filter_create(request: HttpRequest) -> HttpResponse:
    """"Save this filter" on a list page: stores the page's current filters under a name."""
    page = request.POST.get("page", "")
    try:
        saved = saved_filter_save(user=request.user, page=page, name=request.POST.get("name", ""),
                                  querystring=request.POST.get("querystring", ""))
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        if page in SavedFilter.Page.values:
            return redirect(SavedFilter.PAGE_URL_NAMES[page])
        raise Http404("not found") from None
    messages.success(request, _("Filter %(name)s saved.") % {"name": saved.name})
    return redirect(saved.url)


@login_required
@require_POST
def saved_filter_remove(request: HttpRequest, pk: int) -> HttpResponse:
    saved = saved_filter_get_for_user(user=request.user, pk=pk)
    saved_filter_delete(user=request.user, saved_filter=saved)
    messages.success(request, _("Filter %(name)s deleted.") % {"name": saved.name})
    return redirect(SavedFilter.PAGE_URL_NAMES[saved.page])




def form_post_apply(request: HttpRequest, form, action, *, success):
    """Validate a posted form, call the service with its cleaned data, and turn every problem
    (field errors, the service's ValidationError) into a message. ``success`` is a message, or
    a function of the service's result giving one. Returns the result, or None on failure."""
    from django.contrib import messages
    from django.core.exceptions import ValidationError

    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return None
    try:
        result = action(**form.cleaned_data)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return None
    messages.success(request, success(result) if callable(success) else success)
    return result


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Everyone's own API tokens: make one (its secret shown on this answer only), see when each was
    last used, revoke."""
    from django.core.exceptions import ValidationError

    from portal import tokens

    secret = None
    errors: dict = {}
    values = {"name": "", "expires_in_days": ""}
    if request.method == "POST":
        values = {"name": request.POST.get("name", "")[:200], "expires_in_days": request.POST.get("expires_in_days", "")}
        try:
            days = int(values["expires_in_days"]) if values["expires_in_days"].isdigit() else 0
            token, secret = tokens.token_create(user=request.user, name=values["name"], expires_in_days=days)
            values = {"name": "", "expires_in_days": ""}
        except ValidationError as exc:
            errors = exc.message_dict
    response = render(request, "portal/api_tokens.html", {
        "tokens": tokens.tokens_of(user=request.user), "secret": secret, "errors": errors, "values": values,
        "expiry_choices": tokens.EXPIRY_CHOICES_DAYS, "now": timezone.now()}, status=400 if errors else 200)
    # The secret must not outlive this answer in any cache.
    response["Cache-Control"] = "no-store"
    return response


# --- notifications ------------------------------------------------------------------------------

def _notification_rows(notifications) -> list[dict]:
    from portal.notifications import notification_text

    return [{"n": n, "text": notification_text(kind=n.kind, params=n.params)} for n in notifications]


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first, unread ones marked; 25 a page."""
    from portal.selectors import notifications_for

    notifications = notifications_for(user=request.user)
    if request.GET.get("unread") == "1":
        notifications = notifications.filter(read_at__isnull=True)
    page = Paginator(notifications.select_related("actor").order_by("-created_at", "-id"), 25).get_page(
        request.GET.get("page"))
    return render(request, "portal/notification_list.html",
                  {"page": page, "rows": _notification_rows(page), "unread_only": request.GET.get("unread") == "1"})


def _safe_path(url: str) -> str:
    """A stored link is a path on this portal; anything else goes to the list."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/notifications/"


@login_required
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Follow a notification to its page; opening it marks it read."""
    from portal.notifications import notification_mark_read
    from portal.selectors import notification_get_for_user

    notification = notification_get_for_user(user=request.user, pk=pk)
    notification_mark_read(user=request.user, notification=notification)
    return redirect(_safe_path(notification.url))


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_key: str) -> HttpResponse:
    from django.contrib import messages
    from django.utils.translation import gettext as _

    from portal import tokens
    from portal.models import ApiToken

    try:
        token = ApiToken.objects.get(user=request.user, token_key=token_key)
    except (ApiToken.DoesNotExist, ApiToken.MultipleObjectsReturned):
        raise Http404("not found") from None
    tokens.token_revoke(user=request.user, token=token)
    messages.success(request, _("The token “%(name)s” was revoked; programs using it can no longer sign in.")
                     % {"name": token.name})
    return redirect("api-tokens")


def _safe_next(request: HttpRequest) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or "/"
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                         require_https=request.is_secure())
    return target if ok and not target.startswith("/account/two-factor/") else "/"


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the key), confirm with a code; the
    recovery codes are shown once, on the answer."""
    import io
    from base64 import b32encode

    from django_otp import login as otp_login
    from django_otp.qr import write_qrcode_image

    from portal import second_factor

    device = second_factor.totp_pending(user=request.user)
    error = None
    if request.method == "POST":
        codes = second_factor.totp_confirm(user=request.user, device=device, code=request.POST.get("code", ""))
        if codes is not None:
            otp_login(request, device)
            response = render(request, "portal/two_factor_codes.html", {"codes": codes, "next": _safe_next(request)})
            response["Cache-Control"] = "no-store"
            return response
        error = _("That code does not match. Enter the 6-digit code your app shows now (it changes every 30 seconds).")
        wait = second_factor.second_factor_wait_seconds(user=request.user)
        if wait:
            error += " " + _("After a wrong code the next one is checked only after %(seconds)s seconds.") % {
                "seconds": wait}
    svg = io.BytesIO()
    write_qrcode_image(device.config_url, svg)
    qr = svg.getvalue().decode()
    qr = qr[qr.index("<svg"):]  # drop the XML declaration: the SVG goes inline in the page
    key = b32encode(device.bin_key).decode()
    response = render(request, "portal/two_factor_setup.html", {
        "qr_svg": qr, "key": " ".join(key[i:i + 4] for i in range(0, len(key), 4)), "error": error,
        "required": second_factor.user_requires_second_factor(user=request.user),
        "has_factor": second_factor.user_has_second_factor(user=request.user),
        "next": request.POST.get("next") or request.GET.get("next", "")}, status=400 if error else 200)
    response["Cache-Control"] = "no-store"
    return response


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a passkey (django-otp-webauthn's script and endpoints, see
    portal.passkey_ceremonies), a code from the authenticator app, or a recovery code."""
    from django_otp import login as otp_login

    from portal import second_factor

    if not second_factor.user_has_second_factor(user=request.user):
        return redirect("two-factor-setup")
    error = None
    if request.method == "POST":
        device = second_factor.second_factor_verify(user=request.user, code=request.POST.get("code", ""))
        if device is not None:
            otp_login(request, device)
            return redirect(_safe_next(request))
        error = _("That code is not valid. Enter the current code from your authenticator app, or one of your "
                  "recovery codes.")
        wait = second_factor.second_factor_wait_seconds(user=request.user)
        if wait:
            error += " " + _("After a wrong code the next one is checked only after %(seconds)s seconds.") % {
                "seconds": wait}
    return render(request, "portal/two_factor_verify.html", {
        "error": error, "next": request.POST.get("next") or request.GET.get("next", ""),
        "has_passkey": second_factor.passkeys_for_user(user=request.user).filter(confirmed=True).exists()},
        status=400 if error else 200)


@login_required
def passkeys(request: HttpRequest) -> HttpResponse:
    """A person's passkeys: register one (the browser's own dialog, through django-otp-webauthn's
    script), see each with its last use, rename, remove. Only a session that passed a second
    factor reaches this page (SecondFactorMiddleware for those who must have one; the
    registration endpoint checks it for everyone)."""
    from portal import second_factor

    return render(request, "portal/passkeys.html", {
        "passkeys": second_factor.passkeys_for_user(user=request.user),
        "verified": request.user.is_verified(),
        "name_max": second_factor.PASSKEY_NAME_MAX})


@login_required
@require_POST
def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    from portal import second_factor

    device = second_factor.passkeys_for_user(user=request.user).filter(pk=pk).first()
    if device is None:
        raise Http404("not found")
    # A blank name keeps the current one (right after registering: "Passkey 2").
    device = second_factor.passkey_rename(user=request.user, device_id=pk, name=request.POST.get("name", "")) or device
    messages.success(request, _("Your passkey “%(name)s” is saved.") % {"name": device.name})
    return redirect("passkeys")


@login_required
@require_POST
def passkey_remove(request: HttpRequest, pk: int) -> HttpResponse:
    from portal import second_factor

    device = second_factor.passkey_remove(user=request.user, device_id=pk)
    if device is None:
        raise Http404("not found")
    messages.success(request, _("The passkey “%(name)s” was removed; it can no longer be used to sign in.")
                     % {"name": device.name})
    return redirect("passkeys")


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    from portal.notifications import notification_mark_read
    from portal.selectors import notification_get_for_user

    notification = notification_get_for_user(user=request.user, pk=pk)
    notification_mark_read(user=request.user, notification=notification)
    return redirect("notification-list")


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    from django.contrib import messages
    from django.utils.translation import ngettext

    from portal.notifications import notifications_mark_all_read

    count = notifications_mark_all_read(user=request.user)
    messages.success(request, ngettext("%(count)d notification marked as read.",
                                       "%(count)d notifications marked as read.", count) % {"count": count})
    return redirect("notification-list")


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Per kind: e-mail immediately, in the daily digest or never; and the e-mails' language."""
    from django.contrib import messages
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    from portal.forms import NotificationPreferencesForm
    from portal.notifications import notification_preferences_for, notification_preferences_update, user_language

    form = NotificationPreferencesForm(request.POST or None, modes=notification_preferences_for(user=request.user),
                                       language=user_language(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            notification_preferences_update(user=request.user, email_modes=form.email_modes(),
                                            language=form.cleaned_data["language"])
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Notification settings saved."))
            return redirect("notification-settings")
    return render(request, "portal/notification_settings.html", {"form": form})


def form_apply(form, action):
    """Validate a posted form and call the service with its cleaned data; every problem stays ON
    THE FORM (a service's ``{field: [...]}`` error beside that field, any other as a form error),
    so the caller re-renders the page with the bound form and nothing the person typed is lost.
    ``form_post_apply`` turns errors into messages and the caller redirects, which empties the form:
    use this one for any form a person fills in by hand. Returns ``(True, result)`` or ``(False, None)``.
    A PermissionDenied from the service is not a mistake in the form: it propagates, and the person
    gets the 403 page (the caller re-renders invalid forms with status 400)."""
    from django.core.exceptions import ValidationError

    if not form.is_valid():
        return False, None
    try:
        return True, action(**form.cleaned_data)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            for message in exc.messages:
                form.add_error(None, message)
        return False, None


# --- error answers -----------------------------------------------------------------------------
# A URL under /api/ that matches no route (an id with a dot or a slash, a typo) is answered by Django,
# not DRF: API clients get JSON there too, the shape the schema documents for 400 and 404
# (portal.schema), and people get the KRDS error page.

def bad_request(request: HttpRequest, exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        return JsonResponse({"detail": _("Bad request.")}, status=400)
    from django.views.defaults import bad_request as page

    return page(request, exception)


def page_not_found(request: HttpRequest, exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        return JsonResponse({"detail": _("Not found.")}, status=404)
    from django.views.defaults import page_not_found as page

    return page(request, exception)

"""Portal pages: home, the audit trail, the workers view."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portal.models import AuditEvent, Role
from portal.selectors import audit_chain_verify, user_is_ministry, user_role, user_sees_everything


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if user_is_ministry(user=request.user):
        return redirect("dashboard")
    if user_role(user=request.user) == Role.VENDOR:
        return redirect("project-list")
    raise Http404("no role")


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit trail, read-only, for administrators, officers and auditors."""
    if not user_sees_everything(user=request.user):
        raise Http404("not found")
    events = AuditEvent.objects.all()
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = Paginator(events.order_by("-id"), 50).get_page(request.GET.get("page"))
    chain = audit_chain_verify() if request.GET.get("verify") == "1" else None
    return render(request, "portal/audit_log.html", {"page": page, "action": action, "chain": chain})




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


def form_apply(form, action):
    """Validate a posted form and call the service with its cleaned data; every problem stays ON
    THE FORM (a service's ``{field: [...]}`` error beside that field, any other as a form error),
    so the caller re-renders the page with the bound form and nothing the person typed is lost.
    ``form_post_apply`` turns errors into messages and the caller redirects, which empties the form:
    use this one for any form a person fills in by hand. Returns ``(True, result)`` or ``(False, None)``."""
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

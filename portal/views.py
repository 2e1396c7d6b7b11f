"""Portal pages: home, the audit trail, the workers view."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
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

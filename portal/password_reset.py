"""Forgotten passwords: Django's reset flow by e-mail, with the portal's rules around it.

Django does the cryptographic work (``PasswordResetTokenGenerator``: a token bound to the
password hash and last sign-in, so it dies once used or once the password changes, and after
``PASSWORD_RESET_TIMEOUT``) and the four pages (ask, "sent", choose, done). Here:

- the answer to "send me a link" is the same page whether or not the address belongs to anyone;
  only existing accounts get an e-mail, in the language they chose for e-mails;
- asking is budgeted per address asked about and per client address (DRF's cache-backed
  throttle, the same cache as the verification throttle), so the form cannot be used to flood
  someone's mailbox or to probe many addresses quickly; over budget, a 429 that says when to
  come back, counted the same whether or not the address exists;
- a request for an existing account and every completed reset are audit events (the trail is
  read by administrators and auditors only, so recording the first reveals nothing to the asker);
- a completed reset lifts the sign-in pause on that account (its owner just proved control of
  the mailbox, and the guesses it counted were against a password that no longer exists), not
  the pause on any client address; it never signs in, so the second factor is still asked for
  at the next sign-in, and it ends the account's other sessions (Django's session hash follows
  the password).

Invitations (``projects.services.vendor_member_invite``) use the same confirm page and token.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils import translation
from rest_framework.throttling import SimpleRateThrottle

from portal.services import audit_record
from portal.throttles import client_address


def _client_address(request) -> str:
    """The client address as django-axes sees it (settings.AXES_IPWARE_META_PRECEDENCE_ORDER), so
    a forged X-Forwarded-For gives no fresh budget unless the operator trusts that header."""
    return client_address(request)


class _ResetBudget(SimpleRateThrottle):
    """A per-key budget in Django's cache; ``key`` is set by the caller (not DRF's idea of a user)."""

    setting = ""

    def __init__(self, key: str):
        self.key = key
        super().__init__()

    def get_rate(self) -> str:
        return getattr(settings, self.setting)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.key}


class ResetBudgetPerAccount(_ResetBudget):
    """Links asked for one e-mail address (settings.PORTAL_PASSWORD_RESET_RATE_PER_ACCOUNT)."""

    scope = "password-reset-account"
    setting = "PORTAL_PASSWORD_RESET_RATE_PER_ACCOUNT"


class ResetBudgetPerClient(_ResetBudget):
    """Links asked from one client address (settings.PORTAL_PASSWORD_RESET_RATE_PER_CLIENT)."""

    scope = "password-reset-client"
    setting = "PORTAL_PASSWORD_RESET_RATE_PER_CLIENT"


def password_reset_allowed(*, request, email: str) -> tuple[bool, int | None]:
    """(allowed, seconds to wait): both budgets must have room. The address is kept in the cache
    only as a SHA-256 of its lower-cased form; every request counts, whether or not the address
    belongs to anyone, so the 429 tells nothing about accounts."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    waits = []
    for budget in (ResetBudgetPerClient(_client_address(request)), ResetBudgetPerAccount(digest)):
        if not budget.allow_request(request, None):
            waits.append(budget.wait() or 60)
    if waits:
        return False, int(max(waits)) + 1
    return True, None


class PortalPasswordResetForm(PasswordResetForm):
    """Django's form; each e-mail goes out in its recipient's language and is an audit event."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):
        user = context["user"]
        profile = getattr(user, "profile", None)
        language = getattr(profile, "language", "") or translation.get_language() or settings.LANGUAGE_CODE
        with translation.override(language):
            super().send_mail(subject_template_name, email_template_name, context, from_email, to_email,
                              html_email_template_name)
        audit_record(actor="anonymous", action="password.reset_requested", object_type="user",
                     object_id=user.pk, object_label=user.get_username(),
                     data={"ip_address": self.client_address})


class PortalPasswordResetView(auth_views.PasswordResetView):
    """Ask for a link: the same "sent" page for every address, within the budgets."""

    form_class = PortalPasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        allowed, wait = password_reset_allowed(request=self.request, email=form.cleaned_data["email"])
        if not allowed:
            minutes = max(1, (wait or 60) // 60)
            response = render(self.request, self.template_name, {"form": form, "throttled_minutes": minutes},
                              status=429)
            response["Retry-After"] = str(wait or 60)
            return response
        form.client_address = _client_address(self.request)
        # The link in the e-mail is built on the configured address of the portal, never on the
        # Host header the asker sent (registration/password_reset_email.txt).
        self.extra_email_context = {"portal_base_url": settings.PORTAL_BASE_URL}
        return super().form_valid(form)


class PortalPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Choose the new password from the link: audited, lifts the account's sign-in pause, and does
    not sign in (the next sign-in asks for the password and, where one is needed, the second factor)."""

    success_url = reverse_lazy("password_reset_complete")
    post_reset_login = False

    def form_valid(self, form):
        response = super().form_valid(form)
        from portal.signin import signin_pause_lift_after_reset

        lifted = signin_pause_lift_after_reset(user=form.user)
        audit_record(actor=form.user, action="password.reset_completed", object_type="user",
                     object_id=form.user.pk, object_label=form.user.get_username(),
                     data={"ip_address": _client_address(self.request), "signin_pause_lifted": lifted})
        return response


password_reset = PortalPasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view()
password_reset_confirm = PortalPasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view()

__all__ = ["password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete",
           "password_reset_allowed"]

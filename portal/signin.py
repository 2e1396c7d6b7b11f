"""Sign-in lockouts on the record: django-axes decides, the audit trail remembers.

django-axes (settings: AXES_*) counts failed sign-ins per account and per address and refuses
further attempts for a while. Here its lockouts and an administrator's unlocks become audit
events, so an auditor sees who was locked out, from where, and who lifted it.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete
from django.dispatch import receiver

from portal.services import audit_record


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out sign-in gets (429): what happened and what to do, the same whether the
    account exists or not."""
    from django.conf import settings
    from django.shortcuts import render

    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    response = render(request, "registration/locked_out.html", {"cooloff_minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


def _client_address(request) -> str:
    return str(getattr(request, "axes_ip_address", "") or request.META.get("REMOTE_ADDR", ""))[:64]


@receiver(user_locked_out, dispatch_uid="portal-signin-locked-out")
def signin_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    """One audit event per lockout: the name tried (which may not exist) and the address."""
    audit_record(actor="anonymous", action="signin.locked_out", object_type="signin",
                 object_id=(username or "")[:150], object_label=(username or "")[:150],
                 data={"username": (username or "")[:150], "ip_address": (ip_address or _client_address(request))})


@receiver(post_delete, sender=AccessAttempt, dispatch_uid="portal-signin-unlocked")
def signin_unlocked(sender, instance: AccessAttempt, **kwargs) -> None:
    """Deleting the attempts record lifts the lockout (admin, axes_reset_* commands): audited.
    Who did it is known to the admin's own log entry; here the event names the lifted lock."""
    if instance.failures_since_start < _failure_limit():
        return  # an ordinary reset after a successful sign-in, not a lifted lockout
    if getattr(instance, "_lifted_by_reset", False):
        return  # the owner's password reset (password.reset_completed says so)
    audit_record(actor="administrator", action="signin.unlocked", object_type="signin",
                 object_id=(instance.username or "")[:150], object_label=(instance.username or "")[:150],
                 data={"username": (instance.username or "")[:150], "ip_address": instance.ip_address or "",
                       "failures": instance.failures_since_start})


def _failure_limit() -> int:
    from django.conf import settings

    return int(settings.AXES_FAILURE_LIMIT)


# Failures lifted from an account by its owner's reset are kept under this name, which no account
# can have (Django's username validator allows no parentheses or spaces): axes sums failures per
# address over every name, so the guessing address stays paused while the account is free.
LIFTED_BY_RESET = "(lifted by password reset)"


def signin_pause_lift_after_reset(*, user) -> bool:
    """Free this account from the failed sign-ins counted against it, after its owner reset the
    password by e-mail; True when a pause was in force. The failures stay counted against the
    addresses they came from (re-filed under ``LIFTED_BY_RESET``), so a guessing address stays
    paused. The reset's own audit event says so, so ``signin_unlocked`` records no administrator's
    unlock here."""
    from django.db import transaction

    username = user.get_username()
    with transaction.atomic():
        attempts = list(AccessAttempt.objects.select_for_update().filter(username=username))
        paused = sum(a.failures_since_start for a in attempts) >= _failure_limit()
        for attempt in attempts:
            kept = AccessAttempt.objects.filter(username=LIFTED_BY_RESET, ip_address=attempt.ip_address,
                                                user_agent=attempt.user_agent).first()
            if kept is None:
                attempt.username = LIFTED_BY_RESET
                attempt.save(update_fields=["username"])
                continue
            kept.failures_since_start += attempt.failures_since_start
            kept.save(update_fields=["failures_since_start"])
            attempt._lifted_by_reset = True
            attempt.delete()
    return paused


@receiver(user_logged_in, dispatch_uid="portal-signin-idle-clock")
def signin_idle_clock_start(sender, request, user, **kwargs) -> None:
    """A sign-in starts the idle clock afresh (portal.middleware.IdleSessionMiddleware)."""
    from portal.middleware import IdleSessionMiddleware

    if request is not None and hasattr(request, "session"):
        IdleSessionMiddleware.session_start(request, user)

"""Notifications: who is told what happened, on the portal and by e-mail.

``notify`` is the one entry point the other rooms call, inside the transaction of the action
they record. It writes one ``Notification`` row per recipient (never the actor) and, once
that transaction commits, sends the e-mails of those who want them at once through a Celery
task (``portal.notification_email``, on the default queue). The row is the outbox: a broker
that refuses the task, or a mail server that refuses the message, never rolls back the
action, and the row says what was sent (``emailed_at``). The daily digest
(``portal.notification_digest``, beat) e-mails the rest, one message a person, and picks up
immediate e-mails the broker never took.

The text is rendered from the kind and its parameters in the reader's language, on the page
(the request's language) and in the e-mail (the recipient's ``Profile.language``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy as _, ngettext

from portal.models import Notification, NotificationPreference, Profile
from portal.templatetags.portal_text import shown_text

logger = logging.getLogger(__name__)

Kind = Notification.Kind
EmailMode = Notification.EmailMode

# Decisions and findings that wait on the reader arrive at once; the rest in the daily digest.
EMAIL_DEFAULTS: dict[str, str] = {
    Kind.SUBMISSION_RECEIVED: EmailMode.DIGEST,
    Kind.CHECKS_FINISHED: EmailMode.DIGEST,
    Kind.FINDING_RAISED: EmailMode.IMMEDIATELY,
    Kind.REPLY_RECEIVED: EmailMode.IMMEDIATELY,
    Kind.QUESTION_RECEIVED: EmailMode.IMMEDIATELY,
    Kind.FINDING_DECIDED: EmailMode.IMMEDIATELY,
    Kind.SUBMISSION_DECIDED: EmailMode.IMMEDIATELY,
    Kind.DOSSIER_ISSUED: EmailMode.DIGEST,
    Kind.MILESTONE_DUE: EmailMode.DIGEST,
    Kind.MILESTONE_OVERDUE: EmailMode.DIGEST,
    Kind.CHALLENGE_RECEIVED: EmailMode.IMMEDIATELY,
    Kind.CHALLENGE_FILED: EmailMode.IMMEDIATELY,
}

# One sentence per kind. Parameters whose name ends in ``_label`` hold an English msgid (a
# model choice's label, e.g. "Approved") and are translated when rendered, so the vocabulary
# stays the models' own. ``count`` picks the plural form.
_TEXTS = {
    Kind.SUBMISSION_RECEIVED: _("%(submission)s was submitted by %(vendor)s"),
    Kind.REPLY_RECEIVED: _("The vendor replied to a finding on %(submission)s: %(finding)s"),
    Kind.QUESTION_RECEIVED: _("A reviewer asked you about a finding on %(submission)s: %(finding)s"),
    Kind.FINDING_DECIDED: _("A reviewer decided a finding on %(submission)s (%(finding)s): %(decision_label)s"),
    Kind.SUBMISSION_DECIDED: _("%(submission)s was decided: %(decision_label)s"),
    Kind.DOSSIER_ISSUED: _("Dossier %(dossier)s of %(submission)s is issued and ready to download"),
    Kind.MILESTONE_DUE: _("Milestone “%(title)s” of %(project)s is due on %(due_on)s"),
    Kind.MILESTONE_OVERDUE: _("Milestone “%(title)s” of %(project)s is overdue (due on %(due_on)s)"),
    Kind.CHALLENGE_RECEIVED: _("Public challenge #%(challenge)s against %(project)s was accepted: reply by %(due_on)s"),
    Kind.CHALLENGE_FILED: _("Public challenge #%(challenge)s against %(project)s: %(event_label)s"),
}


class _Params(dict):
    """A parameter the text names but the row lacks reads as "?" instead of failing the page."""

    def __missing__(self, key):
        return "?"


def _number(values: dict, key: str) -> int:
    try:
        return int(values.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def notification_text(*, kind: str, params: dict) -> str:
    """The sentence of a notification in the active language."""
    values = _Params({key: (gettext(value) if key.endswith("_label") and isinstance(value, str) and value else value)
                      for key, value in (params or {}).items()})
    if kind == Kind.FINDING_RAISED:
        # Both forms literal in the call, so makemessages finds them.
        return ngettext("%(count)s finding raised on %(submission)s by the %(check_label)s check",
                        "%(count)s findings raised on %(submission)s by the %(check_label)s check",
                        _number(values, "count")) % values
    if kind == Kind.CHECKS_FINISHED:
        return ngettext("Every check of %(submission)s has ended: %(open_risks)s open risk to review",
                        "Every check of %(submission)s has ended: %(open_risks)s open risks to review",
                        _number(values, "open_risks")) % values
    if kind == Kind.CHALLENGE_RECEIVED and values.get("reminder") is True:
        # The beat reminder before the reply is due (compliance.services.challenges.challenge_reply_reminders).
        return gettext("Reminder: your reply to public challenge #%(challenge)s against %(project)s is due on "
                       "%(due_on)s") % values
    template = _TEXTS.get(kind)
    if template is None:
        return str(kind)
    return str(template) % values


def notification_absolute_url(*, url: str) -> str:
    """The link an e-mail carries: PORTAL_BASE_URL and the page's path."""
    return f"{settings.PORTAL_BASE_URL}{url if url.startswith('/') else '/' + url}"


def _json_params(params: dict) -> dict:
    """Numbers, booleans and text as they are; anything else (dates, lazy labels) as text."""
    return {str(k): (v if isinstance(v, (int, float, bool, str)) or v is None else str(v))
            for k, v in (params or {}).items()}


def _user_ids(recipients: Iterable) -> set[int]:
    return {getattr(r, "pk", r) for r in recipients if r is not None}


def notification_email_modes(*, user_ids: Iterable[int], kind: str) -> dict[int, str]:
    """Each user's e-mail choice for ``kind`` (their preference, else the default)."""
    user_ids = list(user_ids)
    chosen = dict(NotificationPreference.objects.filter(user_id__in=user_ids, kind=kind)
                  .values_list("user_id", "email"))
    return {pk: chosen.get(pk, EMAIL_DEFAULTS.get(kind, EmailMode.DIGEST)) for pk in user_ids}


def notification_preferences_for(*, user) -> dict[str, str]:
    """The user's e-mail choice for every kind (one query)."""
    chosen = dict(NotificationPreference.objects.filter(user=user).values_list("kind", "email"))
    return {kind: chosen.get(kind, EMAIL_DEFAULTS.get(kind, EmailMode.DIGEST)) for kind in Kind.values}


def notify(*, kind, recipients, url: str, params: dict, actor=None) -> list[Notification]:
    """Tell ``recipients`` (users or user ids) that ``kind`` happened, with a link to ``url``.

    One row per recipient however often they are listed; never the actor, never an inactive
    account. Call it inside the action's transaction: the rows commit with the action, and the
    immediate e-mails are handed to the broker only after it commits.
    """
    kind = Kind(kind)  # an unknown kind is a programming error: ValueError
    actor_id = getattr(actor, "pk", None)
    ids = _user_ids(recipients) - {actor_id}
    ids = set(get_user_model().objects.filter(pk__in=ids, is_active=True).values_list("pk", flat=True))
    if not ids:
        return []
    modes = notification_email_modes(user_ids=ids, kind=kind)
    params = _json_params(params)
    rows = Notification.objects.bulk_create([
        Notification(recipient_id=pk, kind=kind, params=params, url=url[:500], actor_id=actor_id,
                     email_mode=modes[pk])
        for pk in sorted(ids)
    ])
    immediate = [row.pk for row in rows if row.email_mode == EmailMode.IMMEDIATELY]
    if immediate:
        transaction.on_commit(lambda: notification_emails_dispatch(notification_ids=immediate), robust=True)
    return rows


# --- e-mail -------------------------------------------------------------------------------------

def notification_emails_dispatch(*, notification_ids: list[int]) -> int:
    """Hand each immediate e-mail to the broker. A broker that cannot take one is logged and
    the row stays unsent; the next digest run sends it (``notification_digest_send``).
    Returns how many were handed over."""
    import kombu.exceptions

    from portal.tasks import notification_email_task

    sent = 0
    for pk in notification_ids:
        try:
            notification_email_task.apply_async(args=[pk])
            sent += 1
        except (kombu.exceptions.OperationalError, ConnectionError, TimeoutError, OSError) as exc:
            logger.warning("could not queue the e-mail of notification %s (%s: %s); the digest run sends it",
                           pk, type(exc).__name__, exc)
    return sent


def user_language(user) -> str:
    profile = Profile.objects.filter(user_id=user.pk).only("language").first()
    return (profile.language if profile else "") or settings.LANGUAGE_CODE


def _email_message(*, user, notifications: list[Notification], digest: bool) -> EmailMultiAlternatives:
    """One message in the recipient's language: plain text with a simple HTML alternative."""
    with translation.override(user_language(user)):
        # Finding titles name vendor files: control and invisible characters made visible, as on pages.
        items = [{"text": shown_text(notification_text(kind=n.kind, params=n.params)),
                  "link": notification_absolute_url(url=n.url), "created_at": n.created_at}
                 for n in notifications]
        if digest:
            subject = ngettext("%(count)s notification from the governance portal",
                               "%(count)s notifications from the governance portal",
                               len(items)) % {"count": len(items)}
        else:
            subject = items[0]["text"]
        context = {"items": items, "digest": digest, "user": user,
                   "settings_link": notification_absolute_url(url="/notifications/settings/"),
                   "list_link": notification_absolute_url(url="/notifications/")}
        text = render_to_string("portal/email/notifications.txt", context)
        html = render_to_string("portal/email/notifications.html", context)
    # Header injection: a subject is one line.
    subject = " ".join(subject.split())[:200]
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL,
                                     to=[user.email])
    message.attach_alternative(html, "text/html")
    return message


def notification_email_send(*, notification_id: int) -> str:
    """Send one immediate e-mail. Safe to run twice: the first line claims the row (one
    conditional UPDATE); a failure gives the claim back and raises, so the task retries."""
    now = timezone.now()
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True,
                                          email_mode=EmailMode.IMMEDIATELY).update(emailed_at=now)
    if not claimed:
        return "nothing to send"
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    user = notification.recipient
    if not user.email or not user.is_active:
        return "no address"
    try:
        _email_message(user=user, notifications=[notification], digest=False).send()
    except Exception:
        Notification.objects.filter(pk=notification_id, emailed_at=now).update(emailed_at=None)
        logger.warning("e-mail of notification %s to user %s failed; it will be retried", notification_id,
                       user.pk, exc_info=True)
        raise
    return "sent"


# Immediate e-mails the broker never took are sent by the digest run once they are this old
# (a task in flight has long finished by then: one SMTP exchange, bounded by EMAIL_TIMEOUT).
UNSENT_IMMEDIATE_GRACE = timedelta(minutes=30)


def notification_digest_send() -> dict:
    """E-mail each person one message listing their unread digest notifications not e-mailed
    yet; then send immediate e-mails that never went out. One person's failing address does
    not stop the others: their rows stay unsent for the next run."""
    counts = {"digests": 0, "items": 0, "late_immediate": 0, "failed": 0}
    pending = Notification.objects.filter(email_mode=EmailMode.DIGEST, emailed_at__isnull=True, read_at__isnull=True)
    User = get_user_model()
    for user in User.objects.filter(pk__in=pending.values("recipient_id"), is_active=True).exclude(email=""):
        now = timezone.now()
        with transaction.atomic():
            rows = list(pending.filter(recipient=user).select_for_update().order_by("created_at", "id"))
            Notification.objects.filter(pk__in=[r.pk for r in rows]).update(emailed_at=now)
        if not rows:
            continue
        try:
            _email_message(user=user, notifications=rows, digest=True).send()
        except Exception:  # noqa: BLE001 - logged; the rows go back to the next run
            Notification.objects.filter(pk__in=[r.pk for r in rows], emailed_at=now).update(emailed_at=None)
            logger.warning("digest e-mail to user %s failed; its %s items wait for the next run", user.pk,
                           len(rows), exc_info=True)
            counts["failed"] += 1
            continue
        counts["digests"] += 1
        counts["items"] += len(rows)
    late = Notification.objects.filter(email_mode=EmailMode.IMMEDIATELY, emailed_at__isnull=True,
                                       created_at__lt=timezone.now() - UNSENT_IMMEDIATE_GRACE)
    for pk in list(late.values_list("pk", flat=True)):
        try:
            if notification_email_send(notification_id=pk) == "sent":
                counts["late_immediate"] += 1
        except Exception:  # noqa: BLE001 - logged in notification_email_send
            counts["failed"] += 1
    return counts


# --- the reader's actions -----------------------------------------------------------------------

def notification_mark_read(*, user, notification: Notification) -> Notification:
    """Mark one of the user's own notifications read (the caller fetched it through
    ``notification_get_for_user``, so it is theirs)."""
    if notification.recipient_id != user.pk:
        raise ValidationError(_("This notification is not yours."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())


def notification_preferences_update(*, user, email_modes: dict[str, str], language: str | None = None) -> None:
    """Save the user's e-mail choice per kind (and their language); unknown kinds or modes are refused."""
    for kind, mode in email_modes.items():
        if kind not in Kind.values or mode not in EmailMode.values:
            raise ValidationError(_("Choose immediately, daily digest or never for each kind."))
    if language is not None and language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("Choose a language the portal speaks.")})
    with transaction.atomic():
        for kind, mode in email_modes.items():
            NotificationPreference.objects.update_or_create(user=user, kind=kind, defaults={"email": mode})
        if language is not None:
            Profile.objects.filter(user=user).update(language=language)


def user_language_save(*, user, language: str) -> None:
    """The header's language switcher remembers the choice for the e-mails of a signed-in user."""
    if getattr(user, "is_authenticated", False) and language in dict(settings.LANGUAGES):
        Profile.objects.filter(user=user).update(language=language)

"""Celery tasks of the portal room: thin, named, safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.audit_checkpoint", acks_late=True, ignore_result=True)
def audit_checkpoint_task() -> int:
    """Beat: seal pending audit events and sign a checkpoint when the chain moved since the last one."""
    from portal.models import AuditCheckpoint
    from portal.services import audit_checkpoint_create

    return audit_checkpoint_create(reason=AuditCheckpoint.Reason.BEAT, only_if_changed=True).number


# Retried with backoff for about an hour (30 s, 60 s, ... capped at 15 min): a mail server down
# for a moment does not lose the message; after that the digest run sends it.
@shared_task(name="portal.notification_email", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=30, retry_backoff_max=900, retry_jitter=True, max_retries=6)
def notification_email_task(self, notification_id: int) -> str:
    from portal.notifications import notification_email_send

    return notification_email_send(notification_id=notification_id)


@shared_task(name="portal.notification_digest", acks_late=True, ignore_result=True)
def notification_digest_task() -> dict:
    """Beat, daily: one e-mail per person with their unread digest notifications."""
    from portal.notifications import notification_digest_send

    return notification_digest_send()

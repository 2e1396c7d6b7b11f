"""Celery tasks of the portal room: thin, named, safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.audit_checkpoint", acks_late=True, ignore_result=True)
def audit_checkpoint_task() -> int:
    """Beat: seal pending audit events and sign a checkpoint when the chain moved since the last one."""
    from portal.models import AuditCheckpoint
    from portal.services import audit_checkpoint_create

    return audit_checkpoint_create(reason=AuditCheckpoint.Reason.BEAT, only_if_changed=True).number

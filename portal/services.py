"""Writes owned by the portal room: people, organisations and the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from portal.models import AuditEvent, Organisation, Profile, Role

User = get_user_model()

GENESIS_HASH = "0" * 64
# Any constant works; it names the one lock that serialises appends to the chain.
_AUDIT_LOCK_KEY = 7_310_512


def organisation_group(organisation: Organisation) -> Group:
    """The guardian group through which an organisation's members hold object permissions."""
    group, _ = Group.objects.get_or_create(name=f"org:{organisation.pk}")
    return group


def user_create(
    *, username: str, password: str | None, organisation: Organisation, role: str, email: str = "",
    display_name: str = "", is_staff: bool | None = None,
) -> User:
    """Create a user with a profile; vendor members join their organisation's group."""
    with transaction.atomic():
        user = User(username=username, email=email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        # Staff (Django admin) for ministry administrators and officers only.
        user.is_staff = is_staff if is_staff is not None else role in {Role.ADMIN, Role.OFFICER}
        user.is_superuser = role == Role.ADMIN
        user.save()
        Profile.objects.create(user=user, organisation=organisation, role=role, display_name=display_name)
        if role == Role.VENDOR:
            user.groups.add(organisation_group(organisation))
    return user


def audit_record(
    *, actor, action: str, object_type: str, object_id: Any, object_label: str = "",
    submission_id: int | None = None, project_id: int | None = None, data: dict | None = None,
) -> AuditEvent:
    """Append one event to the hash chain.

    Appends are serialised (an advisory lock on PostgreSQL; SQLite's IMMEDIATE
    transactions already serialise writers) so two events never share a parent.
    """
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
        last = AuditEvent.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        event = AuditEvent(
            created_at=timezone.now(),
            actor=actor_obj,
            actor_label=actor_obj.get_username() if actor_obj else (actor if isinstance(actor, str) else "system"),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_label=object_label[:300],
            submission_id=submission_id,
            project_id=project_id,
            data=data or {},
            prev_hash=last or GENESIS_HASH,
        )
        event.entry_hash = event.compute_hash()
        event.save()
    return event

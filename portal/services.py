"""Writes owned by the portal room: people, organisations and the audit trail."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from portal.audit_chain import GENESIS_HASH
from portal.models import AuditCheckpoint, AuditEvent, Organisation, Profile, Role

User = get_user_model()

# Any constant works; it names the one lock that serialises sealing the chain.
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
    """Append one event to the audit trail, in the caller's transaction.

    The event is inserted unsealed and takes no lock: a caller's transaction may
    stay open for minutes (a check finishing, a worker hung inside it), and a lock
    taken here would be held until that transaction ends, stalling every other
    append (issue #11). It is chained by :func:`audit_chain_seal` after the caller
    commits, in a short transaction of its own; if the caller rolls back, the event
    never existed and leaves no hole in the chain. We did not append on a second
    connection instead: the event would then survive the caller's rollback (an
    audit entry for a decision never made), and on SQLite that second writer would
    wait for the caller's own write lock.
    """
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
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
    )
    event.save()
    _audit_chain_seal_after_commit()
    return event


def _audit_chain_seal_after_commit() -> None:
    """One seal per transaction, however many events it records (one seal chains them all).

    robust: the caller's work is committed already; a seal that fails (database gone)
    is logged, and the next seal (any later append, beat, a checkpoint, audit_verify)
    picks the event up. A callback dropped with a rolled-back savepoint is not in the
    list any more, so the next event registers it again.
    """
    if any(entry[1] is audit_chain_seal for entry in getattr(connection, "run_on_commit", ())):
        return
    transaction.on_commit(audit_chain_seal, robust=True)


def _audit_chain_lock() -> None:
    """Serialise sealers inside the current (short) transaction.

    PostgreSQL: an advisory lock released at commit. SQLite: the IMMEDIATE
    transaction already holds the database's single write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])


def _audit_chain_head() -> tuple[int, str, int | None]:
    """(position, hash, row id) of the newest sealed event, or the genesis."""
    head = (AuditEvent.objects.filter(seq__isnull=False).order_by("-seq")
            .values_list("seq", "entry_hash", "id").first())
    return head if head else (0, GENESIS_HASH, None)


# Rows sealed per transaction. A backlog of 1,500 events took 2.7 s to seal on SQLite on the
# shared 2-core dev machine (~1.8 ms a row, one fenced UPDATE each): 100 a transaction keeps
# each hold of the chain lock near 0.2 s even then. Normal traffic seals one to a few rows.
_SEAL_BATCH = 100


def _audit_chain_seal_batch() -> int:
    """Seal up to one batch of committed, unsealed events, in id order. Call under the lock."""
    seq, prev, _ = _audit_chain_head()
    pending = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[:_SEAL_BATCH])
    for event in pending:
        seq += 1
        event.seq, event.prev_hash = seq, prev
        event.entry_hash = event.compute_hash()
        if AuditEvent.objects.get_queryset()._seal(pk=event.pk, seq=seq, prev_hash=prev, entry_hash=event.entry_hash) != 1:
            raise RuntimeError(f"audit event {event.pk} was sealed by someone else while we held the chain lock")
        prev = event.entry_hash
    return len(pending)


def audit_chain_seal() -> int:
    """Chain every committed, unsealed event; returns how many were sealed.

    Each batch is its own short transaction holding the chain lock only for the
    seal itself. Events are chained in the order they become visible (committed),
    which is why the position is ``seq``, not the row id: an event inserted early
    by a long transaction is chained after those committed before it.
    """
    total = 0
    while True:
        with transaction.atomic():
            _audit_chain_lock()
            sealed = _audit_chain_seal_batch()
        total += sealed
        if sealed < _SEAL_BATCH:
            return total


def audit_checkpoint_create(*, reason: str, identity=None, only_if_changed: bool = False) -> AuditCheckpoint:
    """Seal pending events, then sign "the chain holds N events ending in H" and store it.

    ``identity``: the portal's signing identity (loaded from settings when not
    given, generating the demo pair at first start as dossiers do).
    ``only_if_changed`` (beat): return the latest checkpoint when no event was
    added since, rather than sign the same head every hour.
    """
    from django.conf import settings

    from portal.audit_chain import checkpoint_payload
    from portal.signing import cms_detached_sign, signing_identity_from_settings

    if reason not in AuditCheckpoint.Reason.values:
        raise ValueError(f"checkpoint reason must be one of {', '.join(AuditCheckpoint.Reason.values)}")
    identity = identity or signing_identity_from_settings(settings=settings)
    audit_chain_seal()
    with transaction.atomic():
        # Under the chain lock, so the head cannot move and two checkpoints never share a number;
        # signing takes ~5 ms (RSA-3072), a negligible hold.
        _audit_chain_lock()
        _audit_chain_seal_batch()
        count, head_hash, head_id = _audit_chain_head()
        latest = AuditCheckpoint.objects.order_by("-number").first()
        if only_if_changed and latest is not None and latest.event_count == count and latest.head_hash == head_hash:
            return latest
        checkpoint = AuditCheckpoint(
            number=(latest.number + 1) if latest else 1, created_at=timezone.now(), reason=reason,
            event_count=count, head_event_id=head_id, head_hash=head_hash,
            signer_fingerprint=identity.fingerprint_sha256, certificate_pem=identity.cert_pem.decode(),
        )
        signature = cms_detached_sign(data=checkpoint_payload(checkpoint.signed_fields()), identity=identity)
        checkpoint.signature = base64.b64encode(signature).decode()
        checkpoint.save()
    return checkpoint


def saved_filter_save(*, user, page: str, name: str, querystring: str):
    """Save (or, under a name the user already used on this page, replace) a filter of a list page.

    Not an audit event: a saved filter is a personal bookmark that grants and changes nothing.
    """
    from django.core.exceptions import ValidationError
    from django.http import QueryDict
    from django.utils.translation import gettext as _

    from portal.listing import querystring_filters
    from portal.models import SavedFilter

    if not getattr(user, "is_authenticated", False):
        raise ValidationError(_("Log in to save filters."))
    if page not in SavedFilter.Page.values:
        raise ValidationError({"page": _("This page has no saved filters.")})
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the filter a name.")})
    if len(name) > SavedFilter._meta.get_field("name").max_length:
        raise ValidationError({"name": _("Use a name of at most 80 characters.")})
    # Parsed and written again: what is stored is a querystring of filters, whatever was posted.
    querystring = querystring_filters(QueryDict(querystring or ""))
    if len(querystring) > SavedFilter._meta.get_field("querystring").max_length:
        raise ValidationError({"querystring": _("This filter is too long to save.")})
    saved, _created = SavedFilter.objects.update_or_create(user=user, page=page, name=name,
                                                           defaults={"querystring": querystring})
    return saved


def saved_filter_delete(*, user, saved_filter) -> None:
    """Delete one of the user's own saved filters (the selector already refused anyone else's)."""
    if saved_filter.user_id != user.pk:
        raise PermissionError("a saved filter belongs to its owner")
    saved_filter.delete()

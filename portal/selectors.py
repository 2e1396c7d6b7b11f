"""Reads owned by the portal room."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from portal.models import MINISTRY_ROLES, MINISTRY_WIDE_ROLES, AuditEvent, Role


def user_role(*, user) -> str | None:
    """The user's role, or None for anonymous users and users without a profile."""
    if not getattr(user, "is_authenticated", False):
        return None
    profile = getattr(user, "profile", None)
    return profile.role if profile else None


def user_is_ministry(*, user) -> bool:
    return user_role(user=user) in MINISTRY_ROLES


def user_sees_everything(*, user) -> bool:
    """Administrators, programme officers and auditors see every programme and project."""
    return user_role(user=user) in MINISTRY_WIDE_ROLES


def user_can_manage(*, user) -> bool:
    """Administrators and programme officers create and change the registry."""
    return user_role(user=user) in {Role.ADMIN, Role.OFFICER}


@dataclass
class ChainReport:
    """What walking the sealed chain in position order found.

    ``events`` counts sealed entries; ``hashes_at`` maps each asked position
    (``seq``) to the entry hash found there (for comparing with checkpoints); ``reasons`` is
    empty when every link and hash holds.
    """

    ok: bool
    events: int
    head_hash: str
    head_event_id: int | None
    first_bad_id: int | None
    reasons: list[str] = field(default_factory=list)
    unsealed: int = 0
    hashes_at: dict[int, str] = field(default_factory=dict)
    head_seq: int = 0  # position of the newest sealed entry (equals ``events`` when nothing was removed)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "chain intact"

    def to_dict(self) -> dict:
        return {"ok": self.ok, "events": self.events, "head_hash": self.head_hash,
                "head_event_id": self.head_event_id, "first_bad_id": self.first_bad_id,
                "unsealed": self.unsealed, "reasons": list(self.reasons)}


def audit_chain_verify(*, positions: Iterable[int] = ()) -> ChainReport:
    """Walk the sealed chain by position; report the first entry whose link or hash is wrong.

    Keeps walking after a break so the count and the hashes at ``positions``
    (checkpoints' event counts) are still reported.
    """
    from portal.audit_chain import GENESIS_HASH

    wanted = set(positions)
    hashes_at: dict[int, str] = {}
    if 0 in wanted:
        hashes_at[0] = GENESIS_HASH
    prev, count, head_id, head_seq = GENESIS_HASH, 0, None, 0
    newest_version = 1
    first_bad: int | None = None
    reasons: list[str] = []
    for event in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").iterator(chunk_size=2000):
        count += 1
        if first_bad is None:
            if event.seq != count or event.prev_hash != prev:
                first_bad = event.pk
                reasons.append(f"entry {event.pk} (position {event.seq}) does not follow the entry before it "
                               "(an entry was removed or reordered)")
            elif event.compute_hash() != event.entry_hash:
                first_bad = event.pk
                reasons.append(f"entry {event.pk} (position {event.seq}) was altered after it was written")
            elif event.hash_version < newest_version:
                # Old-scheme rows only ever precede new ones (the migration); one after is a downgrade
                # to a scheme that does not cover the actor id.
                first_bad = event.pk
                reasons.append(f"entry {event.pk} (position {event.seq}) claims hash version {event.hash_version} "
                               f"after entries of version {newest_version} (rewritten under the old scheme)")
        newest_version = max(newest_version, event.hash_version)
        if event.seq in wanted:
            hashes_at[event.seq] = event.entry_hash
        prev, head_id, head_seq = event.entry_hash, event.pk, event.seq
    unsealed = AuditEvent.objects.filter(seq__isnull=True).count()
    return ChainReport(first_bad is None, count, prev, head_id, first_bad, reasons, unsealed, hashes_at, head_seq)


# --- notifications ------------------------------------------------------------------------------

def notifications_for(*, user):
    """The user's own notifications, newest first; nobody else's, ever."""
    from portal.models import Notification

    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    return Notification.objects.filter(recipient=user)


def notification_get_for_user(*, user, pk):
    """One of the user's notifications, or Http404 for missing, someone else's and malformed ids alike."""
    from django.http import Http404

    try:
        return notifications_for(user=user).get(pk=pk)
    except (ValueError, TypeError, notifications_for(user=user).model.DoesNotExist):
        raise Http404("not found") from None


def notification_unread_count(*, user) -> int:
    """The header's count: one indexed COUNT (recipient, read_at)."""
    return notifications_for(user=user).filter(read_at__isnull=True).count()
def saved_filters_for(*, user, page: str):
    """The user's own saved filters of one list page, by name."""
    from portal.models import SavedFilter

    if not getattr(user, "is_authenticated", False):
        return SavedFilter.objects.none()
    return SavedFilter.objects.filter(user=user, page=page).order_by("name", "id")


def saved_filter_get_for_user(*, user, pk):
    """One of the user's own saved filters; anyone else's, a missing one and a malformed id are the same 404."""
    from django.http import Http404

    from portal.models import SavedFilter

    if not getattr(user, "is_authenticated", False):
        raise Http404("not found")
    try:
        return SavedFilter.objects.get(user=user, pk=pk)
    except (SavedFilter.DoesNotExist, ValueError, TypeError):
        raise Http404("not found") from None

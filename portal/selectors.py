"""Reads owned by the portal room."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_bad_id: int | None
    reason: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "first_bad_id": self.first_bad_id, "reason": self.reason}


def audit_chain_verify() -> ChainReport:
    """Walk the chain in insertion order; report the first entry whose link or hash is wrong."""
    from portal.services import GENESIS_HASH

    prev = GENESIS_HASH
    count = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        count += 1
        if event.prev_hash != prev:
            return ChainReport(False, count, event.pk, f"entry {event.pk} does not follow the entry before it "
                                                       "(an entry was removed or reordered)")
        if event.compute_hash() != event.entry_hash:
            return ChainReport(False, count, event.pk, f"entry {event.pk} was altered after it was written")
        prev = event.entry_hash
    return ChainReport(True, count, None, "chain intact")

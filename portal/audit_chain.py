"""What the audit chain's hashes and the checkpoints' signatures cover: plain Python, no Django.

Kept apart from the models so the migration that re-hashed the old rows, the
verifier and a witness's own script all compute the same bytes. A scheme, once
released, never changes: a new one gets a new version number.

Version 1 (rows written before checkpoints existed) covered the actor's label but
not the actor's id, so pointing an event at another user went unnoticed. Version 2
covers every column that says who did what to which object, when, plus the
event's row id and its position in the chain (``seq``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64
HASH_VERSION = 2
CHECKPOINT_SCHEMA = "sovereign-ai-portal/audit-checkpoint/1"
# The fields of a checkpoint its signature covers, in the export as in the database.
CHECKPOINT_SIGNED_FIELDS = ("schema", "number", "created_at", "reason", "event_count", "head_event_id", "head_hash")


def _canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def utc_iso(value: dt.datetime) -> str:
    # PostgreSQL and SQLite both hand back aware UTC datetimes (USE_TZ); normalising
    # anyway keeps a hash independent of the connection's time zone.
    return value.astimezone(dt.timezone.utc).isoformat()


def event_canonical_v1(row: dict[str, Any]) -> bytes:
    """Version 1: the bytes rows written before version 2 were hashed over (no actor id)."""
    return _canonical_json({
        "created_at": row["created_at"].isoformat(),
        "actor": row["actor_label"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "object_label": row["object_label"],
        "submission_id": row["submission_id"],
        "project_id": row["project_id"],
        "data": row["data"],
    })


def event_canonical_v2(row: dict[str, Any]) -> bytes:
    """Version 2: every field that says who did what, plus the row id and chain position."""
    return _canonical_json({
        "v": 2,
        "id": row["id"],
        "seq": row["seq"],
        "created_at": utc_iso(row["created_at"]),
        "actor_id": row["actor_id"],
        "actor_label": row["actor_label"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "object_label": row["object_label"],
        "submission_id": row["submission_id"],
        "project_id": row["project_id"],
        "data": row["data"],
    })


_CANONICAL = {1: event_canonical_v1, 2: event_canonical_v2}


def event_hash(*, row: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over the previous entry's hash and this entry's canonical bytes, per its version."""
    canonical = _CANONICAL.get(row["hash_version"])
    if canonical is None:
        raise ValueError(f"unknown audit hash version {row['hash_version']!r}")
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(row)).hexdigest()


def checkpoint_payload(fields: dict[str, Any]) -> bytes:
    """The exact bytes a checkpoint's signature covers (canonical JSON of the signed fields)."""
    return _canonical_json({name: fields[name] for name in CHECKPOINT_SIGNED_FIELDS})

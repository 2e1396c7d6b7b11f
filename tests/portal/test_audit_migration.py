"""The migration to hash version 2: an intact old chain is re-hashed (actor id covered from then
on), a broken one keeps its old hashes so audit_verify still shows where it broke."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portal.audit_chain import GENESIS_HASH, event_canonical_v1
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify

pytestmark = pytest.mark.django_db

MIGRATION = "0002_audit_chain_seal_and_checkpoints"


def _insert_version_1_chain(count: int) -> list[int]:
    """Rows as the portal wrote them before this migration: v1 hashes, no position."""
    prev = GENESIS_HASH
    start = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)
    with connection.cursor() as cursor:
        for i in range(count):
            row = {"created_at": start + dt.timedelta(minutes=i), "actor_label": "officer", "action": "project.create",
                   "object_type": "project", "object_id": str(i), "object_label": f"Project {i}",
                   "submission_id": None, "project_id": i, "data": {"n": i}}
            entry = hashlib.sha256(prev.encode() + b"\n" + event_canonical_v1(row)).hexdigest()
            cursor.execute(
                "INSERT INTO portal_auditevent (created_at, actor_label, action, object_type, object_id, object_label,"
                " submission_id, project_id, data, prev_hash, entry_hash, hash_version) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1)",
                [row["created_at"], row["actor_label"], row["action"], row["object_type"], row["object_id"],
                 row["object_label"], None, i, json.dumps(row["data"]), prev, entry])
            prev = entry
    return list(AuditEvent.objects.order_by("id").values_list("id", flat=True))


def _run_migration_data_step() -> None:
    """The migration's RunPython, with the historical models it runs with."""
    module = importlib.import_module(f"portal.migrations.{MIGRATION}")
    state_apps = MigrationExecutor(connection).loader.project_state(("portal", MIGRATION)).apps
    module.rehash_under_v2(state_apps, None)


def test_an_intact_old_chain_is_rehashed_and_then_covers_the_actor_id(world):
    # `world` wrote v2 events; start from an empty log as before the migration.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent")
    ids = _insert_version_1_chain(4)
    _run_migration_data_step()
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.pk for e in events] == ids and [e.seq for e in events] == [1, 2, 3, 4]
    assert {e.hash_version for e in events} == {2}
    assert audit_chain_verify().ok
    with connection.cursor() as cursor:
        cursor.execute("UPDATE portal_auditevent SET actor_id = %s WHERE id = %s", [world.auditor.pk, ids[1]])
    report = audit_chain_verify()
    assert not report.ok and report.first_bad_id == ids[1]


def test_a_broken_old_chain_keeps_its_old_hashes_and_still_shows_the_break(db):
    ids = _insert_version_1_chain(4)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE portal_auditevent SET object_label = %s WHERE id = %s", ["tampered", ids[2]])
    _run_migration_data_step()
    assert set(AuditEvent.objects.values_list("hash_version", flat=True)) == {1}
    report = audit_chain_verify()
    assert not report.ok and report.first_bad_id == ids[2]
    assert "altered" in report.reasons[0]

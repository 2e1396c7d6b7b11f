"""Issue #11: a transaction held open (a hung worker) must not hold up everybody else's audit appends.

Two real transactions on two real connections (threads). On PostgreSQL the
append of the second must go through, sealed, while the first is still open;
``lock_timeout`` turns "waits for the first" into an error instead of a hang, so
the assertion is about an outcome, not a duration.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from portal.services import audit_record

pytestmark = pytest.mark.django_db(transaction=True)


class HeldTransaction(threading.Thread):
    """Records an audit event inside a transaction, then stays inside it until released."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.recorded = threading.Event()
        self.release = threading.Event()
        self.event_id: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.event_id = audit_record(actor="worker", action="check.succeeded", object_type="check_run",
                                             object_id=1).pk
                self.recorded.set()
                self.release.wait(120)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
            self.recorded.set()
        finally:
            connection.close()


def test_an_open_transaction_does_not_hold_up_other_appends(world):
    if connection.vendor != "postgresql":
        # SQLite has one writer at a time by design: every transaction is IMMEDIATE (settings),
        # so a second append waits for the database itself, not for a lock of ours.
        assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        return
    held = HeldTransaction()
    held.start()
    try:
        assert held.recorded.wait(60) and held.error is None, held.error
        with connection.cursor() as cursor:
            # Any wait on a lock the held transaction owns becomes an error after 3 s.
            cursor.execute("SET lock_timeout = '3s'")
        try:
            mine = audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=2)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        mine.refresh_from_db()
        assert mine.seq is not None and mine.entry_hash, "committed and chained while the other transaction is open"
    finally:
        held.release.set()
        held.join(60)
    assert held.error is None, held.error
    theirs = AuditEvent.objects.get(pk=held.event_id)
    assert theirs.pk < mine.pk, "the held transaction inserted first"
    assert theirs.seq == mine.seq + 1, "but it is chained after, in commit order"
    report = audit_chain_verify()
    assert report.ok and report.unsealed == 0, report.reasons


def test_events_are_chained_in_commit_order_without_holes(world):
    """On both databases: an event committed in an outer transaction is sealed after it commits."""
    with transaction.atomic():
        first = audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=1)
        assert AuditEvent.objects.get(pk=first.pk).seq is None, "not chained before its transaction commits"
    second = audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=2)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.seq is not None and second.seq == first.seq + 1
    assert second.prev_hash == first.entry_hash
    assert audit_chain_verify().ok


def test_an_event_after_a_rolled_back_savepoint_is_still_chained(world):
    """The seal registered inside a savepoint dies with it; the next event must register its own."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=1)
                raise RuntimeError("the decision failed")
        except RuntimeError:
            pass
        kept = audit_record(actor=world.reviewer, action="finding.reply", object_type="finding", object_id=1)
    kept.refresh_from_db()
    assert kept.seq is not None, "sealed after commit without waiting for beat"
    assert not AuditEvent.objects.filter(action="finding.decide").exists()
    report = audit_chain_verify()
    assert report.ok and report.unsealed == 0

"""The database misbehaving (issue #11): a process hung inside a transaction holds a run's row
lock and the audit log's append lock. On PostgreSQL the server ends such a session after
``idle_in_transaction_session_timeout`` and everyone else carries on; SQLite cannot end another
process's transaction, so there a writer waits the busy timeout and then fails clearly.
Each backend runs its own variant: the suite runs on both."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.db import connection

from compliance.models import CheckRun
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from tests.compliance.test_pipeline import _all_runs_finished, wait_for
from tests.conftest import ROOT, _worker_env
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# A portal process that hangs inside its transaction, holding a check run's row lock and an audit
# event not yet sealed (on SQLite, the write lock), until a line arrives on stdin; then it says
# whether its session survived.
STALLED = r"""
import sys, django
django.setup()
from django.db import transaction
from compliance.models import CheckRun
from portal.services import audit_record
run_id = int(sys.argv[1])
try:
    with transaction.atomic():
        CheckRun.objects.select_for_update().get(pk=run_id)
        audit_record(actor="stalled", action="test.stall", object_type="check_run", object_id=run_id)
        from django.db import connection
        pid = ""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
        print("holding", pid, flush=True)
        sys.stdin.readline()
        CheckRun.objects.filter(pk=run_id).count()
        print("alive", flush=True)
        transaction.set_rollback(True)
except Exception as exc:
    print("ended:", type(exc).__name__, exc, flush=True)
"""

# Another portal process appending to the audit log.
APPEND = r"""
import django
django.setup()
from portal.services import audit_record
try:
    audit_record(actor="probe", action="test.probe", object_type="probe", object_id=1)
    print("appended", flush=True)
except Exception as exc:
    print("failed:", type(exc).__name__, exc, flush=True)
"""


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def _portal_python(code: str, *args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def test_a_stalled_transaction_does_not_stop_other_checks_or_the_audit_log(celery_worker):
    world = build_world()
    held = signed_submission(world=world, files={"a.json": ("config", b'{"a": 1}')}, submit=True)
    wait_for(lambda: _all_runs_finished(held.pk), what="the first submission's checks")
    held_run = CheckRun.objects.get(submission=held)
    env = _worker_env()
    env.update(PORTAL_PROCESS="worker", PORTAL_DB_IDLE_IN_TRANSACTION_TIMEOUT_S="3")
    stalled = _portal_python(STALLED, str(held_run.pk), env=env, stdin=subprocess.PIPE)
    try:
        holding = stalled.stdout.readline().split()
        assert holding[0] == "holding"
        if connection.vendor == "postgresql":
            # Audit events are sealed after commit, so appending never waits on the stalled
            # transaction: the other submission goes ahead at once, while the server ends the
            # stalled session after 3 s idle in its transaction.
            other = signed_submission(world=world, files={"b.json": ("config", b'{"b": 2}')}, submit=True)
        else:
            # SQLite: nobody can end the stalled writer; another writer waits its busy timeout
            # (1 s here) and fails with a message that says why, rather than hanging.
            probe = _portal_python(APPEND, env={**env, "PORTAL_SQLITE_BUSY_TIMEOUT_S": "1"})
            out, _ = probe.communicate(timeout=60)
            assert "failed: OperationalError database is locked" in out, out
            stalled.stdin.write("\n")
            stalled.stdin.flush()
            assert stalled.stdout.readline().strip() == "alive"
            other = signed_submission(world=world, files={"b.json": ("config", b'{"b": 2}')}, submit=True)
        # The other submission's checks run to their end (each writes its audit entry).
        wait_for(lambda: _all_runs_finished(other.pk), what="the other submission's checks")
        if connection.vendor == "postgresql":
            backend = int(holding[1])
            wait_for(lambda: not _backend_alive(backend), timeout=60,
                     what="the server to end the session idle in its transaction")
            assert stalled.poll() is None, "the stalled process is still there; only its session was ended"
            stalled.stdin.write("\n")
            stalled.stdin.flush()
            said = stalled.stdout.read()
            assert said.startswith("ended:") and "idle-in-transaction timeout" in said, said
    finally:
        stalled.kill()
        stalled.wait()
    assert set(CheckRun.objects.filter(submission=other).values_list("state", flat=True)) == {"succeeded"}
    # The stalled transaction left nothing in the chain, and the chain holds.
    assert not AuditEvent.objects.filter(action="test.stall").exists()
    assert AuditEvent.objects.filter(action="check.succeeded", submission_id=other.pk).exists()
    assert audit_chain_verify().ok


SETTINGS = r"""
import json, sys
sys.argv = sys.argv[1:] or ["gunicorn"]
import portal  # what `celery -A portal` imports first
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({"kind": settings.PROCESS_KIND, "options": db.get("OPTIONS", {})}, default=str))
"""


def test_workers_and_web_processes_get_their_own_database_timeouts(db):
    """A `celery worker` waits longer on locks and statements than a web thread should; both
    bound a transaction left idle. SQLite's busy timeout comes from its setting."""
    env = {**_worker_env(), "PORTAL_SQLITE_BUSY_TIMEOUT_S": "7"}
    env.pop("PORTAL_PROCESS", None)

    def settings_of(*argv: str) -> dict:
        out = subprocess.run([sys.executable, "-c", SETTINGS, *argv], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    web = settings_of()
    worker = settings_of(f"{sys.prefix}/bin/celery", "-A", "portal", "worker", "-Q", "light")
    assert (web["kind"], worker["kind"]) == ("web", "worker")
    if connection.vendor == "postgresql":
        assert web["options"]["options"] == ("-c statement_timeout=30000 -c lock_timeout=10000 "
                                             "-c idle_in_transaction_session_timeout=30000")
        assert worker["options"]["options"] == ("-c statement_timeout=300000 -c lock_timeout=30000 "
                                                "-c idle_in_transaction_session_timeout=60000")
    else:
        assert web["options"]["timeout"] == worker["options"]["timeout"] == 7.0

"""The broker misbehaving (issue #11): submitting never fails because the broker is down, the
reconciler sends what it could not take once it is back, and the reconciler keeps its interval
on a queue of its own while every check slot is busy. Real brokers, real workers: a private
redis-server we kill, and the embedded SQLAlchemy broker pointed at a file it cannot open."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import kombu.pools
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.broker import broker_backoff_reset
from compliance.models import CheckRun
from compliance.services.runs import UNSENT_STEP, check_runs_reconcile
from projects.models import Artifact
from tests.compliance.test_pipeline import _all_runs_finished, _big_sparse_artifact, wait_for
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FILES = {"a.json": ("config", b'{"a": 1}'), "b.json": ("config", b'{"b": 2}')}


@contextmanager
def broker_for_this_process(monkeypatch, url: str):
    """Point this test process's Celery app (the 'web' side) at another broker. The
    environment wins over settings in Celery, so it is set there too (and workers started
    meanwhile inherit it)."""
    from portal.celery import app

    def drop_pooled_connections() -> None:
        # kombu keeps connection and producer pools per broker URL in the process, and Celery
        # keeps a reference to them; both are emptied (app.close() leaves the producer pool,
        # which kept publishing to the old broker; closing only Celery's pool left kombu's
        # producer pool pointing at a closed one).
        kombu.pools.reset()
        app._after_fork()

    monkeypatch.setenv("CELERY_BROKER_URL", url)
    if url.startswith("sqla+"):  # the suite's Redis options would reach SQLAlchemy's create_engine
        monkeypatch.setitem(app.conf, "broker_transport_options",
                            {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2})
    drop_pooled_connections()
    try:
        yield
    finally:
        monkeypatch.undo()
        drop_pooled_connections()
        broker_backoff_reset()


class RedisServer:
    """A redis-server of our own on a private port, without persistence, to kill at will."""

    def __init__(self, directory: Path):
        self.directory = directory
        with socket.socket() as probe:  # a free port; redis takes it a moment later
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                                        text=True, check=False).stdout.strip() == "PONG", timeout=20, what="redis to start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def test_submitting_while_redis_is_down_is_accepted_and_checked_once_it_is_back(
        private_redis, monkeypatch, settings, tmp_path):
    from tests.conftest import WorkerProcess

    with broker_for_this_process(monkeypatch, private_redis.url):
        worker = WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)
        worker.start()
        try:
            world = build_world()
            submission = signed_submission(world=world, files=FILES)
            private_redis.kill()  # as in the issue: Redis unreachable while a vendor submits
            api = APIClient()
            api.force_authenticate(world.vendor_user)
            answer = api.post(f"/api/submissions/{submission.pk}/submit/")
            # Accepted (not the 500 of issue #11), and the vendor is told when checks start.
            assert answer.status_code == 200, answer.content
            assert answer.json()["status"] == "checking"
            assert "workers are available" in answer.json()["message"]
            runs = CheckRun.objects.filter(submission=submission)
            assert runs.count() == 2
            assert all(r.state == CheckRun.State.QUEUED and r.sent_at is None and r.step == UNSENT_STEP
                       for r in runs)
            # Submitting again says what happened rather than accepting twice.
            again = api.post(f"/api/submissions/{submission.pk}/submit/")
            assert again.status_code == 400 and "already submitted" in again.content.decode()

            private_redis.start()  # back, empty: nothing of this submission was ever in it
            wait_for(lambda: _all_runs_finished(submission.pk), timeout=150,
                     what="the reconciler to send the runs once Redis is back")
        finally:
            worker.stop()
    runs = CheckRun.objects.filter(submission=submission)
    assert set(runs.values_list("state", flat=True)) == {CheckRun.State.SUCCEEDED}
    assert all(r.sent_at is not None and r.attempts == 1 for r in runs)
    assert set(Artifact.objects.filter(submission=submission).values_list("status", flat=True)) == {"accepted"}


def test_an_embedded_broker_it_cannot_open_does_not_fail_the_submission(celery_worker, monkeypatch, tmp_path):
    """The SQLAlchemy broker's file unopenable (its folder gone, a full or read-only disk)."""
    world = build_world()
    submission = signed_submission(world=world, files=FILES)
    api = APIClient()
    api.force_authenticate(world.vendor_user)
    with broker_for_this_process(monkeypatch, f"sqla+sqlite:///{tmp_path / 'gone' / 'broker.sqlite3'}"):
        answer = api.post(f"/api/submissions/{submission.pk}/submit/")
    assert answer.status_code == 200, answer.content
    assert "workers are available" in answer.json()["message"]
    runs = CheckRun.objects.filter(submission=submission)
    assert runs.count() == 2 and not runs.exclude(state=CheckRun.State.QUEUED, sent_at=None).exists()
    # The worker's reconciler, on the working broker, sends them (after its 10 s grace for sends
    # in flight) and they run.
    wait_for(lambda: _all_runs_finished(submission.pk), timeout=120, what="the reconciler to send the runs")
    assert set(runs.values_list("state", flat=True)) == {CheckRun.State.SUCCEEDED}


def test_the_reconciler_keeps_its_interval_while_every_check_slot_is_busy(celery_worker, tmp_path):
    """Issue #11: on the shared queue the reconciler ran 37-43 s late behind long checks. With
    both slots of the check worker busy, a run whose message was lost is re-sent by the control
    worker before either long check ends."""
    from projects import services

    world = build_world()
    world.programme.max_artifact_bytes = 16 * 1024**3
    world.programme.save()
    # Two submissions of one 6 GiB sparse file: intake hashes it for several seconds (about
    # 12 s on this machine), one check per worker slot.
    big = _big_sparse_artifact(world, tmp_path, 6 * 1024**3)
    first = big.submission
    services.declaration_sign(user=world.vendor_user, submission=first, signatory_name="Signer", attest=True)
    services.submission_submit(user=world.vendor_user, submission=first)
    second = services.submission_open(user=world.vendor_user, project=world.project, carry_over=False)
    Artifact.objects.create(submission=second, kind="other", original_name="big.bin", file=big.file.name,
                            size=big.size, sha256=big.sha256, uploaded_by=world.vendor_user)
    services.declaration_sign(user=world.vendor_user, submission=second, signatory_name="Signer", attest=True)
    services.submission_submit(user=world.vendor_user, submission=second)
    long_runs = CheckRun.objects.filter(submission__in=[first, second])
    assert long_runs.count() == 2
    wait_for(lambda: long_runs.filter(state="running").count() == 2, what="both long checks to start")

    # Only now, with no slot free, a run whose message the broker lost: queued an hour ago.
    lost = signed_submission(world=world, files={"c.json": ("config", b'{"c": 3}')})
    artifact = lost.artifacts.get()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    stale = CheckRun.objects.create(artifact=artifact, submission=lost, check_name="intake",
                                    queued_at=an_hour_ago, sent_at=an_hour_ago, step="waiting for a worker")
    # The first re-send's time (its new queued_at); it is re-sent every 10 s until a slot frees.
    resent_at = wait_for(lambda: CheckRun.objects.filter(pk=stale.pk, step__startswith="re-sent")
                         .values_list("queued_at", flat=True).first(), what="the reconciler to re-send the lost run")
    wait_for(lambda: all(_all_runs_finished(s.pk) for s in (first, second, lost)), timeout=180,
             what="every check to end")
    stale.refresh_from_db()
    ends = [run.finished_at for run in long_runs]
    # The reconciler re-sent it while both long checks still ran.
    assert all(resent_at < end for end in ends), (resent_at, ends)
    assert stale.state == CheckRun.State.SUCCEEDED
    assert set(long_runs.values_list("state", flat=True)) == {CheckRun.State.SUCCEEDED}



def test_the_reconciler_never_waits_on_a_row_a_check_holds(transactional_db):
    """Issue #11: two reconcile tasks waited 11-16 s on a locked row. PostgreSQL: a run whose row
    another session holds (as a check's finish does) is skipped this tick and requeued the next.
    SQLite has no row locks; in WAL mode a session reading the run does not hold up the
    reconciler's writes either."""
    import sqlite3

    import psycopg
    from django.db import connection

    world = build_world()
    submission = signed_submission(world=world, files=FILES)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    held, free = (CheckRun.objects.create(
        artifact=artifact, submission=submission, check_name="intake", state=CheckRun.State.RUNNING, attempts=1,
        queued_at=an_hour_ago, sent_at=an_hour_ago, started_at=an_hour_ago, lease_expires_at=an_hour_ago)
        for artifact in submission.artifacts.order_by("pk"))
    params = connection.get_connection_params()
    if connection.vendor == "postgresql":
        other = psycopg.connect(**{k: v for k, v in params.items() if k not in ("cursor_factory", "context")})
        other.execute("SELECT id FROM compliance_checkrun WHERE id = %s FOR UPDATE", [held.pk])
    else:
        other = sqlite3.connect(params["database"])
        other.execute("BEGIN")
        other.execute("SELECT id FROM compliance_checkrun WHERE id = ?", [held.pk]).fetchall()
    try:
        counts = check_runs_reconcile()  # would wait (then fail on the 10 s lock timeout) without skip_locked
        free.refresh_from_db()
        held.refresh_from_db()
        assert free.state == CheckRun.State.QUEUED and free.step == "requeued: its worker stopped reporting"
        if connection.vendor == "postgresql":
            assert counts["requeued"] == 1 and held.state == CheckRun.State.RUNNING  # next tick's
        else:
            assert counts["requeued"] == 2 and held.state == CheckRun.State.QUEUED
    finally:
        other.rollback()
        other.close()
    check_runs_reconcile()
    held.refresh_from_db()
    assert held.state == CheckRun.State.QUEUED


def test_requesting_a_dossier_while_the_broker_is_unreachable_is_accepted(transactional_db, monkeypatch, tmp_path):
    from compliance.models import Dossier

    world = build_world()
    submission = signed_submission(world=world, submit=True)
    reviewer = APIClient()
    reviewer.force_authenticate(world.reviewer)
    with broker_for_this_process(monkeypatch, f"sqla+sqlite:///{tmp_path / 'gone' / 'broker.sqlite3'}"):
        response = reviewer.post("/api/dossiers/", {"submission": submission.pk, "lang": "en"}, format="json")
    assert response.status_code == 201, response.content
    assert Dossier.objects.get(pk=response.json()["id"]).state == Dossier.State.QUEUED

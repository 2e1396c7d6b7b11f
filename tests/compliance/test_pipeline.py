"""The check pipeline end to end, with a real Celery worker process (never eager mode)."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from compliance.models import CheckRun, Finding
from compliance.services.runs import check_run_execute
from compliance.tasks import run_check_task
from projects.models import Artifact, Submission
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class _Evil:
    def __reduce__(self):  # the bytes name os.system; they are written, never loaded
        return (os.system, ("echo pwned",))


def _all_runs_finished(submission_id: int) -> bool:
    runs = CheckRun.objects.filter(submission_id=submission_id)
    return runs.exists() and not runs.exclude(state__in=CheckRun.FINISHED_STATES).exists()


def test_submitting_runs_intake_on_every_artifact_and_records_findings(celery_worker):
    world = build_world()
    evil = pickle.dumps(_Evil(), protocol=2)
    submission = signed_submission(world=world, files={
        "config.json": ("config", b'{"model_type": "llama", "hidden_size": 64}'),
        "model.bin": ("weights", evil),
    }, submit=True)
    wait_for(lambda: _all_runs_finished(submission.pk), what="intake runs to finish")
    runs = CheckRun.objects.filter(submission=submission, check_name="intake")
    assert runs.count() == 2
    assert set(runs.values_list("state", flat=True)) == {CheckRun.State.SUCCEEDED}
    assert all(r.worker.startswith("test-") for r in runs)
    pickled = Artifact.objects.get(submission=submission, original_name="model.bin")
    config = Artifact.objects.get(submission=submission, original_name="config.json")
    assert config.status == Artifact.Status.ACCEPTED and config.detected_kind == "json"
    assert pickled.status == Artifact.Status.REJECTED
    codes = set(Finding.objects.filter(check_run__artifact=pickled).values_list("code", flat=True))
    assert any("pickle" in code for code in codes), codes
    critical = Finding.objects.filter(check_run__artifact=pickled, severity="critical")
    assert critical.exists(), "a pickle that imports os.system is critical"
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED


def test_a_second_delivery_changes_nothing(celery_worker):
    world = build_world()
    submission = signed_submission(world=world, files={"model.bin": ("weights", pickle.dumps(_Evil()))},
                                   submit=True)
    wait_for(lambda: _all_runs_finished(submission.pk), what="the first run")
    run = CheckRun.objects.get(submission=submission)
    findings_before = list(Finding.objects.filter(check_run=run).values_list("pk", "code"))
    finished_before = run.finished_at
    # Deliver the same task twice more through the broker, and once more in-process.
    run_check_task.apply_async(args=[run.pk], queue="light")
    run_check_task.apply_async(args=[run.pk], queue="light")
    assert check_run_execute(run_id=run.pk, worker="duplicate") == "not claimable"
    time.sleep(4)  # both deliveries have long been consumed by then (polling interval 0.5 s)
    run.refresh_from_db()
    assert run.attempts == 1
    assert run.finished_at == finished_before
    assert list(Finding.objects.filter(check_run=run).values_list("pk", "code")) == findings_before


def _big_sparse_artifact(world, tmp_path: Path, size: int) -> Artifact:
    """An artifact whose file is large but sparse on disk, so intake takes seconds of reading."""
    from projects import services

    submission = services.submission_open(user=world.vendor_user, project=world.project)
    name = default_storage.generate_filename("artifacts/big.bin")
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    import hashlib

    digest = hashlib.sha256()
    zeros = bytes(8 * 1024 * 1024)
    for _ in range(size // len(zeros)):
        digest.update(zeros)
    return Artifact.objects.create(submission=submission, kind="other", original_name="big.bin", file=name,
                                   size=size, sha256=digest.hexdigest(), uploaded_by=world.vendor_user)


@pytest.mark.fault
def test_a_worker_killed_mid_check_costs_a_delay_not_the_check(celery_worker, tmp_path):
    world = build_world()
    world.programme.max_artifact_bytes = 8 * 1024**3  # intake refuses to read past the programme's cap
    world.programme.save()
    # 4 GiB of zeros: hashing takes seconds, long enough to kill the worker mid-read; and
    # longer than the 8 s lease, so the lease keeper must renew it or the run would be retaken.
    artifact = _big_sparse_artifact(world, tmp_path, 4 * 1024**3)
    submission = artifact.submission
    from projects import services

    services.declaration_sign(user=world.vendor_user, submission=submission, signatory_name="Signer", attest=True)
    services.submission_submit(user=world.vendor_user, submission=submission)
    run = wait_for(lambda: CheckRun.objects.filter(submission=submission, state="running").first(),
                   what="the run to start")
    celery_worker.stop(sig=signal.SIGKILL)
    run.refresh_from_db()
    assert run.state == CheckRun.State.RUNNING and run.attempts == 1
    celery_worker.start()
    wait_for(lambda: _all_runs_finished(submission.pk), timeout=180, what="the run to finish after restart")
    run.refresh_from_db()
    assert run.state == CheckRun.State.SUCCEEDED, run.error
    # At least the killed attempt and the one that finished (a loaded machine may add a retake).
    assert run.attempts >= 2
    # Exactly one set of findings: the killed attempt left none behind.
    codes = list(Finding.objects.filter(check_run=run).values_list("code", flat=True))
    assert len(codes) == len(set(codes))


@pytest.mark.fault
def test_a_broker_that_lost_its_queue_costs_a_delay_not_the_checks(transactional_db, settings, tmp_path):
    """Redis restarted without persistence (or any broker that dropped its messages): the runs
    stay queued in the database, and the reconciler re-sends them once they are stale."""
    from tests.conftest import WorkerProcess, _purge_broker

    world = build_world()
    submission = signed_submission(world=world, files={
        "a.json": ("config", b'{"a": 1}'), "b.json": ("config", b'{"b": 2}')}, submit=True)
    assert CheckRun.objects.filter(submission=submission, state="queued").count() == 2
    _purge_broker()  # every message is gone, as after a restart with an empty queue
    worker = WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)
    worker.start()
    try:
        # Stale after 10 s (PORTAL_CHECK_QUEUED_STALE_S in tests), reconciled every 2 s.
        wait_for(lambda: _all_runs_finished(submission.pk), timeout=120, what="the reconciler to re-send")
    finally:
        worker.stop()
    runs = CheckRun.objects.filter(submission=submission)
    # Without the reconciler these runs would stay queued for ever: no message names them any more.
    assert set(runs.values_list("state", flat=True)) == {CheckRun.State.SUCCEEDED}
    assert all(r.attempts == 1 for r in runs), "each ran once"

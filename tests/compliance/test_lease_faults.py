"""Leased work under faults, with a real Celery worker (issue #11): dossiers whose worker is
killed mid-render, and a check re-run while its older execution is still running."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest

from compliance.models import CheckRun, Dossier, Finding
from compliance.services.runs import check_run_rerun
from portal.models import AuditEvent
from projects.models import Artifact
from tests.compliance.test_pipeline import wait_for
from tests.conftest import WorkerProcess, _purge_broker
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _worker(settings, tmp_path, monkeypatch, **env) -> WorkerProcess:
    """A worker started with test-only settings in its environment (the fixture's has none)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _purge_broker()
    return WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)


def _signing_pair(settings, tmp_path, monkeypatch) -> None:
    """One signing pair made here, before the worker's two processes could race to make it."""
    from compliance.dossier.signing import signing_identity_from_settings

    settings.DOSSIER_SIGNING_KEY = str(tmp_path / "sign" / "key.pem")
    settings.DOSSIER_SIGNING_CERT = str(tmp_path / "sign" / "cert.pem")
    settings.DOSSIER_SIGNING_GENERATE = True
    signing_identity_from_settings(settings=settings)
    monkeypatch.setenv("DOSSIER_SIGNING_KEY", settings.DOSSIER_SIGNING_KEY)
    monkeypatch.setenv("DOSSIER_SIGNING_CERT", settings.DOSSIER_SIGNING_CERT)


def test_dossiers_survive_a_worker_killed_mid_render(settings, tmp_path, monkeypatch):
    from compliance.dossiers import dossier_request, dossier_verify_bytes

    _signing_pair(settings, tmp_path, monkeypatch)
    world = build_world()
    submissions = [signed_submission(world=world, submit=True) for _ in range(20)]
    requested = [dossier_request(user=world.officer, submission=s) for s in submissions]
    numbers = {d.pk: d.number for d in requested}
    # 2 s before each render (which itself takes 1-4 s here): the dossiers seen rendering are
    # still rendering when the kill lands. 20 renders on 2 slots take about a minute.
    worker = _worker(settings, tmp_path, monkeypatch, PORTAL_TEST_DOSSIER_RENDER_DELAY_S="2")
    worker.start()
    try:
        wait_for(lambda: Dossier.objects.filter(state=Dossier.State.RENDERING).exists(), timeout=120,
                 what="a dossier to start rendering")
        worker.stop(sig=signal.SIGKILL)
        killed = set(Dossier.objects.filter(state=Dossier.State.RENDERING).values_list("pk", flat=True))
        assert killed, "the worker was killed while dossiers were rendering"
        worker.start()
        wait_for(lambda: not Dossier.objects.exclude(state=Dossier.State.READY).exclude(
            state=Dossier.State.FAILED).exists(), timeout=300, what="every dossier to end")
    finally:
        worker.stop()

    dossiers = {d.pk: d for d in Dossier.objects.all()}
    assert {pk: d.state for pk, d in dossiers.items()} == {pk: Dossier.State.READY for pk in numbers}, \
        {d.number: d.error for d in dossiers.values() if d.error}
    # Every dossier kept the number it was given at request: none renumbered, none added.
    assert {pk: d.number for pk, d in dossiers.items()} == numbers
    # The killed renders were taken over by a later attempt rather than left 'rendering'.
    assert all(dossiers[pk].attempts >= 2 for pk in killed)
    # One stored file per dossier, named by its number, holding the bytes whose hash was recorded.
    stored = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file() and p.suffix == ".pdf")
    assert sorted(p.name for p in stored) == sorted(f"{n}.pdf" for n in numbers.values())
    for path in stored:
        dossier = next(d for d in dossiers.values() if f"{d.number}.pdf" == path.name)
        assert dossier.file.name.endswith(path.name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == dossier.sha256
    # Issued exactly once each in the audit trail.
    issued = list(AuditEvent.objects.filter(action="dossier.issue").values_list("object_id", flat=True))
    assert sorted(issued) == sorted(str(pk) for pk in numbers)
    # And a killed-and-retaken one verifies: issued by the portal, unaltered, validly signed.
    retaken = dossiers[min(killed)]
    verified = dossier_verify_bytes(pdf_bytes=retaken.file.open("rb").read())
    assert verified["ok"] and verified["dossier_number"] == retaken.number


def test_a_rerun_supersedes_the_running_attempt(settings, tmp_path, monkeypatch):
    """The older execution finishes after the re-run was asked for: its outcome (judged under
    the old size cap) is refused, and the stored findings are the re-run's."""
    world = build_world()
    submission = signed_submission(world=world, files={"config.json": ("config", b'{"hidden_size": 64}')})
    # A cap below the file's size: intake rejects it as too large.
    world.programme.max_artifact_bytes = 4
    world.programme.save()
    # Every check holds its outcome 5 s before recording it, so the first attempt is still
    # running when the officer raises the cap and re-runs it.
    worker = _worker(settings, tmp_path, monkeypatch, PORTAL_TEST_CHECK_DELAY_S="5")
    worker.start()
    try:
        from projects import services

        services.submission_submit(user=world.vendor_user, submission=submission)
        # 'recording findings' is reported after the engine's verdict: attempt 1 judged under the cap.
        run = wait_for(lambda: CheckRun.objects.filter(submission=submission, check_name="intake", attempts=1,
                                                       state=CheckRun.State.RUNNING,
                                                       step="recording findings").first(),
                       what="the first attempt to reach its verdict")
        world.programme.max_artifact_bytes = 10 * 1024 * 1024
        world.programme.save()
        check_run_rerun(user=world.officer, run=run)
        wait_for(lambda: CheckRun.objects.filter(pk=run.pk, state__in=CheckRun.FINISHED_STATES).exists()
                 and AuditEvent.objects.filter(action="check.superseded", object_id=str(run.pk)).exists(),
                 timeout=120, what="both attempts to end")
    finally:
        worker.stop()

    run.refresh_from_db()
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "accepted", (run.verdict, run.error)
    assert run.attempts == 2, "attempt numbers only grow: the re-run is attempt 2"
    codes = set(Finding.objects.filter(check_run=run).values_list("code", flat=True))
    assert "artifact_too_large" not in codes, "the superseded attempt's findings were stored"
    assert Artifact.objects.get(submission=submission).status == Artifact.Status.ACCEPTED
    events = {e.action: e for e in AuditEvent.objects.filter(object_type="check_run", object_id=str(run.pk))}
    assert events["check.rerun"].data["superseded_attempt"] == 1
    assert events["check.superseded"].data["attempt"] == 1
    assert events["check.superseded"].data["discarded_outcome"] == "succeeded: rejected"
    finished = AuditEvent.objects.filter(object_type="check_run", object_id=str(run.pk), action="check.succeeded")
    assert [e.data["attempt"] for e in finished] == [2]

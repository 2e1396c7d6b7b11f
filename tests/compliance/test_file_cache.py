"""Issue #16 in the portal: the per-file result cache in the database, shared by every worker,
and a licence check that splits its files over two processes inside a real Celery worker."""

from __future__ import annotations

import importlib.util
import io
import threading
import zipfile
from pathlib import Path

import pytest
from django.db import connections

from compliance.models import CheckRun, FileResult, Finding
from compliance.services.filecache import DbFileResultCache, file_result_cache
from tests.conftest import WorkerProcess, _purge_broker
from tests.factories import build_world, check_runs_wait, signed_submission


@pytest.mark.django_db(transaction=True)
def test_two_workers_storing_the_same_results_at_once_both_succeed():
    """Two workers scanning the same files at the same moment: neither fails, one row per file."""
    values = {f"{i:064x}": {"license_expression": "MIT", "i": i} for i in range(1200)}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            barrier.wait()
            DbFileResultCache().put_many(namespace="licenses-test", values=values)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=put) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert FileResult.objects.filter(namespace="licenses-test").count() == 1200
    # Read back in batches (500 keys a query): every key, and nothing of another namespace.
    cache = DbFileResultCache()
    assert cache.get_many(namespace="licenses-test", keys=list(values)) == values
    assert cache.get_many(namespace="licenses-other", keys=list(values)) == {}


def test_the_cache_setting_turns_the_shared_cache_off(settings):
    settings.PORTAL_RESULT_CACHE = False
    assert file_result_cache() is None
    settings.PORTAL_RESULT_CACHE = True
    assert isinstance(file_result_cache(), DbFileResultCache)


def _source_archive() -> bytes:
    """A real source tree: requests' and urllib3's modules with their licences (Apache-2.0, MIT)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for package in ("requests", "urllib3"):
            root = Path(importlib.util.find_spec(package).origin).parent
            for path in sorted(root.rglob("*.py"))[:40]:
                archive.writestr(f"src/{package}/{path.relative_to(root)}", path.read_bytes())
            licence = sorted(root.parent.glob(f"{package}-*.dist-info/licenses/LICENSE*"))[0]
            archive.writestr(f"src/{package}/LICENSE", licence.read_bytes())
    return buffer.getvalue()


def _licence_run(submission_id: int) -> CheckRun:
    return CheckRun.objects.get(submission_id=submission_id, check_name="licenses")


def _findings(run: CheckRun) -> list[tuple]:
    return sorted((f.code, f.severity, f.title, str(f.evidence)) for f in Finding.objects.filter(check_run=run))


def _rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return next(int(line.split()[1]) // 1024 for line in rollup if line.startswith("Rss:"))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_licence_check_uses_two_processes_inside_the_worker_and_finds_the_same(settings, tmp_path, monkeypatch):
    """Inside a Celery prefork child (a daemonic process), the licence check forks 2 scan
    processes; the same archive checked in one process with no cache gives the same findings."""
    world = build_world()
    archive = _source_archive()
    files = len(zipfile.ZipFile(io.BytesIO(archive)).namelist())

    def worker(**env: str) -> WorkerProcess:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        _purge_broker()
        process = WorkerProcess(tmp_path / f"worker-{env['PORTAL_SCAN_PROCESSES']}.log", settings.MEDIA_ROOT,
                                settings.UPLOAD_PARTIAL_DIR)
        process.start(timeout=180)  # the preloading worker loads ScanCode's index before "ready"
        return process

    process = worker(PORTAL_SCAN_PROCESSES="2", PORTAL_RESULT_CACHE="1", PORTAL_PRELOAD_LICENCE_INDEX="1")
    try:
        # As deployed: the main process loaded the licence index before forking its pool, so the
        # children (and their scan processes) share it rather than each loading their own 0.8 GB.
        assert b"licence index preloaded for the pool" in process.log_path.read_bytes()
        # The loaded index is about 0.8 GB resident in the main process (a bare worker: about 0.15).
        assert _rss_mb(process.proc.pid) > 500
        split = signed_submission(world=world, files={"src.zip": ("source_archive", archive)}, submit=True)
        check_runs_wait(split.pk, timeout=300)
    finally:
        process.stop()
    split_run = _licence_run(split.pk)
    assert split_run.state == CheckRun.State.SUCCEEDED, split_run.summary
    assert split_run.summary["stats"]["processes"] == 2
    assert split_run.summary["cache"]["files"] == files
    assert split_run.summary["cache"]["reused"] + split_run.summary["cache"]["computed"] == files
    assert split_run.summary["cache"]["engine_version"].startswith("licenses-engine-")
    assert FileResult.objects.filter(namespace=split_run.summary["cache"]["engine_version"]).exists()

    process = worker(PORTAL_SCAN_PROCESSES="1", PORTAL_RESULT_CACHE="0", PORTAL_PRELOAD_LICENCE_INDEX="0")
    try:
        single = signed_submission(world=world, files={"src.zip": ("source_archive", archive)}, submit=True)
        check_runs_wait(single.pk, timeout=300)
    finally:
        process.stop()
    single_run = _licence_run(single.pk)
    assert single_run.state == CheckRun.State.SUCCEEDED and single_run.reused_from_id is None
    assert single_run.summary["stats"]["processes"] == 1 and "cache" not in single_run.summary
    assert single_run.verdict == split_run.verdict
    assert single_run.summary["inventory"] == split_run.summary["inventory"]
    assert single_run.summary["files"] == split_run.summary["files"]
    assert _findings(single_run) == _findings(split_run) != []

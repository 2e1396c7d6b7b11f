"""Issue #16, memory: the scanning processes of a whole host are capped (`PORTAL_SCAN_SLOTS`), and
each is replaced once it holds too much (`PORTAL_SCAN_RECYCLE_MB`), inside a real Celery worker.

What a user relies on: licence checks on a worker never run more scanning processes than the
host has slots, alone or two at once (uncapped, each forks PORTAL_SCAN_PROCESSES), and the answers
are the answers of one process."""

from __future__ import annotations

import importlib.util
import io
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

from compliance.models import CheckRun
from tests.conftest import WorkerProcess, _purge_broker
from tests.factories import build_world, check_runs_wait, signed_submission


def _archive(packages: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for package in packages:
            root = Path(importlib.util.find_spec(package).origin).parent
            for path in sorted(root.rglob("*.py"))[:80]:
                archive.writestr(f"src/{package}/{path.relative_to(root)}", path.read_bytes())
            for licence in sorted(root.parent.glob(f"{package}-*.dist-info/licenses/LICENSE*"))[:1]:
                archive.writestr(f"src/{package}/LICENSE", licence.read_bytes())
    return buffer.getvalue()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _scanners(root: int) -> set[int]:
    """The scanning processes (named `scan:...` by compliance.engine.parallel) under a worker."""
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        todo += _children(pid)
        try:
            # A scanner that has exited but is not reaped yet (a zombie) holds no slot and no memory.
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in ("Z", "X") and Path(f"/proc/{pid}/comm").read_text().startswith("scan:"):
                found.add(pid)
        except (OSError, IndexError):
            pass
    return found


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_licence_checks_at_once_share_the_hosts_scan_slots(settings, tmp_path, monkeypatch):
    world = build_world()
    archives = {"a.zip": _archive(("requests", "urllib3", "pygments")),
                "b.zip": _archive(("django", "idna", "jinja2"))}
    for name, value in {"PORTAL_SCAN_PROCESSES": "2", "PORTAL_SCAN_SLOTS": "1",
                        "PORTAL_SCAN_SLOTS_DIR": str(tmp_path / "slots"), "PORTAL_SCAN_RECYCLE_MB": "1",
                        "PORTAL_RESULT_CACHE": "0", "PORTAL_PRELOAD_LICENCE_INDEX": "1"}.items():
        monkeypatch.setenv(name, value)
    _purge_broker()
    process = WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)
    process.start(timeout=180)
    most, seen, stop = [0], set(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = _scanners(process.proc.pid)
            seen.update(now)
            most[0] = max(most[0], len(now))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        submission = signed_submission(world=world, files={name: ("source_archive", data)
                                                           for name, data in archives.items()}, submit=True)
        check_runs_wait(submission.pk, timeout=400)
    finally:
        stop.set()
        watcher.join()
        process.stop()
    runs = list(CheckRun.objects.filter(submission_id=submission.pk, check_name="licenses")
                .select_related("artifact").order_by("artifact__original_name"))
    assert [r.state for r in runs] == [CheckRun.State.SUCCEEDED] * 2, [r.summary for r in runs]
    # Each check asked for 2 processes and the host has 1 slot: one scanner at a time, whether the
    # two checks overlapped or not (uncapped, each check alone runs 2).
    assert most[0] == 1
    assert [r.summary["stats"]["processes"] for r in runs] == [1, 1]
    # Scanners retire at their first memory reading (1 MiB allowed, read after the first chunk); one that retires
    # with files left is replaced (one that retires on its last chunk is not: the scan is done), and
    # the answers below, every file with the inventory of one process, show nothing was lost.
    assert sum(r.summary["stats"].get("processes_retired", 0) for r in runs) >= 1
    assert len(seen) >= 2
    # The answers of one process, with no slots and no replacement.
    from compliance.checks import artifact_members
    from compliance.engine.licenses import license_scan

    for run in runs:
        path = tmp_path / run.artifact.original_name
        path.write_bytes(archives[run.artifact.original_name])
        alone = license_scan(source=artifact_members(path=path, original_name=path.name), source_name=path.name,
                             processes=1).to_dict()
        assert run.summary["inventory"] == alone["inventory"]
        assert run.summary["files_total"] == len(alone["files"])
    assert "MIT" in str(runs[0].summary["inventory"]) and "Apache-2.0" in str(runs[0].summary["inventory"])
    assert os.listdir(tmp_path / "slots")  # the slots were taken where the setting says

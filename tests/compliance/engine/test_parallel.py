"""Issue #16: one check's files split across processes, and per-file results cached.

What a user relies on: a scan gives the same answer, in the same order, whatever the number of
processes and whether results came from the cache; a big archive is not read into memory ahead
of the workers; a worker killed mid-scan leaves no process behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from compliance.engine import parallel
from compliance.engine.filecache import MemoryFileResultCache, content_key
from compliance.engine.parallel import FileHandler, RunStats, file_results

ROOT = Path(__file__).resolve().parents[3]


class Upper(FileHandler):
    """A handler that says which process computed each file."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, path: str, data: bytes) -> dict:
        self.count += 1
        if data == b"boom":
            raise ValueError(f"cannot read {path}")
        return {"path": path, "upper": data.decode().upper(), "pid": os.getpid()}

    def stats(self) -> dict:
        return {"handled": self.count}


def _items(n: int) -> list[tuple[str, bytes]]:
    return [(f"dir{i % 7}/file{i}.txt", f"content {i % 50}".encode()) for i in range(n)]


@pytest.mark.parametrize("processes", [1, 2])
def test_results_come_back_in_stream_order_whatever_the_processes(processes):
    items = _items(500)
    run = RunStats()
    out = list(file_results(items=items, factory=Upper, processes=processes, run=run))
    assert [(p, d) for p, d, _r, _reused in out] == items
    assert [r["upper"] for _p, _d, r, _reused in out] == [d.decode().upper() for _p, d in items]
    assert run.files == run.computed == 500 and run.reused == 0
    assert run.processes == processes and run.handler == {"handled": 500}
    pids = {r["pid"] for _p, _d, r, _reused in out}
    if processes == 2:
        # Both workers took chunks, and neither is this process; each says what CPU it used.
        assert len(pids) == 2 and os.getpid() not in pids
        assert len(run.worker_cpu_seconds) == 2
    else:
        assert pids == {os.getpid()}


def test_a_cached_result_is_reused_and_equals_a_fresh_one():
    cache = MemoryFileResultCache()
    items = _items(200)
    key = lambda path, data: content_key(data=data, name=path)  # noqa: E731
    first_run, second_run = RunStats(), RunStats()
    first = list(file_results(items=items, factory=Upper, processes=2, cache=cache, namespace="t1",
                              key=key, run=first_run))
    second = list(file_results(items=items, factory=Upper, processes=2, cache=cache, namespace="t1",
                               key=key, run=second_run))
    assert [r for *_, r, _ in first] == [r for *_, r, _ in second]
    assert first_run.cache_summary() == {"files": 200, "reused": 0, "computed": 200, "engine_version": "t1"}
    assert second_run.cache_summary() == {"files": 200, "reused": 200, "computed": 0, "engine_version": "t1"}
    # Nothing to compute: no process was started.
    assert second_run.processes == 1 and all(reused for *_, reused in second)
    # Another namespace (a new engine version) reads none of it.
    third_run = RunStats()
    list(file_results(items=items, factory=Upper, processes=1, cache=cache, namespace="t2", key=key, run=third_run))
    assert third_run.reused == 0


def test_a_file_that_fails_in_a_worker_fails_the_scan_with_its_reason():
    items = _items(100)
    items[70] = ("bad/file.txt", b"boom")
    with pytest.raises(RuntimeError, match="cannot read bad/file.txt"):
        list(file_results(items=items, factory=Upper, processes=2))


def test_the_stream_is_not_read_far_ahead_of_the_workers():
    """A 50,000-file archive must not be held in memory: the parent reads at most the chunks in flight."""
    read = {"n": 0}
    consumed = 0
    most_ahead = 0

    def stream():
        for i in range(3000):
            read["n"] += 1
            yield f"f{i}.txt", b"x" * 100

    for _item in file_results(items=stream(), factory=Upper, processes=2):
        consumed += 1
        most_ahead = max(most_ahead, read["n"] - consumed)
    assert consumed == 3000
    bound = (2 * parallel.HELD_CHUNKS_PER_PROCESS + 1) * parallel.CHUNK_FILES
    assert most_ahead <= bound


def test_killing_the_scanning_process_leaves_no_worker_behind(tmp_path):
    """A worker child killed mid-scan (hard time limit, OOM, operator): its scan processes go too."""
    script = tmp_path / "scan.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from compliance.engine.parallel import FileHandler, file_results

        class Slow(FileHandler):
            def __call__(self, path, data):
                time.sleep(0.5)
                return {}

        items = ((f"f{i}", b"x") for i in range(100000))
        for _ in file_results(items=items, factory=Slow, processes=2):
            pass
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        children: list[int] = []
        deadline = time.monotonic() + 30
        while len(children) < 2 and time.monotonic() < deadline:
            children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
            time.sleep(0.1)
        assert len(children) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in children if _running(pid)]
        time.sleep(0.1)
    assert alive == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie is dead, waiting for init to reap it


def _site_package_files(package: str, limit: int) -> list[tuple[str, bytes]]:
    root = Path(importlib.util.find_spec(package).origin).parent
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".txt", ".md", ""})[:limit]
    found = [(f"{package}/{p.relative_to(root)}", p.read_bytes()) for p in files]
    dist = next(root.parent.glob(f"{package}-*.dist-info"))
    found += [(f"{package}/LICENSE", p.read_bytes()) for p in sorted(dist.glob("licenses/LICENSE*"))[:1]]
    return found


def test_the_cache_is_asked_hundreds_of_files_at_a_time():
    """Version 2 of a 50,000-file tree: one query per few hundred files, not one per 16-file chunk
    (3,125 queries a check before; bench/v2_fixed_cost.py)."""
    cache = MemoryFileResultCache()
    items = _items(2000)
    key = lambda path, data: content_key(data=data, name=path)  # noqa: E731
    list(file_results(items=items, factory=Upper, processes=1, cache=cache, namespace="t", key=key))
    cache.get_calls = 0
    run = RunStats()
    out = list(file_results(items=items, factory=Upper, processes=2, cache=cache, namespace="t", key=key, run=run))
    assert run.reused == 2000 and [(p, d) for p, d, _r, _reused in out] == items
    assert cache.get_calls <= 5


def test_a_duplicate_of_a_file_computed_earlier_in_its_lookup_group_is_reused():
    """The same bytes twice in a tree (two copies of a LICENSE): the second copy's result comes from
    the first's once it is stored, though both were looked up together before either was computed."""
    cache = MemoryFileResultCache()
    items = [(f"f{i}.txt", f"unique {i}".encode()) for i in range(100)]
    items[40] = ("copy/f0.txt", items[0][1])
    run = RunStats()
    out = list(file_results(items=items, factory=Upper, processes=1, cache=cache, namespace="t",
                            key=lambda path, data: content_key(data=data), run=run))
    assert run.reused == 1 and run.computed == 99 and run.handler == {"handled": 99}
    assert out[40][2:] == (out[0][2], True)


class Sized(FileHandler):
    def __call__(self, path: str, data: bytes) -> dict:
        if path == "f0.bin":
            time.sleep(1.5)  # a slow first file: everything read meanwhile is held behind it
        return {"size": len(data)}


def test_the_bytes_held_ahead_of_the_workers_are_bounded():
    """Large files behind a slow one: what is held behind the first unfinished chunk stops at the
    bytes bound, well before the chunk count's."""
    consumed = most_ahead = 0
    read = {"n": 0}
    size = 256 * 1024

    def stream():
        for i in range(600):
            read["n"] += 1
            yield f"f{i}.bin", bytes([i % 251]) * size

    for _item in file_results(items=stream(), factory=Sized, processes=2):
        consumed += 1
        most_ahead = max(most_ahead, read["n"] - consumed)
    assert consumed == 600
    bound = (2 * parallel.HELD_BYTES_PER_PROCESS + 2 * parallel.CHUNK_BYTES) // size
    assert most_ahead <= bound < 2 * parallel.HELD_CHUNKS_PER_PROCESS * parallel.CHUNK_FILES


def test_with_a_cache_the_stream_is_read_ahead_only_for_one_lookup():
    cache = MemoryFileResultCache()
    read = {"n": 0}
    consumed = most_ahead = 0

    def stream():
        for i in range(3000):
            read["n"] += 1
            yield f"f{i}.txt", b"x" * 100

    for _item in file_results(items=stream(), factory=Upper, processes=2, cache=cache, namespace="t",
                              key=lambda path, data: content_key(data=data, name=path)):
        consumed += 1
        most_ahead = max(most_ahead, read["n"] - consumed)
    assert consumed == 3000
    bound = (2 * parallel.HELD_CHUNKS_PER_PROCESS + 1) * parallel.CHUNK_FILES + parallel.LOOKUP_FILES
    assert most_ahead <= bound


def test_licence_scan_is_the_same_in_two_processes_and_from_the_cache():
    from compliance.engine.licenses import license_scan

    items = _site_package_files("requests", 30) + _site_package_files("urllib3", 40)
    items.append(("vendored/LICENSE", dict(items)["requests/LICENSE"]))  # the same bytes elsewhere: one result
    cold = license_scan(source=items, processes=1).to_dict()
    cache = MemoryFileResultCache()
    split = license_scan(source=items, processes=2, cache=cache).to_dict()
    warm = license_scan(source=items, processes=2, cache=cache).to_dict()
    assert cold["files"] == split["files"] == warm["files"]
    assert cold["inventory"] == split["inventory"] == warm["inventory"]
    assert "Apache-2.0" in str(cold["inventory"]) and "MIT" in str(cold["inventory"])
    assert split["stats"]["processes"] == 2 and warm["stats"]["processes"] == 1
    assert split["cache"]["computed"] == len(items) and split["cache"]["reused"] == 0
    assert warm["cache"]["reused"] == len(items) and warm["cache"]["computed"] == 0
    assert warm["cache"]["engine_version"].startswith("licenses-engine-")


def test_code_scan_is_the_same_in_two_processes_and_from_the_cache(tmp_path):
    from compliance.engine.codematch import code_index_add, code_scan

    requests_root = Path(importlib.util.find_spec("requests").origin).parent
    index_dir = str(tmp_path / "index")
    code_index_add(index_dir=index_dir, source=str(requests_root), name="requests", version="test")
    # A vendor tree with two of requests' modules copied in, among unrelated code.
    items = [(f"ours/{p.name}", p.read_bytes()) for p in sorted(requests_root.glob("*.py"))[:4]]
    items += _site_package_files("urllib3", 60)
    cold_texts: list[str] = []
    cold = code_scan(source=items, index_dir=index_dir, on_matched_file=lambda p, t: cold_texts.append(p)).to_dict()
    cache = MemoryFileResultCache()
    runs = [RunStats(), RunStats()]
    split_texts: list[str] = []
    split = code_scan(source=items, index_dir=index_dir, processes=2, cache=cache, engine_version="t", run=runs[0],
                      on_matched_file=lambda p, t: split_texts.append(p)).to_dict()
    warm = code_scan(source=items, index_dir=index_dir, processes=2, cache=cache, engine_version="t",
                     run=runs[1]).to_dict()
    assert cold["matches"] and cold == split == warm
    assert {m["path"] for m in cold["matches"]} <= {p for p, _ in items[:4]}
    assert cold_texts == split_texts
    assert runs[0].processes == 2 and runs[0].computed == runs[0].files
    assert runs[1].reused == runs[1].files and runs[1].computed == 0
    # Re-indexing the corpus is a new namespace: nothing stale is read.
    code_index_add(index_dir=index_dir, source=str(requests_root), name="requests", version="test")
    again = RunStats()
    code_scan(source=items, index_dir=index_dir, cache=cache, engine_version="t", run=again)
    assert again.reused == 0 and again.namespace != runs[1].namespace


def test_a_stream_of_one_chunk_is_scanned_without_forking():
    """A model card or a lone LICENSE: no processes are started for a few files."""
    run = RunStats()
    out = list(file_results(items=_items(5), factory=Upper, processes=2, run=run))
    assert run.processes == 1 and {r["pid"] for *_, r, _ in out} == {os.getpid()}


class Timed(FileHandler):
    def __call__(self, path: str, data: bytes) -> dict:
        return {"value": data.decode(), "cacheable": not path.startswith("slow/")}


def test_an_answer_cut_short_by_a_time_limit_is_not_shared():
    cache = MemoryFileResultCache()
    items = [("slow/a.txt", b"a"), ("fast/b.txt", b"b")]
    key = lambda path, data: content_key(data=data, name=path)  # noqa: E731
    list(file_results(items=items, factory=Timed, cache=cache, namespace="n", key=key))
    again = RunStats()
    list(file_results(items=items, factory=Timed, cache=cache, namespace="n", key=key, run=again))
    assert again.reused == 1 and again.computed == 1


# ---------------------------------------------------------------- host-wide slots and recycling (issue #16 memory)

class Registered(FileHandler):
    """Registers its process in a folder while it lives; each result says how many processes of
    any scan were registered at that moment, and how much private memory this one held."""

    folder = ""

    def __init__(self) -> None:
        self.mark = Path(self.folder) / str(os.getpid())
        self.mark.touch()

    def __call__(self, path: str, data: bytes) -> dict:
        time.sleep(0.002)
        return {"upper": data.decode().upper(), "pid": os.getpid(), "live": len(os.listdir(self.folder))}

    def close(self) -> None:
        self.mark.unlink()


_TWO_SCANS = """
import json, sys
from compliance.engine import parallel
from tests.compliance.engine.test_parallel import Registered, _items

Registered.folder = sys.argv[1]
slots = parallel.ScanSlots(folder=sys.argv[2], count=2) if sys.argv[2] != "-" else None
run = parallel.RunStats()
out = [r for *_, r, _ in parallel.file_results(items=_items(1500), factory=Registered, processes=2, slots=slots,
                                               run=run)]
print(json.dumps({"results": out, "processes": run.processes}))
"""


def _two_scans_at_once(tmp_path: Path, *, capped: bool) -> list[dict]:
    live = tmp_path / ("live-capped" if capped else "live-free")
    live.mkdir()
    slots = str(tmp_path / "slots") if capped else "-"
    procs = [subprocess.Popen([sys.executable, "-c", _TWO_SCANS, str(live), slots], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(2)]
    outs = [json.loads(proc.communicate(timeout=300)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    return outs


def test_two_scans_at_once_never_run_more_scanners_than_the_host_has_slots(tmp_path):
    """Two scans of 2 processes each, at once, on 2 slots: never more than 2 scanners alive, and
    each scan's results are the one-process results. Without the slots the same two scans run 4."""
    expected = [d.decode().upper() for _p, d in _items(1500)]
    capped = _two_scans_at_once(tmp_path, capped=True)
    assert max(r["live"] for out in capped for r in out["results"]) == 2
    for out in capped:
        assert [r["upper"] for r in out["results"]] == expected
    free = _two_scans_at_once(tmp_path, capped=False)
    assert max(r["live"] for out in free for r in out["results"]) == 4
    # Every slot is free again once the scans ended (the kernel dropped the scanners' locks).
    assert parallel.ScanSlots(folder=str(tmp_path / "slots"), count=2).held() == 0


def test_a_scan_waits_for_a_slot_held_elsewhere_and_takes_it_when_freed(tmp_path):
    """Both slots held by another check: the scan waits; one slot freed: it scans with one process,
    then takes the second as soon as that is free too."""
    import fcntl
    import threading

    live = tmp_path / "live"
    live.mkdir()
    Registered.folder = str(live)
    slots = parallel.ScanSlots(folder=str(tmp_path / "slots"), count=2)
    held = [slots.acquire(block=False), slots.acquire(block=False)]
    assert None not in held and slots.acquire(block=False) is None

    def release(fd: int, after: float) -> None:
        time.sleep(after)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    threading.Thread(target=release, args=(held[0], 1.0)).start()
    threading.Thread(target=release, args=(held[1], 3.0)).start()
    started = time.monotonic()
    run = RunStats()
    out = [r for *_, r, _ in file_results(items=_items(3000), factory=Registered, processes=2, slots=slots, run=run)]
    assert time.monotonic() - started >= 1.0  # it could not start before a slot was free
    assert [r["upper"] for r in out] == [d.decode().upper() for _p, d in _items(3000)]
    live_counts = [r["live"] for r in out]
    assert live_counts[0] == 1 and max(live_counts) == 2 and run.processes == 2
    assert slots.held() == 0


def test_a_scanner_past_its_memory_is_replaced_and_the_results_do_not_change(tmp_path, monkeypatch):
    """A scanner that grew past `recycle_bytes` (here 8 MiB of arrays kept per chunk) finishes its
    chunk and is replaced; no process ever holds much more than that, whatever the stream's length."""
    live = tmp_path / "live"
    live.mkdir()
    Hoarder.folder = str(live)
    monkeypatch.setattr(parallel, "RECYCLE_CHECK_SECONDS", 0.0)  # after every chunk, for an exact bound
    items = _items(2000)
    run = RunStats()
    limit = 24 << 20
    out = [r for *_, r, _ in file_results(items=items, factory=Hoarder, processes=2, recycle_bytes=limit, run=run)]
    assert [r["upper"] for r in out] == [d.decode().upper() for _p, d in items]
    assert run.retired >= 4 and run.retired <= run.started <= run.retired + 2 and run.processes == 2
    assert len({r["pid"] for r in out}) == run.started
    # Measured every 4th file: never past the limit by more than one chunk's growth.
    assert max(r["private"] for r in out) < limit + parallel.CHUNK_FILES * Hoarder.GROWTH + (8 << 20)
    unbounded = RunStats()
    list(file_results(items=items, factory=Hoarder, processes=2, run=unbounded))
    assert unbounded.retired == 0 and unbounded.started == 2


class Hoarder(Registered):
    """Keeps 256 KiB per file, as a detector that touches more of a shared index with every new file."""

    GROWTH = 256 << 10

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[bytearray] = []

    def __call__(self, path: str, data: bytes) -> dict:
        self.kept.append(bytearray(b"x" * self.GROWTH))
        # Read every 4th file: 40 ms a reading where the test process loaded the licence index.
        private = parallel.private_bytes() if len(self.kept) % 4 == 0 else 0
        return {**super().__call__(path, data), "private": private}

"""One check's per-file work split across processes, results in the order the files came.

`file_results` takes a stream of (path, bytes), looks each file up in a per-file result cache
(`compliance.engine.filecache`), hands the misses to `processes` worker processes in chunks,
stores what they compute, and yields every file's result in stream order, so a scan's output
does not depend on how many processes made it.

Memory stays bounded whatever the archive's size: the stream is read one chunk at a time
(`CHUNK_FILES` files or `CHUNK_BYTES` bytes), at most `IN_FLIGHT_PER_PROCESS` chunks per
process are out at once and `HELD_CHUNKS_PER_PROCESS` held in all; a chunk is released as soon
as it is yielded.

Why `os.fork` and pipes, not `multiprocessing.Pool` or `concurrent.futures`:

- A check runs inside a Celery prefork child, which billiard marks daemonic; `multiprocessing`
  (and billiard's own `Process`) refuse to start children from a daemonic process
  ("daemonic processes are not allowed to have children"). Clearing that flag would mean
  writing to `multiprocessing`'s private process state.
- The licence detector's ScanCode index is 1.4 GB resident and takes 6 s to load. A spawn or
  forkserver child would load its own copy: two cores would cost three copies, past the 2 GB a
  worker may use. A forked child shares the parent's copy page by page (copy-on-write), and
  `gc.freeze()` before forking keeps the collector from writing to every shared object.
  The parent loads the engine's tables first (`preload`), so children start at once.
- Forking a process that has other threads (the check's lease renewal) is safe here because a
  child runs only engine code: no database connection, no logging, no lock the other thread may
  hold; it ends with `os._exit`, so nothing inherited (the database socket, atexit handlers) is
  touched on the way out.

A child dies with its parent: on Linux `PR_SET_PDEATHSIG` sends it SIGKILL when the parent
(the worker child, killed by a hard time limit or an operator) goes, and on any system its
request pipe reaching end-of-file ends it after the chunk in hand.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe, wait

from compliance.engine.filecache import FileResultCache

CHUNK_FILES = 16
CHUNK_BYTES = 4 << 20
IN_FLIGHT_PER_PROCESS = 2
# Chunks held per process, in flight or done behind a slower first one: one file that takes the
# full matcher 10 s must not idle the other process, and at 4 MiB a chunk the bytes held stay
# under 64 MiB per process.
HELD_CHUNKS_PER_PROCESS = 8
# Keys per cache query (a backend may split further).
CACHE_BATCH = 500
# Seconds a child gets to finish and report after its requests end, before it is killed.
CHILD_EXIT_SECONDS = 30.0


def processes_default() -> int:
    """Both cores of a 2-core worker; one on a single-core host."""
    return max(1, min(2, os.cpu_count() or 1))


def fork_available() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


class FileHandler:
    """What a worker process runs per file: built once per process by the factory given to
    `file_results`, called with each file, asked for its counters at the end."""

    def __call__(self, path: str, data: bytes) -> dict:  # pragma: no cover - protocol
        raise NotImplementedError

    def stats(self) -> dict:
        return {}

    def close(self) -> None:
        pass


@dataclass
class RunStats:
    """What a `file_results` run did: files, how many came from the cache, processes used."""

    files: int = 0
    reused: int = 0
    computed: int = 0
    processes: int = 1
    handler: dict = field(default_factory=dict)
    namespace: str = ""
    # CPU seconds each worker process used (empty in-process): how evenly the work was split.
    worker_cpu_seconds: list[float] = field(default_factory=list)

    def cache_summary(self) -> dict:
        """A check run's `summary["cache"]` (issue #16's shared shape)."""
        return {"files": self.files, "reused": self.reused, "computed": self.computed,
                "engine_version": self.namespace}


def stats_merge(*, into: dict, other: dict) -> None:
    """Sum numeric counters (the workers' detector statistics)."""
    for key, value in other.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            into.setdefault(key, value)
        else:
            into[key] = into.get(key, 0) + value


class _Entry:
    __slots__ = ("path", "data", "key", "result", "reused")

    def __init__(self, path: str, data: bytes, key: str | None):
        self.path, self.data, self.key = path, data, key
        self.result: dict | None = None
        self.reused = False


class _Chunk:
    __slots__ = ("entries", "waiting")

    def __init__(self, entries: list[_Entry]):
        self.entries = entries
        self.waiting: list[int] = []  # positions sent to a worker, in the order sent


def _chunks(items: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for path, data in items:
        chunk.append((path, data))
        size += len(data)
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _with_last(chunks: Iterator[list]) -> Iterator[tuple[list, bool]]:
    """Each chunk and whether it is the last: a stream of one chunk is not worth a fork."""
    previous = None
    for chunk in chunks:
        if previous is not None:
            yield previous, False
        previous = chunk
    if previous is not None:
        yield previous, True


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies (Linux), and exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _child_main(factory: Callable[[], FileHandler], requests: Connection, results: Connection,
                parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    # The Celery child's handlers (soft time limit, warm shutdown) are the parent's business.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    inbox: queue.Queue = queue.Queue()

    def read() -> None:
        # A thread drains the request pipe so the parent never blocks writing a chunk while this
        # process writes a result it is not yet reading.
        while True:
            try:
                inbox.put(requests.recv())
            except (EOFError, OSError):
                inbox.put(None)
                return

    threading.Thread(target=read, daemon=True).start()
    handler = factory()
    try:
        while True:
            message = inbox.get()
            if message is None:
                break
            seq, batch = message
            try:
                out = [handler(path, data) for path, data in batch]
            except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
                results.send((seq, "error", traceback.format_exc()))
                return
            results.send((seq, "ok", out))
        results.send((None, "stats", handler.stats()))
    finally:
        handler.close()


class _Pool:
    """Forked workers, each with its request and result pipes."""

    def __init__(self, *, factory: Callable[[], FileHandler], processes: int):
        self.pids: list[int] = []
        self.requests: list[Connection] = []
        self.results: list[Connection] = []
        self.in_flight: list[deque] = []
        self.stats: dict = {}
        self.cpu_seconds: list[float] = []
        parent_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        gc.collect()
        gc.freeze()
        try:
            for _ in range(processes):
                request_read, request_write = Pipe(duplex=False)
                result_read, result_write = Pipe(duplex=False)
                pid = os.fork()
                if pid == 0:  # the child
                    code = 0
                    try:
                        for connection in (*self.requests, *self.results, request_write, result_read):
                            connection.close()
                        _child_main(factory, request_read, result_write, parent_pid)
                    except BaseException:  # noqa: BLE001 - the parent sees the pipe close
                        traceback.print_exc()
                        code = 1
                    finally:
                        os._exit(code)
                request_read.close()
                result_write.close()
                self.pids.append(pid)
                self.requests.append(request_write)
                self.results.append(result_read)
                self.in_flight.append(deque())
        finally:
            gc.unfreeze()

    @property
    def size(self) -> int:
        return len(self.pids)

    def free_worker(self) -> int | None:
        load = [len(q) for q in self.in_flight]
        best = min(range(len(load)), key=load.__getitem__)
        return best if load[best] < IN_FLIGHT_PER_PROCESS else None

    def send(self, *, worker: int, seq: int, batch: list[tuple[str, bytes]]) -> None:
        self.in_flight[worker].append(seq)
        self.requests[worker].send((seq, batch))

    def receive(self) -> list[tuple[int, list[dict]]]:
        """Block until at least one worker answers; the (seq, results) that came."""
        busy = [self.results[i] for i in range(self.size) if self.in_flight[i]]
        done = []
        for connection in wait(busy):
            worker = self.results.index(connection)
            try:
                seq, status, payload = connection.recv()
            except (EOFError, OSError) as error:
                raise RuntimeError(f"scan worker process {self.pids[worker]} died") from error
            if status == "error":
                raise RuntimeError(f"scan worker process failed:\n{payload}")
            self.in_flight[worker].popleft()
            done.append((seq, payload))
        return done

    def close(self, *, graceful: bool) -> None:
        for connection in self.requests:
            connection.close()
        if graceful:
            deadline = time.monotonic() + CHILD_EXIT_SECONDS
            for connection in self.results:
                try:
                    if connection.poll(max(0.0, deadline - time.monotonic())):
                        seq, status, payload = connection.recv()
                        if status == "stats":
                            stats_merge(into=self.stats, other=payload)
                except (EOFError, OSError):
                    pass
        for pid in self.pids:
            if not graceful:
                _kill(pid)
            deadline = time.monotonic() + (CHILD_EXIT_SECONDS if graceful else 5.0)
            while True:
                try:
                    done, _status, usage = os.wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    self.cpu_seconds.append(round(usage.ru_utime + usage.ru_stime, 2))
                    break
                if time.monotonic() > deadline:
                    _kill(pid)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.01)
        for connection in self.results:
            connection.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def file_results(
    *,
    items: Iterable[tuple[str, bytes]],
    factory: Callable[[], FileHandler],
    processes: int = 1,
    cache: FileResultCache | None = None,
    namespace: str = "",
    key: Callable[[str, bytes], str] | None = None,
    run: RunStats | None = None,
) -> Iterator[tuple[str, bytes, dict, bool]]:
    """(path, bytes, result, reused) for every item, in the items' order.

    `factory()` builds the per-file handler, once per worker process (or once here when
    `processes` is 1 or the system cannot fork). With a `cache`, `key(path, bytes)` names each
    file's result under `namespace`; hits are not computed, and computed results are stored
    unless they carry an "error" or say `"cacheable": False` (an answer cut short by a time
    limit depends on the machine's load, not only on the bytes). `run` receives the counts (and the handlers' summed statistics) when the
    iteration ends."""
    run = run if run is not None else RunStats()
    run.namespace = namespace
    use_cache = cache is not None and key is not None
    processes = processes if fork_available() else 1
    pool: _Pool | None = None
    local: FileHandler | None = None
    pending: deque[_Chunk] = deque()
    by_seq: dict[int, _Chunk] = {}
    seq = 0
    graceful = False

    def store(chunk: _Chunk, results: list[dict]) -> None:
        fresh = {}
        for position, result in zip(chunk.waiting, results, strict=True):
            entry = chunk.entries[position]
            entry.result = result
            if use_cache and result.get("error") is None and result.get("cacheable", True):
                fresh[entry.key] = result
        chunk.waiting = []
        run.computed += len(results)
        if fresh:
            cache.put_many(namespace=namespace, values=fresh)

    def ready() -> Iterator[tuple[str, bytes, dict, bool]]:
        while pending and not pending[0].waiting:
            chunk = pending.popleft()
            for entry in chunk.entries:
                yield entry.path, entry.data, entry.result, entry.reused

    def collect() -> None:
        for done_seq, results in pool.receive():
            store(by_seq.pop(done_seq), results)

    try:
        for raw, last in _with_last(_chunks(items)):
            entries = [_Entry(path, data, key(path, data) if use_cache else None) for path, data in raw]
            run.files += len(entries)
            if use_cache:
                wanted = list(dict.fromkeys(e.key for e in entries))
                found: dict[str, dict] = {}
                for start in range(0, len(wanted), CACHE_BATCH):
                    found.update(cache.get_many(namespace=namespace, keys=wanted[start:start + CACHE_BATCH]))
                for entry in entries:
                    if entry.key in found:
                        entry.result, entry.reused = found[entry.key], True
                        run.reused += 1
            chunk = _Chunk(entries)
            chunk.waiting = [i for i, e in enumerate(entries) if e.result is None]
            pending.append(chunk)
            if chunk.waiting:
                batch = [(entries[i].path, entries[i].data) for i in chunk.waiting]
                # A single model card or licence file is scanned here: forking costs more than it.
                if processes > 1 and (pool is not None or not last):
                    if pool is None:
                        pool = _Pool(factory=factory, processes=processes)
                        run.processes = pool.size
                    worker = pool.free_worker()
                    while worker is None:
                        collect()
                        worker = pool.free_worker()
                    by_seq[seq] = chunk
                    pool.send(worker=worker, seq=seq, batch=batch)
                    seq += 1
                else:
                    local = local or factory()
                    store(chunk, [local(path, data) for path, data in batch])
            yield from ready()
            # Chunks done behind a slow first one wait here, in order: hold no more than the
            # workers can have in flight, so the stream is never read far ahead.
            while len(pending) >= max(1, processes * HELD_CHUNKS_PER_PROCESS) and pending[0].waiting:
                collect()
                yield from ready()
        while pending:
            if pending[0].waiting:
                collect()
            yield from ready()
        graceful = True
    finally:
        if pool is not None:
            pool.close(graceful=graceful)
            stats_merge(into=run.handler, other=pool.stats)
            run.worker_cpu_seconds = pool.cpu_seconds
        if local is not None:
            stats_merge(into=run.handler, other=local.stats())
            local.close()

"""One check's per-file work split across processes, results in the order the files came.

`file_results` takes a stream of (path, bytes), looks each file up in a per-file result cache
(`compliance.engine.filecache`), hands the misses to `processes` worker processes in chunks,
stores what they compute, and yields every file's result in stream order, so a scan's output
does not depend on how many processes made it.

Memory stays bounded whatever the archive's size: the stream is read one chunk at a time
(`CHUNK_FILES` files or `CHUNK_BYTES` bytes), looked up in the cache a group of chunks at a time
(`LOOKUP_FILES` files, about `LOOKUP_BYTES` bytes), at most `IN_FLIGHT_PER_PROCESS` chunks per
process are out at once and `HELD_CHUNKS_PER_PROCESS` chunks or `HELD_BYTES_PER_PROCESS` bytes
per process held in all; a chunk is released as soon as it is yielded.

Why `os.fork` and pipes, not `multiprocessing.Pool` or `concurrent.futures`:

- A check runs inside a Celery prefork child, which billiard marks daemonic; `multiprocessing`
  (and billiard's own `Process`) refuse to start children from a daemonic process
  ("daemonic processes are not allowed to have children"). Clearing that flag would mean
  writing to `multiprocessing`'s private process state.
- The licence detector's ScanCode index is 1.4 GB resident and takes 6 s to load. A spawn or
  forkserver child would load its own copy: two cores would cost three copies, past the 2 GB a
  worker may use. A forked child shares the parent's copy page by page (copy-on-write), and
  `gc.freeze()` as the child's first act keeps its collector from writing to every shared
  object. The parent loads the engine's tables first (`preload`), so children start at once.
- Forking a process that has other threads (the check's lease renewal) is safe here because a
  child runs only engine code: no database connection, no logging, no lock the other thread may
  hold; it ends with `os._exit`, so nothing inherited (the database socket, atexit handlers) is
  touched on the way out.

Memory stays bounded whatever the tree (issue #16): a process that reads the shared index
writes reference counts, so each page it touches becomes its own copy, and its private memory
grows with the variety of files it has scanned. `recycle_bytes` retires a process past that
much private memory (it finishes the chunk in hand) and forks a fresh one; `ScanSlots` caps the
scanning processes of the whole host, so two checks at once do not run 2 x `processes`.

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
# Chunks held per process, in flight or done behind a slower first one, and their bytes: one file
# that takes the full matcher 10 s must not idle the other process, nor stop the reading of the
# chunks behind it whose results the cache holds. 8 chunks (128 files) did: in version 2 (1 % of
# files computed) the parent waited on each slow changed file instead of reading on; at 5,000 files
# the licence check alone took 2.2-2.5 s for 1.0 s of its own CPU, 1.3-1.5 s with 64 chunks
# (bench/v2_fixed_cost.py --side-by-side). The bytes bound keeps memory where it was: 16 MiB per
# process (8 chunks of up to 4 MiB allowed 32 MiB).
HELD_CHUNKS_PER_PROCESS = 64
HELD_BYTES_PER_PROCESS = 16 << 20
# Keys per cache query (a backend may split further).
CACHE_BATCH = 500
# Files are looked up in the cache this many at a time (and at most `LOOKUP_BYTES` of them held
# while looked up), not one 16-file chunk at a time: version 2 of a 50,000-file tree asked the
# database 3,125 times per check for 16 keys each (313 queries, 0.39 s of the licence check's
# 2.2 s under cProfile at 5,000 files; bench/v2_fixed_cost.py).
LOOKUP_FILES = CACHE_BATCH
LOOKUP_BYTES = 16 << 20
# Seconds a child gets to finish and report after its requests end, before it is killed.
CHILD_EXIT_SECONDS = 30.0
# A scanning process reads its private memory (`/proc/self/smaps_rollup`: 40 ms in a 1.3 GB
# process, as long as 16 licence files take to scan in 1 of 15 chunks) at most this often.
RECYCLE_CHECK_SECONDS = 2.0


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
    # Files whose results have been handed on, in stream order, and how many of those were reused.
    done: int = 0
    done_reused: int = 0
    computed: int = 0
    processes: int = 1
    handler: dict = field(default_factory=dict)
    namespace: str = ""
    # CPU seconds each worker process used (empty in-process): how evenly the work was split.
    worker_cpu_seconds: list[float] = field(default_factory=list)
    # Processes forked in all, and how many of them retired for holding too much memory (each
    # was replaced): `processes` is the most that ran at once.
    started: int = 0
    retired: int = 0

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
    __slots__ = ("path", "data", "key", "result", "reused", "recheck")

    def __init__(self, path: str, data: bytes, key: str | None):
        self.path, self.data, self.key = path, data, key
        self.result: dict | None = None
        self.reused = False
        self.recheck = False  # missed, and so was an earlier chunk of its lookup group: ask again


class _Chunk:
    __slots__ = ("entries", "waiting", "size")

    def __init__(self, entries: list[_Entry]):
        self.entries = entries
        self.size = sum(len(e.data) for e in entries)
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


def _chunk_groups(chunks: Iterator[list[tuple[str, bytes]]]) -> Iterator[list[list[tuple[str, bytes]]]]:
    """Consecutive chunks, at most `LOOKUP_FILES` files (one query) and about `LOOKUP_BYTES`
    bytes a group (at least one chunk)."""
    group: list[list[tuple[str, bytes]]] = []
    files = size = 0
    for chunk in chunks:
        group.append(chunk)
        files += len(chunk)
        size += sum(len(data) for _path, data in chunk)
        if files + CHUNK_FILES > LOOKUP_FILES or size >= LOOKUP_BYTES:
            yield group
            group, files, size = [], 0, 0
    if group:
        yield group


def _looked_up(chunks: Iterator[list[tuple[str, bytes]]], *, cache: FileResultCache | None, namespace: str,
               key: Callable[[str, bytes], str] | None) -> Iterator[list["_Entry"]]:
    """Each chunk as entries, their cached results filled in (`reused`), looked up a group of
    chunks at a time. A key a chunk misses is asked again when a later chunk of the same group
    holds it (`recheck`, asked by `file_results` when it takes that chunk): the earlier one's
    result may be stored by then, as it was when every chunk was looked up on its own (a tree's
    duplicate files)."""
    if cache is None or key is None:
        for raw in chunks:
            yield [_Entry(path, data, None) for path, data in raw]
        return
    for group in _chunk_groups(chunks):
        entries = [[_Entry(path, data, key(path, data)) for path, data in raw] for raw in group]
        wanted = list(dict.fromkeys(e.key for chunk in entries for e in chunk))
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), CACHE_BATCH):
            found.update(cache.get_many(namespace=namespace, keys=wanted[start:start + CACHE_BATCH]))
        missed: set[str] = set()
        for chunk in entries:
            for entry in chunk:
                value = found.get(entry.key)
                if value is not None:
                    entry.result, entry.reused = value, True
                else:
                    entry.recheck = entry.key in missed
            missed.update(e.key for e in chunk if e.result is None)
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


def private_bytes() -> int | None:
    """This process's private dirty pages (Linux): what it allocated or copied from its parent
    copy-on-write (a ScanCode index page whose reference counts it wrote), and what ending it
    frees. None where /proc is not there."""
    try:
        with open("/proc/self/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _child_setup(parent_pid: int, label: str) -> None:
    """SIGKILL this process when its parent dies (Linux), exit now if it already has, and name it
    (`scan:licences` in ps and /proc/PID/comm)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
            libc.prctl(15, ctypes.c_char_p(f"scan:{label}"[:15].encode()), 0, 0, 0)  # PR_SET_NAME
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _child_main(factory: Callable[[], FileHandler], requests: Connection, results: Connection,
                parent_pid: int, label: str, recycle_bytes: int | None) -> None:
    _child_setup(parent_pid, label)
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
    retiring = False
    # Read after the first chunk, then every RECYCLE_CHECK_SECONDS: a process whose whole life is
    # shorter than that is still read once.
    checked = time.monotonic() - RECYCLE_CHECK_SECONDS
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
            if recycle_bytes and not retiring and time.monotonic() - checked >= RECYCLE_CHECK_SECONDS:
                checked = time.monotonic()
                private = private_bytes()
                retiring = private is not None and private > recycle_bytes
            # "retire": this process holds more than it may; the parent sends it nothing more
            # and starts a fresh one, whose pages are the parent's shared ones again.
            results.send((seq, "retire" if retiring else "ok", out))
        results.send((None, "stats", handler.stats()))
    finally:
        handler.close()


class ScanSlots:
    """At most `count` scanning processes on this host, across every check and every worker.

    Two checks that run at once on a 2-core worker would each fork PORTAL_SCAN_PROCESSES
    scanners: 4 processes on 2 cores scan no faster than 2, and each copies the pages of the
    shared licence index it touches (measured: 200-230 MB each after 2,500 files). A slot is an
    exclusive `flock` on one of `count` files in `folder`; the scanning process holds it
    (the descriptor is inherited across the fork and closed in the parent), so the kernel frees
    it when the scanner ends, however it ends (a SIGKILL, a parent that died).

    A check that holds no slot waits for one; a check that holds some takes a free one when its
    scanners number fewer than it asked for and nobody is waiting, and does not replace a
    retiring scanner while another check waits: so two checks share the slots, and the one left
    running takes them all back. Waiting is announced by a shared lock on `waiting.lock`."""

    POLL_SECONDS = 0.2

    def __init__(self, *, folder: str, count: int):
        if count < 1:
            raise ValueError("a host needs at least one scan slot")
        self.folder, self.count = folder, count
        os.makedirs(folder, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _try(self) -> int | None:
        import fcntl

        for index in range(self.count):
            fd = os.open(self._path(f"slot-{index}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def acquire(self, *, block: bool) -> int | None:
        """A descriptor holding a slot (inherited by the process forked next), or None when none is
        free and `block` is false."""
        import fcntl

        fd = self._try()
        if fd is not None or not block:
            return fd
        marker = os.open(self._path("waiting.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(marker, fcntl.LOCK_SH)
            while fd is None:
                time.sleep(self.POLL_SECONDS)
                fd = self._try()
            return fd
        finally:
            os.close(marker)  # releases the shared lock

    def waiting(self) -> bool:
        """Whether another check waits for a slot."""
        import fcntl

        marker = os.open(self._path("waiting.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(marker)
        return False

    def held(self) -> int:
        """Slots taken right now (for tests and monitoring)."""
        import fcntl

        taken = 0
        for index in range(self.count):
            fd = os.open(self._path(f"slot-{index}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                taken += 1
            finally:
                os.close(fd)
        return taken


class _Worker:
    __slots__ = ("pid", "requests", "results", "in_flight", "retiring")

    def __init__(self, pid: int, requests: Connection, results: Connection):
        self.pid, self.requests, self.results = pid, requests, results
        self.in_flight: deque[int] = deque()
        self.retiring = False


class _Pool:
    """Forked workers, each with its request and result pipes; at most `processes` at once, each
    holding one of the host's `slots` when given, each replaced when it retires."""

    def __init__(self, *, factory: Callable[[], FileHandler], processes: int, slots: ScanSlots | None = None,
                 label: str = "scan", recycle_bytes: int | None = None):
        self.factory, self.processes, self.slots = factory, processes, slots
        self.label, self.recycle_bytes = label, recycle_bytes
        self.workers: list[_Worker] = []
        self.stats: dict = {}
        self.cpu_seconds: list[float] = []
        self.started = 0
        self.most = 0
        self.retired = 0
        self._grow_at = 0.0
        self._spawn(block=True)
        while len(self.workers) < processes and self._spawn(block=False):
            pass

    def _spawn(self, *, block: bool) -> bool:
        slot = self.slots.acquire(block=block) if self.slots is not None else None
        if self.slots is not None and slot is None:
            return False
        parent_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        request_read, request_write = Pipe(duplex=False)
        result_read, result_write = Pipe(duplex=False)
        try:
            pid = os.fork()
        except BaseException:
            for connection in (request_read, request_write, result_read, result_write):
                connection.close()
            if slot is not None:
                os.close(slot)
            raise
        if pid == 0:  # the child
            # First: every object this process inherited goes to the permanent generation (a
            # constant-time list splice), so its collector never walks, and so never copies, the
            # parent's pages. Freezing in the parent instead, and unfreezing after the fork, also
            # unfroze what the worker's main process had frozen (the preloaded licence index): the
            # Celery child's next full collection then copied the whole index (575 MB measured).
            gc.freeze()
            code = 0
            try:
                for worker in self.workers:
                    worker.requests.close()
                    worker.results.close()
                request_write.close()
                result_read.close()
                _child_main(self.factory, request_read, result_write, parent_pid, self.label, self.recycle_bytes)
            except BaseException:  # noqa: BLE001 - the parent sees the pipe close
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)  # the slot's lock goes with the process
        if slot is not None:
            os.close(slot)  # the child's copy holds the lock
        request_read.close()
        result_write.close()
        self.workers.append(_Worker(pid, request_write, result_read))
        self.started += 1
        self.most = max(self.most, len(self.workers))
        return True

    @property
    def size(self) -> int:
        return len(self.workers)

    def _grow(self) -> None:
        """Replace a retired process, or take a free slot when this pool runs fewer processes than
        it asked for (another check held them), when work is at hand: at once without slots or
        with none left (then waiting for one); else unless another check waits for a slot, tried
        at most once a second."""
        if not self.workers:
            self._spawn(block=True)
        elif len(self.workers) < self.processes:
            if self.slots is None:
                self._spawn(block=False)
            elif time.monotonic() >= self._grow_at:
                self._grow_at = time.monotonic() + 1.0
                if not self.slots.waiting():
                    self._spawn(block=False)

    def free_worker(self) -> _Worker | None:
        self._grow()
        ready = [w for w in self.workers if not w.retiring]
        if not ready:
            return None
        best = min(ready, key=lambda w: len(w.in_flight))
        return best if len(best.in_flight) < IN_FLIGHT_PER_PROCESS else None

    def send(self, *, worker: _Worker, seq: int, batch: list[tuple[str, bytes]]) -> None:
        worker.in_flight.append(seq)
        try:
            worker.requests.send((seq, batch))
        except OSError as error:
            # The process ended (a handler's error ends it): its last message says why.
            try:
                while worker.results.poll(1.0):
                    _seq, status, payload = worker.results.recv()
                    if status == "error":
                        raise RuntimeError(f"scan worker process failed:\n{payload}") from error
            except (EOFError, OSError):
                pass
            raise RuntimeError(f"scan worker process {worker.pid} died") from error

    def receive(self) -> list[tuple[int, list[dict]]]:
        """Block until at least one worker answers; the (seq, results) that came."""
        busy = {w.results: w for w in self.workers if w.in_flight}
        done = []
        for connection in wait(list(busy)):
            worker = busy[connection]
            try:
                seq, status, payload = connection.recv()
            except (EOFError, OSError) as error:
                raise RuntimeError(f"scan worker process {worker.pid} died") from error
            if status == "error":
                raise RuntimeError(f"scan worker process failed:\n{payload}")
            worker.in_flight.popleft()
            worker.retiring = worker.retiring or status == "retire"
            done.append((seq, payload))
        for worker in [w for w in self.workers if w.retiring and not w.in_flight]:
            self._retire(worker)
        return done

    def _retire(self, worker: _Worker) -> None:
        self._end(worker, graceful=True)
        self.workers.remove(worker)
        self.retired += 1
        self._grow_at = 0.0  # replaced when the next chunk is sent (`_grow`)

    def _end(self, worker: _Worker, *, graceful: bool) -> None:
        worker.requests.close()
        if graceful:
            try:
                if worker.results.poll(CHILD_EXIT_SECONDS):
                    seq, status, payload = worker.results.recv()
                    if status == "stats":
                        stats_merge(into=self.stats, other=payload)
            except (EOFError, OSError):
                pass
        else:
            _kill(worker.pid)
        deadline = time.monotonic() + (CHILD_EXIT_SECONDS if graceful else 5.0)
        while True:
            try:
                done, _status, usage = os.wait4(worker.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                self.cpu_seconds.append(round(usage.ru_utime + usage.ru_stime, 2))
                break
            if time.monotonic() > deadline:
                _kill(worker.pid)
                os.waitpid(worker.pid, 0)
                break
            time.sleep(0.01)
        worker.results.close()

    def close(self, *, graceful: bool) -> None:
        for worker in self.workers:
            worker.requests.close()
        for worker in self.workers:
            self._end(worker, graceful=graceful)
        self.workers = []


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
    slots: ScanSlots | None = None,
    recycle_bytes: int | None = None,
    label: str = "scan",
    progress: Callable[[RunStats], None] | None = None,
) -> Iterator[tuple[str, bytes, dict, bool]]:
    """(path, bytes, result, reused) for every item, in the items' order.

    `factory()` builds the per-file handler, once per worker process (or once here when
    `processes` is 1 or the system cannot fork). With a `cache`, `key(path, bytes)` names each
    file's result under `namespace`; hits are not computed, and computed results are stored
    unless they carry an "error" or say `"cacheable": False` (an answer cut short by a time
    limit depends on the machine's load, not only on the bytes). `run` receives the counts (and the handlers' summed statistics) when the
    iteration ends.

    `slots` caps the scanning processes of the whole host (`ScanSlots`): this scan forks up to
    `processes`, each while it holds a slot. `recycle_bytes` retires a process whose private
    memory passed it (after the chunk in hand) and forks a fresh one. `label` names the
    processes (`scan:<label>`). `progress(run)` is called each time a chunk's results have been
    handed on (`run.done` files so far, `run.done_reused` of them from the cache): a check reports
    how far it is from it, and throttles its own reports."""
    run = run if run is not None else RunStats()
    run.namespace = namespace
    use_cache = cache is not None and key is not None
    processes = processes if fork_available() else 1
    pool: _Pool | None = None
    local: FileHandler | None = None
    pending: deque[_Chunk] = deque()
    by_seq: dict[int, _Chunk] = {}
    seq = 0
    held = 0  # bytes of the chunks in `pending`
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
        nonlocal held
        while pending and not pending[0].waiting:
            chunk = pending.popleft()
            held -= chunk.size
            for entry in chunk.entries:
                yield entry.path, entry.data, entry.result, entry.reused
            run.done += len(chunk.entries)
            run.done_reused += sum(1 for e in chunk.entries if e.reused)
            if progress is not None:
                progress(run)

    def collect() -> None:
        for done_seq, results in pool.receive():
            store(by_seq.pop(done_seq), results)

    try:
        looked_up = _looked_up(_chunks(items), cache=cache if use_cache else None, namespace=namespace, key=key)
        for entries, last in _with_last(looked_up):
            again = list(dict.fromkeys(e.key for e in entries if e.recheck))
            if again:
                found = cache.get_many(namespace=namespace, keys=again)
                for entry in entries:
                    if entry.recheck and entry.key in found:
                        entry.result, entry.reused = found[entry.key], True
            run.files += len(entries)
            run.reused += sum(1 for e in entries if e.reused)
            chunk = _Chunk(entries)
            chunk.waiting = [i for i, e in enumerate(entries) if e.result is None]
            pending.append(chunk)
            held += chunk.size
            if chunk.waiting:
                batch = [(entries[i].path, entries[i].data) for i in chunk.waiting]
                # A single model card or licence file is scanned here: forking costs more than it.
                if processes > 1 and (pool is not None or not last):
                    if pool is None:
                        pool = _Pool(factory=factory, processes=processes, slots=slots, label=label,
                                     recycle_bytes=recycle_bytes)
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
            # Chunks done behind a slow first one wait here, in order: hold no more than
            # `HELD_CHUNKS_PER_PROCESS` chunks and `HELD_BYTES_PER_PROCESS` bytes per process, so the
            # stream is never read far ahead.
            while pending and pending[0].waiting and (len(pending) >= max(1, processes * HELD_CHUNKS_PER_PROCESS)
                                                      or held >= processes * HELD_BYTES_PER_PROCESS):
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
            run.processes, run.started, run.retired = pool.most, pool.started, pool.retired
        if local is not None:
            stats_merge(into=run.handler, other=local.stats())
            local.close()

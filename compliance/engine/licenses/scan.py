"""Scan a directory, file or archive for licences: per-file results plus the inventory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from compliance.engine.filecache import FileResultCache, content_key
from compliance.engine.licenses.declared import DeclaredLicense, license_declarations_extract
from compliance.engine.licenses.detect import ENGINE_VERSION, FileLicenseResult, LicenseDetector
from compliance.engine.licenses.inventory import LicenseInventory, license_inventory_build
from compliance.engine.licenses.scancode_index import scancode_state_get
from compliance.engine.licenses.sources import members_from
from compliance.engine.parallel import FileHandler, RunStats, ScanSlots, file_results


@dataclass
class LicenseScanResult:
    """Per-file licence results and the inventory built from them."""

    files: list[FileLicenseResult]
    inventory: LicenseInventory
    stats: dict = field(default_factory=dict)
    # summary["cache"] of issue #16 when a shared per-file cache was used: files, reused, computed, engine_version.
    cache: dict = field(default_factory=dict)

    def to_dict(self, *, include_empty_files: bool = True) -> dict:
        files = self.files if include_empty_files else [f for f in self.files if f.license_expression or f.copyrights]
        return {
            "files": [f.to_dict() for f in files],
            "inventory": self.inventory.to_dict(),
            "stats": dict(self.stats),
            "cache": dict(self.cache),
        }


LICENSE_CACHE_FORMAT = "1"


def license_namespace(*, rules_version: str, copyrights: bool, strategy: str = "fast") -> str:
    """What a cached per-file licence result depends on besides the file: engine, rules, options."""
    return f"{ENGINE_VERSION}:{rules_version}:{strategy}:copyrights={int(copyrights)}:format={LICENSE_CACHE_FORMAT}"


def license_file_key(path: str, data: bytes) -> str:
    """The detector reads the base name (legal-file names get the full matcher, ScanCode sniffs
    the type by extension), not the folder: the same LICENSE anywhere is one result."""
    return content_key(data=data, name=os.path.basename(path.replace("\\", "/")))


class LicenseFileHandler(FileHandler):
    """One process's detector: a file's licence result, without its path."""

    def __init__(self, *, detector: LicenseDetector, own: bool):
        self.detector, self.own = detector, own

    def __call__(self, path: str, data: bytes) -> dict:
        result = self.detector.detect(path=path, data=data).to_dict()
        del result["path"]
        # How the answer was reached, not where it came from: a result is the same whether this
        # process, another, or a cache saw the bytes first (summary["cache"] counts reuse).
        result["mode"] = result["mode"].removeprefix("cache:")
        # A full match cut short by its time limit depends on this machine's load: not shared.
        return {"file": result, "error": result.get("error"), "cacheable": result["mode"] != "full-timeout"}

    def stats(self) -> dict:
        return dict(self.detector.stats)

    def close(self) -> None:
        if self.own:
            self.detector.close()


def license_scan(
    *,
    source: str | Iterable[tuple[str, bytes]],
    cache_dir: str | None = None,
    detector: LicenseDetector | None = None,
    copyrights: bool = True,
    source_name: str | None = None,
    cache: FileResultCache | None = None,
    processes: int = 1,
    slots: ScanSlots | None = None,
    recycle_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LicenseScanResult:
    """Detect licences, copyrights and declarations in every file of `source`.

    `source` is a path (directory, file, zip/tar archive) or an iterable of
    (relative path, bytes). `cache_dir` holds the detector's per-host sqlite cache
    (the CLI's); `cache` is a per-file result cache shared by every scan (the portal's
    database one), looked up first: only files it does not hold are detected.
    `processes` > 1 splits the detection across that many forked processes (see
    `compliance.engine.parallel`); the result is the same whatever the number. `slots` and
    `recycle_bytes` bound those processes' number on the host and their memory (see there).
    `progress(files, reused)` is told, as the scan goes, how many files it has checked and how
    many of those results came from the cache.
    """
    if detector is not None and processes > 1:
        raise ValueError("a given detector runs in this process: processes must be 1")
    # Loaded here (once per process) for the namespace; forked workers share it.
    state = detector.state if detector is not None else scancode_state_get()
    namespace = license_namespace(rules_version=state.rules_version, copyrights=copyrights)

    def factory() -> LicenseFileHandler:
        if detector is not None:
            return LicenseFileHandler(detector=detector, own=False)
        return LicenseFileHandler(detector=LicenseDetector(cache_dir=cache_dir, copyrights=copyrights), own=True)

    results: list[FileLicenseResult] = []
    declared: list[DeclaredLicense] = []
    run = RunStats()
    for path, data, value, _reused in file_results(
        items=members_from(source=source), factory=factory, processes=processes, cache=cache,
        namespace=namespace, key=license_file_key, run=run, slots=slots, recycle_bytes=recycle_bytes,
        label="licences", progress=None if progress is None else lambda done: progress(done.done, done.done_reused),
    ):
        results.append(FileLicenseResult.from_dict({**value["file"], "path": path}))
        # Here, not in the workers: only metadata files are parsed, and their messages name the path.
        declared.extend(license_declarations_extract(path=path, data=data))
    stats = dict(run.handler)
    stats["files"] = run.files
    stats["index_load_seconds"] = round(state.load_seconds, 2)
    stats["processes"] = run.processes
    if run.retired:
        stats["processes_retired"] = run.retired
    if run.worker_cpu_seconds:
        stats["worker_cpu_seconds"] = run.worker_cpu_seconds
    name = source_name or (os.path.basename(os.path.normpath(source)) if isinstance(source, str) else "(members)")
    inventory = license_inventory_build(
        files=results, declared=declared, source=name, rules_version=state.rules_version
    )
    return LicenseScanResult(files=results, inventory=inventory, stats=stats,
                             cache=run.cache_summary() if cache is not None else {})

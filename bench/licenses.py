"""Licence detection benchmark: our tiered detector against full ScanCode, same run.

    .venv/bin/python bench/licenses.py [--files 2000] [--sample mixed|uniform] [--out results.json]
    .venv/bin/python bench/licenses.py --quick    # 30 files (8 legal, 4 METADATA), one worker

Picks real files from the installed packages in this virtualenv (the versions
requirements-dev.txt pins, as `make` installs them; no other download): every
LICENSE/COPYING/NOTICE file, every METADATA/PKG-INFO file, and a
deterministic sample (by sha1 of the path) of source files (.py .c .h .js
.pyi .md .rst .txt) up to --files in total. Files over 256 KiB are skipped:
full ScanCode spends minutes on a few of them and they are not what a
vendor tree is made of.

For each file it runs
  ours      LicenseDetector(strategy="fast"), no cache (cold: every file really scanned)
  scancode  scancode.api.get_licenses(location) (the full matcher, as `scancode -l` runs it)
and compares `detected_license_expression_spdx` per file. Both share one
process and one loaded index, so index load time (reported separately) is
excluded from both rates. Prints a Markdown table and writes per-file results
(with the disagreements) as JSON to bench/out/licenses[-quick].json. Files are spread over --workers
processes (default 2); each file's two timings are taken in the same worker,
back to back, so rates are per core.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import sysconfig
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.inputs import out_write  # noqa: E402
from compliance.engine.licenses.detect import LicenseDetector, license_file_is_legal  # noqa: E402
from compliance.engine.licenses.scancode_index import scancode_state_get  # noqa: E402

SOURCE_SUFFIXES = (".py", ".c", ".h", ".js", ".pyi", ".md", ".rst", ".txt")
MAX_BYTES = 256 * 1024
LEGAL_FILES = 200
METADATA_FILES = 60
QUICK = {"files": 30, "legal": 8, "metadata": 4, "workers": 1}

_DETECTOR = None
_LICENSING = None
# --ours-only: time our detector alone (no ScanCode reference, no diagnostics),
# for profiling and for comparing two versions of our engine file by file.
_OURS_ONLY = False


def _sample(paths: list[str], count: int, *, root: str) -> list[str]:
    """`count` paths picked by the sha1 of their path under `root`, so every machine picks the same files
    (the published runs hashed the absolute path, which named the first build machine's virtualenv)."""
    return sorted(sorted(paths, key=lambda p: hashlib.sha1(os.path.relpath(p, root).encode()).hexdigest())[:count])


def files_uniform_select(*, root: str, total: int) -> list[str]:
    """A second, natural sample: any installed file (same size limits), uniformly by sha1 of the path.

    Not the headline sample: it holds what a package tree really holds
    (mostly .py, compiled extensions, data), so it says how the detector
    does on a vendor tree rather than on licence-heavy files.
    """
    everything = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (d == "data" and dirpath.endswith("licensedcode")) and d != "__pycache__"]
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or os.path.getsize(full) > MAX_BYTES or os.path.getsize(full) == 0:
                continue
            everything.append(full)
    return _sample(everything, total, root=root)


def files_select(*, root: str, total: int, legal_files: int = LEGAL_FILES, metadata_files_count: int = METADATA_FILES) -> list[str]:
    legal, metadata_files, sources = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        # ScanCode's own rule and licence texts would make the test circular.
        dirnames[:] = [d for d in dirnames if not (d == "data" and dirpath.endswith("licensedcode")) and d != "__pycache__"]
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or os.path.getsize(full) > MAX_BYTES or os.path.getsize(full) == 0:
                continue
            if license_file_is_legal(path=name):
                legal.append(full)
            elif name in ("METADATA", "PKG-INFO"):
                metadata_files.append(full)
            elif name.endswith(SOURCE_SUFFIXES):
                sources.append(full)
    chosen = _sample(legal, legal_files, root=root) + _sample(metadata_files, metadata_files_count, root=root)
    return chosen + _sample(sources, max(0, total - len(chosen)), root=root)


def scancode_spdx(expression):
    if not expression:
        return None
    from licensedcode.cache import build_spdx_license_expression

    return str(build_spdx_license_expression(expression, licensing=scancode_state_get().licensing))


def _canonical(expression):
    """An expression tree with AND/OR operands flattened and sorted (no absorption, no dedupe)."""
    args = getattr(expression, "args", None)
    if not args:
        return str(expression)
    kind = type(expression).__name__
    flat = []
    for arg in args:
        child = _canonical(arg)
        if isinstance(child, tuple) and child[0] == kind:
            flat.extend(child[1])
        else:
            flat.append(child)
    return (kind, tuple(sorted(flat, key=repr)))


def same_but_order(ours: str | None, theirs: str | None) -> bool:
    """Same licences under the same operators, in any order ("A AND B" / "B AND A").

    Not boolean equivalence: license-expression's `is_equivalent` absorbs
    "A AND (A OR B)" into "A", which would hide a licence one side adds.
    """
    if ours == theirs:
        return True
    if not ours or not theirs:
        return False
    global _LICENSING
    if _LICENSING is None:
        from license_expression import Licensing

        _LICENSING = Licensing()
    return _canonical(_LICENSING.parse(ours)) == _canonical(_LICENSING.parse(theirs))


def _worker_init() -> None:
    """Load the index and warm both sides up (imports, first-call set-up), untimed."""
    import scancode.api

    global _DETECTOR
    scancode_state_get()
    _DETECTOR = LicenseDetector(cache_dir=None, copyrights=False, strategy="fast")
    warm = os.path.join(_DETECTOR._tmpdir.name, "warm-up.txt")
    with open(warm, "w") as handle:
        handle.write("Licensed under the Apache License, Version 2.0; permission is hereby granted\n")
    _DETECTOR.detect(path="LICENSE", data=b"Permission is hereby granted, free of charge, to any person\n")
    scancode.api.get_licenses(location=warm)


def file_measure(task: tuple[str, str]) -> dict:
    """Both detectors on one file, timed separately, plus untimed diagnostics."""
    import scancode.api

    path, root = task
    data = open(path, "rb").read()
    detector = _DETECTOR
    # Wall time and this process's CPU time, both: on a shared machine wall time
    # also counts waiting for a core, CPU time does not.
    c0, t0 = time.process_time(), time.perf_counter()
    ours = detector.detect(path=path, data=data)
    c1, t1 = time.process_time(), time.perf_counter()
    if _OURS_ONLY:
        theirs = {"detected_license_expression_spdx": None}
    else:
        # 120 s: the per-file timeout of the scancode command line.
        theirs = scancode.api.get_licenses(location=path, deadline=time.time() + 120)
    c2, t2 = time.process_time(), time.perf_counter()
    # Diagnostics, untimed: what the exact pass alone says and how many legal
    # words it leaves unexplained (used to set the escalation threshold).
    exact_only, unexplained = None, None
    if ours.mode != "no-legal-text" and not _OURS_ONLY:
        exact_expression, exact_matches = detector._scancode_detect(location=path, approximate=False)
        covered = {line for m in exact_matches for line in range(m.start_line, m.end_line + 1)}
        text = data.decode("utf-8", errors="replace")
        unexplained = sum(c for line, c in detector.legal_words_by_line(text=text).items() if line not in covered)
        exact_only = scancode_spdx(exact_expression)
    name = os.path.basename(path)
    equivalent = same_but_order(ours.license_expression, theirs["detected_license_expression_spdx"])
    return {
        "path": os.path.relpath(path, root),
        "kind": "legal" if license_file_is_legal(path=name) else ("metadata" if name in ("METADATA", "PKG-INFO") else "source"),
        "bytes": len(data),
        "ours": ours.license_expression,
        "ours_mode": ours.mode,
        "scancode": theirs["detected_license_expression_spdx"],
        "equivalent": bool(equivalent),
        "exact_only": exact_only,
        "unexplained_legal_words": unexplained,
        "ours_seconds": round(t1 - t0, 5),
        "scancode_seconds": round(t2 - t1, 5),
        "ours_cpu_seconds": round(c1 - c0, 5),
        "scancode_cpu_seconds": round(c2 - c1, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['files']} files, one worker: checks the run")
    parser.add_argument("--files", type=int, default=None, help=f"files in the sample (2,000; quick {QUICK['files']})")
    parser.add_argument("--workers", type=int, default=None, help=f"processes (2; quick {QUICK['workers']})")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"])
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/licenses[-quick].json)")
    parser.add_argument("--sample", choices=("mixed", "uniform"), default="mixed",
                        help="mixed: the headline sample (licence, METADATA and source files); "
                             "uniform: any installed file, uniformly")
    parser.add_argument("--ours-only", action="store_true",
                        help="run our detector only (no ScanCode reference run): for profiling and for "
                             "comparing two engine versions with --compare")
    parser.add_argument("--compare", default=None,
                        help="JSON of an earlier run: count files whose expression differs from it")
    args = parser.parse_args()
    global _OURS_ONLY
    _OURS_ONLY = args.ours_only
    args.files = args.files or (QUICK["files"] if args.quick else 2000)
    args.workers = args.workers or (QUICK["workers"] if args.quick else 2)

    import multiprocessing

    started = time.perf_counter()
    state = scancode_state_get()
    load_seconds = time.perf_counter() - started

    if args.sample == "uniform":
        paths = files_uniform_select(root=args.root, total=args.files)
    elif args.quick:
        paths = files_select(root=args.root, total=args.files, legal_files=QUICK["legal"],
                             metadata_files_count=QUICK["metadata"])
    else:
        paths = files_select(root=args.root, total=args.files)
    wall_started = time.perf_counter()
    rows = []
    with multiprocessing.get_context("fork").Pool(args.workers, initializer=_worker_init) as pool:
        for number, row in enumerate(pool.imap_unordered(file_measure, [(p, args.root) for p in paths], chunksize=4), start=1):
            rows.append(row)
            if number % 100 == 0:
                print(f"{number}/{len(paths)} ours {sum(r['ours_seconds'] for r in rows):.1f}s "
                      f"scancode {sum(r['scancode_seconds'] for r in rows):.1f}s", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: r["path"])
    wall_seconds = time.perf_counter() - wall_started
    ours_seconds = sum(r["ours_seconds"] for r in rows)
    scancode_seconds = sum(r["scancode_seconds"] for r in rows)
    modes = {}
    for r in rows:
        modes[r["ours_mode"]] = modes.get(r["ours_mode"], 0) + 1

    same = sum(1 for r in rows if r["ours"] == r["scancode"])
    equivalent = sum(1 for r in rows if r["equivalent"])
    with_licence = [r for r in rows if r["scancode"]]
    by_kind = {}
    for r in rows:
        k = by_kind.setdefault(r["kind"], {"files": 0, "same": 0, "ours_seconds": 0.0, "scancode_seconds": 0.0,
                                           "ours_cpu_seconds": 0.0, "scancode_cpu_seconds": 0.0})
        k["files"] += 1
        k["ours_cpu_seconds"] += r["ours_cpu_seconds"]
        k["scancode_cpu_seconds"] += r["scancode_cpu_seconds"]
        k["same"] += r["ours"] == r["scancode"]
        k["ours_seconds"] += r["ours_seconds"]
        k["scancode_seconds"] += r["scancode_seconds"]
    summary = {
        "files": len(rows),
        "bytes": sum(r["bytes"] for r in rows),
        "workers": args.workers,
        "wall_seconds": round(wall_seconds, 1),
        "index_load_seconds": round(load_seconds, 2),
        "ours_seconds": round(ours_seconds, 2),
        "scancode_seconds": round(scancode_seconds, 2),
        "ours_files_per_second": round(len(rows) / ours_seconds, 1),
        "scancode_files_per_second": round(len(rows) / max(1e-9, scancode_seconds), 2),
        "speedup": round(scancode_seconds / ours_seconds, 1),
        "ours_only": args.ours_only,
        "ours_cpu_seconds": round(sum(r["ours_cpu_seconds"] for r in rows), 2),
        "scancode_cpu_seconds": round(sum(r["scancode_cpu_seconds"] for r in rows), 2),
        "speedup_cpu": round(sum(r["scancode_cpu_seconds"] for r in rows)
                             / max(1e-9, sum(r["ours_cpu_seconds"] for r in rows)), 1),
        "same_answer": same,
        "agreement_percent": round(100 * same / len(rows), 2),
        "equivalent_answer": equivalent,
        "scancode_finds_licence": len(with_licence),
        "scancode_finds_licence_same": sum(1 for r in with_licence if r["ours"] == r["scancode"]),
        "sample": args.sample,
        "index_and_tables_load_seconds": round(load_seconds, 2),
        "modes": modes,
        "by_kind": by_kind,
        "scancode_version": state.version,
    }
    for kind, k in by_kind.items():
        times = sorted(r["ours_cpu_seconds"] for r in rows if r["kind"] == kind)
        k["ours_cpu_mean_ms"] = round(1000 * sum(times) / len(times), 2)
        k["ours_cpu_median_ms"] = round(1000 * times[len(times) // 2], 2)
    cpu_sorted = sorted(r["ours_cpu_seconds"] for r in rows)
    summary["ours_cpu_files_per_second"] = round(len(rows) / max(1e-9, sum(cpu_sorted)), 1)
    summary["ours_cpu_mean_ms"] = round(1000 * sum(cpu_sorted) / len(rows), 2)
    summary["ours_cpu_median_ms"] = round(1000 * cpu_sorted[len(rows) // 2], 2)
    changed = []
    if args.compare:
        import json

        earlier = {r["path"]: r for r in json.load(open(args.compare))["rows"]}
        common = [r for r in rows if r["path"] in earlier]
        changed = [{"path": r["path"], "ours": r["ours"], "earlier": earlier[r["path"]]["ours"],
                    "ours_mode": r["ours_mode"], "earlier_mode": earlier[r["path"]]["ours_mode"]}
                   for r in common if r["ours"] != earlier[r["path"]]["ours"]]
        summary["compared_files"] = len(common)
        summary["compared_same"] = len(common) - len(changed)
    disagreements = [r for r in rows if r["ours"] != r["scancode"]]
    if args.ours_only:
        disagreements = []
    summary["mode"] = "quick" if args.quick else "full"
    out_write(name="licenses-quick" if args.quick else "licenses", out=args.out,
              data={"summary": summary, "disagreements": disagreements, "changed": changed, "rows": rows})
    if args.ours_only:
        print(f"ours only: {len(rows)} files, {summary['ours_cpu_files_per_second']} files/s per core (CPU), "
              f"mean {summary['ours_cpu_mean_ms']} ms, median {summary['ours_cpu_median_ms']} ms; wall sum "
              f"{ours_seconds:.1f} s; modes {modes}")
        for kind, k in sorted(by_kind.items()):
            print(f"  {kind}: {k['files']} files, CPU {k['ours_cpu_seconds']:.1f} s, mean {k['ours_cpu_mean_ms']} ms, "
                  f"median {k['ours_cpu_median_ms']} ms")
        if args.compare:
            print(f"same expression as {args.compare}: {summary['compared_same']}/{summary['compared_files']}")
            for c in changed[:40]:
                print(f"- {c['path']}: now {c['ours']} ({c['ours_mode']}), was {c['earlier']} ({c['earlier_mode']})")
        return

    print("| measure | ours (tiered) | ScanCode full |")
    print("| --- | --- | --- |")
    print(f"| files | {len(rows)} | {len(rows)} |")
    print(f"| seconds (sum of per-file times) | {ours_seconds:.1f} | {scancode_seconds:.1f} |")
    print(f"| files/s per core | {summary['ours_files_per_second']} | {summary['scancode_files_per_second']} |")
    print(f"| speed-up | {summary['speedup']}x | 1x |")
    print(f"| CPU seconds (sum of per-file process CPU time) | {summary['ours_cpu_seconds']:.1f} | "
          f"{summary['scancode_cpu_seconds']:.1f} |")
    print(f"| speed-up in CPU time | {summary['speedup_cpu']}x | 1x |")
    print(f"| same SPDX expression | {same}/{len(rows)} ({summary['agreement_percent']} %) | - |")
    print(f"| same expression up to operand order (A AND B = B AND A) | {equivalent}/{len(rows)} | - |")
    print(f"| of the {len(with_licence)} files where ScanCode finds a licence: same | {summary['scancode_finds_licence_same']} | - |")
    ours_sorted = sorted(r["ours_seconds"] for r in rows)
    theirs_sorted = sorted(r["scancode_seconds"] for r in rows)
    print(f"| median per file | {1000 * ours_sorted[len(rows) // 2]:.1f} ms | {1000 * theirs_sorted[len(rows) // 2]:.0f} ms |")
    for kind, k in sorted(by_kind.items()):
        print(f"| {kind}: files, same, s ours / s scancode (CPU s) | {k['files']}, {k['same']} | "
              f"{k['ours_seconds']:.1f} / {k['scancode_seconds']:.1f} "
              f"({k['ours_cpu_seconds']:.1f} / {k['scancode_cpu_seconds']:.1f}) |")
    print(f"\nindex load {load_seconds:.1f} s (once per process, excluded); modes {modes}; wall {wall_seconds:.0f} s on {args.workers} workers")
    for r in disagreements[:40]:
        print(f"- {r['path']} ({r['ours_mode']}): ours={r['ours']} scancode={r['scancode']}")


if __name__ == "__main__":
    main()

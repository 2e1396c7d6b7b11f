"""Copyright detection benchmark: our prefiltered detector against ScanCode, same run.

    .venv/bin/python bench/copyrights.py [--files 2000] [--out results.json]
    .venv/bin/python bench/copyrights.py --quick    # licenses.py's quick sample, one worker

Same files as bench/licenses.py (`files_select`: every LICENSE/COPYING/NOTICE
file up to 200, 60 METADATA files, then a deterministic sample of source
files), so the two benchmarks describe one corpus.

For each file it runs
  ours      LicenseDetector.copyrights_find: the copyright prefilter
            (`_COPYRIGHT_HINT`), then ScanCode's cluecode `detect_copyrights`
            on the files that pass (what `LicenseDetector.detect` reports)
  scancode  scancode.api.get_copyrights(location), as `scancode -c` runs it
back to back in the same worker, and compares per file the set of holders
and the set of copyright statements. Authors are counted apart: ScanCode
also reports "Author: X" lines with no copyright mark, which our prefilter
does not look for. Prints a Markdown table and writes per-file results
(disagreements first) as JSON to bench/out/copyrights[-quick].json.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from licenses import QUICK, files_select  # noqa: E402  (bench/licenses.py: the same sample)

from bench.inputs import out_write  # noqa: E402

from compliance.engine.licenses.detect import (  # noqa: E402
    LicenseDetector,
    copyright_hint_present,
    license_file_is_legal,
)

_DETECTOR = None


def _worker_init() -> None:
    global _DETECTOR
    _DETECTOR = LicenseDetector(cache_dir=None, copyrights=True, strategy="fast")


def file_measure(task: tuple[str, str]) -> dict:
    """Both detectors on one file, timed separately."""
    import scancode.api

    path, root = task
    data = open(path, "rb").read()
    t0 = time.perf_counter()
    ours = _DETECTOR.copyrights_find(path=path, data=data)
    t1 = time.perf_counter()
    theirs = scancode.api.get_copyrights(location=path)
    t2 = time.perf_counter()
    name = os.path.basename(path)
    ours_statements = sorted({c.value for c in ours if c.kind == "copyright"})
    ours_holders = sorted({c.value for c in ours if c.kind == "holder"})
    ours_authors = sorted({c.value for c in ours if c.kind == "author"})
    theirs_statements = sorted({c["copyright"] for c in theirs["copyrights"]})
    theirs_holders = sorted({c["holder"] for c in theirs["holders"]})
    theirs_authors = sorted({c["author"] for c in theirs["authors"]})
    return {
        "path": os.path.relpath(path, root),
        "kind": "legal" if license_file_is_legal(path=name) else ("metadata" if name in ("METADATA", "PKG-INFO") else "source"),
        "bytes": len(data),
        "hint": copyright_hint_present(data=data),
        "ours_statements": ours_statements,
        "ours_holders": ours_holders,
        "ours_authors": ours_authors,
        "scancode_statements": theirs_statements,
        "scancode_holders": theirs_holders,
        "scancode_authors": theirs_authors,
        "same_statements": ours_statements == theirs_statements,
        "same_holders": ours_holders == theirs_holders,
        "same_authors": ours_authors == theirs_authors,
        "ours_seconds": round(t1 - t0, 5),
        "scancode_seconds": round(t2 - t1, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['files']} files, one worker: checks the run")
    parser.add_argument("--files", type=int, default=None, help=f"files in the sample (2,000; quick {QUICK['files']})")
    parser.add_argument("--workers", type=int, default=None, help=f"processes (2; quick {QUICK['workers']})")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"])
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/copyrights[-quick].json)")
    args = parser.parse_args()
    args.files = args.files or (QUICK["files"] if args.quick else 2000)
    args.workers = args.workers or (QUICK["workers"] if args.quick else 2)

    import multiprocessing

    if args.quick:
        paths = files_select(root=args.root, total=args.files, legal_files=QUICK["legal"],
                             metadata_files_count=QUICK["metadata"])
    else:
        paths = files_select(root=args.root, total=args.files)
    wall_started = time.perf_counter()
    rows = []
    with multiprocessing.get_context("fork").Pool(args.workers, initializer=_worker_init) as pool:
        for number, row in enumerate(pool.imap_unordered(file_measure, [(p, args.root) for p in paths], chunksize=4), start=1):
            rows.append(row)
            if number % 200 == 0:
                print(f"{number}/{len(paths)} ours {sum(r['ours_seconds'] for r in rows):.1f}s "
                      f"scancode {sum(r['scancode_seconds'] for r in rows):.1f}s", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: r["path"])
    wall_seconds = time.perf_counter() - wall_started
    ours_seconds = sum(r["ours_seconds"] for r in rows)
    scancode_seconds = sum(r["scancode_seconds"] for r in rows)
    count = len(rows)
    same_statements = sum(r["same_statements"] for r in rows)
    same_holders = sum(r["same_holders"] for r in rows)
    same_both = sum(r["same_statements"] and r["same_holders"] for r in rows)
    same_authors = sum(r["same_authors"] for r in rows)
    with_statements = sum(1 for r in rows if r["scancode_statements"])
    with_statements_same = sum(1 for r in rows if r["scancode_statements"] and r["same_statements"] and r["same_holders"])
    skipped = sum(1 for r in rows if not r["hint"])
    lost = [r for r in rows if not r["hint"] and (r["scancode_statements"] or r["scancode_holders"])]
    by_kind: dict = {}
    for r in rows:
        k = by_kind.setdefault(r["kind"], {"files": 0, "same_both": 0, "ours_seconds": 0.0, "scancode_seconds": 0.0})
        k["files"] += 1
        k["same_both"] += r["same_statements"] and r["same_holders"]
        k["ours_seconds"] += r["ours_seconds"]
        k["scancode_seconds"] += r["scancode_seconds"]
    summary = {
        "files": count,
        "workers": args.workers,
        "wall_seconds": round(wall_seconds, 1),
        "ours_seconds": round(ours_seconds, 2),
        "scancode_seconds": round(scancode_seconds, 2),
        "ours_files_per_second": round(count / ours_seconds, 1),
        "scancode_files_per_second": round(count / scancode_seconds, 2),
        "speedup": round(scancode_seconds / ours_seconds, 1),
        "same_statements": same_statements,
        "same_holders": same_holders,
        "same_both": same_both,
        "same_authors": same_authors,
        "files_with_statements": with_statements,
        "files_with_statements_same": with_statements_same,
        "prefilter_skipped": skipped,
        "prefilter_lost": len(lost),
        "by_kind": by_kind,
    }
    disagreements = [r for r in rows if not (r["same_statements"] and r["same_holders"])]
    summary["mode"] = "quick" if args.quick else "full"
    out_write(name="copyrights-quick" if args.quick else "copyrights", out=args.out,
              data={"summary": summary, "disagreements": disagreements, "rows": rows})

    print("| measure | ours (prefilter + cluecode) | ScanCode get_copyrights |")
    print("| --- | --- | --- |")
    print(f"| files | {count} | {count} |")
    print(f"| seconds (sum of per-file times) | {ours_seconds:.1f} | {scancode_seconds:.1f} |")
    print(f"| files/s per core | {summary['ours_files_per_second']} | {summary['scancode_files_per_second']} |")
    print(f"| speed-up | {summary['speedup']}x | 1x |")
    print(f"| same copyright statements | {same_statements}/{count} | - |")
    print(f"| same holders | {same_holders}/{count} | - |")
    print(f"| same statements and holders | {same_both}/{count} ({100 * same_both / count:.2f} %) | - |")
    print(f"| of the {with_statements} files where ScanCode finds a statement: same | {with_statements_same} | - |")
    print(f"| same authors (not prefiltered for) | {same_authors}/{count} | - |")
    print(f"| files skipped by the prefilter | {skipped} | - |")
    print(f"| skipped files where ScanCode finds a statement or holder | {len(lost)} | - |")
    for kind, k in sorted(by_kind.items()):
        print(f"| {kind}: files, same, s ours / s scancode | {k['files']}, {k['same_both']} | {k['ours_seconds']:.1f} / {k['scancode_seconds']:.1f} |")
    print(f"\nwall {wall_seconds:.0f} s on {args.workers} workers")
    for r in disagreements[:40]:
        print(f"- {r['path']} (hint {r['hint']}): statements ours={r['ours_statements']} scancode={r['scancode_statements']}; "
              f"holders ours={r['ours_holders']} scancode={r['scancode_holders']}")


if __name__ == "__main__":
    main()

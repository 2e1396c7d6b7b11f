"""A licence scanner's private memory as it works through files, before and after this change (issue #16).

    .venv/bin/python bench/scanner_memory.py [--files 1000] [--out FILE]

What a checks worker does: its main process loads ScanCode's index (and, on main, runs
``compliance.engine.licenses.detect.detection_warm``), then the scanners of a licence check are
forked from it and share its pages until they write to them. Their private pages are what the
worker's footprint grows by, and what ``PORTAL_SCAN_RECYCLE_MB`` retires them for.

For each variant, in a fresh interpreter: load the index, ``gc.collect``, fork one scanner that ``gc.freeze``s as the portal's do and
detects --files files of the bench tree (``bench/submission_e2e.py``'s, shuffled with a fixed seed,
the same files for both variants) with one ``LicenseDetector``, reading its Private_Dirty
(``compliance.engine.parallel.private_bytes``, the figure the recycling limit reads) after each
checkpoint. Also reported: the files after which the scanner first passed 150, 200 and 250 MB (how
often a recycling limit at that size would re-fork it), its CPU seconds, and the warm-up's own
seconds in the parent, and the parent's RSS before the fork. The variants:

* "before": the code before the change: ScanCode's per-rule multisets and postings kept as its
  index holds them (``scancode_index._rule_tables_lazy`` skipped) and no warm-up;
* "lazy": those tables made when asked, no warm-up;
* "after": the code as it is: lazy tables and ``detection_warm`` in the parent.

They run one after the other in that order, then again in the reverse order (CPU seconds on a
shared machine move with its load: read each pair, not one figure). Printed as JSON; raw
output goes to bench/out/scanner_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import out_write  # noqa: E402

MB = 1 << 20
CHECKPOINTS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
THRESHOLDS_MB = (150, 200, 250)
VARIANTS = ("before", "lazy", "after")


def measure(*, files: int, variant: str) -> dict:
    """In this (fresh) process: load, maybe warm, fork one scanner, detect, report (see above)."""
    import gc

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from bench.submission_e2e import tree_plan
    from compliance.engine.licenses.detect import LicenseDetector, detection_warm
    from compliance.engine.licenses.scancode_index import scancode_state_get
    from compliance.engine.parallel import private_bytes

    from compliance.engine.licenses import scancode_index

    items = list(tree_plan(files=files, corpora=[]).items())
    random.Random(16).shuffle(items)
    items = items[:files]
    if variant == "before":
        scancode_index._rule_tables_lazy = lambda index: None
    scancode_state_get()
    warm_s, tiers = None, None
    if variant == "after":
        started = time.perf_counter()
        tiers = detection_warm()
        warm_s = round(time.perf_counter() - started, 2)
    gc.collect()
    scancode_index.heap_trim()
    parent_rss_mb = None
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                parent_rss_mb = round(int(line.split()[1]) / 1024, 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the scanner
        os.close(read)
        gc.freeze()
        curve, first_over = [], {}
        started = time.process_time()
        detector = LicenseDetector(copyrights=True)
        curve.append({"files": 0, "private_mb": round(private_bytes() / MB, 1)})
        for done, (path, data) in enumerate(items, start=1):
            detector.detect(path=path, data=data)
            private = private_bytes() / MB
            for limit in THRESHOLDS_MB:
                if private > limit and limit not in first_over:
                    first_over[limit] = done
            if done in CHECKPOINTS or done == len(items):
                curve.append({"files": done, "private_mb": round(private, 1),
                              "cpu_s": round(time.process_time() - started, 1)})
        report = {"curve": curve, "first_over_mb": {str(k): v for k, v in first_over.items()},
                  "tiers": detector.stats}
        with os.fdopen(write, "w") as handle:
            json.dump(report, handle)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        report = json.load(handle)
    os.waitpid(pid, 0)
    return {"variant": variant, "parent_rss_mb": parent_rss_mb, "warm_up_s": warm_s, "warm_up_tiers": tiers,
            **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # one measurement, in this fresh interpreter
        print(json.dumps(measure(files=args.files, variant=args.variant)))
        return
    runs = []
    for variant in VARIANTS + VARIANTS[::-1]:
        print(f"scanner memory: {variant}, {args.files} files", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--files", str(args.files), "--variant", variant],
                              check=True, capture_output=True, text=True, cwd=ROOT)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = {"files": args.files, "runs": runs}
    for run in runs:
        marks = {point["files"]: point["private_mb"] for point in run["curve"]}
        print(f"{run['variant']:>6}: parent RSS {run['parent_rss_mb']} MB; scanner private MB after " + ", ".join(
            f"{n}: {marks[n]}" for n in (1, 10, 100, 500, 1000, 2000) if n in marks)
            + f"; first over {run['first_over_mb']}; CPU {run['curve'][-1].get('cpu_s')} s", file=sys.stderr)
    out_write(name="scanner_memory", data=result, out=args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

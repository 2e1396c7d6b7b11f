"""Licence detection's CPU per file, with ScanCode's detection analysis as it was and as it is (issue #16).

    .venv/bin/python bench/licence_analysis.py [--files 1000,3000] [--out FILE]

What a licence scanner does with each file of a source tree: ``LicenseDetector.detect`` (the
prefilters, the exact pass, the full matcher where a file escalates, the copyright grammar), on the
files of ``bench/submission_e2e.py``'s tree (``tree_plan``, the same files for every variant), in one
process with the index loaded and the detector warmed as a checks worker has them, no cache.

Two variants, switched by ``compliance.engine.licenses.scancode_index.LEAN_ANALYSIS``:

* "before": ScanCode's ``detect_licenses`` and its ``is_false_positive`` as they are (every match's
  matched text read for the false-positive test and for each detection's identifier), and the
  multisets of every candidate surviving the first filter made up front;
* "after" (main): ``scancode_index.detections_find``: the relevance test asked before the matched
  text's, no detection identifiers, the multisets of the top-ranked candidates only.

Each runs in a fresh interpreter, in the order before, after, after, before for every size (CPU
seconds on a shared machine move with its load: read the pairs). Reported per run: CPU seconds
(``time.process_time`` around the detections only), the files per tier, the CPU per tier, and a
SHA-256 of every file's result (``FileLicenseResult.to_dict``, in order): the variants must give the
same digest. Printed as JSON; raw output goes to bench/out/licence_analysis.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import out_write  # noqa: E402

VARIANTS = ("before", "after")


def measure(*, files: int, variant: str) -> dict:
    """In this (fresh) process: load, warm, detect every file once, report (see above)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from bench.submission_e2e import tree_plan
    from compliance.engine.licenses import scancode_index
    from compliance.engine.licenses.detect import LicenseDetector, detection_warm

    scancode_index.LEAN_ANALYSIS = variant == "after"
    items = list(tree_plan(files=files, corpora=[]).items())
    scancode_index.scancode_state_get()
    detection_warm()
    digest = hashlib.sha256()
    tiers: dict[str, dict] = {}
    total = 0.0
    with LicenseDetector(cache_dir=None) as detector:
        for path, data in items:
            started = time.process_time()
            result = detector.detect(path=path, data=data)
            spent = time.process_time() - started
            total += spent
            tier = tiers.setdefault(result.mode.removeprefix("cache:"), {"files": 0, "cpu_s": 0.0})
            tier["files"] += 1
            tier["cpu_s"] += spent
            digest.update(json.dumps(result.to_dict(), sort_keys=True).encode())
    return {
        "variant": variant, "requested_files": files, "files": len(items), "cpu_s": round(total, 2),
        "ms_per_file": round(1000 * total / max(1, len(items)), 2),
        "tiers": {mode: {"files": t["files"], "cpu_s": round(t["cpu_s"], 2)} for mode, t in sorted(tiers.items())},
        "results_sha256": digest.hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", default="1000,3000", help="comma-separated tree sizes (default 1000,3000)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in str(args.files).split(",") if size.strip()]
    if args.variant:  # one measurement, in this fresh interpreter
        print(json.dumps(measure(files=sizes[0], variant=args.variant)))
        return
    runs = []
    for files in sizes:
        for variant in VARIANTS + VARIANTS[::-1]:
            print(f"licence analysis: {variant}, {files} files", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, __file__, "--files", str(files), "--variant", variant],
                                  check=True, capture_output=True, text=True, cwd=ROOT)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary = []
    for files in sizes:
        mine = [run for run in runs if run["requested_files"] == files]
        before = [run["cpu_s"] for run in mine if run["variant"] == "before"]
        after = [run["cpu_s"] for run in mine if run["variant"] == "after"]
        digests = {run["results_sha256"] for run in mine}
        summary.append({"files": files, "before_cpu_s": before, "after_cpu_s": after,
                        "ratio_before_over_after": round(sum(before) / max(1e-9, sum(after)), 2),
                        "answers_identical": len(digests) == 1})
        print(f"{files} files: before {before} CPU s, after {after} CPU s, "
              f"{summary[-1]['ratio_before_over_after']}x; answers identical: {len(digests) == 1}", file=sys.stderr)
    result = {"runs": runs, "summary": summary}
    out_write(name="licence_analysis", data=result, out=args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

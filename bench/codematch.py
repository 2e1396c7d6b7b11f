"""Copied-code detection benchmark: precision and recall per disguise, and scan speed.

    .venv/bin/python bench/codematch.py --corpus DIR [--index-dir DIR] [--sources 40]

Reference index: every package directory under --corpus (unpacked wheels of
transformers, vllm, sglang, modelscope, ms-swift, megatron-core, trl: fetch
them with `pip download --no-deps NAME` and unzip, one directory per wheel;
default /work/refwheels/src) plus installed packages from
this virtualenv (django, scipy, numpy, ...) until the index holds at least
--min-files (20,000) code files. The index is built in two steps so the scan
speed is measured on a small index (transformers alone) and on the full one:
that is how cost grows with the index.

Labelled set (deterministic by sha1 of path): --sources Python files from
transformers and vllm of 120-2,500 lines, each turned into
  exact        the file under another name
  renamed      every identifier renamed (length kept: letters rotated)
  reformatted  `ast.unparse`: comments dropped, layout, quotes, parentheses redone
  reordered    class bodies and top-level statements reversed
  partial-N    N lines (N = 10, 20, 30, 60, 100, 200) of the file, starting at a
               def/class, pasted into an unrelated standard-library module
and negatives: 300 standard-library modules (not indexed; modules also
vendored into the index, like distutils, are skipped).

A positive counts as found when a match points at the source file or lists
it among the origin's siblings (and, for partial-N, overlaps the pasted
lines). Precision counts every reported match: matches to the wrong origin
and any match on a negative are false positives (the report lists each one,
to be read by hand: several stdlib modules are really vendored by indexed
packages).

The same run also scans the labelled set with short-region verification
switched off (the fingerprint thresholds alone), on the same index, so the
gain and the cost of verification are measured under the same load; and it
times each indexing stage per file on --cost-sample corpus files
(tokenize + winnow, token stream, line hashes, the file's own licence).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import shutil
import statistics
import sys
import sysconfig
import time
import tokenize
import keyword

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from compliance.engine.codematch import CodeMatcher, code_index_add  # noqa: E402
from compliance.engine.codematch.tokens import path_is_code  # noqa: E402

SITE_PACKAGES_FILL = ["django", "scipy", "numpy", "sympy", "celery", "kombu", "rdflib", "cryptography", "lxml",
                      "pygments", "hypothesis", "faker", "pip", "setuptools"]
PARTIAL_SIZES = (10, 20, 30, 60, 100, 200)
STDLIB = sysconfig.get_paths()["stdlib"]


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _count_code(root: str) -> int:
    return sum(1 for d, _, names in os.walk(root) for n in names if path_is_code(path=n))


def _wheel_license(top: str) -> str:
    """License-Expression (or License) from the wheel's METADATA; Apache-2.0, what all of them use, if absent."""
    for d in os.listdir(top):
        if d.endswith(".dist-info") and os.path.exists(os.path.join(top, d, "METADATA")):
            for line in open(os.path.join(top, d, "METADATA"), encoding="utf-8", errors="replace"):
                if line.startswith(("License-Expression:", "License:")) and len(line) < 80:
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    return "Apache-2.0"


def index_build(*, index_dir: str, corpus: str, min_files: int) -> list[dict]:
    """Index transformers first (timed separately), then the rest up to min_files."""
    summaries = []
    packages = []
    for name in sorted(os.listdir(corpus)):
        top = os.path.join(corpus, name)
        if not os.path.isdir(top):
            continue
        inner = [d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d)) and not d.endswith((".dist-info", ".data"))]
        for d in inner:
            packages.append((d, os.path.join(top, d), _wheel_license(top)))
    packages.sort(key=lambda p: (p[0] != "transformers", p[0]))
    site = sysconfig.get_paths()["purelib"]
    for name in SITE_PACKAGES_FILL:
        if os.path.isdir(os.path.join(site, name)):
            packages.append((name, os.path.join(site, name), None))
    total = 0
    for name, root, license_expression in packages:
        if total >= min_files and name != "transformers":
            break
        summary = code_index_add(index_dir=index_dir, source=root, name=name, version="bench",
                                 license_expression=license_expression)
        total += summary.files
        summaries.append(summary.to_dict())
        print(f"indexed {name}: {summary.files} files, {summary.fingerprints} fingerprints, {summary.seconds} s "
              f"(licence headers {summary.license_seconds} s, {summary.files_with_own_license} files with their own "
              f"licence) (total {total})", file=sys.stderr, flush=True)
        if name == "transformers":
            # Measure scan speed on the transformers-only index before growing it.
            _SMALL_INDEX_HOOK(index_dir)
    return summaries


def indexing_cost_sample(*, corpus: str, count: int = 1000) -> dict:
    """CPU ms per reference file for each indexing stage, on `count` code files of the corpus.

    Stages: tokenize + winnow (what indexing cost before), the token stream
    kept for verification, and the file's own licence from its header. The
    ScanCode index load (once per process) is timed apart.
    """
    from compliance.engine.codematch import index as index_module
    from compliance.engine.codematch.tokens import code_tokens
    from compliance.engine.codematch.winnow import fingerprints_compute, token_stream_pack

    paths = sorted((os.path.join(d, n) for d, _, names in os.walk(corpus) for n in names if path_is_code(path=n)), key=_sha)
    paths = [p for p in paths if os.path.getsize(p) <= 2 * 1024 * 1024][:count]
    t0 = time.process_time()
    index_module._license_detector()
    load = time.process_time() - t0
    stages = {"tokenize_winnow": 0.0, "token_stream": 0.0, "line_hashes": 0.0, "header_licence": 0.0}
    own = stream_bytes = 0
    for path in paths:
        text = open(path, encoding="utf-8", errors="replace").read()
        t0 = time.process_time()
        tokens = code_tokens(path=path, text=text)
        fingerprints_compute(tokens=tokens)
        t1 = time.process_time()
        stream_bytes += len(token_stream_pack(tokens=tokens))
        t2 = time.process_time()
        stream_bytes += len(index_module.line_hashes_pack(text=text))
        t3 = time.process_time()
        own += index_module.header_license_detect(text=text) is not None
        t4 = time.process_time()
        stages["tokenize_winnow"] += t1 - t0
        stages["token_stream"] += t2 - t1
        stages["line_hashes"] += t3 - t2
        stages["header_licence"] += t4 - t3
    return {"files": len(paths), "scancode_load_seconds": round(load, 1), "files_with_own_license": own,
            "verification_bytes_per_file": round(stream_bytes / max(1, len(paths))),
            **{f"{k}_ms_per_file": round(1000 * v / max(1, len(paths)), 2) for k, v in stages.items()}}


def _rotate(name: str) -> str:
    return "".join(chr((ord(c) - 97 + 7) % 26 + 97) if "a" <= c <= "z" else c for c in name)


def renamed(text: str) -> str:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string) and tok.string not in ("self", "cls", "super"):
            tok = tok._replace(string=_rotate(tok.string))
        out.append(tok)
    return tokenize.untokenize(out)


def reformatted(text: str) -> str:
    return ast.unparse(ast.parse(text))


def reordered(text: str) -> str:
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            node.body = list(reversed(node.body))
    tree.body = list(reversed(tree.body))
    return ast.unparse(tree)


def partial(text: str, size: int, host: str, seed: str) -> tuple[str, tuple[int, int], tuple[int, int]] | None:
    """Paste `size` lines starting at a def/class into host; return text, vendor lines, origin lines."""
    tree = ast.parse(text)
    starts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)]
    lines = text.splitlines()
    starts = [s for s in starts if s + size - 1 <= len(lines)]
    if not starts:
        return None
    start = sorted(starts, key=lambda s: _sha(f"{seed}{s}"))[0]
    chunk = lines[start - 1 : start - 1 + size]
    host_lines = host.splitlines()
    cut = len(host_lines) // 2
    vendor = host_lines[:cut] + chunk + host_lines[cut:]
    return "\n".join(vendor), (cut + 1, cut + size), (start, start + size - 1)


def stdlib_files(*, count: int, skip_names: set[str]) -> list[str]:
    found = []
    for d, dirs, names in os.walk(STDLIB):
        dirs[:] = [x for x in dirs if x not in ("site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__", "distutils", "ensurepip")]
        for n in names:
            if n.endswith(".py") and n not in skip_names:
                p = os.path.join(d, n)
                if 2_000 < os.path.getsize(p) < 200_000:
                    found.append(p)
    return sorted(found, key=_sha)[:count]


def sources_pick(*, corpus: str, count: int) -> list[tuple[str, str]]:
    """(absolute path, path inside its package) of Python files of 120-2,500 lines."""
    picked = []
    for package in ("transformers", "vllm"):
        root = None
        for top in os.listdir(corpus):
            if os.path.isdir(os.path.join(corpus, top, package)):
                root = os.path.join(corpus, top, package)
        if not root:
            continue
        for d, _, names in os.walk(root):
            for n in names:
                if n.endswith(".py"):
                    p = os.path.join(d, n)
                    lines = open(p, encoding="utf-8", errors="replace").read().count("\n")
                    if 120 <= lines <= 2500:
                        picked.append((p, os.path.relpath(p, root)))
    picked.sort(key=lambda x: _sha(x[0]))
    return picked[:count]


def match_evaluate(matches, *, origin_path: str, vendor_lines=None) -> tuple[int, int]:
    """(true positives, false positives) among one vendor file's matches."""
    tp = fp = 0
    for m in matches:
        right_origin = m.origin.path == origin_path or origin_path in m.origin.siblings or m.origin.sibling_count > len(m.origin.siblings)
        right_lines = vendor_lines is None or (m.lines[0] <= vendor_lines[1] and m.lines[1] >= vendor_lines[0])
        if right_origin and right_lines:
            tp += 1
        else:
            fp += 1
    return tp, fp


_SMALL = {}


def _SMALL_INDEX_HOOK(index_dir):  # replaced in main
    pass


def main() -> None:
    global _SMALL_INDEX_HOOK
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="/work/refwheels/src")
    parser.add_argument("--index-dir", default="/work/refwheels/index-bench")
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--negatives", type=int, default=300)
    parser.add_argument("--min-files", type=int, default=20000)
    parser.add_argument("--reuse-index", action="store_true")
    parser.add_argument("--cost-sample", type=int, default=1000, help="files for the per-stage indexing cost (0: skip)")
    parser.add_argument("--out", default="/tmp/codematch-results.json")
    args = parser.parse_args()

    sources = sources_pick(corpus=args.corpus, count=args.sources)
    skip_names = {os.path.basename(p) for p, _ in sources}
    negatives = stdlib_files(count=args.negatives, skip_names=skip_names)
    hosts = stdlib_files(count=args.negatives + 50, skip_names=skip_names)[args.negatives:]

    cases = []  # (kind, vendor_path, text, origin_path, vendor_lines)
    for number, (path, rel) in enumerate(sources):
        text = open(path, encoding="utf-8").read()
        package_rel = rel
        cases.append(("exact", f"v/{number}/copy.py", text, package_rel, None))
        cases.append(("renamed", f"v/{number}/renamed.py", renamed(text), package_rel, None))
        cases.append(("reformatted", f"v/{number}/reformatted.py", reformatted(text), package_rel, None))
        cases.append(("reordered", f"v/{number}/reordered.py", reordered(text), package_rel, None))
        host = open(hosts[number % len(hosts)], encoding="utf-8").read()
        for size in PARTIAL_SIZES:
            made = partial(text, size, host, seed=str(number))
            if made:
                cases.append((f"partial-{size}", f"v/{number}/partial{size}.py", made[0], package_rel, made[1]))
    for path in negatives:
        cases.append(("negative", "n/" + os.path.relpath(path, STDLIB), open(path, encoding="utf-8", errors="replace").read(), None, None))

    wrong_log: list[dict] = []
    licence_log = {"matches": 0, "file": 0, "package": 0, "none": 0, "file_differs_from_package": 0, "examples": []}

    def scan_all(matcher, record=False):
        per_kind = {}
        latencies = []
        for kind, vpath, text, origin, vlines in cases:
            t0 = time.perf_counter()
            matches = matcher.file_match(path=vpath, text=text)
            latencies.append(time.perf_counter() - t0)
            k = per_kind.setdefault(kind, {"cases": 0, "found": 0, "tp": 0, "fp": 0, "verified": 0})
            k["cases"] += 1
            k["verified"] += sum(1 for m in matches if m.matched_tokens is not None)
            if record:
                for m in matches:
                    licence_log["matches"] += 1
                    licence_log[m.origin.license_source or "none"] += 1
                    if m.origin.license_source == "file" and m.license_expression != m.origin.package_license_expression:
                        licence_log["file_differs_from_package"] += 1
                        if len(licence_log["examples"]) < 15:
                            licence_log["examples"].append(f"{m.origin.name}/{m.origin.path}: {m.license_expression} "
                                                           f"(package {m.origin.package_license_expression})")
            if origin is None:
                k["fp"] += len(matches)
                k["found"] += bool(matches)
                if record:
                    wrong_log.extend({"kind": kind, "vendor": vpath, "lines": m.lines, "origin": f"{m.origin.name}/{m.origin.path}",
                                      "origin_lines": m.origin.lines, "score": m.score, "matched_tokens": m.matched_tokens}
                                     for m in matches)
                continue
            tp, fp = match_evaluate(matches, origin_path=origin, vendor_lines=vlines)
            if record and fp:
                wrong_log.extend({"kind": kind, "vendor": vpath, "lines": m.lines, "pasted": vlines, "expected": origin,
                                  "origin": f"{m.origin.name}/{m.origin.path}", "origin_lines": m.origin.lines,
                                  "score": m.score, "matched_tokens": m.matched_tokens}
                                 for m in matches if not match_evaluate([m], origin_path=origin, vendor_lines=vlines)[0])
            k["tp"] += tp
            k["fp"] += fp
            k["found"] += tp > 0
        return per_kind, latencies

    def speed(latencies):
        total = sum(latencies)
        return {"files": len(latencies), "seconds": round(total, 2), "files_per_second": round(len(latencies) / total, 1),
                "median_ms": round(1000 * statistics.median(latencies), 1),
                "p95_ms": round(1000 * sorted(latencies)[int(0.95 * len(latencies)) - 1], 1)}

    small_speed = {}

    def small_hook(index_dir):
        matcher = CodeMatcher(index_dir=index_dir)
        _, latencies = scan_all(matcher)
        small_speed["index_files"] = 0
        matcher_packages = matcher.packages
        matcher.close()
        small_speed.update(speed(latencies))
        small_speed["index_files"] = sum(p["files"] for p in matcher_packages.values())

    _SMALL_INDEX_HOOK = small_hook
    cost = indexing_cost_sample(corpus=args.corpus, count=args.cost_sample) if args.cost_sample else None
    if cost:
        print(f"indexing cost per file (sample): {cost}", flush=True)
    build_seconds = None
    summaries = None
    if not args.reuse_index:
        shutil.rmtree(args.index_dir, ignore_errors=True)
        t0 = time.perf_counter()
        summaries = list(index_build(index_dir=args.index_dir, corpus=args.corpus, min_files=args.min_files))
        build_seconds = time.perf_counter() - t0
    matcher = CodeMatcher(index_dir=args.index_dir)
    index_files = sum(p["files"] for p in matcher.packages.values())
    index_fps = matcher.connection.execute("SELECT SUM(fingerprints) FROM packages").fetchone()[0]
    per_kind, latencies = scan_all(matcher, record=True)
    # Baseline in the same run: whole-file hash lookup (what exact-file
    # provenance tools such as ScanCode matchcode's file index find).
    import hashlib as _hashlib

    baseline = {}
    baseline_seconds = 0.0
    for kind, _vpath, text, origin, _vlines in cases:
        t0 = time.perf_counter()
        digest = _hashlib.sha256(text.encode("utf-8")).hexdigest()
        hit = matcher.connection.execute("SELECT path FROM files WHERE sha256 = ? LIMIT 1", (digest,)).fetchone()
        baseline_seconds += time.perf_counter() - t0
        b = baseline.setdefault(kind, {"cases": 0, "found": 0})
        b["cases"] += 1
        b["found"] += bool(hit) and (origin is None or hit[0] == origin or hit[0].endswith(origin))
    # The same scan with verification off (the matcher as it was before it:
    # fingerprint thresholds only), on the same index in the same run, so the
    # cost and the gain of verification are measured under the same load.
    from compliance.engine.codematch import scan as scan_module

    saved = (scan_module.VERIFY_CANDIDATES, scan_module.VERIFY_MIN_FINGERPRINTS,
             scan_module.REPETITION_CHECK_BELOW_FINGERPRINTS)
    scan_module.VERIFY_CANDIDATES, scan_module.VERIFY_MIN_FINGERPRINTS = 0, 10**9
    scan_module.REPETITION_CHECK_BELOW_FINGERPRINTS = 0
    plain_matcher = CodeMatcher(index_dir=args.index_dir)
    plain_per_kind, plain_latencies = scan_all(plain_matcher)
    plain_matcher.close()
    (scan_module.VERIFY_CANDIDATES, scan_module.VERIFY_MIN_FINGERPRINTS,
     scan_module.REPETITION_CHECK_BELOW_FINGERPRINTS) = saved
    matcher.close()
    size_mb = os.path.getsize(os.path.join(args.index_dir, "code-index.sqlite")) / 1e6

    rows = []
    for kind, k in per_kind.items():
        recall = k["found"] / k["cases"] if kind != "negative" else None
        precision = k["tp"] / (k["tp"] + k["fp"]) if kind != "negative" and (k["tp"] + k["fp"]) else None
        rows.append({"kind": kind, **k, "recall": recall, "precision": precision})
    positives_tp = sum(k["tp"] for kind, k in per_kind.items() if kind != "negative")
    all_fp = sum(k["fp"] for k in per_kind.values())
    summary = {
        "index_files": index_files, "index_fingerprints": index_fps, "index_mb": round(size_mb, 1),
        "index_build_seconds": round(build_seconds, 1) if build_seconds else None,
        "speed_full_index": speed(latencies), "speed_transformers_only_index": small_speed,
        "overall_precision": round(positives_tp / max(1, positives_tp + all_fp), 4),
        "negatives_with_any_match": per_kind.get("negative", {}).get("found"),
        "rows": rows,
        "baseline_file_hash": baseline,
        "baseline_seconds": round(baseline_seconds, 3),
        "indexing_cost_sample": cost,
        "without_verification": {"rows": plain_per_kind, "speed": speed(plain_latencies)},
        "index_summaries": summaries if not args.reuse_index else None,
        "wrong_matches": wrong_log,
        "match_licences": licence_log,
    }
    with open(args.out, "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    print(f"index: {index_files} files, {index_fps} fingerprints, {size_mb:.0f} MB")
    print("| transformation | cases | found (recall) | matches right / wrong | precision | file-hash baseline found | verified matches |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] == "negative":
            print(f"| negative (unrelated) | {r['cases']} | {r['found']} with any match | 0 / {r['fp']} | - | {baseline[r['kind']]['found']} | {r['verified']} |")
        else:
            precision = "-" if r["precision"] is None else f"{100 * r['precision']:.1f} %"
            print(f"| {r['kind']} | {r['cases']} | {r['found']} ({100 * r['recall']:.0f} %) | {r['tp']} / {r['fp']} | {precision} | {baseline[r['kind']]['found']} | {r['verified']} |")
    print(f"overall precision {100 * summary['overall_precision']:.1f} %")
    print(f"speed, full index: {summary['speed_full_index']}")
    print(f"speed, transformers-only index: {small_speed}")
    print("without verification (same index, same run):")
    for kind, k in plain_per_kind.items():
        right_wrong = f"{k['tp']} / {k['fp']}"
        print(f"  {kind}: found {k['found']} of {k['cases']}, matches right / wrong {right_wrong}")
    print(f"  speed: {speed(plain_latencies)}")
    if summaries:
        files = sum(x["files"] for x in summaries)
        seconds = sum(x["seconds"] for x in summaries)
        licence = sum(x["license_seconds"] for x in summaries)
        own = sum(x["files_with_own_license"] for x in summaries)
        print(f"indexing: {files} files in {seconds:.0f} s ({1000 * seconds / files:.1f} ms/file), of which licence "
              f"headers {licence:.0f} s ({1000 * licence / files:.1f} ms/file); {own} files state their own licence")
    print(f"match licences: {json.dumps(licence_log)}")
    print("wrong matches:")
    for w in wrong_log:
        print(f"  {json.dumps(w)}")


if __name__ == "__main__":
    main()

"""Copied-code detection benchmark: precision and recall per disguise, and scan speed.

    .venv/bin/python bench/codematch.py --corpus DIR [--index-dir DIR] [--sources 40]

Reference index: every package directory under --corpus (unpacked wheels of
transformers, vllm, sglang, modelscope, ms-swift, megatron-core: fetch them
with `pip download --no-deps NAME` and unzip) plus installed packages from
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
  partial-N    N lines (N = 10, 30, 60, 100, 200) of the file, starting at a
               def/class, pasted into an unrelated standard-library module
and negatives: 300 standard-library modules (not indexed; modules also
vendored into the index, like distutils, are skipped).

A positive counts as found when a match points at the source file or lists
it among the origin's siblings (and, for partial-N, overlaps the pasted
lines). Precision counts every reported match: matches to the wrong origin
and any match on a negative are false positives.
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
PARTIAL_SIZES = (10, 30, 60, 100, 200)
STDLIB = sysconfig.get_paths()["stdlib"]


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _count_code(root: str) -> int:
    return sum(1 for d, _, names in os.walk(root) for n in names if path_is_code(path=n))


def index_build(*, index_dir: str, corpus: str, min_files: int) -> list[dict]:
    """Index transformers first (timed separately), then the rest up to min_files."""
    summaries = []
    packages = []
    for name in sorted(os.listdir(corpus)):
        top = os.path.join(corpus, name)
        inner = [d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d)) and not d.endswith((".dist-info", ".data"))]
        for d in inner:
            packages.append((d, os.path.join(top, d), "Apache-2.0"))
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
              f"(total {total})", file=sys.stderr, flush=True)
        if name == "transformers":
            # Measure scan speed on the transformers-only index before growing it.
            _SMALL_INDEX_HOOK(index_dir)
    return summaries


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
    parser.add_argument("--corpus", default="/tmp/lic_corpus")
    parser.add_argument("--index-dir", default="/tmp/codematch-bench-index")
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--negatives", type=int, default=300)
    parser.add_argument("--min-files", type=int, default=20000)
    parser.add_argument("--reuse-index", action="store_true")
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

    def scan_all(matcher):
        per_kind = {}
        latencies = []
        for kind, vpath, text, origin, vlines in cases:
            t0 = time.perf_counter()
            matches = matcher.file_match(path=vpath, text=text)
            latencies.append(time.perf_counter() - t0)
            k = per_kind.setdefault(kind, {"cases": 0, "found": 0, "tp": 0, "fp": 0})
            k["cases"] += 1
            if origin is None:
                k["fp"] += len(matches)
                k["found"] += bool(matches)
                continue
            tp, fp = match_evaluate(matches, origin_path=origin, vendor_lines=vlines)
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
    build_seconds = None
    if not args.reuse_index:
        shutil.rmtree(args.index_dir, ignore_errors=True)
        t0 = time.perf_counter()
        summaries = list(index_build(index_dir=args.index_dir, corpus=args.corpus, min_files=args.min_files))
        build_seconds = time.perf_counter() - t0
    matcher = CodeMatcher(index_dir=args.index_dir)
    index_files = sum(p["files"] for p in matcher.packages.values())
    index_fps = matcher.connection.execute("SELECT SUM(fingerprints) FROM packages").fetchone()[0]
    per_kind, latencies = scan_all(matcher)
    # Baseline in the same run: whole-file hash lookup (what exact-file
    # provenance tools such as ScanCode matchcode's file index find).
    import hashlib as _hashlib

    baseline = {}
    baseline_seconds = 0.0
    for kind, vpath, text, origin, vlines in cases:
        t0 = time.perf_counter()
        digest = _hashlib.sha256(text.encode("utf-8")).hexdigest()
        hit = matcher.connection.execute("SELECT path FROM files WHERE sha256 = ? LIMIT 1", (digest,)).fetchone()
        baseline_seconds += time.perf_counter() - t0
        b = baseline.setdefault(kind, {"cases": 0, "found": 0})
        b["cases"] += 1
        b["found"] += bool(hit) and (origin is None or hit[0] == origin or hit[0].endswith(origin))
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
    }
    with open(args.out, "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    print(f"index: {index_files} files, {index_fps} fingerprints, {size_mb:.0f} MB")
    print("| transformation | cases | found (recall) | matches right / wrong | precision | file-hash baseline found |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] == "negative":
            print(f"| negative (unrelated) | {r['cases']} | {r['found']} with any match | 0 / {r['fp']} | - | {baseline[r['kind']]['found']} |")
        else:
            precision = "-" if r["precision"] is None else f"{100 * r['precision']:.1f} %"
            print(f"| {r['kind']} | {r['cases']} | {r['found']} ({100 * r['recall']:.0f} %) | {r['tp']} / {r['fp']} | {precision} | {baseline[r['kind']]['found']} |")
    print(f"overall precision {100 * summary['overall_precision']:.1f} %")
    print(f"speed, full index: {summary['speed_full_index']}")
    print(f"speed, transformers-only index: {small_speed}")


if __name__ == "__main__":
    main()

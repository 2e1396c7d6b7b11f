"""Copied-code detection benchmark: precision and recall per disguise, and scan speed.

    .venv/bin/python bench/codematch.py            # full: the published run, about 400 MB of wheels
    .venv/bin/python bench/codematch.py --quick    # trl + megatron-core only, a few minutes
    .venv/bin/python bench/codematch.py --corpus DIR [--index-dir DIR] [--sources 40]

Reference index: the unpacked wheels of transformers, vllm, sglang, modelscope,
ms-swift, megatron-core and trl at the versions pinned in bench/inputs.py
(`pip download --no-deps --only-binary :all: NAME==VERSION` into var/bench/wheels,
unpacked to var/bench/corpus, reused when there; or every wheel folder under
--corpus) plus installed packages from this virtualenv (django, scipy, numpy, ...)
until the index holds at least --min-files (20,000) code files. The index is built
in two steps so the scan speed is measured on a small index (transformers alone)
and on the full one: that is how cost grows with the index.

--quick indexes trl and megatron-core only (no virtualenv packages), takes its
sources from trl, and scans 5 sources and 20 negatives: it checks that the whole
run works, its figures are not the published ones. Raw JSON goes to
bench/out/codematch.json (bench/out/codematch-quick.json with --quick).

Labelled set (deterministic by sha1 of path): --sources Python files from
transformers and vllm (trl in quick mode) of 120-2,500 lines, each turned into
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

Speed on ordinary code (--speed-files, 1,000; quick 100): real code files of installed
packages that are not indexed, scanned by a fresh matcher: files per second of one core's
CPU time, ms per file, how many the screen let through to alignment, and the process's RSS
before and after the matcher loads the index and after the scan (--speed-only with
--reuse-index runs just this).

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
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.inputs import VAR_BENCH, corpus_described, corpus_folders, out_write  # noqa: E402
from compliance.engine.codematch import CodeMatcher, code_index_add  # noqa: E402
from compliance.engine.codematch.tokens import path_is_code  # noqa: E402

SITE_PACKAGES_FILL = ["django", "scipy", "numpy", "sympy", "celery", "kombu", "rdflib", "cryptography", "lxml",
                      "pygments", "hypothesis", "faker", "pip", "setuptools"]
PARTIAL_SIZES = (10, 20, 30, 60, 100, 200)
SOURCE_PACKAGES = ("transformers", "vllm")
SOURCE_PACKAGES_QUICK = ("trl",)
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


def index_build(*, index_dir: str, corpus: list[str], min_files: int, first: str = "transformers") -> list[dict]:
    """Index `first` (timed separately), then every other corpus package, then installed packages up to min_files."""
    summaries = []
    packages = []
    for top in corpus:
        inner = [d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d)) and not d.endswith((".dist-info", ".data"))]
        for d in inner:
            packages.append((d, os.path.join(top, d), _wheel_license(top)))
    packages.sort(key=lambda p: (p[0] != first, p[0]))
    site = sysconfig.get_paths()["purelib"]
    for name in SITE_PACKAGES_FILL:
        if os.path.isdir(os.path.join(site, name)):
            packages.append((name, os.path.join(site, name), None))
    total = 0
    corpus_names = {p[0] for p in packages if p[2] is not None}
    for name, root, license_expression in packages:
        if total >= min_files and name not in corpus_names:
            break
        summary = code_index_add(index_dir=index_dir, source=root, name=name, version="bench",
                                 license_expression=license_expression)
        total += summary.files
        summaries.append(summary.to_dict())
        print(f"indexed {name}: {summary.files} files, {summary.fingerprints} fingerprints, {summary.seconds} s "
              f"(licence headers {summary.license_seconds} s, {summary.files_with_own_license} files with their own "
              f"licence) (total {total})", file=sys.stderr, flush=True)
        if name == first:
            # Measure scan speed on the one-package index before growing it.
            _SMALL_INDEX_HOOK(index_dir)
    return summaries


def indexing_cost_sample(*, corpus: list[str], count: int = 1000) -> dict:
    """CPU ms per reference file for each indexing stage, on `count` code files of the corpus.

    Stages: tokenize + winnow (what indexing cost before), the token stream
    kept for verification, and the file's own licence from its header. The
    ScanCode index load (once per process) is timed apart.
    """
    from compliance.engine.codematch import index as index_module
    from compliance.engine.codematch.tokens import code_tokens
    from compliance.engine.codematch.winnow import fingerprints_compute, token_stream_pack

    # Keyed by the path under the corpus, not where the clone lies, so every machine times the same files.
    found = [(os.path.join(d, n), os.path.relpath(os.path.join(d, n), os.path.dirname(top)))
             for top in corpus for d, _, names in os.walk(top) for n in names if path_is_code(path=n)]
    paths = [path for path, _ in sorted(found, key=lambda item: _sha(item[1]))]
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


def sources_pick(*, corpus: list[str], count: int, packages: tuple[str, ...] = SOURCE_PACKAGES) -> list[tuple[str, str]]:
    """(absolute path, path inside its package) of Python files of 120-2,500 lines."""
    picked = []
    for package in packages:
        root = None
        for top in corpus:
            if os.path.isdir(os.path.join(top, package)):
                root = os.path.join(top, package)
        if not root:
            continue
        for d, _, names in os.walk(root):
            for n in names:
                if n.endswith(".py"):
                    p = os.path.join(d, n)
                    lines = open(p, encoding="utf-8", errors="replace").read().count("\n")
                    if 120 <= lines <= 2500:
                        picked.append((p, os.path.relpath(p, root)))
    # By the sha1 of the path inside the package, so the pick does not depend on where the corpus
    # lies (the published run sorted by the absolute path on its machine: another 40 of the same kind).
    picked.sort(key=lambda x: _sha(x[1]))
    return picked[:count]


def speed_files_pick(*, count: int, skip: set[str]) -> list[str]:
    """Real code files from installed packages that are not indexed (deterministic by sha1 of the
    path under site-packages): what most of a vendor tree is, code that copies nothing indexed."""
    site = sysconfig.get_paths()["purelib"]
    found = []
    for top in sorted(os.listdir(site)):
        if top in skip or top.endswith((".dist-info", ".libs", ".data")) or not os.path.isdir(os.path.join(site, top)):
            continue
        for d, _, names in os.walk(os.path.join(site, top)):
            for n in names:
                path = os.path.join(d, n)
                if path_is_code(path=n) and os.path.getsize(path) < 256 * 1024:
                    found.append(path)
    found.sort(key=lambda p: _sha(os.path.relpath(p, site)))
    return found[:count]


def _rss_mb() -> dict:
    values = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
            values[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return values


def speed_run(*, index_dir: str, files: list[str]) -> dict:
    """Scan `files` with a fresh matcher: CPU files/s (one core), ms per file, what the screen did, RSS."""
    import gc

    texts = [(p, open(p, encoding="utf-8", errors="replace").read()) for p in files]
    gc.collect()
    before = _rss_mb()
    t0 = time.perf_counter()
    matcher = CodeMatcher(index_dir=index_dir)
    load_seconds = time.perf_counter() - t0
    loaded = _rss_mb()
    latencies = []
    matched = 0
    cpu0 = time.process_time()
    for path, text in texts:
        t0 = time.perf_counter()
        matched += bool(matcher.file_match(path=path, text=text))
        latencies.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    after = _rss_mb()
    stats = dict(matcher.stats)
    matcher.close()
    latencies.sort()
    return {"files": len(texts), "with_matches": matched, "cpu_seconds": round(cpu, 2),
            "files_per_second_per_core": round(len(texts) / cpu, 1),
            "median_ms": round(1000 * statistics.median(latencies), 2),
            "p95_ms": round(1000 * latencies[int(0.95 * len(latencies)) - 1], 2),
            "matcher_load_seconds": round(load_seconds, 2), "screen": stats,
            "rss_mb": {"before_matcher": before.get("VmRSS"), "matcher_loaded": loaded.get("VmRSS"),
                       "after_scan": after.get("VmRSS"), "peak": after.get("VmHWM"),
                       "after_scan_anonymous": after.get("RssAnon"),
                       "after_scan_file_backed": after.get("RssFile")}}


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small corpus and labelled set: checks the run, not the figures")
    parser.add_argument("--corpus", default=None, help="folder of unpacked wheels, one per wheel (default: fetch the pinned "
                        "wheels into var/bench/corpus)")
    parser.add_argument("--index-dir", default=None, help="default var/bench/codematch-index[-quick]")
    parser.add_argument("--sources", type=int, default=None, help="labelled source files (40; quick 5)")
    parser.add_argument("--negatives", type=int, default=None, help="unrelated stdlib modules (300; quick 20)")
    parser.add_argument("--min-files", type=int, default=None, help="fill the index with installed packages up to "
                        "this many files (20,000; quick 0)")
    parser.add_argument("--reuse-index", action="store_true")
    parser.add_argument("--cost-sample", type=int, default=None, help="files for the per-stage indexing cost "
                        "(1,000; quick 50; 0: skip)")
    parser.add_argument("--speed-files", type=int, default=None, help="real code files from installed packages that "
                        "are not indexed, scanned for speed, screen counts and RSS (1,000; quick 100; 0: skip)")
    parser.add_argument("--speed-only", action="store_true", help="with --reuse-index: only the --speed-files run")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/codematch[-quick].json)")
    args = parser.parse_args()
    quick = args.quick
    for name, full_value, quick_value in (("sources", 40, 5), ("negatives", 300, 20), ("min_files", 20000, 0),
                                          ("cost_sample", 1000, 50), ("speed_files", 1000, 100)):
        if getattr(args, name) is None:
            setattr(args, name, quick_value if quick else full_value)
    args.index_dir = args.index_dir or str(VAR_BENCH / ("codematch-index-quick" if quick else "codematch-index"))
    source_packages = SOURCE_PACKAGES_QUICK if quick else SOURCE_PACKAGES
    corpus = [str(p) for p in corpus_folders(corpus=args.corpus, quick=quick)]
    print(f"corpus: {corpus_described(folders=[Path(p) for p in corpus])}", file=sys.stderr, flush=True)

    if args.speed_only:
        if not args.reuse_index:
            raise SystemExit("--speed-only needs --reuse-index")
        files = speed_files_pick(count=args.speed_files, skip=set(SITE_PACKAGES_FILL))
        result = speed_run(index_dir=args.index_dir, files=files)
        out_write(name="codematch-speed-quick" if quick else "codematch-speed", data=result, out=args.out)
        print(json.dumps(result, indent=1))
        return
    sources = sources_pick(corpus=corpus, count=args.sources, packages=source_packages)
    if not sources:
        raise SystemExit(f"no source files of 120-2,500 lines from {', '.join(source_packages)} in the corpus")
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
    cost = indexing_cost_sample(corpus=corpus, count=args.cost_sample) if args.cost_sample else None
    if cost:
        print(f"indexing cost per file (sample): {cost}", flush=True)
    build_seconds = None
    summaries = None
    if not args.reuse_index:
        shutil.rmtree(args.index_dir, ignore_errors=True)
        t0 = time.perf_counter()
        summaries = list(index_build(index_dir=args.index_dir, corpus=corpus, min_files=args.min_files,
                                     first=source_packages[0]))
        build_seconds = time.perf_counter() - t0
    speed_real = None
    if args.speed_files:
        speed_real = speed_run(index_dir=args.index_dir,
                               files=speed_files_pick(count=args.speed_files, skip=set(SITE_PACKAGES_FILL)))
        print(f"speed on {args.speed_files} real unindexed files: {json.dumps(speed_real)}", flush=True)
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
        "speed_real_unindexed_files": speed_real,
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
    summary["corpus"] = corpus_described(folders=[Path(p) for p in corpus])
    summary["small_index_package"] = source_packages[0]
    summary["mode"] = "quick" if quick else "full"
    out_write(name="codematch-quick" if quick else "codematch", data=summary, out=args.out)
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
    print(f"speed, {source_packages[0]}-only index: {small_speed}")
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

"""One real-sized submission, end to end, through the deployed pipeline (issue #16).

Builds what a programme receives and runs it through the README's worker layout:

- a sparse MoE checkpoint with real safetensors headers and real apparent sizes (a
  Solar-Open-100B-shaped model, ~200 GB in 5 GB shards, by default; `--model small`, a 4-layer
  d = 4096 MoE of ~1.6 GB, in --quick), written by `bench.lineage_cost.sparse_checkpoint_write`;
- a source archive (tar.gz) of --files real files taken from this project's installed packages
  (.venv site-packages, without ScanCode's licence database unless --licence-dense), the
  interpreter's standard library, a PyTorch wheel where one is on disk, and the system's C headers,
  Perl, CMake and Node modules (see `tree_roots`), with planted cases: a GPL-3.0 tool with its COPYING, a file under an
  AGPL-3.0 notice, vendored MIT code with its LICENSE, and files copied from the indexed code
  corpora; a model card, a config, a tokenizer, the shard index and a signed declaration;
- a registry of --references reference models (real-shaped synthetic fingerprints,
  `bench.lineage_cost.synthetic_fingerprint`) registered in the portal as reference models and
  listed in the programme's policy, and code corpora indexed with `manage.py index_reference` from
  the quick reference wheels of `bench/inputs.py` (trl, megatron-core: ~3.5 MB, fetched once).

Then starts the checks worker (`-Q light,heavy,dossier --concurrency 2`) and the control worker
with beat, as scripts/run.py does, on a fresh database and storage under --work (the embedded
SQLite and broker, or PostgreSQL/Redis with --database-url/--broker-url or DATABASE_URL /
CELERY_BROKER_URL), uploads every file through `projects.uploads`, signs, submits, waits for every
check run, requests the dossier and waits for it to be signed. Version 2 is then opened with
carry-over, its source archive replaced by one where 1 % of files changed, and measured the same.

Uploads: small files go through `artifact_upload_file`; a weight shard goes through the resumable
path (`upload_session_create`, `upload_chunk_write`): the bench places the shard, sparse, as the
session's partial file up to its last chunk with the session's received offset and saved SHA-256
state (the state the earlier chunks would have left; computed before the clock starts), then sends
the last chunk (at most 64 MiB) through `upload_chunk_write`, which appends, hashes, and moves the
finished file into storage with `shutil.move` (a rename on local storage: the 200 GB stay sparse).
The clock starts at the last uploaded byte.

Reported per version (from the CheckRun and Dossier rows): each check's wall time (first queued to
last finished), its busy time (sum of run durations) and states, the reuse it reports
(`summary["cache"]` when the scans fill it, `reused_from` for a result taken over from version 1),
the dossier's render and signing, and the total from the last uploaded byte (and from submit) to
the signed dossier; plus the CPU time (each process's own) and peak RSS of each worker's process
tree (/proc, sampled every 0.2 s), its peak PSS (smaps_rollup, every `BENCH_PSS_EVERY_S` seconds,
default 2: it costs the measured cores), what that sampling cost, and each scan's scanners' CPU; and
for the licences + copied-code window (first start to last end, `scans_window`) how busy the
machine's cores were (/proc/stat) and how much of that the scanners were. Baselines, on by default in full mode and off in --quick: the same run with
`PORTAL_RESULT_CACHE=0` for the workers (`--no-cache-baseline` skips it), and ScanCode's full
matcher (`scancode.api.get_licenses`) on a 1,000-file sample of the tree, extrapolated to the whole
tree and labelled so (`--no-scancode-baseline` skips it).

Object storage (`--s3`): the same pipeline with default storage on an S3 endpoint, `--s3-endpoint URL`
(credentials from the usual AWS variables), else moto's server started here on loopback behind a
counting WSGI layer (every GET's bytes per object, every HEAD and PUT), which reads a ranged GET's
range only from moto's stored object, as a real store does (`StoredRange`). Uploads are then PUT into the
bucket whole (moto keeps an object above 16 MiB in a temporary file on disk), and the report adds,
per version, the bytes intake and lineage fetched by range (their runs' own counts) and, with moto,
what the endpoint served for the weight objects, against the checkpoint's size (`s3` in each version).
Use `--model small` with it: the 200 GB model would be PUT through loopback byte by byte.

Usage: .venv/bin/python bench/submission_e2e.py [--files 50000] [--references 50] [--model solar|small]
       [--work DIR] [--json] [--database-url ...] [--broker-url ...] [--sweep files|references]
       [--s3 [--s3-endpoint URL]]
       .venv/bin/python bench/submission_e2e.py --quick   # 500 files, 5 references, the small MoE
Raw JSON goes to bench/out/submission_e2e[-quick].json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402

SITE_PACKAGES = ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
CHECKS = ("intake", "lineage", "licenses", "code")
LAST_CHUNK = 64 * 1024 * 1024  # projects.limits.UPLOAD_CHUNK_BYTES
HASH_CACHE = VAR_BENCH / "submission-e2e-prefix-hashes.json"
TEXT_SUFFIXES = (".py", ".pyi", ".c", ".h", ".txt", ".md", ".rst")
# Serialised objects and nested archives are left out of the tree: intake quarantines an archive with a
# pickle it cannot scan (seen at 5,000 files: a site-packages test fixture), which would block the scans
# this benchmark measures. They are not what a source tree's licence and code checks are about.
EXCLUDED_SUFFIXES = (".pkl", ".pickle", ".pt", ".ptl", ".pth", ".joblib", ".npy", ".npz", ".h5", ".ckpt", ".bin", ".gz",
                     ".zip", ".whl", ".bz2", ".xz", ".tar", ".tgz", ".7z", ".zst", ".lzma")
FIXED_MTIME = 1_767_225_600  # 2026-01-01: the same member bytes in both versions' archives


# ---------------------------------------------------------------- inputs (no Django)

def model_write(*, folder: Path, model: str) -> dict:
    """The sparse MoE checkpoint (real headers, apparent sizes), reusing bench.lineage_cost's writers."""
    from bench import lineage_cost

    if model == "solar":
        solar = json.loads(lineage_cost.shared_data_path(
            "solar-vs-glm", "config_compare_solar_glm45air.json").read_text())["A"]["config_summary"]
        tensors = lineage_cost._tensors_moe(solar["hidden_size"], solar["num_hidden_layers"],
                                            solar["num_attention_heads"], solar["num_key_value_heads"], 128,
                                            solar["n_routed_experts"], solar["moe_intermediate_size"],
                                            solar["n_shared_experts"], solar["vocab_size"])
        config, vocab = {**solar, "model_type": "glm4_moe"}, solar["vocab_size"]
    else:  # small: d = 4096 like the registry, 4 layers of 8 experts, ~1.6 GB
        tensors = lineage_cost._tensors_moe(4096, 4, 32, 8, 128, 8, 1024, 1, 32000)
        config = {"model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 4, "num_local_experts": 8,
                  "vocab_size": 32000}
        vocab = 32000
    total = lineage_cost.sparse_checkpoint_write(folder, dict(tensors), lineage_cost._shard_plan(tensors), config, vocab)
    params = sum(__import__("math").prod(shape) for _name, shape in tensors)
    return {"model": model, "bytes": total, "parameters_b": round(params / 1e9, 1),
            "shards": len(list(folder.glob("*.safetensors")))}


def _prefix_state(path: Path, prefix: int) -> str:
    """The SHA-256 state after the first `prefix` bytes (what the chunks before the last leave in the
    session row), cached by the file's header and size: hashing 200 GB costs ~11 min at OpenSSL's speed."""
    from projects.hashstate import ResumableSha256

    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    key = hashlib.sha256(head + str((path.stat().st_size, prefix)).encode()).hexdigest()
    cache = json.loads(HASH_CACHE.read_text()) if HASH_CACHE.exists() else {}
    if key in cache:
        return cache[key]
    digest = ResumableSha256()
    remaining = prefix
    with open(path, "rb") as fh:
        while remaining:
            block = fh.read(min(8 << 20, remaining))
            digest.update(block)
            remaining -= len(block)
    state = digest.state().hex()
    cache = json.loads(HASH_CACHE.read_text()) if HASH_CACHE.exists() else {}
    cache[key] = state
    HASH_CACHE.parent.mkdir(parents=True, exist_ok=True)
    HASH_CACHE.write_text(json.dumps(cache))
    return state


def shards_prepare(*, folder: Path) -> list[dict]:
    """Per shard: the last chunk's bytes (saved beside it), the prefix's SHA-256 state, and the shard
    truncated to its prefix (still sparse), ready to become a session's partial file."""
    out = []
    for shard in sorted(folder.glob("*.safetensors")):
        size = shard.stat().st_size
        last = min(LAST_CHUNK, size)
        prefix = size - last
        state = _prefix_state(shard, prefix)
        tail = shard.with_suffix(".last-chunk")
        with open(shard, "rb") as fh, open(tail, "wb") as out_fh:
            fh.seek(prefix)
            shutil.copyfileobj(fh, out_fh, 8 << 20)
        with open(shard, "r+b") as fh:
            fh.truncate(prefix)
        out.append({"path": str(shard), "size": size, "prefix": prefix, "state": state, "tail": str(tail)})
    return out


# Where the source tree's files come from: (member folder, root). The project's site-packages is the
# bulk, but not ScanCode's own licence database under licensedcode/data (36,472 rule texts and 2,615
# licence texts, 60 % of site-packages' files): drawn at random, 30,000 of a 50,000-file tree were
# licence texts, a tree no submission resembles and the worst case for the licence check (each such
# file is legal text the full matcher must place). `--licence-dense` keeps them, to measure that case.
# To reach 50,000 real files without them, the interpreter's standard library, a PyTorch wheel's files
# (below) and, where the machine has them, the system's C headers, Perl, CMake and Node modules and
# Python packages join: a mixed-language tree with licence headers, vendored code and licence files
# as source trees have them. Debian's documentation folder (share/doc) is not drawn on: its files are package
# copyright catalogues (one lists 60 licences), documentation of a system, not source.
# What each root gave is reported (inputs.tree_roots).
LICENCE_DB = SITE_PACKAGES / "licensedcode" / "data"


# A PyTorch wheel, where the machine holds one (the tool library's machines keep a CPU build in
# /opt/wheels; `--tree-wheel` names another): 12,000 files under 256 KB, 9,400 of them ATen, c10 and
# CUDA headers under BSD and Apache notices: what an AI vendor's tree vendors. Extracted once.
TREE_WHEELS: list[Path] = sorted(Path("/opt/wheels").glob("torch-*.whl")) if Path("/opt/wheels").is_dir() else []


def _wheel_root(wheel: Path) -> Path:
    import zipfile

    target = VAR_BENCH / "tree-wheels" / wheel.stem
    done = target / ".extracted"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if (info.is_dir() or info.file_size >= 256 * 1024 or ".so" in name or name.endswith(".pyc")
                        or name.startswith("/") or ".." in name.split("/")):
                    continue
                path = target / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.read(info))
        done.write_text(str(wheel))
    return target


def tree_roots() -> list[tuple[str, Path]]:
    import sysconfig

    roots = [("python", SITE_PACKAGES), ("stdlib", Path(sysconfig.get_paths()["stdlib"]))]
    for wheel in TREE_WHEELS:
        roots.append((wheel.name.split("-")[0], _wheel_root(wheel)))
    for name, pattern in (("include", "/usr/include"), ("perl", "/usr/share/perl"), ("cmake", "/usr/share/cmake-*"),
                          ("node", "/usr/lib/node_modules"), ("dist-packages", "/usr/lib/python3/dist-packages")):
        for folder in sorted(Path("/").glob(pattern.lstrip("/")))[-1:]:
            if folder.is_dir():
                roots.append((name, folder))
    return roots


def _tree_candidates(*, licence_dense: bool = False) -> list[tuple[str, Path]]:
    """(member name, file) of every usable file under the roots, in a stable order."""
    files = []
    for label, root in tree_roots():
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "site-packages")
                                 and (licence_dense or here / d != LICENCE_DB))
            for name in sorted(filenames):
                path = here / name
                if (name.endswith(".pyc") or name.lower().endswith(EXCLUDED_SUFFIXES) or path.is_symlink()
                        or name == ".extracted"):
                    continue
                try:
                    if 0 < path.stat().st_size < 256 * 1024 and os.access(path, os.R_OK):
                        files.append((f"src/{label}/{path.relative_to(root).as_posix()}", path))
                except OSError:
                    continue
    return files


def tree_composition(tree: dict[str, bytes]) -> dict:
    """Files per root, and how many are licence files (LICENSE, COPYING, NOTICE...) or carry legal words."""
    from compliance.engine.licenses.detect import license_file_is_legal

    roots: dict[str, int] = {}
    for name in tree:
        label = name.split("/")[1] if name.count("/") >= 2 else "planted"
        roots[label] = roots.get(label, 0) + 1
    legal = sum(1 for name in tree if license_file_is_legal(path=name))
    licence_db = sum(1 for name in tree if "/licensedcode/data/" in name)
    return {"files_per_root": roots, "licence_files": legal, "scancode_licence_database_files": licence_db}


def _licence_text(spdx_key: str) -> str:
    return (SITE_PACKAGES / "licensedcode" / "data" / "licenses" / f"{spdx_key}.LICENSE").read_text(errors="replace")


def tree_plan(*, files: int, corpora: list[Path], seed: int = 16, licence_dense: bool = False) -> dict[str, bytes]:
    """{member name: bytes}: `files` real files from the tree roots plus the planted cases."""
    candidates = _tree_candidates(licence_dense=licence_dense)
    if len(candidates) < files:
        raise SystemExit(f"the tree roots ({', '.join(str(r) for _, r in tree_roots())}) hold "
                         f"{len(candidates):,} files under 256 KB; --files {files:,} needs more")
    from compliance.engine.intake import kind_detect

    rng = random.Random(seed)
    chosen = []
    for name, path in rng.sample(candidates, min(len(candidates), files - 8 + 500)):
        # A text file that reads as a protocol-0 pickle (pyphen's hyph_lt.dic does) makes intake
        # quarantine the whole archive: true to the pipeline, but then nothing after intake is measured.
        if len(chosen) < files - 8 and kind_detect(path=path).kind != "pickle":
            chosen.append((name, path))
    chosen.sort()
    tree: dict[str, bytes] = {}
    for name, path in chosen:
        tree[name] = path.read_bytes()
    gpl = _licence_text("gpl-3.0")
    tree["src/third_party/gpltool/COPYING"] = gpl.encode()
    tree["src/third_party/gpltool/tool.py"] = (
        "# gpltool: a command-line helper\n# Copyright (C) 2024 Example Author\n#\n"
        "# This program is free software: you can redistribute it and/or modify it under the terms of the GNU\n"
        "# General Public License as published by the Free Software Foundation, either version 3 of the License,\n"
        "# or (at your option) any later version.\n\ndef main():\n    return 0\n").encode()
    tree["src/server/agpl_service.py"] = (
        "# Copyright (C) 2023 Example Cloud Ltd\n#\n# This program is free software: you can redistribute it and/or"
        " modify\n# it under the terms of the GNU Affero General Public License as published by\n# the Free Software "
        "Foundation, either version 3 of the License, or\n# (at your option) any later version.\n\n"
        "def serve(port=8080):\n    return port\n").encode()
    tree["src/vendor/minilib/LICENSE"] = _licence_text("mit").replace("<year>", "2021").replace(
        "<copyright holders>", "Minilib authors").encode()
    tree["src/vendor/minilib/__init__.py"] = (
        "# SPDX-License-Identifier: MIT\n# Vendored from minilib 1.2 (MIT).\n\n"
        "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n").encode()
    copied = sorted(p for folder in corpora for p in folder.rglob("*.py") if 4_000 < p.stat().st_size < 60_000)
    for i, path in enumerate(random.Random(seed).sample(copied, min(3, len(copied)))):
        tree[f"src/ourmodel/copied_{i}.py"] = path.read_bytes()
    return tree


def tree_changed(tree: dict[str, bytes], *, share: float = 0.01, seed: int = 17) -> tuple[dict[str, bytes], int]:
    """A copy with `share` of the files changed: a comment line appended to source and text files
    (never to a compressed or binary member, which would then be corrupt)."""
    names = sorted(n for n in tree if n.endswith(TEXT_SUFFIXES))
    changed = set(random.Random(seed).sample(names, max(1, round(len(tree) * share))))
    return {n: (b + b"\n# changed in version 2\n" if n in changed else b) for n, b in tree.items()}, len(changed)


def archive_write(tree: dict[str, bytes], target: Path) -> Path:
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        for name in sorted(tree):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(tree[name]), FIXED_MTIME, 0o644
            tar.addfile(info, io.BytesIO(tree[name]))
    return target


def references_write(*, folder: Path, count: int) -> list[str]:
    from bench.lineage_cost import synthetic_fingerprint
    from compliance.engine.lineage import fingerprint_save

    folder.mkdir(parents=True, exist_ok=True)
    return [str(fingerprint_save(synthetic_fingerprint(10_000 + i), folder / f"ref-{i:02d}.lineage"))
            for i in range(count)]


def scancode_baseline(tree: dict[str, bytes], *, folder: Path, sample: int = 1000) -> dict:
    """ScanCode's full matcher on a sample of the tree, in this process (one core), extrapolated."""
    import scancode.api

    names = sorted(random.Random(5).sample(sorted(tree), min(sample, len(tree))))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{i:05d}-{Path(name).name}"
        path.write_bytes(tree[name])
        paths.append(path)
    scancode.api.get_licenses(location=str(paths[0]))  # load the index before the clock
    started, cpu_started = time.perf_counter(), time.process_time()
    for path in paths:
        scancode.api.get_licenses(location=str(path), deadline=time.time() + 120)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    shutil.rmtree(folder, ignore_errors=True)
    # CPU time is what extrapolates: on the shared 2 cores the wall time mostly measures other jobs.
    return {"label": "ScanCode get_licenses, one process, on a sample; the whole tree is EXTRAPOLATED from CPU time",
            "sample_files": len(paths), "sample_wall_s": round(seconds, 1), "sample_cpu_s": round(cpu, 1),
            "files_per_cpu_s": round(len(paths) / cpu, 1),
            "tree_files": len(tree), "tree_cpu_s_extrapolated": round(len(tree) * cpu / len(paths), 0),
            "tree_wall_s_two_cores_extrapolated": round(len(tree) * cpu / len(paths) / 2, 0)}


# ---------------------------------------------------------------- worker processes and /proc

def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    return [p for p, _depth in _tree_depths(pid)]


def _tree_depths(pid: int) -> list[tuple[int, int]]:
    seen, todo = [], [(pid, 0)]
    while todo:
        p, depth = todo.pop()
        seen.append((p, depth))
        todo += [(c, depth + 1) for c in _children(p)]
    return seen


def _stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds of the process itself, RSS bytes).

    Its own utime and stime only: the TreeMonitor keeps the last figure of every process it has
    seen, exited ones included, so counting a parent's reaped children (cutime, cstime) as well
    counted every retired scanner twice (before 7 Dec 2026, third session: the "checks worker
    CPU" figures in BENCHMARKS.md up to then are too high by the CPU of the scanners and pool
    children that ended during the phase). A process that lives and ends between two samples
    (0.2 s apart) is not counted at all."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick  # utime stime
    return cpu, int(fields[21]) * os.sysconf("SC_PAGE_SIZE")


def _rollup(pid: int) -> dict[str, int]:
    """Pss and Uss (private pages) in bytes. Proportional set size: pages shared copy-on-write
    (the licence index a worker preloads before forking) are split among the processes sharing
    them, so the tree's sum is the memory the tree really holds; the RSS sum counts every shared
    page once per process. Uss is what the process alone holds (what ending it would free)."""
    out = {"pss": 0, "uss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    out["pss"] = int(line.split()[1]) * 1024
                elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                    out["uss"] += int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _pss(pid: int) -> int:
    return _rollup(pid)["pss"]


def _role(pid: int, depth: int) -> str:
    """main (the worker), pool child, or a forked scanner; a scanner's kind from its name (set by
    compliance.engine.parallel) or, failing that, from whether it maps the code index."""
    if depth == 0:
        return "main"
    if depth == 1:
        return "pool child"
    try:
        with open(f"/proc/{pid}/comm") as fh:
            comm = fh.read().strip()
        if comm.startswith("scan:"):
            return f"scanner ({comm[5:]})"
        with open(f"/proc/{pid}/maps") as fh:
            return "scanner (code)" if "code-index" in fh.read() else "scanner (licences?)"
    except OSError:
        return "scanner"


class TreeMonitor:
    """CPU time, peak RSS and peak PSS of a worker's process tree, sampled every 0.2 s."""

    def __init__(self, procs: dict[str, subprocess.Popen]):
        self.procs = procs
        self.cpu = {name: 0.0 for name in procs}  # last seen (cumulative, live processes)
        self.peak = {name: 0 for name in procs}
        self.peak_one = {name: 0 for name in procs}
        self.peak_pss = {name: 0 for name in procs}
        # Each process of the tree when its PSS sum peaked: where the memory is.
        self.peak_breakdown: dict[str, list[dict]] = {name: [] for name in procs}
        self._seen: dict[str, dict[int, float]] = {name: {} for name in procs}
        self.own_cpu = 0.0  # CPU seconds this monitor's sampling thread has used
        # CPU and RSS (/proc/PID/stat: microseconds) are read every 0.2 s; PSS (smaps_rollup: 2-3 ms
        # a worker process, walking its page tables) every BENCH_PSS_EVERY_S seconds (default 2). It
        # was every 0.2 s, which took 17.2 CPU s of a 10,000-file run's 2 cores; at every 1 s it still
        # took 40.6 CPU s of the 488 s version 1 at the size, 80 % of it in smaps_rollup
        # (py-spy), in a window where the cores were busy 98 % of the time.
        self.pss_every = float(os.environ.get("BENCH_PSS_EVERY_S", "2.0"))
        # (wall time, busy jiffies, all jiffies) of the whole machine (/proc/stat), every sample: how
        # busy the cores were in a stage's window (`busy_cores`).
        self.machine: list[tuple[float, int, int]] = []
        self._pss_at = 0.0
        # BENCH_MEMORY_TRACE=path: every sample's per-process PSS and USS, one JSON line each.
        trace = os.environ.get("BENCH_MEMORY_TRACE")
        self.trace = open(trace, "a", buffering=1) if trace else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.thread_time()
            self.sample(with_pss=time.monotonic() - self._pss_at >= self.pss_every)
            # What watching costs: reading smaps_rollup walks a process's page tables (about 2-3 ms
            # for a worker holding the licence index), on the same 2 cores as the workers.
            self.own_cpu += time.thread_time() - started
            self._stop.wait(0.2)

    def sample(self, *, with_pss: bool = True) -> None:
        if with_pss:
            self._pss_at = time.monotonic()
        machine = _machine_jiffies()
        if machine is not None:
            self.machine.append((time.time(), *machine))
        for name, proc in self.procs.items():
            rss = pss = 0
            rows = []
            for pid, depth in _tree_depths(proc.pid):
                s = _stat(pid)
                if s is None:
                    continue
                self._seen[name][pid] = s[0]  # a pool child that exits keeps its last figure
                rss += s[1]
                if with_pss:
                    mem = _rollup(pid)
                    pss += mem["pss"]
                    rows.append((pid, depth, s[1], mem))
                self.peak_one[name] = max(self.peak_one[name], s[1])
            self.peak[name] = max(self.peak[name], rss)
            self.cpu[name] = sum(self._seen[name].values())
            if not with_pss:
                continue
            if self.trace is not None:
                self.trace.write(json.dumps({"t": round(time.time(), 1), "worker": name, "pss_mb": round(pss / 1e6),
                                             "processes": [[pid, depth, round(m["pss"] / 1e6), round(m["uss"] / 1e6)]
                                                           for pid, depth, _r, m in rows]}) + "\n")
            if pss > self.peak_pss[name]:
                self.peak_pss[name] = pss
                self.peak_breakdown[name] = [
                    {"pid": pid, "role": _role(pid, depth), "rss_mb": round(r / 1e6), "pss_mb": round(m["pss"] / 1e6),
                     "uss_mb": round(m["uss"] / 1e6)} for pid, depth, r, m in rows]

    def mark(self) -> dict:
        """Start a phase: the CPU so far, and peaks reset."""
        self.sample()
        snap = dict(self.cpu)
        snap["__monitor__"] = self.own_cpu
        for name in self.procs:
            self.peak[name] = self.peak_one[name] = self.peak_pss[name] = 0
            self.peak_breakdown[name] = []
        return snap

    def since(self, snap: dict) -> dict:
        self.sample()
        monitor_cpu_s = round(self.own_cpu - snap.get("__monitor__", 0.0), 1)
        return {name: {"cpu_s": round(self.cpu[name] - snap[name], 1), "monitor_cpu_s": monitor_cpu_s,
                       "peak_rss_tree_mb": round(self.peak[name] / 1e6, 0),
                       "peak_rss_one_process_mb": round(self.peak_one[name] / 1e6, 0),
                       "peak_pss_tree_mb": round(self.peak_pss[name] / 1e6, 0),
                       "peak_pss_processes": self.peak_breakdown[name]} for name in self.procs}

    def busy_cores(self, start: float, end: float) -> float | None:
        """Cores busy on average between two wall times (the samples nearest inside them)."""
        inside = [m for m in self.machine if start <= m[0] <= end]
        if len(inside) < 2:
            return None
        (_t0, busy0, all0), (_t1, busy1, all1) = inside[0], inside[-1]
        return round((busy1 - busy0) / max(1, all1 - all0) * (os.cpu_count() or 1), 2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _machine_jiffies() -> tuple[int, int] | None:
    """(busy, all) CPU jiffies of the whole machine since boot: all less idle and iowait is busy."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields) - fields[3] - fields[4], sum(fields)


def scans_window(*, stages: dict, last_byte: str, monitor: "TreeMonitor") -> dict | None:
    """The licences + copied-code window (issue #16's "under 5 minutes" aim): first start to last end
    of the two checks, how busy the machine's cores were in it, and the scanners' share of that."""
    import datetime

    parts = [stages[name] for name in ("licenses", "code") if stages.get(name, {}).get("started_at_s") is not None]
    if not parts:
        return None
    start = min(p["started_at_s"] for p in parts)
    end = max(p["finished_at_s"] for p in parts)
    origin = datetime.datetime.fromisoformat(last_byte).timestamp()
    cores = monitor.busy_cores(origin + start, origin + end)
    scanners = round(sum(scan.get("scanner_cpu_s", 0) for p in parts for scan in p.get("scans", [])), 1)
    window = round(end - start, 1)
    out = {"start_s": start, "end_s": end, "window_s": window, "cores_busy": cores, "scanner_cpu_s": scanners}
    if cores is not None:
        # CPU the window held besides the scanners: the checks' own processes, lineage when it runs
        # beside them, this bench's sampling, the database.
        out["other_cpu_s"] = round(cores * window - scanners, 1)
    return out


def _loadavg() -> float:
    """The machine's 1-minute load average: other jobs share the 2 cores, so wall times say how busy it was."""
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def workers_start(env: dict, work: Path, *, tag: str) -> dict[str, subprocess.Popen]:
    """scripts/run.py's layout: the checks worker on light, heavy and dossier, the control worker with beat."""
    checks = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "light,heavy,dossier", "--concurrency", "2",
         "--loglevel", "INFO", "-n", f"e2e-checks-{tag}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=open(work / "checks.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    control = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat", "-Q", "control", "--pool", "solo",
         "--loglevel", "INFO", "-n", f"e2e-control-{tag}-{os.getpid()}@%h", "--schedule", str(work / "beat-schedule"),
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=open(work / "control.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return {"checks": checks, "control": control}


def workers_stop(procs: dict[str, subprocess.Popen]) -> None:
    import signal

    for proc in procs.values():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------- Django phases (run in a child process)

def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def phase_setup(spec: dict) -> dict:
    """Users, programme, project; references registered and in the policy; corpora indexed."""
    import datetime
    from decimal import Decimal

    _django()
    from django.conf import settings
    from django.core.management import call_command

    from compliance.dossier.signing import signing_identity_from_settings
    from compliance.models import ReferenceModel
    from compliance.references import reference_bundle_attach
    from compliance.services.policy import programme_policy_update
    from portal.models import Organisation, Role
    from portal.services import user_create
    from projects import services

    signing_identity_from_settings(settings=settings)
    ministry = Organisation.objects.create(name="Bench ministry", kind="ministry")
    vendor = Organisation.objects.create(name="Bench vendor", kind="vendor")
    admin = user_create(username="admin", password="bench-password-1", organisation=ministry, role=Role.ADMIN)
    user_create(username="vendor", password="bench-password-1", organisation=vendor, role=Role.VENDOR)
    programme = services.programme_create(user=admin, name="Bench", code="bench", ministry=ministry,
                                          budget_krw=Decimal(1), starts_on=datetime.date(2026, 1, 1),
                                          ends_on=datetime.date(2027, 1, 1))
    programme.max_artifact_bytes = 10 * 1024**3
    programme.save(update_fields=["max_artifact_bytes"])
    services.project_create(user=admin, programme=programme, code="moe", title="MoE 100B", vendor=vendor,
                            funding_krw=Decimal(1))
    started = time.perf_counter()
    refs = []
    for i, bundle in enumerate(spec["references"]):
        ref = ReferenceModel.objects.create(name=f"bench-reference-{i + 1:02d}", publisher="Bench",
                                            license_expression="Apache-2.0")
        reference_bundle_attach(reference=ref, model_path=Path(bundle), actor="operator")
        refs.append(ref)
    refs_s = time.perf_counter() - started
    started = time.perf_counter()
    for folder in spec["corpora"]:
        name = Path(folder).name.split("-")[0]
        call_command("index_reference", folder, name=name, license_expression="Apache-2.0", stdout=io.StringIO())
    index_s = time.perf_counter() - started
    programme_policy_update(user=admin, programme=programme, allowed="Apache-2.0\nMIT\nBSD-3-Clause", denied="",
                            review="GPL-3.0-only\nAGPL-3.0-only", from_scratch_required=False,
                            reference_models=refs)
    return {"references_registered_s": round(refs_s, 1), "corpora_indexed_s": round(index_s, 1)}


def _upload_small(*, user, submission, kind: str, path: Path, filename: str):
    from django.core.files import File

    from projects import uploads

    with open(path, "rb") as fh:
        return uploads.artifact_upload_file(user=user, submission=submission, kind=kind, filename=filename,
                                            fileobj=File(fh))


def _upload_shard(*, user, submission, shard: dict):
    """The resumable path: the partial file and session row as the earlier chunks leave them, then the
    last chunk through upload_chunk_write (append, hash, move into storage)."""
    from projects import uploads
    from projects.models import UploadSession

    name = Path(shard["path"]).name
    session = uploads.upload_session_create(user=user, submission=submission, kind="weights",
                                            filename=f"model/{name}", size=shard["size"])
    partial = uploads._partial_path(session)
    os.replace(shard["path"], partial)  # a rename: the prefix stays sparse
    UploadSession.objects.filter(pk=session.pk).update(received=shard["prefix"],
                                                       sha256_state=bytes.fromhex(shard["state"]))
    session.refresh_from_db()
    with open(shard["tail"], "rb") as fh:
        uploads.upload_chunk_write(user=user, session=session, offset=shard["prefix"], stream=fh,
                                   length=shard["size"] - shard["prefix"])
    os.unlink(shard["tail"])


def phase_submit(spec: dict) -> dict:
    """Open the version (v2: carry-over, the source archive replaced), upload, sign, submit."""
    _django()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from projects import services, uploads
    from projects.models import Project

    user = get_user_model().objects.get(username="vendor")
    project = Project.objects.get(code="moe")
    submission = services.submission_open(user=user, project=project)
    started = time.perf_counter()
    if spec["version"] == 1:
        model = Path(spec["model_folder"])
        for fname, kind in (("config.json", "config"), ("tokenizer.json", "tokenizer"),
                            ("model.safetensors.index.json", "other")):
            _upload_small(user=user, submission=submission, kind=kind, path=model / fname, filename=f"model/{fname}")
        _upload_small(user=user, submission=submission, kind="model_card", path=Path(spec["card"]),
                      filename="model/README.md")
        for shard in spec["shards"]:
            _upload_shard(user=user, submission=submission, shard=shard)
    else:
        for artifact in submission.artifacts.filter(kind="source_archive"):
            uploads.artifact_delete(user=user, artifact=artifact)
    _upload_small(user=user, submission=submission, kind="source_archive", path=Path(spec["archive"]),
                  filename="source.tar.gz")
    last_byte = timezone.now()
    upload_s = time.perf_counter() - started
    services.declaration_update(user=user, submission=submission, from_scratch=True, base_models=[],
                                data_summary="Pre-trained from scratch on the bench corpus.")
    services.declaration_sign(user=user, submission=submission, signatory_name="Bench", attest=True)
    services.submission_submit(user=user, submission=submission)
    return {"submission": submission.pk, "number": submission.number, "last_byte": last_byte.isoformat(),
            "submitted": timezone.now().isoformat(), "upload_s": round(upload_s, 1),
            "artifacts": submission.artifacts.count()}


def phase_wait(spec: dict) -> dict:
    """Every check run ended, then the dossier requested at once and waited for; the rows' timeline."""
    import datetime
    from collections import Counter

    _django()
    from django.contrib.auth import get_user_model

    from compliance.dossiers import dossier_request
    from compliance.models import CheckRun
    from projects.models import Submission

    submission = Submission.objects.get(pk=spec["submission"])
    deadline = time.monotonic() + spec["timeout"]
    finished = [s.value for s in CheckRun.FINISHED_STATES]
    while True:
        runs = CheckRun.objects.filter(submission=submission)
        if runs.exists() and not runs.exclude(state__in=finished).exists():
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"check runs not ended after {spec['timeout']} s: "
                             f"{dict(Counter(runs.values_list('state', flat=True)))}")
        time.sleep(0.5)
    admin = get_user_model().objects.get(username="admin")
    dossier = dossier_request(user=admin, submission=submission)
    while True:
        dossier.refresh_from_db()
        if dossier.state in ("ready", "failed"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"dossier {dossier.number} not ready after {spec['timeout']} s: {dossier.state}")
        time.sleep(0.5)
    t0 = datetime.datetime.fromisoformat(spec["last_byte"])
    submitted = datetime.datetime.fromisoformat(spec["submitted"])

    def off(t):
        return None if t is None else round((t - t0).total_seconds(), 1)

    stages = {}
    for check in CHECKS:
        rows = list(CheckRun.objects.filter(submission=submission, check_name=check))
        if not rows:
            continue
        ran = [r for r in rows if r.started_at and r.finished_at and r.reused_from_id is None]
        caches = [r.summary.get("cache") for r in rows if isinstance(r.summary, dict) and r.summary.get("cache")]
        ends = [r.finished_at for r in rows if r.finished_at]
        stage = {"runs": len(rows), "states": dict(Counter(r.state for r in rows)),
                 "verdicts": dict(Counter(r.verdict for r in rows if r.verdict)),
                 "queued_at_s": off(min(r.queued_at for r in rows)),
                 "started_at_s": off(min((r.started_at for r in ran), default=None)),
                 "finished_at_s": off(max(ends)) if ends else None,
                 "wall_s": round((max(ends) - min(r.queued_at for r in rows)).total_seconds(), 1) if ends else None,
                 "busy_s": round(sum(r.duration_s for r in ran), 1),
                 "longest_run_s": round(max((r.duration_s for r in ran), default=0.0), 1),
                 "reused_runs": sum(1 for r in rows if r.reused_from_id)}
        per_file = [c for c in caches if "files" in c]
        if per_file:
            stage["cache"] = {k: sum(int(c.get(k, 0)) for c in per_file) for k in ("files", "reused", "computed")}
        artifact_level = [c for c in caches if "files" not in c]
        if artifact_level:
            stage["cache_artifact"] = artifact_level
        if check == "intake":
            verified = [r.summary.get("verified") for r in rows if isinstance(r.summary, dict)]
            stage["verified"] = dict(Counter(v.get("method") for v in verified if v))
            # A run taken over from version 1 carries that run's summary; it read nothing this time.
            stage["bytes_read_by_range"] = sum(int((r.summary.get("verified") or {}).get("bytes_read") or 0)
                                               for r in ran if isinstance(r.summary, dict))
        if check == "lineage":
            stage["bytes_read"] = sum(int(r.summary.get("bytes_read") or 0) for r in ran if isinstance(r.summary, dict))
        if check in ("licenses", "code"):
            stage["summary"] = {k: v for r in rows for k, v in r.summary.items()
                                if k not in ("cache",) and isinstance(v, (int, float, str))}
            # The scanners' own CPU (what the engines cost, apart from the check's reading, cache and
            # saving), how many were re-forked at the recycling limit, and the licence tiers' counts.
            scans = []
            for r in ran:
                stats = r.summary.get("stats") if isinstance(r.summary, dict) else None
                if isinstance(stats, dict):
                    cpu = stats.get("worker_cpu_seconds") or []
                    scans.append({"scanner_cpu_s": round(sum(cpu), 1), "scanners_forked": len(cpu),
                                  **{k: v for k, v in stats.items()
                                     if k != "worker_cpu_seconds" and isinstance(v, (int, float))}})
            if scans:
                stage["scans"] = scans
        stages[check] = stage
    stages["dossier"] = {"state": dossier.state, "requested_at_s": off(dossier.created_at),
                         "started_at_s": off(dossier.started_at), "finished_at_s": off(dossier.rendered_at),
                         "render_and_sign_s": round((dossier.rendered_at - (dossier.started_at or dossier.created_at))
                                                    .total_seconds(), 1) if dossier.rendered_at else None,
                         "bytes": dossier.size, "error": dossier.error[:300]}
    checks_end = max(r.finished_at for r in CheckRun.objects.filter(submission=submission))
    return {"stages": stages, "checks_done_s": off(checks_end),
            "total_s": off(dossier.rendered_at), "total_from_submit_s":
            round((dossier.rendered_at - submitted).total_seconds(), 1) if dossier.rendered_at else None,
            "submission_status": Submission.objects.get(pk=submission.pk).status,
            "findings": dict(Counter(CheckRun.objects.filter(submission=submission)
                                     .values_list("findings__code", flat=True)))}


PHASES = {"setup": phase_setup, "submit": phase_submit, "wait": phase_wait}


def _phase(name: str, env: dict, spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--phase", name], input=json.dumps(spec), cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"phase {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- object storage

# One range, as S3 reads it (RFC 9110 14.1.1): first-last, first- or -suffix. A list of ranges, or
# anything else, goes to moto unchanged.
SINGLE_RANGE = re.compile(r"bytes=(\d+-\d*|-\d+)")


class StoredRange:
    """What moto's GET handler gets as an object's bytes while it answers a ranged GET for the bench:
    the object's length, and a slice read from the object's stored buffer with seek and read.

    moto 5.x answers a ranged GET by reading the whole object (`FakeKey.value` reads its
    SpooledTemporaryFile in full and copies it) and slicing the copy (`_handle_range_header`), so each
    small range of the 1.77 GB shard cost a 1.77 GB read: lineage's run did not end in 6 minutes. A
    real store reads the range. moto keeps every other step (authorisation, preconditions, versions,
    the 206 or 416 answer, Content-Range, dropping checksum headers for a partial range), so status
    and headers are moto's own. Where moto returns the whole body instead (a part number, a range it
    treats as none), the body is streamed from the buffer in 16 MiB pieces: the same bytes."""

    PIECE = 16 * 1024 * 1024

    def __init__(self, key, on_read) -> None:
        self.key = key
        self.on_read = on_read

    def __len__(self) -> int:
        return self.key.size

    def _read(self, start: int, length: int) -> bytes:
        with self.key.lock:
            self.key._value_buffer.seek(start)
            data = self.key._value_buffer.read(length)
        self.on_read(len(data))
        return data

    def __getitem__(self, part: slice) -> bytes:
        start, stop, step = part.indices(len(self))
        if step != 1:
            raise TypeError("a stored object is read by contiguous range")
        return self._read(start, max(0, stop - start))

    def __iter__(self):
        for start in range(0, len(self), self.PIECE):
            yield self._read(start, self.PIECE)


_ranged_get = threading.local()  # set by S3Endpoint around moto's handling of one ranged GET


def _ranges_from_store_install() -> None:
    """Make `FakeKey.value` a StoredRange in the threads S3Endpoint marks (one ranged GET each);
    everywhere else, in this process and in moto, it stays moto's own property. Installed once."""
    from moto.s3.models import FakeKey

    own = FakeKey.__dict__["value"]
    if getattr(own.fget, "stored_range", False):
        return

    def value(key):
        on_read = getattr(_ranged_get, "on_read", None)
        return StoredRange(key, on_read) if on_read else own.fget(key)

    value.stored_range = True
    FakeKey.value = property(value, own.fset)


class S3Endpoint:
    """moto's S3 server on a loopback port, in a thread of this process, behind a WSGI layer that
    counts what it serves: GET body bytes and requests per object key, HEADs, PUT requests, and the
    bytes moto read from its stored objects to answer ranged GETs. A ranged GET reads only its range
    (`StoredRange`), as a real store does. The workers reach it over HTTP like any S3 store (`--s3`
    without `--s3-endpoint`)."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _ranges_from_store_install()
        self.lock = threading.Lock()
        self.gets: dict[str, list[int]] = {}  # key -> [requests, bytes]
        self.read_from_store: dict[str, int] = {}  # key -> bytes read from the stored object for ranged GETs
        self.methods: dict[str, int] = {}
        inner = DomainDispatcherApplication(create_backend_app)

        def read_counter(key: str):
            def on_read(n: int) -> None:
                with self.lock:
                    self.read_from_store[key] = self.read_from_store.get(key, 0) + n
            return on_read

        def app(environ, start_response):
            from urllib.parse import unquote

            method = environ["REQUEST_METHOD"]
            key = unquote(environ.get("PATH_INFO", "")).lstrip("/")
            with self.lock:
                self.methods[method] = self.methods.get(method, 0) + 1
            if method == "GET" and latency_s:
                time.sleep(latency_s)  # a real store's first-byte latency (--s3-latency-ms)
            if method == "GET" and SINGLE_RANGE.fullmatch(environ.get("HTTP_RANGE", "").strip()):
                _ranged_get.on_read = read_counter(key)  # moto builds the body in this thread, in inner()
            try:
                body = inner(environ, start_response)
            finally:
                _ranged_get.on_read = None
            try:
                for chunk in body:
                    if method == "GET":
                        with self.lock:
                            count = self.gets.setdefault(key, [0, 0])
                            count[1] += len(chunk)
                    yield chunk
            finally:
                if method == "GET":
                    with self.lock:
                        self.gets.setdefault(key, [0, 0])[0] += 1
                if hasattr(body, "close"):
                    body.close()

        self.latency_s = latency_s
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, name="moto-s3", daemon=True).start()

    def mark(self) -> dict:
        with self.lock:
            return {"gets": {k: list(v) for k, v in self.gets.items()}, "methods": dict(self.methods),
                    "read_from_store": dict(self.read_from_store)}

    def since(self, snap: dict, *, suffix: str) -> dict:
        """GETs and bytes served for keys ending with ``suffix`` since ``snap``, and requests by method."""
        now = self.mark()
        requests = served = read = 0
        for key, (n, b) in now["gets"].items():
            if key.endswith(suffix):
                before = snap["gets"].get(key, [0, 0])
                requests += n - before[0]
                served += b - before[1]
                read += now["read_from_store"].get(key, 0) - snap["read_from_store"].get(key, 0)
        return {"weights_get_requests": requests, "weights_bytes_served": served,
                "weights_bytes_read_from_store_for_ranges": read,
                "requests": {m: n - snap["methods"].get(m, 0) for m, n in now["methods"].items()}}

    def stop(self) -> None:
        self.server.shutdown()


def s3_bucket_env(*, endpoint: str, tag: str) -> dict:
    """A fresh bucket on ``endpoint`` and the variables portal/settings.py reads to store there."""
    import boto3

    bucket = f"bench-e2e-{tag.replace('_', '-').lower()}-{os.urandom(3).hex()}"[:63]
    env = {"PORTAL_S3_BUCKET": bucket, "PORTAL_S3_ENDPOINT_URL": endpoint,
           "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "bench"),
           "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "bench"),
           "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    boto3.client("s3", endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"],
                 aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=bucket)
    return env


# ---------------------------------------------------------------- one measurement

def _env(work: Path, *, database_url: str | None, broker_url: str | None, cache: bool) -> dict:
    env = dict(os.environ, PORTAL_VAR_DIR=str(work), PORTAL_MEDIA_ROOT=str(work / "media"),
               DOSSIER_SIGNING_KEY=str(work / "sign" / "key.pem"), DOSSIER_SIGNING_CERT=str(work / "sign" / "cert.pem"),
               DOSSIER_SIGNING_GENERATE="1", PORTAL_RESULT_CACHE="1" if cache else "0")
    env.pop("DATABASE_URL", None)
    database_url = database_url or os.environ.get("DATABASE_URL")
    broker_url = broker_url or os.environ.get("CELERY_BROKER_URL")
    if database_url:
        env["DATABASE_URL"] = database_url
        env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
        env.setdefault("DJANGO_SECRET_KEY", "bench-only")
    env["CELERY_BROKER_URL"] = broker_url or f"sqla+sqlite:///{work / 'broker.sqlite3'}"
    return env


def measure(*, files: int, references: int, model: str, work_root: Path, corpora: list[Path], cache: bool,
            database_url: str | None, broker_url: str | None, timeout: float, tag: str,
            scancode: int, s3: S3Endpoint | str | None = None, licence_dense: bool = False) -> dict:
    work = work_root / tag
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = _env(work, database_url=database_url, broker_url=broker_url, cache=cache)
    result: dict = {"files": files, "references": references, "result_cache": cache,
                    "licence_dense": licence_dense}
    if s3 is not None:
        env.update(s3_bucket_env(endpoint=s3 if isinstance(s3, str) else s3.url, tag=tag))
        result["s3"] = {"endpoint": "moto server on loopback" if isinstance(s3, S3Endpoint) else s3,
                        "bucket": env["PORTAL_S3_BUCKET"],
                        "get_latency_ms": round(s3.latency_s * 1000, 1) if isinstance(s3, S3Endpoint) else None,
                        "read_threads": int(env.get("PORTAL_S3_READ_THREADS", "8"))}
    try:
        if env.get("DATABASE_URL"):
            subprocess.run([sys.executable, "manage.py", "flush", "--noinput"], cwd=ROOT, env=env,
                           capture_output=True)
        if env["CELERY_BROKER_URL"].startswith("redis"):
            subprocess.run(["redis-cli", "-u", env["CELERY_BROKER_URL"], "flushdb"], capture_output=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        t = time.perf_counter()
        inputs = work / "inputs"
        result["model"] = model_write(folder=inputs / "model", model=model)
        shards = shards_prepare(folder=inputs / "model")
        tree = tree_plan(files=files, corpora=corpora, licence_dense=licence_dense)
        archive_v1 = archive_write(tree, inputs / "source-v1.tar.gz")
        tree_v2, changed = tree_changed(tree)
        archive_v2 = archive_write(tree_v2, inputs / "source-v2.tar.gz")
        card = inputs / "README.md"
        card.write_text("---\nlicense: apache-2.0\n---\n# Bench MoE\nA mixture-of-experts model pre-trained from "
                        "scratch for the benchmark.\n")
        bundles = references_write(folder=inputs / "references", count=references)
        result["inputs"] = {"tree_files": len(tree), "archive_v1_bytes": archive_v1.stat().st_size,
                            "v2_changed_files": changed, "build_s": round(time.perf_counter() - t, 1),
                            "tree_roots": tree_composition(tree)}
        if scancode:
            result["scancode_baseline"] = scancode_baseline(tree, folder=inputs / "scancode-sample", sample=scancode)
        del tree, tree_v2
        result["setup"] = _phase("setup", env, {"references": bundles, "corpora": [str(c) for c in corpora]})
        procs = workers_start(env, work, tag=tag)
        monitor = TreeMonitor(procs)
        try:
            time.sleep(5)  # the workers' start is not the pipeline's time
            for version, archive in ((1, archive_v1), (2, archive_v2)):
                snap = monitor.mark()
                load_before = _loadavg()
                sub = _phase("submit", env, {"version": version, "model_folder": str(inputs / "model"),
                                             "card": str(card), "archive": str(archive), "shards": shards})
                s3_snap = s3.mark() if isinstance(s3, S3Endpoint) else None  # after the uploads' PUTs
                waited = _phase("wait", env, {**sub, "timeout": timeout})
                result[f"v{version}"] = {**sub, **waited, "workers": monitor.since(snap),
                                         "load_average_1min": [load_before, _loadavg()]}
                window = scans_window(stages=waited["stages"], last_byte=sub["last_byte"], monitor=monitor)
                if window is not None:
                    result[f"v{version}"]["scans_window"] = window
                if s3 is not None:
                    checkpoint = sum(int(sh["size"]) for sh in shards)
                    fetched = {"checkpoint_bytes": checkpoint,
                               "intake_bytes": waited["stages"].get("intake", {}).get("bytes_read_by_range", 0),
                               "lineage_bytes": waited["stages"].get("lineage", {}).get("bytes_read", 0)}
                    if s3_snap is not None:
                        fetched.update(s3.since(s3_snap, suffix=".safetensors"))
                    result[f"v{version}"]["s3"] = fetched
                print(f"[{tag}] v{version}: total {waited['total_s']} s from the last byte", file=sys.stderr, flush=True)
                blocked = {c: s["states"] for c, s in waited["stages"].items() if "blocked" in s.get("states", {})}
                if blocked:
                    print(f"[{tag}] v{version}: WARNING: intake blocked checks, their time is not measured: {blocked}",
                          file=sys.stderr, flush=True)
        finally:
            monitor.stop()
            workers_stop(procs)
        result["total_s"] = result["v1"]["total_s"]
        result["stages"] = result["v1"]["stages"]
        result["version2_total_s"] = result["v2"]["total_s"]
        stored = sum(p.stat().st_size for p in (work / "media").rglob("*") if p.is_file())
        used = sum(p.stat().st_blocks * 512 for p in (work / "media").rglob("*") if p.is_file())
        result["storage"] = {"apparent_bytes": stored, "allocated_bytes": used}
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _print(result: dict) -> None:
    for run in result["runs"]:
        print(f"\n== {run['tag']}: {run['files']:,} files, {run['references']} references, model "
              f"{run['model']['model']} ({run['model']['parameters_b']} B params, {run['model']['bytes'] / 1e9:.1f} GB, "
              f"{run['model']['shards']} shards), result cache {'on' if run['result_cache'] else 'OFF'}")
        roots = run.get("inputs", {}).get("tree_roots")
        if roots:
            print(f"tree: {roots['files_per_root']}; {roots['licence_files']} licence files, "
                  f"{roots['scancode_licence_database_files']} from ScanCode's licence database")
        print("| version | stage | runs | wall s | busy s | longest s | reused | states |")
        print("|---|---|---|---|---|---|---|---|")
        for v in ("v1", "v2"):
            for name, s in run[v]["stages"].items():
                if name == "dossier":
                    print(f"| {v} | dossier render + sign | 1 | {s['render_and_sign_s']} | | | | {s['state']} |")
                    continue
                reuse = s.get("cache", {}).get("reused", "")
                reuse = f"{s['reused_runs']} runs" + (f", {reuse} files" if reuse != "" else "")
                print(f"| {v} | {name} | {s['runs']} | {s['wall_s']} | {s['busy_s']} | {s['longest_run_s']} | "
                      f"{reuse} | {s['states']} |")
            w = run[v]["workers"]
            print(f"| {v} | TOTAL (last byte to signed dossier) | | {run[v]['total_s']} | | | | load "
                  f"{run[v].get('load_average_1min')}; checks done at "
                  f"{run[v]['checks_done_s']} s; checks worker CPU {w['checks']['cpu_s']} s, "
                  f"peak PSS tree {w['checks']['peak_pss_tree_mb']} MB, peak RSS tree "
                  f"{w['checks']['peak_rss_tree_mb']} MB (one process {w['checks']['peak_rss_one_process_mb']} MB); "
                  f"this bench's memory sampling used {w['checks'].get('monitor_cpu_s')} CPU s |")
            sw = run[v].get("scans_window")
            if sw:
                print(f"|   | licences + code, first start to last end: {sw['window_s']} s "
                      f"({sw['start_s']}-{sw['end_s']} s); cores busy {sw['cores_busy']}; scanners "
                      f"{sw['scanner_cpu_s']} CPU s, everything else {sw.get('other_cpu_s')} CPU s | | | | | | |")
            for name in ("licenses", "code"):
                for scan in run[v]["stages"].get(name, {}).get("scans", []):
                    if scan.get("scanners_forked"):
                        print(f"|   | {name}: scanners' own CPU {scan['scanner_cpu_s']} s in {scan['scanners_forked']} "
                              f"processes (up to {scan.get('processes')} at once) | | | | | | |")
        for v in ("v1", "v2"):
            f = run[v].get("s3")
            if f:
                total = f["checkpoint_bytes"]

                def share(n: int, total: int = total) -> str:
                    return f"{n:,} B ({100 * n / total:.3f} %)"
                print(f"S3 {v}: checkpoint {f['checkpoint_bytes']:,} B; intake fetched {share(f['intake_bytes'])}, "
                      f"lineage {share(f['lineage_bytes'])}"
                      + (f"; endpoint served {share(f['weights_bytes_served'])} of the weight objects in "
                         f"{f['weights_get_requests']} GETs (read from its store for ranges: "
                         f"{share(f.get('weights_bytes_read_from_store_for_ranges', 0))}); requests {f['requests']}"
                         if "weights_bytes_served" in f
                         else "") + f"; intake verified by {run[v]['stages'].get('intake', {}).get('verified')}")
        if "scancode_baseline" in run:
            b = run["scancode_baseline"]
            print(f"ScanCode full matcher: {b['files_per_cpu_s']} files per CPU second on {b['sample_files']} files; "
                  f"whole tree EXTRAPOLATED: {b['tree_cpu_s_extrapolated']} CPU s, "
                  f"{b['tree_wall_s_two_cores_extrapolated']} s on two idle cores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="500 files, 5 references, the small MoE; no baselines")
    parser.add_argument("--files", type=int, default=None, help="files in the source tree (50,000; quick 500)")
    parser.add_argument("--references", type=int, default=None, help="registered reference models (50; quick 5)")
    parser.add_argument("--model", choices=("solar", "small"), default=None,
                        help="solar: ~100B MoE, ~200 GB sparse (default); small: ~1.6 GB (quick)")
    parser.add_argument("--sweep", choices=("files", "references"), help="files in {5k, 20k, 50k} or "
                        "references in {10, 25, 50}")
    parser.add_argument("--no-cache-baseline", action="store_true", help="skip the PORTAL_RESULT_CACHE=0 run")
    parser.add_argument("--no-scancode-baseline", action="store_true", help="skip ScanCode on a sample of the tree")
    parser.add_argument("--scancode-sample", type=int, default=1000, help="files ScanCode's baseline scans (1,000)")
    parser.add_argument("--s3", action="store_true", help="storage on an S3 endpoint (moto's server on loopback "
                        "unless --s3-endpoint); use with --model small")
    parser.add_argument("--s3-endpoint", help="an S3-compatible endpoint URL (credentials: AWS_* variables)")
    parser.add_argument("--s3-latency-ms", type=float, default=0.0,
                        help="moto's endpoint answers each GET this much later, as a real store's first-byte latency "
                        "does (a real S3 in the same region: tens of ms); the workers' PORTAL_S3_READ_THREADS sets how "
                        "many ranged GETs they keep in flight")
    parser.add_argument("--tree-wheel", action="append", default=[],
                        help="a wheel whose files join the tree's roots (a PyTorch wheel in /opt/wheels is used if present)")
    parser.add_argument("--licence-dense", action="store_true",
                        help="draw the tree from site-packages including ScanCode's licence database (60 %% of its "
                        "files are licence texts): the worst case for the licence check")
    parser.add_argument("--timeout", type=float, default=7200.0, help="give up on a version after this many seconds")
    parser.add_argument("--work", default=str(VAR_BENCH / "submission-e2e"))
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    parser.add_argument("--json", action="store_true", help="print the JSON only")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](json.loads(sys.stdin.read()))))
        return 0
    TREE_WHEELS.extend(Path(w) for w in args.tree_wheel)
    if args.s3_endpoint and not args.s3:
        parser.error("--s3-endpoint needs --s3")
    files = args.files or (500 if args.quick else 50_000)
    references = args.references or (5 if args.quick else 50)
    model = args.model or ("small" if args.quick else "solar")
    baselines = not args.quick
    from bench.inputs import corpus_folders

    corpora = corpus_folders(corpus=None, quick=True)
    plan = [(files, references)]
    if args.sweep == "files":
        plan = [(n, references) for n in (5_000, 20_000, 50_000)]
    elif args.sweep == "references":
        plan = [(files, n) for n in (10, 25, 50)]
    common = dict(model=model, work_root=Path(args.work), corpora=corpora, database_url=args.database_url,
                  broker_url=args.broker_url, timeout=args.timeout, licence_dense=args.licence_dense)
    if args.s3_latency_ms and (args.s3_endpoint or not args.s3):
        parser.error("--s3-latency-ms needs --s3 with moto's endpoint (no --s3-endpoint)")
    s3 = (args.s3_endpoint or S3Endpoint(latency_s=args.s3_latency_ms / 1000)) if args.s3 else None
    common["s3"] = s3
    runs = []
    for n_files, n_refs in plan:
        tag = f"f{n_files}-r{n_refs}"
        runs.append({"tag": tag, **measure(files=n_files, references=n_refs, cache=True, tag=tag,
                                           scancode=0 if args.no_scancode_baseline or not baselines
                                           else args.scancode_sample, **common)})
        if baselines and not args.no_cache_baseline:
            runs.append({"tag": tag + "-nocache", **measure(files=n_files, references=n_refs, cache=False,
                                                            tag=tag + "-nocache", scancode=0, **common)})
    main_run = runs[0]
    result = {"mode": "quick" if args.quick else "full", "cores": os.cpu_count(),
              "total_s": main_run["total_s"], "stages": main_run["stages"],
              "version2_total_s": main_run["version2_total_s"], "runs": runs}
    out_write(name="submission_e2e-quick" if args.quick else "submission_e2e", data=result, out=args.out)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

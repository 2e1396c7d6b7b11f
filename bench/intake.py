"""Benchmark intake safety: hashing and archive inspection throughput, and memory as inputs grow.

Run: .venv/bin/python bench/intake.py [--sizes 10,100,1000] [--json] [--work DIR]
     .venv/bin/python bench/intake.py --quick     # 10 MB only

For each size (MB) it generates files in a fresh folder under --work (default var/bench/intake,
deleted at the end; about 3 x the largest size at peak), nothing downloaded:
- random bytes, hashed by `stream_hash_copy` and by `sha256sum` (coreutils) in the same run;
- a source-like zip (deflate) and tar.gz and tar.zst of compressible text, inspected by
  `archive_inspect` (every member decompressed, CRC-checked, sniffed) and by the peer tools
  in the same run (`unzip -t`, `tar -xzOf ... > /dev/null`, `zstd -dc | tar -xOf -`).
Each measurement runs in its own child process that reports its own peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`), so memory is per measurement, not cumulative.
Peers are Debian's coreutils, openssl, unzip, tar and zstd. Prints a Markdown table (or JSON
with --json) and writes the rows to bench/out/intake[-quick].json.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402

MB = 1_000_000
MEMBER_BYTES = 16 * MB  # source drops are many files; 16 MB members keep member count realistic


def _text_block(seed: int, size: int) -> bytes:
    """Compressible, source-like text (about 3-4x with deflate), deterministic per seed."""
    rng = np.random.default_rng(seed)
    words = np.array([w.encode() for w in (
        "def return self import from class if else for in while try except with as yield lambda "
        "tensor weight layer norm attention head hidden vocab config model train loss grad step "
        "= ( ) : , . [ ] { } + - * / 0 1 2 3 4 5 6 7 8 9 \n \n    "
    ).split(" ")], dtype=object)
    out = bytearray()
    while len(out) < size:
        picks = rng.integers(0, len(words), 20000)
        out += b" ".join(words[picks])
    return bytes(out[:size])


def _make_random(path: Path, size: int) -> None:
    rng = np.random.default_rng(0)
    with path.open("wb") as handle:
        left = size
        while left > 0:
            step = min(left, 8 * MB)
            handle.write(rng.integers(0, 256, step, dtype=np.uint8).tobytes())
            left -= step


def _make_archives(folder: Path, size: int) -> dict[str, Path]:
    block = _text_block(1, MEMBER_BYTES)
    sizes = [MEMBER_BYTES] * (size // MEMBER_BYTES) + ([size % MEMBER_BYTES] if size % MEMBER_BYTES else [])
    members = [(f"src/module_{i:04d}.py", block[:n]) for i, n in enumerate(sizes)]
    zip_path = folder / f"src-{size // MB}MB.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members:
            archive.writestr(name, data)
    tar_path = folder / f"src-{size // MB}MB.tar"
    with tarfile.open(tar_path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    subprocess.run(["gzip", "-1", "-k", "-f", str(tar_path)], check=True)
    subprocess.run(["zstd", "-q", "-3", "-f", str(tar_path), "-o", str(tar_path) + ".zst"], check=True)
    tar_path.unlink()
    return {"zip": zip_path, "tar_gz": Path(str(tar_path) + ".gz"), "tar_zst": Path(str(tar_path) + ".zst")}


# --------------------------------------------------------------------------- child process side

def _child(task: str, path: str, trace: bool) -> None:
    import tracemalloc

    from compliance.engine.archives import archive_inspect
    from compliance.engine.intake import stream_hash_copy
    from compliance.engine.intake_common import IntakeLimits

    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if task == "hash":
        with open(path, "rb") as handle:
            digest, _ = stream_hash_copy(src=handle, dst=None, limit_bytes=1 << 62)
        result = {"digest": digest}
    elif task == "archive":
        report = archive_inspect(path=path, limits=IntakeLimits())
        result = {"read_bytes": report.read_bytes, "findings": [f.code for f in report.findings]}
    else:
        raise SystemExit(f"unknown task {task}")
    seconds = time.perf_counter() - start
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    print(json.dumps({"seconds": seconds, "maxrss_mb": maxrss_kb / 1024, "traced_peak_mb": peak / 2**20 if peak else None, **result}))


def _run_child(task: str, path: Path) -> dict:
    """Timed run (no tracing), then a second run under tracemalloc for Python-heap peak."""
    timed = subprocess.run([sys.executable, __file__, "--child", task, str(path), "0"], capture_output=True, text=True, check=True)
    traced = subprocess.run([sys.executable, __file__, "--child", task, str(path), "1"], capture_output=True, text=True, check=True)
    result = json.loads(timed.stdout)
    result["traced_peak_mb"] = json.loads(traced.stdout)["traced_peak_mb"]
    return result


def _run_shell(command: str) -> tuple[float, float, str]:
    """Time a shell pipeline; return (seconds, peak RSS MB of its children, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is a running maximum; report it only when it grew.
    return seconds, (after / 1024 if after > before else float("nan")), out.stdout


def _drop_cache_hint(path: Path) -> None:
    """Read the file once so both tools start with it in the page cache (fair comparison)."""
    with path.open("rb") as handle:
        while handle.read(8 * MB):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 MB only: checks the run, not the figures")
    parser.add_argument("--sizes", default=None, help="input sizes in MB (10,100,1000; quick 10)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--work", default=str(VAR_BENCH / "intake"),
                        help="where the generated inputs go (default var/bench/intake)")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/intake[-quick].json)")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "PATH", "TRACE"))
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2] == "1")
        return
    args.sizes = args.sizes or ("10" if args.quick else "10,100,1000")
    Path(args.work).mkdir(parents=True, exist_ok=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-intake-", dir=args.work) as tmp:
        folder = Path(tmp)
        for size_mb in [int(s) for s in args.sizes.split(",")]:
            size = size_mb * MB
            random_path = folder / f"random-{size_mb}MB.bin"
            _make_random(random_path, size)
            _drop_cache_hint(random_path)
            ours = _run_child("hash", random_path)
            peer_s, _, peer_out = _run_shell(f"sha256sum {random_path}")
            assert peer_out.split()[0] == ours["digest"], "sha256 mismatch with sha256sum"
            rows.append({"task": "sha256", "input_mb": size_mb, "ours_s": ours["seconds"], "ours_mb_s": size_mb / ours["seconds"],
                         "peer": "sha256sum", "peer_s": peer_s, "peer_mb_s": size_mb / peer_s, "ours_peak_rss_mb": ours["maxrss_mb"],
                         "ours_traced_peak_mb": ours["traced_peak_mb"]})
            # coreutils 9.1 sha256sum does not use the CPU's SHA instructions;
            # OpenSSL (which hashlib uses) does, so it is the fairer peer.
            peer_s, _, peer_out = _run_shell(f"openssl dgst -sha256 -r {random_path}")
            assert peer_out.split()[0] == ours["digest"], "sha256 mismatch with openssl"
            rows.append({"task": "sha256", "input_mb": size_mb, "ours_s": ours["seconds"], "ours_mb_s": size_mb / ours["seconds"],
                         "peer": "openssl dgst -sha256", "peer_s": peer_s, "peer_mb_s": size_mb / peer_s,
                         "ours_peak_rss_mb": ours["maxrss_mb"], "ours_traced_peak_mb": ours["traced_peak_mb"]})
            random_path.unlink()

            archives = _make_archives(folder, size)
            peers = {
                "zip": ("unzip -t", f"unzip -tqq {archives['zip']}"),
                "tar_gz": ("tar -xzOf >/dev/null", f"tar -xzOf {archives['tar_gz']} > /dev/null"),
                "tar_zst": ("zstd -dc | tar -xOf >/dev/null", f"zstd -dcq {archives['tar_zst']} | tar -xOf - > /dev/null"),
            }
            for kind, path in archives.items():
                _drop_cache_hint(path)
                ours = _run_child("archive", path)
                assert ours["read_bytes"] == size, (kind, ours)
                peer_name, command = peers[kind]
                peer_s, _, _ = _run_shell(command)
                rows.append({"task": f"inspect {kind}", "input_mb": size_mb, "compressed_mb": round(path.stat().st_size / MB, 1),
                             "ours_s": ours["seconds"], "ours_mb_s": size_mb / ours["seconds"], "peer": peer_name, "peer_s": peer_s,
                             "peer_mb_s": size_mb / peer_s, "ours_peak_rss_mb": ours["maxrss_mb"],
                             "ours_traced_peak_mb": ours["traced_peak_mb"]})
                path.unlink()

    out_write(name="intake-quick" if args.quick else "intake", out=args.out,
              data={"mode": "quick" if args.quick else "full", "rows": rows})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| task | input (MB, expanded) | ours s | ours MB/s | peer | peer MB/s | ours / peer time | ours peak RSS (MB) | ours Python heap peak (MB) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['input_mb']:,} | {r['ours_s']:.2f} | {r['ours_mb_s']:.0f} | {r['peer']} | {r['peer_mb_s']:.0f} | "
              f"{r['ours_s'] / r['peer_s']:.2f}x | {r['ours_peak_rss_mb']:.0f} | {r['ours_traced_peak_mb']:.1f} |")


if __name__ == "__main__":
    main()

"""Peak memory of the lineage check's engine work, by stage, at the issue's size (issue #16).

    .venv/bin/python bench/lineage_memory.py [--references 50] [--candidate solar|fine-tune]
                                             [--tracemalloc] [--work DIR] [--out FILE]

Runs what ``compliance.checks.lineage.run`` asks of the engine, in a fresh process:
``fingerprint_build`` of the candidate, then ``lineage_test_against`` the reference bundles (the
registry screen, then the full test on the kept references). Prints one JSON document:

* peak USS (private pages: what the process adds to a worker's tree), PSS and RSS, read from
  ``/proc/self/smaps_rollup`` by a thread every 20 ms, overall and per stage (import, candidate
  build, screen, each full test), with the same figures after the imports as the baseline;
* wall and CPU seconds per stage and in all;
* with ``--tracemalloc``, each stage's peak of traced Python and numpy allocations and the top
  allocation sites near that peak (a second run: tracing slows the work, so its times are not
  the figures to quote);
* the SHA-256 of the reports' JSON, so a change to the engine can show it gave the same answers.

The candidate's sketch and test rows are derived lazily, so the "screen" stage includes them.

Inputs, built once into --work (default var/bench/lineage-memory) and reused:
* candidate "solar": the 102.7B MoE of bench/submission_e2e.py (Solar-Open-100B's config from
  the shared data, 48 layers x 128 experts, 42 shards of real headers and apparent size made with
  `truncate`: 205 GB that take no disk; holes read back as zeros);
* candidate "fine-tune": a fingerprint of real shape from numpy, a fine-tune of reference 8 (row
  correlation 0.71; bench/lineage_cost.py), saved as a bundle: the derived case, where the full
  test does the most work;
* 50 reference bundles of real shape (d = 4096, 16 sampled layers of 512 + 384 rows, 1,024
  embedding rows, 128,256-token vocabulary), as bench/submission_e2e.py registers them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402

MB = 1 << 20


def _rollup() -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) of this process, in bytes."""
    fields = {}
    with open("/proc/self/smaps_rollup") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


class Stages:
    """Per-stage peaks of this process's memory (a sampling thread) and its wall and CPU time."""

    def __init__(self, *, trace: bool, interval: float = 0.02):
        self.trace, self.interval = trace, interval
        self.stages: list[dict] = []
        self.current: dict | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self, name: str) -> None:
        with self._lock:
            self._close()
            now = _rollup()
            self.current = {"stage": name, "wall": time.perf_counter(), "cpu": time.process_time(),
                            "start": now, "peak": dict(now), "snapshot_at": 0}
            if self.trace:
                import tracemalloc

                tracemalloc.reset_peak()
                self.current["traced_start"] = tracemalloc.get_traced_memory()[0]

    def _close(self) -> None:
        stage = self.current
        if stage is None:
            return
        stage["wall"] = round(time.perf_counter() - stage["wall"], 2)
        stage["cpu"] = round(time.process_time() - stage["cpu"], 2)
        stage["end"] = _rollup()
        if self.trace:
            import tracemalloc

            current, peak = tracemalloc.get_traced_memory()
            stage["traced_mb"] = {"start": round(stage.pop("traced_start") / MB, 1), "peak": round(peak / MB, 1),
                                  "end": round(current / MB, 1)}
        self.stages.append(stage)
        self.current = None

    def sample(self) -> None:
        with self._lock:
            stage = self.current
            if stage is None:
                return
            now = _rollup()
            for key, value in now.items():
                stage["peak"][key] = max(stage["peak"][key], value)
            if self.trace:
                import tracemalloc

                traced = tracemalloc.get_traced_memory()[0]
                # Snapshot the allocation sites each time the stage's traced memory grows by 5 %
                # past the last snapshot: the last one is the picture near the stage's peak.
                if traced > 1.05 * stage["snapshot_at"] + MB:
                    stage["snapshot_at"] = traced
                    stage["top"] = _top(tracemalloc.take_snapshot())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def run(self) -> None:
        self._thread.start()

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._close()
        for stage in self.stages:
            stage.pop("snapshot_at", None)
            for key in ("start", "peak", "end"):
                stage[key] = {k: round(v / MB, 1) for k, v in stage[key].items()}
        return self.stages


def _top(snapshot, limit: int = 8) -> list[dict]:
    stats = snapshot.statistics("lineno")
    return [{"site": f"{Path(s.traceback[0].filename).relative_to(ROOT) if s.traceback[0].filename.startswith(str(ROOT)) else Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}",
             "mb": round(s.size / MB, 1), "blocks": s.count} for s in stats[:limit]]


# ------------------------------------------------------------------------------------ inputs

def solar_write(folder: Path) -> dict:
    """The 102.7B sparse MoE of bench/submission_e2e.py (same writers, same config)."""
    from bench import lineage_cost

    marker = folder / ".complete"
    if marker.exists():
        return json.loads(marker.read_text())
    solar = json.loads(lineage_cost.shared_data_path(
        "solar-vs-glm", "config_compare_solar_glm45air.json").read_text())["A"]["config_summary"]
    tensors = lineage_cost._tensors_moe(solar["hidden_size"], solar["num_hidden_layers"], solar["num_attention_heads"],
                                        solar["num_key_value_heads"], 128, solar["n_routed_experts"],
                                        solar["moe_intermediate_size"], solar["n_shared_experts"], solar["vocab_size"])
    total = lineage_cost.sparse_checkpoint_write(folder, dict(tensors), lineage_cost._shard_plan(tensors),
                                                 {**solar, "model_type": "glm4_moe"}, solar["vocab_size"])
    info = {"bytes": total, "parameters_b": round(sum(math.prod(s) for _, s in tensors) / 1e9, 1),
            "shards": len(list(folder.glob("*.safetensors")))}
    marker.write_text(json.dumps(info))
    return info


def references_write(folder: Path, count: int) -> list[Path]:
    """`count` reference bundles as bench/submission_e2e.py registers them, and the fine-tune of
    reference 8 as a bundle (fine-tune.lineage). Reused when present."""
    from bench.lineage_cost import PARENT, synthetic_fingerprint
    from compliance.engine.lineage import fingerprint_save

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"ref-{i:02d}.lineage"
        if not path.exists():
            fingerprint_save(synthetic_fingerprint(10_000 + i), path.with_suffix(".tmp"))
            path.with_suffix(".tmp").rename(path)
        paths.append(path)
    tune = folder / "fine-tune.lineage"
    if not tune.exists():
        parent = synthetic_fingerprint(10_000 + PARENT)
        fingerprint_save(synthetic_fingerprint(99, parent=parent), tune)
    return paths


# ------------------------------------------------------------------------------ measurement

def measure(*, candidate: str, references: list[Path], trace: bool) -> dict:
    """In this (fresh) process: the engine calls of the lineage check, stage by stage."""
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    stages = Stages(trace=trace)
    stages.run()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    stages.start("import")
    from compliance.engine.lineage import compare, fingerprint_build, fingerprint_load, lineage_test_against

    baseline = _rollup()
    stages.start("candidate build")
    fp = fingerprint_build(path=candidate) if Path(candidate).is_dir() else fingerprint_load(candidate)
    stages.start("screen")
    original = compare.lineage_compare

    def compare_staged(*, candidate, reference, alpha):
        stages.start(f"full test {Path(os.fspath(reference)).name}")
        return original(candidate=candidate, reference=reference, alpha=alpha)

    compare.lineage_compare = compare_staged
    try:
        reports = lineage_test_against(candidate=fp, references=[str(p) for p in references],
                                       names=[p.stem for p in references])
    finally:
        compare.lineage_compare = original
    stages.start("reports")
    dicts = [r.to_dict() for r in reports]
    digest = hashlib.sha256(json.dumps(dicts, sort_keys=True, default=str).encode()).hexdigest()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    per_stage = stages.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = {k: max(s["peak"][k] for s in per_stage) for k in ("rss", "pss", "uss")}
    return {
        "candidate": Path(candidate).name, "references": len(references), "tracemalloc": trace,
        "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
        "peak_mb": peak, "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
        "after_imports_mb": {k: round(v / MB, 1) for k, v in baseline.items()},
        "peak_above_imports_mb": {k: round(peak[k] - baseline[k] / MB, 1) for k in peak},
        "bytes_read": int(fp.meta.get("bytes_read", 0)),
        "kept": [r.reference for r in reports if r.verdict != "not_tested"],
        "verdicts": {r.reference: r.verdict for r in reports if r.verdict != "not_tested"},
        "p_values": {r.reference: r.p_value for r in reports if r.verdict != "not_tested"},
        "reports_sha256": digest,
        "stages": per_stage,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=int, default=50)
    parser.add_argument("--candidate", choices=("solar", "fine-tune"), default="solar")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations (slower)")
    parser.add_argument("--work", type=Path, default=VAR_BENCH / "lineage-memory")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the measured process: nothing but the engine's work
        spec = json.loads(args.child)
        result = measure(candidate=spec["candidate"], references=[Path(p) for p in spec["references"]],
                         trace=spec["trace"])
        print(json.dumps(result))
        return 0
    started = time.perf_counter()
    model = solar_write(args.work / "solar") if args.candidate == "solar" else None
    references = references_write(args.work / "references", args.references)
    candidate = args.work / "solar" if args.candidate == "solar" else args.work / "references" / "fine-tune.lineage"
    setup = round(time.perf_counter() - started, 1)
    runs = []
    for trace in (False, True) if args.tracemalloc else (False,):
        spec = {"candidate": str(candidate), "references": [str(p) for p in references], "trace": trace}
        load = os.getloadavg()[0]
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True,
                              capture_output=True, text=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        run["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        runs.append(run)
    result = {"model": model, "setup_seconds": setup, "runs": runs,
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip()}
    out_write(name=f"lineage-memory-{args.candidate}", data=result, out=args.out)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cost of judging a training-evidence bundle of 10 checkpoints of a 7B-shaped model given as
fingerprint bundles, against a registry, with the submitted model: aim under a minute.

    .venv/bin/python bench/training_evidence.py [--json] [--checkpoints 3 5 10] [--references 2]
    .venv/bin/python bench/training_evidence.py --quick      # 3 checkpoints, one reference

Needs only the project (and $PORTAL_SHARED_DATA for bench.lineage_cost's import); no download,
no torch. The fingerprints are real-shaped: a sparse Llama-2-7B-shaped checkpoint (d 4096, 32
layers, MLP 11,008, vocabulary 32,000; real safetensors headers, holes for data, as
bench/lineage_cost.py builds them) is fingerprinted once, which fixes every array's shape, the
layers sampled and the tokenizer; its arrays are then filled per checkpoint: step 0 drawn as
transformers draws a Llama (normal(0, 0.02), gains 1), each later checkpoint the previous one's
raw rows plus an update of 5 % of their spread, and the registry's models independent
heavy-tailed draws. Baseline in the same run: one lineage comparison of two such fingerprints
(the judgement makes 9 chain links + 2 x references registry tests + 1 submitted test).
Growth: the same judgement at each --checkpoints size. Raw JSON goes to bench/out/.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402
from bench.lineage_cost import _shard_plan, _tensors_llama, sparse_checkpoint_write  # noqa: E402
from compliance.engine.lineage import Fingerprint, fingerprint_build, fingerprint_save, lineage_compare  # noqa: E402
from compliance.engine.training_evidence import training_evidence_judge  # noqa: E402

D, LAYERS, F, HEADS, VOCAB = 4096, 32, 11008, 32, 32000
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D, "intermediate_size": F,
          "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
          "vocab_size": VOCAB, "initializer_range": 0.02, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0, keepdims=True)
    return (x / np.maximum(x.std(axis=0, keepdims=True), 1e-20)).astype(np.float16)


def _correlation(rows: np.ndarray) -> np.ndarray:
    return np.corrcoef(rows).astype(np.float32)


class RawState:
    """The raw (unstandardised) arrays behind one checkpoint's fingerprint."""

    def __init__(self, template: Fingerprint, rng: np.random.Generator, *, trained: bool) -> None:
        def draw(shape: tuple[int, ...]) -> np.ndarray:
            if trained:  # heavy tails and a few strong directions, as trained weights have
                low = rng.standard_normal((shape[0], 8)) @ rng.standard_normal((8, shape[1])) * 0.3
                return (rng.standard_t(4, shape) + low).astype(np.float32) * 0.02
            return rng.normal(0.0, 0.02, shape).astype(np.float32)

        self.rows = {(i, f): draw(fr.rows.shape) for i, lp in template.layers.items() for f, fr in lp.families.items()}
        self.down = {i: draw((lp.mlp_out.shape[0], F)) for i, lp in template.layers.items() if lp.mlp_out is not None}
        self.gains = {(i, k): (rng.normal(1.0, 0.05, D) if trained else np.ones(D)).astype(np.float32)
                      for i in template.layers for k in ("norm_in", "norm_post")}
        self.embedding = draw(template.embedding_rows.shape)

    def step(self, rng: np.random.Generator, size: float = 0.05) -> "RawState":
        out = copy.copy(self)
        out.rows = {k: (v + rng.normal(0, size * 0.02, v.shape)).astype(np.float32) for k, v in self.rows.items()}
        out.down = {k: (v + rng.normal(0, size * 0.02, v.shape)).astype(np.float32) for k, v in self.down.items()}
        out.gains = {k: (v + rng.normal(0, 0.01, v.shape)).astype(np.float32) for k, v in self.gains.items()}
        out.embedding = (self.embedding + rng.normal(0, size * 0.02, self.embedding.shape)).astype(np.float32)
        return out

    def fingerprint(self, template: Fingerprint, name: str, rng: np.random.Generator) -> Fingerprint:
        fp = copy.deepcopy(template)
        fp.meta = {**fp.meta, "name": name}
        for i, lp in fp.layers.items():
            for f, fr in lp.families.items():
                fr.rows = _standardise(self.rows[(i, f)])
                fr.hashes = [rng.bytes(16).hex() for _ in fr.hashes]
                fr._prepared = None
            if lp.mlp_out is not None:
                lp.mlp_out = _correlation(self.down[i])
            lp.norm_in, lp.norm_post = self.gains[(i, "norm_in")], self.gains[(i, "norm_post")]
        fp.embedding_rows = self.embedding.astype(np.float16)
        fp.embedding_hashes = [rng.bytes(8).hex() for _ in fp.embedding_hashes]
        return fp


def template_build(work: Path) -> tuple[Fingerprint, float]:
    tensors = _tensors_llama(D, LAYERS, F, HEADS, HEADS, VOCAB, tied=False)
    folder = work / "llama-7b-shaped"
    sparse_checkpoint_write(folder, dict(tensors), _shard_plan(tensors), CONFIG, VOCAB)
    started = time.perf_counter()
    fp = fingerprint_build(path=folder)
    seconds = time.perf_counter() - started
    shutil.rmtree(folder)
    return fp, seconds


def bundle_write(work: Path, template: Fingerprint, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    root = work / f"evidence-{n}"
    state = RawState(template, rng, trained=False)
    entries, log = [], []
    last = 20_000
    steps = [round(last * i / (n - 1)) for i in range(n)]
    for i, step in enumerate(steps):
        if i:
            state = state.step(rng)
        folder = root / "checkpoints" / f"step_{step}"
        folder.mkdir(parents=True)
        fingerprint_save(state.fingerprint(template, f"step_{step}", rng), folder / "fingerprint.npz")
        (folder / "config.json").write_text(json.dumps(CONFIG))
        entries.append({"step": step, "path": f"checkpoints/step_{step}"})
    for step in range(0, last + 1, 100):  # 201 log lines, loss from ln(32000) down
        log.append({"step": step, "loss": round(2.2 + (math.log(VOCAB) - 2.2) * math.exp(-step / 4000), 4),
                    "tokens": step * 4_000_000})
    (root / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    parameters = int(template.meta["parameters"])
    manifest = {"format": "training-evidence/1", "claim": "from_scratch", "checkpoints": entries,
                "log": "train_log.jsonl", "compute_flops": 6.0 * parameters * log[-1]["tokens"]}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 checkpoints, one reference")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--references", type=int, default=2)
    parser.add_argument("--work", default=str(VAR_BENCH / "training-evidence"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sizes, n_refs = ([3], 1) if args.quick else (args.checkpoints, args.references)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    template, fingerprint_seconds = template_build(work)
    rng = np.random.default_rng(99)
    references = {f"registered-{r}": RawState(template, rng, trained=True).fingerprint(template, f"registered-{r}", rng)
                  for r in range(n_refs)}
    base_a = RawState(template, rng, trained=False)
    a = base_a.fingerprint(template, "a", rng)
    b = base_a.step(rng).fingerprint(template, "b", rng)
    started = time.perf_counter()
    lineage_compare(candidate=b, reference=a)
    compare_seconds = time.perf_counter() - started
    rows = []
    for n in sizes:
        root = bundle_write(work, template, n, seed=n)
        bundle_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        last = sorted((root / "checkpoints").iterdir(), key=lambda p: int(p.name.split("_")[1]))[-1]
        started, cpu_started = time.perf_counter(), time.process_time()
        report = training_evidence_judge(path=root, references=references, submitted=last / "fingerprint.npz")
        seconds = time.perf_counter() - started
        # CPU seconds of this process (all its threads): on a shared machine the wall time grows
        # with the others' load, the CPU time much less, so both are reported.
        cpu_seconds = time.process_time() - cpu_started
        tests = sum(len(c.tests) for c in report.checkpoints)
        rows.append({"checkpoints": n, "references": n_refs, "lineage_tests": tests, "verdict": report.verdict,
                     "findings": sorted({f.code for f in report.findings}), "bundle_mb": round(bundle_bytes / 1e6, 1),
                     "judge_seconds": round(seconds, 2), "judge_cpu_seconds": round(cpu_seconds, 2),
                     "load_average": round(os.getloadavg()[0], 1),
                     "ratio_to_one_compare": round(seconds / compare_seconds, 1)})
        shutil.rmtree(root)
    shutil.rmtree(work, ignore_errors=True)
    result = {"mode": "quick" if args.quick else "full", "model": "Llama-2-7B-shaped",
              "parameters": template.meta["parameters"], "fingerprint_build_seconds_sparse": round(fingerprint_seconds, 2),
              "one_compare_seconds": round(compare_seconds, 2), "runs": rows}
    out_write(name="training-evidence-quick" if args.quick else "training-evidence", data=result, out=args.out)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    print(f"One lineage comparison of two 7B-shaped fingerprints (baseline): {compare_seconds:.2f} s\n")
    print("| checkpoints | references | lineage tests | verdict | bundle MB | judge s | judge CPU s | load | "
          "ratio to one compare |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['checkpoints']} | {r['references']} | {r['lineage_tests']} | {r['verdict']} | {r['bundle_mb']} | "
              f"{r['judge_seconds']} | {r['judge_cpu_seconds']} | {r['load_average']} | "
              f"{r['ratio_to_one_compare']}x |")


if __name__ == "__main__":
    main()

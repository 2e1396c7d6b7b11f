"""Cost of fingerprinting real-sized checkpoints: bytes read and time, against a full read.

    .venv/bin/python bench/lineage_cost.py [--json] [--work DIR] [--skip-deepseek]
    .venv/bin/python bench/lineage_cost.py --quick     # 1B, Mixtral and Solar layouts, a 64 MB read
    .venv/bin/python bench/lineage_cost.py --registry-only [--references 50]   # many references only

The registry part (also run after the checkpoints unless --skip-registry) builds 50 fingerprints
of real shape (d = 4096, 32 layers of which 16 sampled, 512 + 384 rows a layer, 1,024 embedding
rows, a 128,256-token vocabulary) from numpy (Gaussian rows: the sparse checkpoints read back as
zeros, which would compress to nothing and match everything), saves them as compact bundles, and
times one submission (a fine-tuned copy of reference 8, and an independent model) against 10,
25 and 50 of them: screening (reading every sketch and ranking), the full test on the kept
ones, and, measured in the same run, the full test on every reference without the screen.

Needs the project's shared data ($PORTAL_SHARED_DATA, else ../shared/data beside the project)
and nothing else: no download. Builds sparse checkpoints in --work (default
var/bench/lineage-cost, each removed after use):  with real safetensors headers and the real apparent file sizes
(`truncate`, so they cost no disk): a Llama-3.2-1B-shaped model, Llama-3.1-8B (config from
../shared/data), Mixtral-8x7B (the real model.safetensors.index.json: 19 shards, real tensor
names), a Solar-Open-100B-shaped MoE (config summary from ../shared/data/solar-vs-glm) and a
DeepSeek-V3-shaped 671B MoE (its config, FP8 E4M3 projections with float32 128 x 128 block scales
as shipped; shards planned at 5 GB of BF16-equivalent, so they hold about 2.5 GB each). Each gets a synthetic
tokenizer.json of its vocabulary size (Mixtral gets its real one).

Holes read back as zeros, so the fingerprint's wall time here is CPU plus page-cache time;
the full-read baseline is estimated from throughput measured in this run on a real (non-sparse)
512 MB file (64 MB with --quick), hashed with SHA-256 as intake does. Both numbers say which
they are. Raw JSON goes to bench/out/lineage-cost[-quick].json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write, shared_data_path  # noqa: E402
import numpy as np  # noqa: E402

from compliance.engine.lineage import (  # noqa: E402
    fingerprint_build,
    fingerprint_load,
    fingerprint_save,
    lineage_compare,
    lineage_test_against,
)
from compliance.engine.lineage.fingerprint import FamilyRows, Fingerprint, LayerPrint  # noqa: E402
from compliance.engine.lineage.screen import screen_rank, screen_sketches_load  # noqa: E402
from compliance.engine.lineage.stats import coordinate_gram  # noqa: E402
from compliance.engine.lineage.tokenizers import TokenizerData  # noqa: E402

DATA = shared_data_path()  # exits saying where it looked when the shared data is not there
SHARD_BYTES = 5_000_000_000  # Hugging Face's default 5 GB shards


def _tensors_llama(d: int, layers: int, f: int, heads: int, kv: int, vocab: int, tied: bool, hd: int | None = None):
    hd = hd or d // heads
    out = [("model.embed_tokens.weight", [vocab, d])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", [d]), (p + "self_attn.q_proj.weight", [heads * hd, d]),
                (p + "self_attn.k_proj.weight", [kv * hd, d]), (p + "self_attn.v_proj.weight", [kv * hd, d]),
                (p + "self_attn.o_proj.weight", [d, heads * hd]), (p + "post_attention_layernorm.weight", [d]),
                (p + "mlp.gate_proj.weight", [f, d]), (p + "mlp.up_proj.weight", [f, d]), (p + "mlp.down_proj.weight", [d, f])]
    out.append(("model.norm.weight", [d]))
    if not tied:
        out.append(("lm_head.weight", [vocab, d]))
    return out


def _tensors_mixtral():
    config = json.loads((DATA / "model-configs/Mixtral-8x7B-v0.1/config.json").read_text())
    index = json.loads((DATA / "model-configs/Mixtral-8x7B-v0.1/model.safetensors.index.json").read_text())
    d, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * d // config["num_attention_heads"]
    shapes = {}
    for name in index["weight_map"]:
        if name.endswith(("w1.weight", "w3.weight")):
            shapes[name] = [f, d]
        elif name.endswith("w2.weight"):
            shapes[name] = [d, f]
        elif name.endswith(("k_proj.weight", "v_proj.weight")):
            shapes[name] = [kv, d]
        elif name.endswith(("q_proj.weight", "o_proj.weight")):
            shapes[name] = [d, d]
        elif name.endswith("gate.weight"):
            shapes[name] = [config["num_local_experts"], d]
        elif name.endswith(("embed_tokens.weight", "lm_head.weight")):
            shapes[name] = [v, d]
        else:
            shapes[name] = [d]
    return shapes, index["weight_map"], config


def _tensors_moe(d, layers, heads, kv, hd, experts, moe_f, shared, vocab, dense_layers=0, dense_f=0, mla=None):
    out = [("model.embed_tokens.weight", [vocab, d])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out.append((p + "input_layernorm.weight", [d]))
        if mla:
            q_lora, kv_lora, rope, nope, vdim = mla
            out += [(p + "self_attn.q_a_proj.weight", [q_lora, d]), (p + "self_attn.q_a_layernorm.weight", [q_lora]),
                    (p + "self_attn.q_b_proj.weight", [heads * (nope + rope), q_lora]),
                    (p + "self_attn.kv_a_proj_with_mqa.weight", [kv_lora + rope, d]),
                    (p + "self_attn.kv_a_layernorm.weight", [kv_lora]),
                    (p + "self_attn.kv_b_proj.weight", [heads * (nope + vdim), kv_lora]),
                    (p + "self_attn.o_proj.weight", [d, heads * vdim])]
        else:
            out += [(p + "self_attn.q_proj.weight", [heads * hd, d]), (p + "self_attn.k_proj.weight", [kv * hd, d]),
                    (p + "self_attn.v_proj.weight", [kv * hd, d]), (p + "self_attn.o_proj.weight", [d, heads * hd])]
        out.append((p + "post_attention_layernorm.weight", [d]))
        if i < dense_layers:
            out += [(p + "mlp.gate_proj.weight", [dense_f, d]), (p + "mlp.up_proj.weight", [dense_f, d]),
                    (p + "mlp.down_proj.weight", [d, dense_f])]
            continue
        out.append((p + "mlp.gate.weight", [experts, d]))
        for e in range(experts):
            out += [(p + f"mlp.experts.{e}.gate_proj.weight", [moe_f, d]), (p + f"mlp.experts.{e}.up_proj.weight", [moe_f, d]),
                    (p + f"mlp.experts.{e}.down_proj.weight", [d, moe_f])]
        for _ in range(shared):
            out += [(p + "mlp.shared_experts.gate_proj.weight", [moe_f * shared, d]),
                    (p + "mlp.shared_experts.up_proj.weight", [moe_f * shared, d]),
                    (p + "mlp.shared_experts.down_proj.weight", [d, moe_f * shared])]
            break
    out += [("model.norm.weight", [d]), ("lm_head.weight", [vocab, d])]
    return out


def _shard_plan(tensors: list[tuple[str, list[int]]]) -> dict[str, str]:
    plan, shard, size = {}, 1, 0
    for name, shape in tensors:
        n = 2
        for s in shape:
            n *= s
        if size and size + n > SHARD_BYTES:
            shard, size = shard + 1, 0
        plan[name] = shard
        size += n
    total = shard
    return {name: f"model-{s:05d}-of-{total:05d}.safetensors" for name, s in plan.items()}


def _fp8_quantised(name: str, shape: list[int]) -> bool:
    """DeepSeek-V3's FP8 layout: 2-D projection weights are F8_E4M3; embeddings, head, router, norms stay BF16."""
    return len(shape) == 2 and name.endswith(("proj.weight", "proj_with_mqa.weight"))


def sparse_checkpoint_write(folder: Path, shapes: dict[str, list[int]], weight_map: dict[str, str],
                            config: dict, vocab_size: int, tokenizer: Path | None = None, fp8: bool = False) -> int:
    """Write real headers, truncate each shard to its true size (sparse), plus config/tokenizer. Returns total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    by_shard: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        by_shard.setdefault(shard, []).append(name)
    total = 0
    for shard, names in by_shard.items():
        header, offset = {}, 0
        for name in names:
            shape = shapes[name]
            quantised = fp8 and _fp8_quantised(name, shape)
            n = 1 if quantised else 2
            for s in shape:
                n *= s
            header[name] = {"dtype": "F8_E4M3" if quantised else "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
            offset += n
            if quantised:  # one float32 scale per 128 x 128 block, as DeepSeek ships them
                scale_shape = [-(-shape[0] // 128), -(-shape[1] // 128)]
                m = 4 * scale_shape[0] * scale_shape[1]
                header[name + "_scale_inv"] = {"dtype": "F32", "shape": scale_shape, "data_offsets": [offset, offset + m]}
                offset += m
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(folder / shard, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
            handle.truncate(8 + len(raw) + offset)
        total += 8 + len(raw) + offset
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer is not None:
        shutil.copy(tokenizer, folder / "tokenizer.json")
    else:
        vocab = {f"tok{i:06d}": i for i in range(vocab_size)}
        (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": vocab, "merges": []}}))
    return total


def read_throughput(work: Path, megabytes: int = 512) -> dict[str, float]:
    """MB/s of reading + SHA-256 hashing a real file of `megabytes` MiB (page cache may be warm: an upper bound)."""
    path = work / "throughput.bin"
    block = os.urandom(8 << 20)
    with open(path, "wb") as handle:
        for _ in range(megabytes // 8):
            handle.write(block)
    started = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    seconds = time.perf_counter() - started
    path.unlink()
    return {"bytes": megabytes << 20, "seconds": seconds, "mb_per_s": (megabytes << 20) / seconds / 1e6}


REGISTRY_WIDTH = 4096
REGISTRY_LAYERS = 32
REGISTRY_VOCAB = [f"tok{i:06d}" for i in range(128256)]
PARENT = 7  # the derived candidate is a fine-tune of reference 8 (index 7): inside every registry size


def _synthetic_embedding_tokens() -> list[str]:
    import hashlib

    keyed = sorted(REGISTRY_VOCAB, key=lambda t: hashlib.sha1(t.encode()).digest())[:1024]
    return sorted(keyed)


def synthetic_fingerprint(seed: int, *, parent: Fingerprint | None = None, noise: float = 1.0) -> Fingerprint:
    """A fingerprint of real shape from numpy: independent Gaussian rows, or `parent`'s rows plus
    `noise` x their sd (a fine-tune at row correlation 1 / sqrt(1 + noise^2))."""
    rng = np.random.default_rng(seed)
    d = REGISTRY_WIDTH
    layers: dict[int, LayerPrint] = {}
    sampled = [int(x) for x in np.unique(np.round(np.linspace(0, REGISTRY_LAYERS - 1, 16)).astype(int))]

    def rows(shape, base):
        x = rng.standard_normal(shape, dtype=np.float32)
        return x if base is None else (base.astype(np.float32) + noise * x) / np.float32(np.sqrt(1 + noise**2))

    for index in sampled:
        lp = LayerPrint(index=index)
        for family, k in (("mlp", 512), ("attn", 384)):
            base = None if parent is None else parent.layers[index].families[family].rows
            # Gaussian rows are column-standardised already in expectation; skipping the exact step
            # halves the build time of the registry (setup, not timed).
            lp.families[family] = FamilyRows(rows=rows((k, d), base).astype(np.float16), hashes=[f"{seed}-{index}-{family}"])
        down = rows((128, 2048), None) if parent is None else None
        lp.mlp_out = coordinate_gram(down) if parent is None else (
            parent.layers[index].mlp_out + 0.02 * noise * _symmetric(rng, 128)).astype(np.float32)
        lp.norm_in = (1 + 0.05 * rng.standard_normal(d)).astype(np.float32)
        lp.norm_post = (1 + 0.05 * rng.standard_normal(d)).astype(np.float32)
        layers[index] = lp
    tokens = _synthetic_embedding_tokens()
    base = None if parent is None else parent.embedding_rows
    emb = (0.02 * rows((len(tokens), d), None if base is None else base.astype(np.float32) / 0.02)).astype(np.float16)
    meta = {"name": f"synthetic-{seed}" if parent is None else f"fine-tune-of-{parent.name}", "kind": "synthetic",
            "hidden_size": d, "n_layers": REGISTRY_LAYERS, "notes": [], "config": {"hidden_size": d}}
    return Fingerprint(meta=meta, layers=layers, embedding_tokens=tokens, embedding_rows=emb,
                       embedding_hashes=[f"{seed}-{i}" for i in range(len(tokens))],
                       tokenizer=TokenizerData(kind="BPE", vocab=REGISTRY_VOCAB, source="synthetic"))


def _symmetric(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, n))
    return (x + x.T) / 2


def registry_bench(work: Path, *, references: int = 50, sizes: tuple[int, ...] = (10, 25, 50),
                   baseline_references: int = 10) -> dict:
    """One submission against a registry of compact bundles: screen, then the full test on the kept ones.

    The registry grows in steps (10, 25, 50) and each size is measured as soon as it is built, so
    an interrupted run still reports the smaller sizes. The no-screen baseline (the full test on
    every reference) is measured on the first `baseline_references` references in the same run;
    for larger sizes it is that measured median per reference times the size (stated as such).
    """
    work.mkdir(parents=True, exist_ok=True)
    bundles: list[Path] = []
    parent = None
    candidates: dict[str, Fingerprint] = {}
    out: dict = {"width": REGISTRY_WIDTH, "references": references, "bundle": {}, "runs": [], "build_seconds": 0.0}
    baseline: list[float] = []
    for n in sizes:
        if n > references:
            continue
        started = time.perf_counter()
        while len(bundles) < n:
            i = len(bundles)
            fp = synthetic_fingerprint(10_000 + i)
            if i == PARENT:
                parent = fp
            bundles.append(fingerprint_save(fp, work / f"ref-{i:02d}.lineage"))
            if i == 0:
                b = out["bundle"]
                b["compact_bytes"] = bundles[-1].stat().st_size
                b["float16_bytes"] = fingerprint_save(fp, work / "ref-00.float16.npz", compact=False).stat().st_size
                t = time.perf_counter()
                fingerprint_load(bundles[-1])
                b["load_seconds_compact"] = round(time.perf_counter() - t, 2)
                t = time.perf_counter()
                fingerprint_load(work / "ref-00.float16.npz")
                b["load_seconds_float16"] = round(time.perf_counter() - t, 2)
                (work / "ref-00.float16.npz").unlink()
        out["build_seconds"] += time.perf_counter() - started
        if not candidates:
            assert parent is not None
            candidates = {"fine-tune of reference 8 (row correlation 0.71)": synthetic_fingerprint(99, parent=parent),
                          "independent model": synthetic_fingerprint(98)}
            parent = None
            for cand in candidates.values():
                for fr in (fr for lp in cand.layers.values() for fr in lp.families.values()):
                    fr.prepared()  # the candidate is prepared once, as the check does before testing
        for label, cand in candidates.items():
            t0 = time.perf_counter()
            sketches = {str(i): screen_sketches_load(b) for i, b in enumerate(bundles[:n])}
            t1 = time.perf_counter()
            ranked = screen_rank(candidate=cand, references=sketches)
            t2 = time.perf_counter()
            reports = lineage_test_against(candidate=cand, references=bundles[:n], screen=True)
            t3 = time.perf_counter()
            kept = sorted((e for e in ranked.entries if e.kept), key=lambda e: e.rank)
            out["runs"].append({
                "candidate": label, "references": n, "sketch_read_seconds": round(t1 - t0, 2),
                "rank_seconds": round(t2 - t1, 2), "screen_and_full_test_seconds": round(t3 - t2, 2),
                "kept": [int(e.reference) + 1 for e in kept],
                "kept_scores": [round(e.score, 1) for e in kept],
                "best_screened_out_score": max((round(e.score, 2) for e in ranked.entries if not e.kept), default=None),
                "verdicts": {r.reference: r.verdict for r in reports if r.verdict != "not_tested"},
            })
            print(json.dumps(out["runs"][-1]), flush=True)
        if len(baseline) < min(baseline_references, len(bundles)):
            # Baseline, same run: the full test on each reference built so far, no screen.
            cand = next(iter(candidates.values()))
            for b in bundles[len(baseline):baseline_references]:
                t = time.perf_counter()
                lineage_compare(candidate=cand, reference=b)
                baseline.append(time.perf_counter() - t)
            out["baseline_seconds_measured"] = [round(x, 2) for x in baseline]
    per_reference = float(np.median(baseline)) if baseline else float("nan")
    out["baseline_seconds_per_reference_median"] = round(per_reference, 2)
    for run in out["runs"]:
        n = run["references"]
        measured = n <= len(baseline)
        full = sum(baseline[:n]) if measured else per_reference * n
        run["no_screen_seconds"] = round(full, 1)
        run["no_screen_measured"] = measured
        run["ratio_no_screen_over_screen"] = round(full / max(run["screen_and_full_test_seconds"], 1e-9), 1)
    out["build_seconds"] = round(out["build_seconds"], 1)
    for b in bundles:
        b.unlink()
    return out


def registry_print(result: dict) -> None:
    b = result["bundle"]
    print(f"\nBundle at d = {result['width']}: {b['compact_bytes'] / 1e6:.1f} MB compact (format 3) vs "
          f"{b['float16_bytes'] / 1e6:.1f} MB float16 (format 2); load {b['load_seconds_compact']} s vs "
          f"{b['load_seconds_float16']} s\n")
    print("| candidate | references | read sketches s | rank s | screen + full test s | kept (reference #) | "
          "best screened-out score | all tested, no screen s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["runs"]:
        print(f"| {r['candidate']} | {r['references']} | {r['sketch_read_seconds']} | {r['rank_seconds']} | "
              f"{r['screen_and_full_test_seconds']} | {r['kept']} | {r['best_screened_out_score']} | "
              f"{r['no_screen_seconds']}{'' if r['no_screen_measured'] else ' (est.)'} | "
              f"{r['ratio_no_screen_over_screen']}x |")
    print(f"\nFull test per reference, no screen (measured on the first references): "
          f"{result.get('baseline_seconds_measured')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the raw JSON instead of the table")
    parser.add_argument("--quick", action="store_true", help="1B, Mixtral and Solar layouts only, 64 MB throughput file")
    parser.add_argument("--skip-deepseek", action="store_true", help="skip the 671B (44k-tensor) layout")
    parser.add_argument("--work", default=str(VAR_BENCH / "lineage-cost"), help="where the sparse checkpoints are built")
    parser.add_argument("--registry-only", action="store_true", help="only the many-references part")
    parser.add_argument("--skip-registry", action="store_true", help="skip the many-references part")
    parser.add_argument("--references", type=int, default=50, help="registry size for the many-references part")
    parser.add_argument("--baseline-references", type=int, default=10, help="how many references the no-screen "
                        "baseline tests in full (the rest is estimated from their median)")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/lineage-cost[-quick].json)")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)  # what an interrupted run left: sparse, but its names would clash
    work.mkdir(parents=True)
    if args.registry_only:
        registry = registry_bench(work / "registry", references=args.references,
                                  baseline_references=args.baseline_references)
        shutil.rmtree(work, ignore_errors=True)
        out_write(name="lineage-cost-registry", data=registry, out=args.out)
        print(json.dumps(registry, indent=2) if args.json else "", end="")
        if not args.json:
            registry_print(registry)
        return
    models = []

    t = _tensors_llama(2048, 16, 8192, 32, 8, 128256, tied=True, hd=64)
    models.append(("Llama-3.2-1B-shaped", dict(t), _shard_plan(t), {"model_type": "llama", "hidden_size": 2048}, 128256, None))
    if not args.quick:
        c = json.loads((DATA / "model-configs/Llama-3.1-8B/config.json").read_text())
        t = _tensors_llama(c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["num_attention_heads"],
                           c["num_key_value_heads"], c["vocab_size"], tied=False)
        models.append(("Llama-3.1-8B", dict(t), _shard_plan(t), c, c["vocab_size"], None))
    shapes, wmap, c = _tensors_mixtral()
    models.append(("Mixtral-8x7B-v0.1 (real index)", shapes, wmap, c, c["vocab_size"],
                   DATA / "model-configs/Mixtral-8x7B-v0.1/tokenizer.json"))
    solar = json.loads((DATA / "solar-vs-glm/config_compare_solar_glm45air.json").read_text())["A"]["config_summary"]
    t = _tensors_moe(solar["hidden_size"], solar["num_hidden_layers"], solar["num_attention_heads"],
                     solar["num_key_value_heads"], 128, solar["n_routed_experts"], solar["moe_intermediate_size"],
                     solar["n_shared_experts"], solar["vocab_size"])
    models.append(("Solar-Open-100B-shaped (head_dim 128 assumed)", dict(t), _shard_plan(t),
                   {**solar, "model_type": "glm4_moe"}, solar["vocab_size"], None))
    if not (args.skip_deepseek or args.quick):
        c = json.loads((DATA / "model-configs/DeepSeek-V3/config.json").read_text())
        t = _tensors_moe(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"],
                         128, c["n_routed_experts"], c["moe_intermediate_size"], c["n_shared_experts"], c["vocab_size"],
                         dense_layers=c["first_k_dense_replace"], dense_f=c["intermediate_size"],
                         mla=(c["q_lora_rank"], c["kv_lora_rank"], c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"]))
        models.append(("DeepSeek-V3-shaped (FP8 + block scales, 671B)", dict(t), _shard_plan(t), c, c["vocab_size"], None))

    throughput = read_throughput(work, megabytes=64 if args.quick else 512)
    rows = []
    prints = {}
    for name, shapes, wmap, config, vocab, tok in models:
        folder = work / name.split(" ")[0]
        total = sparse_checkpoint_write(folder, shapes, wmap, config, vocab, tok, fp8=name.startswith("DeepSeek"))
        params = sum(int(__import__("math").prod(s)) for s in shapes.values())
        started = time.perf_counter()
        fp = fingerprint_build(path=folder)
        seconds = time.perf_counter() - started
        bundle = fingerprint_save(fp, work / f"{folder.name}.lineage.npz")
        prints[name] = fp
        # Holes compress to nothing; real weights do not. Report the arrays' own size too.
        arrays = sum(fr.rows.nbytes for lp in fp.layers.values() for fr in lp.families.values())
        arrays += sum(v.nbytes for lp in fp.layers.values() for v in (lp.norm_in, lp.norm_post) if v is not None)
        arrays += sum(lp.mlp_out.nbytes for lp in fp.layers.values() if lp.mlp_out is not None)
        arrays += 0 if fp.embedding_rows is None else fp.embedding_rows.nbytes
        read = fp.meta["bytes_read"]
        full_estimate = total / (throughput["mb_per_s"] * 1e6)
        rows.append({
            "model": name, "parameters_b": round(params / 1e9, 1), "shards": len(set(wmap.values())),
            "tensors": len(shapes), "file_bytes": total, "bytes_read": read,
            "share_read_pct": round(100 * read / total, 4), "fingerprint_seconds": round(seconds, 2),
            "full_read_seconds_estimated": round(full_estimate, 1),
            "time_ratio_full_over_fingerprint": round(full_estimate / seconds, 1),
            "bundle_bytes": bundle.stat().st_size, "bundle_array_bytes": arrays, "layers_sampled": len(fp.layers),
        })
        shutil.rmtree(folder)
    # Comparison cost at full scale (16 x 16 layer pairs, 512 + 384 rows per layer): Mixtral vs Solar-shaped.
    a = prints["Mixtral-8x7B-v0.1 (real index)"]
    b = prints["Solar-Open-100B-shaped (head_dim 128 assumed)"]
    started = time.perf_counter()
    lineage_compare(candidate=b, reference=a)
    compare_seconds = time.perf_counter() - started
    result = {"mode": "quick" if args.quick else "full", "throughput_full_read": throughput, "models": rows,
              "compare_seconds_fingerprint_vs_fingerprint": round(compare_seconds, 2)}
    if not args.skip_registry:
        result["registry"] = registry_bench(work / "registry", references=args.references)
    shutil.rmtree(work, ignore_errors=True)
    out_write(name="lineage-cost-quick" if args.quick else "lineage-cost", data=result, out=args.out)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    print(f"Full-read throughput measured in this run (read + SHA-256 of a real 512 MB file): {throughput['mb_per_s']:.0f} MB/s\n")
    print("| model | params (B) | shards | tensors | file GB | read MB | % read | fingerprint s | full read s (est.) | ratio | bundle MB (arrays) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['parameters_b']} | {r['shards']} | {r['tensors']} | {r['file_bytes'] / 1e9:.1f} | "
              f"{r['bytes_read'] / 1e6:.1f} | {r['share_read_pct']:.3f} | {r['fingerprint_seconds']} | "
              f"{r['full_read_seconds_estimated']} | {r['time_ratio_full_over_fingerprint']}x | {r['bundle_array_bytes'] / 1e6:.1f} |")
    print(f"\nCompare (fingerprint vs fingerprint, full-size rows): {compare_seconds:.2f} s")
    if "registry" in result:
        registry_print(result["registry"])


if __name__ == "__main__":
    main()

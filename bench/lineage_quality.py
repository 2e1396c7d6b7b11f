"""Lineage test quality on a labelled set of tiny structured models (no torch, CPU only).

    .venv/bin/python bench/lineage_quality.py [--independent-seeds 16] [--json] [--work DIR]
    .venv/bin/python bench/lineage_quality.py --quick   # every third derived case, 4 seeds, no stress cases
    .venv/bin/python bench/lineage_quality.py --bundle-roundtrip   # references through compact bundles

Every pair is also scored by the registry screen (screen.py) against its reference's sketch:
the summary reports the screen's false negatives on the derived pairs (a derived pair scoring
below KEEP_SCORE, i.e. kept only if it happened to rank in the top k) and how often an
independent pair reaches KEEP_SCORE. With --bundle-roundtrip every reference (and the
reference side of every independent pair) is saved as a compact bundle and loaded back first,
and each pair is also tested against the full-precision fingerprint: the summary then says
how many verdicts changed and how far -log10 p moved.

Derived pairs: every transformation the engine must see through, at several strengths, plus
combinations (>= 40 pairs). Independent pairs: different seeds of the same generator with
identical config, tokenizer and shared per-coordinate structure (>= 100 pairs, Llama-style,
plus GLM-4-MoE-style and BERT-style). Reports TPR at 1 % FPR, worst derived p, best
independent p, KS uniformity of null p-values, and the same figures for three baselines
computed in the same run: raw cosine of norm gains (the Solar/GLM accusation), Pearson of
norm gains, and the unmatched diagonal row correlation (Zhu-style without matching).

Multimodal pairs (issue #14): vision-language models in the LLaVA-OneVision, Qwen2.5-VL and a
renamed custom layout; against each reference VLM, a candidate reusing its vision encoder, its
language model, both (each fine-tuned at 0.3-3 x std), or neither. Reported per component: TPR
(reused component called derived), FPR (non-reused component called derived), worst derived and
best independent p. `--multimodal-only` runs just these.

The models are made with numpy in the run (tests/compliance/engine/lineage/tinymodels.py) and
written under --work (default var/bench/lineage-quality, removed at the end); nothing is
downloaded. Raw JSON goes to bench/out/lineage-quality[-quick].json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402
from compliance.engine.lineage import fingerprint_build, fingerprint_load, fingerprint_save, lineage_compare  # noqa: E402
from compliance.engine.lineage.compare import _fingerprints_compare  # noqa: E402
from compliance.engine.lineage.fingerprint import _stack_print  # noqa: E402
from compliance.engine.lineage.screen import KEEP_SCORE, screen_rank, screen_sketch_build  # noqa: E402
from compliance.engine.lineage.stats import chaos_tail, flip_chaos_parts, units_match_test  # noqa: E402
from compliance.engine.weights import model_open  # noqa: E402
from tests.compliance.engine.lineage import tinymodels as tm  # noqa: E402


def derived_cases(base: tm.TinyModel, moe: tm.TinyModel, bert: tm.TinyModel) -> list[tuple[str, str, object, dict]]:
    """(family, label, TinyModel or writer, write options) for every derived candidate."""
    cases: list[tuple[str, str, object, dict]] = []
    for i, noise in enumerate((0.3, 0.6, 1.0, 1.5, 2.0, 3.0)):
        cases.append(("fine-tune", f"fine-tune noise={noise}", tm.finetune(base, seed=100 + i, noise=noise), {}))
    for i in range(3):
        cases.append(("continued pretraining", f"continued pretraining #{i}", tm.continued_pretraining(base, seed=110 + i), {}))
    for i in range(3):
        cases.append(("permute MLP units", f"MLP units permuted + fine-tune #{i}",
                      tm.mlp_permute(tm.finetune(base, seed=120 + i), seed=130 + i), {}))
        cases.append(("permute heads", f"heads permuted + fine-tune #{i}",
                      tm.heads_permute(tm.finetune(base, seed=140 + i), seed=150 + i), {}))
    cases.append(("norm folding", "norm gains folded", tm.norms_fold(base), {}))
    cases.append(("norm folding", "norm gains folded + fine-tune", tm.norms_fold(tm.finetune(base, seed=160)), {}))
    for i, scale in enumerate((0.1, 0.5, 1.0, 2.0)):
        cases.append(("noise", f"noise {scale} x std", tm.noise_add(base, seed=170 + i, scale=scale), {}))
    cases.append(("casts", "bf16", tm.finetune(base, seed=180), {"dtype": "BF16"}))
    cases.append(("casts", "fp16", tm.finetune(base, seed=181), {"dtype": "F16"}))
    cases.append(("casts", "fp32", tm.finetune(base, seed=182), {"dtype": "F32"}))
    cases.append(("GGUF", "GGUF F16", tm.finetune(base, seed=183), {"gguf": "F16"}))
    cases.append(("GGUF", "GGUF Q8_0", tm.finetune(base, seed=184), {"gguf": "Q8_0"}))
    cases.append(("GGUF", "GGUF Q8_0 of permuted", tm.mlp_permute(base, seed=185), {"gguf": "Q8_0"}))
    cases.append(("casts", "FP8 E4M3 + block scales (DeepSeek-V3 layout)", tm.finetune(base, seed=189), {"fp8": True}))
    cases.append(("layer pruning", "every third layer dropped", tm.layers_prune(base), {}))
    cases.append(("layer pruning", "pruned + fine-tune", tm.layers_prune(tm.finetune(base, seed=186)), {}))
    cases.append(("depth up-scaling", "depth up-scaled", tm.depth_upscale(base), {}))
    cases.append(("depth up-scaling", "depth up-scaled + continued pretraining",
                  tm.continued_pretraining(tm.depth_upscale(base), seed=187), {}))
    cases.append(("tokenizer replaced", "new tokenizer, re-initialised embeddings", tm.tokenizer_replace(base, seed=188), {}))
    cases.append(("tokenizer replaced", "new tokenizer + fine-tune",
                  tm.finetune(tm.tokenizer_replace(base, seed=189), seed=190), {}))
    cases.append(("MoE upcycling", "dense to MoE (4 experts)", tm.moe_upcycle(base, seed=191), {}))
    cases.append(("MoE upcycling", "dense to MoE (8 experts) + fine-tune",
                  tm.finetune(tm.moe_upcycle(base, seed=192, experts=8), seed=193), {}))
    cases.append(("expert pruning", "MoE experts pruned to 4 of 8", tm.experts_prune(moe, keep=[0, 2, 5, 7]), {"ref": "moe"}))
    cases.append(("expert pruning", "MoE experts pruned + fine-tune",
                  tm.experts_prune(tm.finetune(moe, seed=194), keep=[1, 3, 4, 6]), {"ref": "moe"}))
    cases.append(("renamed tensors", "tensors renamed", tm.tensors_rename(base), {}))
    cases.append(("renamed tensors", "renamed + fine-tune", tm.tensors_rename(tm.finetune(base, seed=195)), {}))
    cases.append(("resharding", "3 shards", tm.finetune(base, seed=196), {"shards": 3}))
    cases.append(("architecture renamed", "architecture renamed", tm.architecture_rename(tm.finetune(base, seed=197)), {}))
    cases.append(("combination", "permute + fold + noise + GGUF Q8_0",
                  tm.noise_add(tm.norms_fold(tm.mlp_permute(tm.heads_permute(base, seed=198), seed=199)), seed=200),
                  {"gguf": "Q8_0"}))
    cases.append(("combination", "prune + rename + reshard", tm.tensors_rename(tm.layers_prune(base)), {"shards": 2}))
    cases.append(("residual basis permuted", "residual coordinates permuted and sign-flipped", tm.residual_permute(base, seed=210), {}))
    cases.append(("residual basis permuted", "residual permuted + MLP units permuted + continued pretraining",
                  tm.continued_pretraining(tm.mlp_permute(tm.residual_permute(base, seed=211), seed=212), seed=213), {}))
    # Rotated residual bases (QuaRot/SpinQuant style: norm gains folded, then an orthogonal Q) and
    # width-pruned siblings: only the rotation-invariant statistics (invariants.py) can see these.
    for i in range(2):
        cases.append(("rotated residual basis", f"rotated #{i}", tm.residual_rotate(base, seed=220 + i), {}))
    cases.append(("rotated residual basis", "rotated + fine-tune", tm.finetune(tm.residual_rotate(base, seed=222), seed=223), {}))
    cases.append(("rotated residual basis", "rotated + fine-tune noise=1.5",
                  tm.finetune(tm.residual_rotate(base, seed=224), seed=225, noise=1.5), {}))
    cases.append(("rotated residual basis", "rotated + continued pretraining",
                  tm.continued_pretraining(tm.residual_rotate(base, seed=226), seed=227), {}))
    cases.append(("rotated residual basis", "heads permuted + rotated + fine-tune",
                  tm.finetune(tm.residual_rotate(tm.heads_permute(base, seed=228), seed=229), seed=230), {}))
    cases.append(("rotated residual basis", "rotated + GGUF Q8_0", tm.residual_rotate(base, seed=231), {"gguf": "Q8_0"}))
    cases.append(("width pruning", "residual width 3/4", tm.width_prune(base, seed=240), {}))
    cases.append(("width pruning", "residual width 3/4 + fine-tune", tm.finetune(tm.width_prune(base, seed=241), seed=242), {}))
    cases.append(("width pruning", "residual width 1/2 + fine-tune",
                  tm.finetune(tm.width_prune(base, seed=243, residual=0.5), seed=244), {}))
    cases.append(("width pruning", "residual width 3/4 + half the KV heads + fine-tune",
                  tm.finetune(tm.width_prune(base, seed=245, kv_heads_kept=1), seed=246), {}))
    cases.append(("width pruning", "rotated + residual width 3/4",
                  tm.residual_rotate(tm.width_prune(base, seed=247), seed=248), {}))
    cases.append(("BERT", "BERT fine-tune", tm.finetune(bert, seed=201), {"ref": "bert"}))
    cases.append(("BERT", "BERT units permuted", tm.mlp_permute(tm.finetune(bert, seed=202), seed=203), {"ref": "bert"}))
    return cases


def _write(model: tm.TinyModel, where: Path, opts: dict) -> Path:
    if "gguf" in opts:
        return tm.gguf_write(model, where.with_suffix(".gguf"), qtype=opts["gguf"])
    if opts.get("fp8"):
        return tm.fp8_write(model, where)
    return tm.model_write(model, where, dtype=opts.get("dtype", "BF16"), shards=opts.get("shards", 1))


def _diagonal_score(cand, ref) -> float:
    """Baseline: mean correlation of row i of B with row i of A (no matching), MLP family."""
    scores = []
    for index, lp in cand.layers.items():
        rp = ref.layers.get(index)
        if rp is None or "mlp" not in lp.families or "mlp" not in rp.families:
            continue
        tb, ta = lp.families["mlp"].test.astype(np.float32), rp.families["mlp"].test.astype(np.float32)
        n = min(len(tb), len(ta))
        if tb.shape[1] != ta.shape[1]:
            continue
        scores.append(float(np.einsum("ij,ij->i", tb[:n], ta[:n]).mean()))
    return float(np.mean(scores)) if scores else 0.0


def _same_index_pvalues(cand, ref) -> list[float]:
    """Unselected per-layer p-values (B layer i vs A layer i) for the KS uniformity check."""
    out = []
    for index, lp in cand.layers.items():
        rp = ref.layers.get(index)
        if rp is None:
            continue
        for fam in ("mlp", "attn"):
            if fam in lp.families and fam in rp.families:
                b, a = lp.families[fam], rp.families[fam]
                out.append(units_match_test(b.sketch, b.test, a.sketch, a.test).p_value)
    return out


def permutation_check(prints: list, seed: int = 0, n_perm: int = 2000) -> dict:
    """Check the normal tail against an explicit Monte Carlo permutation null (same-index layer pairs).

    For each pair, M = A_H2^T diag(sign) B_H2 is formed once; a permutation sigma of B's H2
    coordinates gives R_sigma = sum_c M[c, sigma(c)], so 2,000 permutations cost little.
    """
    rng = np.random.default_rng(seed)
    mc, normal, kurt = [], [], []
    for a, b in itertools.combinations(prints, 2):
        for index in a.layers:
            if index not in b.layers:
                continue
            for fam in ("mlp", "attn"):
                if fam not in a.layers[index].families or fam not in b.layers[index].families:
                    continue
                fa, fb = a.layers[index].families[fam], b.layers[index].families[fam]
                result = units_match_test(fb.sketch, fb.test, fa.sketch, fa.test)
                corr = fb.sketch.astype(np.float32) @ fa.sketch.astype(np.float32).T
                match = np.argmax(np.abs(corr), axis=1)
                sign = np.where(corr[np.arange(len(match)), match] >= 0, 1.0, -1.0)
                m = (fa.test.astype(np.float32)[match] * sign[:, None]).T @ fb.test.astype(np.float32)
                n = m.shape[0]
                observed = float(np.trace(m))
                null = np.array([m[np.arange(n), rng.permutation(n)].sum() for _ in range(n_perm)])
                mc.append((1 + int((null >= observed).sum())) / (n_perm + 1))
                normal.append(result.p_value)
                kurt.append(float(sps.kurtosis(null)))
    mc_a, normal_a = np.array(mc), np.array(normal)
    return {
        "layer_pairs": len(mc),
        "permutations_each": n_perm,
        "share_below_0.05": {"normal_tail": float(np.mean(normal_a < 0.05)), "monte_carlo": float(np.mean(mc_a < 0.05))},
        "share_below_0.01": {"normal_tail": float(np.mean(normal_a < 0.01)), "monte_carlo": float(np.mean(mc_a < 0.01))},
        "max_abs_difference_normal_vs_mc": float(np.max(np.abs(mc_a - normal_a))),
        "null_excess_kurtosis_mean": float(np.mean(kurt)),
    }


def flip_null_check(prints: list, seed: int = 0, n_flip: int = 2000) -> dict:
    """Check the sign-flip null's gamma tail (exact first three moments) against explicit flips.

    Same-index value products VV of independent models (no matching, so the p-values should be
    uniform): each pair's C = A * B is formed once and 2,000 random sign vectors give the
    Monte Carlo null of T = s^T C s.
    """
    rng = np.random.default_rng(seed)
    mc, tail = [], []
    for a, b in itertools.combinations(prints, 2):
        for index, la in a.layers.items():
            lb = b.layers.get(index)
            if lb is None or "vv" not in la.invariants or "vv" not in lb.invariants:
                continue
            for va, vb in zip(la.invariants["vv"].astype(np.float64), lb.invariants["vv"].astype(np.float64)):
                t, var, third = (x[0] for x in flip_chaos_parts(va[None], vb))
                tail.append(chaos_tail(t, var, third)[1])
                c = va * vb
                np.fill_diagonal(c, 0.0)
                signs = rng.choice([-1.0, 1.0], size=(n_flip, c.shape[0]))
                null = np.einsum("ni,ij,nj->n", signs, c, signs)
                mc.append((1 + int((null >= t).sum())) / (n_flip + 1))
    mc_a, tail_a = np.array(mc), np.array(tail)
    return {
        "head_pairs": len(mc), "flips_each": n_flip,
        "share_below_0.05": {"gamma_tail": float(np.mean(tail_a < 0.05)), "monte_carlo": float(np.mean(mc_a < 0.05))},
        "share_below_0.01": {"gamma_tail": float(np.mean(tail_a < 0.01)), "monte_carlo": float(np.mean(mc_a < 0.01))},
        "max_abs_difference_tail_vs_mc": float(np.max(np.abs(mc_a - tail_a))) if len(mc) else None,
        "ks_uniform_pvalue_gamma_tail": float(sps.kstest(tail_a, "uniform").pvalue) if len(tail) > 5 else None,
    }


def tpr_at_fpr(pos: list[float], neg: list[float], fpr: float = 0.01, higher_is_positive: bool = True) -> float:
    """Share of positives above the threshold that lets through at most `fpr` of negatives."""
    pos_a, neg_a = np.asarray(pos), np.asarray(neg)
    if not higher_is_positive:
        pos_a, neg_a = -pos_a, -neg_a
    k = int(np.floor(fpr * len(neg_a)))  # negatives allowed above the threshold
    threshold = np.sort(neg_a)[::-1][k] if k < len(neg_a) else -np.inf
    return float(np.mean(pos_a > threshold))


def _stress_wide_mlp(work: Path) -> list[dict]:
    """Permuted and fine-tuned copies of a wide-MLP model (f = 8 d): where unit sampling thins out."""
    stress = []
    wide = tm.llama_make(seed=400, d=512, f=4096, layers=4, heads=8, kv_heads=4)
    wide_ref = fingerprint_build(path=tm.model_write(wide, work / "wide"))
    for label, model in (
        ("wide MLP, units + heads permuted + fine-tune", tm.heads_permute(tm.mlp_permute(tm.finetune(wide, seed=401), seed=402), seed=403)),
        ("wide MLP, units permuted + continued pretraining", tm.mlp_permute(tm.continued_pretraining(wide, seed=404), seed=405)),
        ("wide MLP, independent seed", tm.llama_make(seed=406, d=512, f=4096, layers=4, heads=8, kv_heads=4)),
    ):
        r = lineage_compare(candidate=tm.model_write(model, work / label.replace(" ", "_").replace(",", "")),
                            reference=wide_ref).to_dict()
        stress.append({"case": label, "verdict": r["verdict"], "p": r["p_value"], "effect": r["effect_size"],
                       "families": r["evidence"]["family_p_values"]})
    return stress


MULTIMODAL_CASES = {"reused vision encoder": {"vision"}, "reused language model": {"language"},
                    "both reused": {"vision", "language"}, "neither": set()}


def multimodal_pairs(work: Path, references: int) -> tuple[list[dict], dict]:
    """Every multimodal case against `references` reference VLMs per layout; rows and per-component figures."""
    rows = []
    for layout in ("llava_ov", "qwen25vl", "custom"):
        style = "qwen" if layout == "qwen25vl" else "siglip"
        for k in range(references):
            base = 5000 + 100 * k + {"llava_ov": 0, "qwen25vl": 10, "custom": 20}[layout]
            lm = tm.llama_make(seed=base)
            ref_dir = tm.model_write(tm.vlm_make(layout=layout, lm=lm, vision_seed=base + 1, projector_seed=base + 2),
                                     work / f"mm-{base}")
            ref = fingerprint_build(path=ref_dir)
            ref_whole = _stack_print(model_open(ref_dir))  # baseline: the engine before the split
            noise = (0.3, 1.0, 2.0, 3.0)[k % 4]
            for c, (case, reused) in enumerate(MULTIMODAL_CASES.items()):
                seed = base + 10 + c * 3
                tower = tm.vision_make(seed=base + 1, style=style)
                cand = tm.vlm_make(
                    layout=layout,
                    lm=tm.finetune(lm, seed=seed, noise=noise) if "language" in reused else tm.llama_make(seed=seed),
                    vision_seed=seed + 1, projector_seed=seed + 2,
                    vision=tm.tensors_finetune(tower, seed=seed + 1, noise=noise) if "vision" in reused else None)
                cand_dir = tm.model_write(cand, work / f"mm-{base}-{c}")
                report = lineage_compare(candidate=cand_dir, reference=ref).to_dict()
                whole = _fingerprints_compare(_stack_print(model_open(cand_dir)), ref_whole, 0, 0, 1e-3)
                rows.append({"layout": layout, "case": case, "noise": noise, "reused": sorted(reused),
                             "verdict": report["verdict"], "p": report["p_value"],
                             "baseline_verdict": whole.verdict, "baseline_reason": whole.reason[:120],
                             "components": {e["candidate"]: {"verdict": e["verdict"], "p": e["p_value"],
                                                             "families": e["family_p_values"]}
                                            for e in report["components"]}})
    figures: dict[str, dict] = {}
    for kind in ("language", "vision", "projector"):
        pos = [r["components"][kind] for r in rows if kind in r["reused"] and kind in r["components"]]
        neg = [r["components"][kind] for r in rows if kind not in r["reused"] and kind in r["components"]]
        figures[kind] = {
            "positives": len(pos), "negatives": len(neg),
            "tpr": (sum(x["verdict"] == "derived" for x in pos) / len(pos)) if pos else None,
            "fpr": sum(x["verdict"] == "derived" for x in neg) / len(neg) if neg else None,
            "worst_derived_p": max((x["p"] for x in pos), default=None),
            "best_independent_p": min((x["p"] for x in neg), default=None),
            "negatives_inconclusive": sum(x["verdict"] == "inconclusive" for x in neg),
            # Calibration: family p-values of non-reused components should be uniform (KS p large).
            "null_family_ks_p": {fam: float(sps.kstest(ps, "uniform").pvalue) for fam in ("mlp", "attn", "embedding")
                                 if len(ps := [x["families"][fam] for x in neg if fam in x["families"]]) > 5},
        }
    any_pos = [r for r in rows if r["reused"]]
    any_neg = [r for r in rows if not r["reused"]]
    figures["model (derived when any component is)"] = {
        "positives": len(any_pos), "negatives": len(any_neg),
        "tpr": sum(r["verdict"] == "derived" for r in any_pos) / len(any_pos),
        "fpr": sum(r["verdict"] == "derived" for r in any_neg) / len(any_neg),
        "worst_derived_p": max(r["p"] for r in any_pos), "best_independent_p": min(r["p"] for r in any_neg),
        "negatives_inconclusive": sum(r["verdict"] == "inconclusive" for r in any_neg),
    }
    figures["baseline: one stack per checkpoint (engine before the split)"] = {
        "positives": len(any_pos), "negatives": len(any_neg),
        "tpr": sum(r["baseline_verdict"] == "derived" for r in any_pos) / len(any_pos),
        "fpr": sum(r["baseline_verdict"] == "derived" for r in any_neg) / len(any_neg),
        "worst_derived_p": None, "best_independent_p": float("nan"),
        "negatives_inconclusive": sum(r["baseline_verdict"] == "inconclusive" for r in any_neg),
        "positives_inconclusive": sum(r["baseline_verdict"] == "inconclusive" for r in any_pos),
    }
    return rows, figures


def _multimodal_print(rows: list[dict], figures: dict) -> None:
    print("Multimodal pairs, per component:\n")
    print("| component | reused pairs | TPR | other pairs | FPR | inconclusive (other) | worst derived p | best independent p "
          "| KS p of null family p-values |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, f in figures.items():
        tpr = "–" if f["tpr"] is None else f"{f['tpr']:.3f}"
        worst = "–" if f["worst_derived_p"] is None else f"{f['worst_derived_p']:.3g}"
        ks = ", ".join(f"{fam} {p:.2f}" for fam, p in f.get("null_family_ks_p", {}).items()) or "–"
        print(f"| {kind} | {f['positives']} | {tpr} | {f['negatives']} | {f['fpr']:.3f} | "
              f"{f['negatives_inconclusive']} | {worst} | {f['best_independent_p']:.3g} | {ks} |")
    misses = [r for r in rows if any((k in r["reused"]) != (v["verdict"] == "derived")
                                     for k, v in r["components"].items())]
    if misses:
        print("\nPairs where a component's verdict and its label disagree:\n")
        for r in misses:
            print(f"- {r['layout']}, {r['case']}, noise {r['noise']}: " + ", ".join(
                f"{k} {v['verdict']} (p = {v['p']:.3g})" for k, v in r["components"].items()))
    print()


def _screen_score(cand, ref) -> float:
    """The registry screen's score of `cand` against `ref`'s sketch alone (rank-free)."""
    result = screen_rank(candidate=cand, references={"ref": {"model": screen_sketch_build(ref)}}, keep_top=0)
    return result.entries[0].score


def _compact(fp, work: Path, name: str):
    """`fp` saved as a compact bundle and loaded back."""
    return fingerprint_load(fingerprint_save(fp, work / f"{name}.lineage"))


def _log_p(p: float) -> float:
    return -float(np.log10(max(p, 1e-300)))


def _roundtrip_note(rows: list[dict], roundtrip: dict) -> None:
    """Compare each pair's result through the compact bundle with the full-precision one."""
    for r in rows:
        full = roundtrip.get((r["family"], r["case"]))
        if full is not None:
            r["full_precision_verdict"], r["full_precision_p"] = full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a third of the derived cases, 4 Llama seeds, 2 MoE and "
                        "2 BERT seeds, no stress cases: checks the run, not the figures")
    parser.add_argument("--independent-seeds", type=int, default=None, help="Llama seeds; pairs = n(n-1)/2 (16; quick 4)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON instead of the tables")
    parser.add_argument("--work", default=str(VAR_BENCH / "lineage-quality"), help="where the models are written")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/lineage-quality[-quick].json)")
    parser.add_argument("--multimodal-only", action="store_true", help="only the multimodal pairs (per component)")
    parser.add_argument("--multimodal-references", type=int, default=None,
                        help="reference VLMs per layout, 4 cases each (4; quick 1)")
    parser.add_argument("--bundle-roundtrip", action="store_true", help="references through compact bundles, "
                        "compared with full precision")
    parser.add_argument("--no-stress", action="store_true", help="skip the stress cases")
    args = parser.parse_args()
    args.multimodal_references = args.multimodal_references or (1 if args.quick else 4)
    args.independent_seeds = args.independent_seeds or (4 if args.quick else 16)
    other_seeds = 2 if args.quick else 4
    started = time.time()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    mm_rows, mm_figures = multimodal_pairs(work, args.multimodal_references)
    if args.multimodal_only:
        shutil.rmtree(work, ignore_errors=True)
        data = {"multimodal": {"summary": mm_figures, "pairs": mm_rows}, "seconds": round(time.time() - started, 1)}
        out_write(name="lineage-quality-multimodal", out=args.out, data=data)
        if args.json:
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            _multimodal_print(mm_rows, mm_figures)
            print(f"{len(mm_rows)} pairs in {data['seconds']} s")
        return

    base = tm.llama_make(seed=1)
    moe = tm.glm_moe_make(seed=2)
    bert = tm.bert_make(seed=3)
    refs = {
        "llama": fingerprint_build(path=tm.model_write(base, work / "ref-llama")),
        "moe": fingerprint_build(path=tm.model_write(moe, work / "ref-moe")),
        "bert": fingerprint_build(path=tm.model_write(bert, work / "ref-bert")),
    }
    full_refs = dict(refs)
    if args.bundle_roundtrip:
        refs = {k: _compact(v, work, f"ref-{k}") for k, v in refs.items()}
    roundtrip: dict = {}
    rows = []
    for i, (family, label, model, opts) in enumerate(derived_cases(base, moe, bert)):
        if args.quick and i % 3:
            continue
        path = _write(model, work / f"derived-{i}", opts)
        cand = fingerprint_build(path=path)
        ref = refs[opts.get("ref", "llama")]
        report = lineage_compare(candidate=cand, reference=ref).to_dict()
        if args.bundle_roundtrip:
            full = lineage_compare(candidate=cand, reference=full_refs[opts.get("ref", "llama")])
            roundtrip[(family, label)] = (full.verdict, full.p_value)
        rows.append({"label": True, "family": family, "case": label, "verdict": report["verdict"],
                     "screen": _screen_score(cand, ref),
                     "p": report["p_value"], "effect": report["effect_size"],
                     "norm_raw_cosine": report["evidence"]["norms"].get("mean_raw_cosine", 0.0),
                     "norm_pearson": report["evidence"]["norms"].get("mean_pearson", 0.0),
                     "diagonal": _diagonal_score(cand, ref),
                     "mantel": (report["families"].get("mlp_out") or {}).get("p_value"),
                     "rotation": {f: report["families"].get(f, {}).get("p_value") for f in ("attn_heads", "mlp_units")}})

    # Independent pairs: all pairs among n Llama seeds, plus MoE and BERT seed pairs.
    prints = {}
    for s in range(args.independent_seeds):
        prints[("llama", s)] = fingerprint_build(path=tm.model_write(tm.llama_make(seed=1000 + s), work / f"ind-l{s}"))
    for s in range(other_seeds):
        prints[("moe", s)] = fingerprint_build(path=tm.model_write(tm.glm_moe_make(seed=2000 + s), work / f"ind-m{s}"))
        prints[("bert", s)] = fingerprint_build(path=tm.model_write(tm.bert_make(seed=3000 + s), work / f"ind-b{s}"))
    null_layer_ps: list[float] = []
    aligned_independent = 0
    family_ps: dict[str, list[float]] = {"mlp": [], "attn": [], "mlp_out": [], "embedding": []}
    for arch in ("llama", "moe", "bert"):
        keys = [k for k in prints if k[0] == arch]
        for ka, kb in itertools.combinations(keys, 2):
            cand, ref = prints[kb], prints[ka]
            if args.bundle_roundtrip:
                full = lineage_compare(candidate=cand, reference=ref)
                roundtrip[(f"independent {arch}", f"{ka[1]} vs {kb[1]}")] = (full.verdict, full.p_value)
                ref = _compact(ref, work, f"ind-{arch}-{ka[1]}")
            report = lineage_compare(candidate=cand, reference=ref).to_dict()
            for fam, p in report["evidence"]["family_p_values"].items():
                family_ps.setdefault(fam, []).append(p)
            if "mlp_out" in report["families"]:
                family_ps["mlp_out"].append(report["families"]["mlp_out"]["p_value"])
            for fam in ("attn_heads", "mlp_units"):
                if fam in report["families"]:
                    family_ps.setdefault(fam, []).append(report["families"][fam]["p_value"])
            if "p_value_rows" in report["families"].get("mlp", {}):
                family_ps.setdefault("mlp rows only", []).append(report["families"]["mlp"]["p_value_rows"])
            null_layer_ps.extend(_same_index_pvalues(cand, ref))
            aligned_independent += report["evidence"]["residual_alignment"] is not None
            rows.append({"label": False, "family": f"independent {arch}", "case": f"{ka[1]} vs {kb[1]}",
                         "verdict": report["verdict"], "screen": _screen_score(cand, ref), "p": report["p_value"], "effect": report["effect_size"],
                         "norm_raw_cosine": report["evidence"]["norms"].get("mean_raw_cosine", 0.0),
                         "norm_pearson": report["evidence"]["norms"].get("mean_pearson", 0.0),
                         "diagonal": _diagonal_score(cand, ref),
                         "mantel": (report["families"].get("mlp_out") or {}).get("p_value"),
                         "rotation": {f: report["families"].get(f, {}).get("p_value") for f in ("attn_heads", "mlp_units")}})

    # Independent pairs of the new kinds: an unrelated model rotated, or width-pruned, against the reference.
    for s in range(4 if args.quick else 16):
        for kind, model in (("rotated", tm.residual_rotate(tm.llama_make(seed=1000 + s), seed=4000 + s)),
                            ("width-pruned", tm.width_prune(tm.llama_make(seed=1000 + s), seed=4100 + s))):
            cand = fingerprint_build(path=tm.model_write(model, work / f"ind-{kind}-{s}"))
            report = lineage_compare(candidate=cand, reference=refs["llama"]).to_dict()
            for fam in ("attn_heads", "mlp_units"):
                if fam in report["families"]:
                    family_ps.setdefault(fam, []).append(report["families"][fam]["p_value"])
            rows.append({"label": False, "family": f"independent {kind}", "case": f"seed {1000 + s} {kind} vs reference",
                         "verdict": report["verdict"], "p": report["p_value"], "effect": report["effect_size"],
                         "norm_raw_cosine": report["evidence"]["norms"].get("mean_raw_cosine", 0.0),
                         "norm_pearson": report["evidence"]["norms"].get("mean_pearson", 0.0),
                         "diagonal": _diagonal_score(cand, refs["llama"]),
                         "mantel": (report["families"].get("mlp_out") or {}).get("p_value"),
                         "rotation": {f: report["families"].get(f, {}).get("p_value") for f in ("attn_heads", "mlp_units")}})

    # Stress cases, reported apart from the labelled set: where does detection stop?
    stress = []
    for noise in () if (args.quick or args.no_stress) else (5.0, 8.0, 12.0):
        cand = fingerprint_build(path=tm.model_write(tm.finetune(base, seed=300, noise=noise, lowrank=0.5), work / f"s{noise}"))
        r = lineage_compare(candidate=cand, reference=refs["llama"]).to_dict()
        stress.append({"case": f"fine-tune noise={noise} x std", "verdict": r["verdict"], "p": r["p_value"], "effect": r["effect_size"]})
    # A wider MLP (f = 8 d) with permuted units: the fingerprint's 512 MLP rows then cover only
    # 256 of 4096 units per matrix, so a permuted copy shares about 256^2/4096 = 16 rows per matrix.
    if not (args.quick or args.no_stress):
        stress += _stress_wide_mlp(work)
    # Beyond what the invariant family claims: MLP units permuted after the rotation (the unit
    # Gram no longer lines up, the head products still do), and width pruning of heads + units.
    for label, model in (
        ("rotated + MLP units permuted", tm.mlp_permute(tm.residual_rotate(base, seed=250), seed=251)),
        ("width 3/4 + half the KV heads + half the MLP units", tm.width_prune(base, seed=252, kv_heads_kept=1, units=0.5)),
    ):
        r = lineage_compare(candidate=tm.model_write(model, work / label.replace(" ", "_").replace("/", "-")),
                            reference=refs["llama"]).to_dict()
        stress.append({"case": label, "verdict": r["verdict"], "p": r["p_value"], "effect": r["effect_size"],
                       "families": r["evidence"]["family_p_values"],
                       "rotation": {f: r["families"].get(f, {}).get("p_value") for f in ("attn_heads", "mlp_units")}})

    pos = [r for r in rows if r["label"]]
    neg = [r for r in rows if not r["label"]]
    perm_check = permutation_check([prints[("llama", s)] for s in range(min(8, args.independent_seeds))])
    flip_check = flip_null_check([prints[("llama", s)] for s in range(min(8, args.independent_seeds))])

    def floor(p: float) -> float:
        return max(p, 1e-300)

    summary = {
        "derived_pairs": len(pos),
        "independent_pairs": len(neg),
        "derived_called_derived": sum(r["verdict"] == "derived" for r in pos),
        "independent_called_derived": sum(r["verdict"] == "derived" for r in neg),
        "independent_called_inconclusive": sum(r["verdict"] == "inconclusive" for r in neg),
        "worst_derived_p": max(r["p"] for r in pos),
        "best_independent_p": min(r["p"] for r in neg),
        "tpr_at_1pct_fpr": {
            "lineage_test (-log10 p)": tpr_at_fpr([-np.log10(floor(r["p"])) for r in pos], [-np.log10(floor(r["p"])) for r in neg]),
            "baseline: raw cosine of norm gains": tpr_at_fpr([r["norm_raw_cosine"] for r in pos], [r["norm_raw_cosine"] for r in neg]),
            "baseline: Pearson of norm gains": tpr_at_fpr([r["norm_pearson"] for r in pos], [r["norm_pearson"] for r in neg]),
            "baseline: unmatched diagonal row correlation": tpr_at_fpr([r["diagonal"] for r in pos], [r["diagonal"] for r in neg]),
        },
        "ks_uniform_pvalue": {
            "same-index layer p-values (unselected)": float(sps.kstest(null_layer_ps, "uniform").pvalue),
            **{f"family {f} p-values": float(sps.kstest(v, "uniform").pvalue) for f, v in family_ps.items() if len(v) > 5},
        },
        "null_layer_pvalues": {"n": len(null_layer_ps), "share_below_0.05": float(np.mean(np.array(null_layer_ps) < 0.05)),
                               "share_below_0.01": float(np.mean(np.array(null_layer_ps) < 0.01))},
        "final_p_independent_share_below_0.05": float(np.mean([r["p"] < 0.05 for r in neg])),
        "mean_norm_raw_cosine_independent": float(np.mean([r["norm_raw_cosine"] for r in neg])),
        "normal_tail_vs_monte_carlo_permutation": perm_check,
        "rotation_invariant": {
            "flip_null_gamma_tail_vs_monte_carlo": flip_check,
            "by_transformation": {
                fam: {"pairs": sum(r["family"] == fam for r in pos),
                      "called_derived": sum(r["family"] == fam and r["verdict"] == "derived" for r in pos),
                      "worst_p": max((r["p"] for r in pos if r["family"] == fam), default=None)}
                for fam in ("rotated residual basis", "width pruning")},
            "independent": {
                kind: {"pairs": sum(r["family"] == f"independent {kind}" for r in neg),
                       "called_derived": sum(r["family"] == f"independent {kind}" and r["verdict"] == "derived" for r in neg),
                       "called_independent": sum(r["family"] == f"independent {kind}" and r["verdict"] == "independent"
                                                 for r in neg),
                       "smallest_p": min((r["p"] for r in neg if r["family"] == f"independent {kind}"), default=None)}
                for kind in ("llama", "moe", "bert", "rotated", "width-pruned")},
            "worst_independent_p": {
                f: min((r["rotation"][f] for r in neg if r.get("rotation", {}).get(f) is not None), default=None)
                for f in ("attn_heads", "mlp_units")},
            "independent_share_below_0.01": {
                f: float(np.mean([r["rotation"][f] < 0.01 for r in neg if r.get("rotation", {}).get(f) is not None]))
                for f in ("attn_heads", "mlp_units")},
        },
        "down_projection_mantel_part_of_mlp_family": {
            "derived_with_p_below_1e-3": sum(1 for r in pos if r["mantel"] is not None and r["mantel"] < 1e-3),
            "derived_tested": sum(1 for r in pos if r["mantel"] is not None),
            "independent_share_below_0.01": float(np.mean([r["mantel"] < 0.01 for r in neg if r["mantel"] is not None])),
            "independent_share_below_0.05": float(np.mean([r["mantel"] < 0.05 for r in neg if r["mantel"] is not None])),
            "independent_ks_uniform_pvalue": float(sps.kstest([r["mantel"] for r in neg if r["mantel"] is not None], "uniform").pvalue),
        },
        "independent_pairs_where_residual_alignment_triggered": aligned_independent,
        "seconds": round(time.time() - started, 1),
    }
    summary["screen"] = {
        "keep_score": KEEP_SCORE,
        "derived_below_keep_score (false negatives without the top-k margin)": [
            r["case"] for r in pos if r["screen"] < KEEP_SCORE],
        "lowest_derived_score": min((r["screen"], r["case"]) for r in pos),
        "independent_at_or_above_keep_score": sum(r["screen"] >= KEEP_SCORE for r in neg),
        "highest_independent_score": max((r["screen"], r["case"]) for r in neg),
        "independent_score_quantiles_50_90_99": [round(float(np.quantile([r["screen"] for r in neg], q)), 2)
                                                 for q in (0.5, 0.9, 0.99)],
    }
    if args.bundle_roundtrip:
        _roundtrip_note(rows, roundtrip)
        moved = [(r["case"], r["full_precision_verdict"], r["verdict"]) for r in rows
                 if r.get("full_precision_verdict") and r["full_precision_verdict"] != r["verdict"]]
        ratios = [_log_p(r["p"]) / _log_p(r["full_precision_p"]) for r in pos
                  if r.get("full_precision_p") is not None and _log_p(r["full_precision_p"]) > 0]
        summary["bundle_roundtrip"] = {
            "verdicts_changed": moved,
            "derived_log10p_ratio_compact_over_full_min_median": [round(min(ratios), 3),
                                                                  round(float(np.median(ratios)), 3)],
            "independent_called_derived_compact": sum(r["verdict"] == "derived" for r in neg),
        }
    summary["mode"] = ("quick" if args.quick else "full") + (" + bundle roundtrip" if args.bundle_roundtrip else "")
    shutil.rmtree(work, ignore_errors=True)
    out_write(name="lineage-quality-quick" if args.quick else "lineage-quality", out=args.out,
              data={"summary": summary, "pairs": rows, "stress": stress,
                    "multimodal": {"summary": mm_figures, "pairs": mm_rows}})
    if args.json:
        print(json.dumps({"summary": summary, "pairs": rows, "stress": stress,
                          "multimodal": {"summary": mm_figures, "pairs": mm_rows}}, indent=2, sort_keys=True))
        return
    _multimodal_print(mm_rows, mm_figures)
    print("| case | transformation family | verdict | p-value | effect size |")
    print("|---|---|---|---|---|")
    for r in pos:
        print(f"| {r['case']} | {r['family']} | {r['verdict']} | {r['p']:.3g} | {r['effect']:.3f} |")
    print()
    print("Stress cases (not in the labelled set):\n")
    print("| case | verdict | p-value | effect size |")
    print("|---|---|---|---|")
    for r in stress:
        print(f"| {r['case']} | {r['verdict']} | {r['p']:.3g} | {r['effect']:.3f} |")
    print()
    print("```json")
    print(json.dumps(summary, indent=2, sort_keys=True))
    print("```")


if __name__ == "__main__":
    main()

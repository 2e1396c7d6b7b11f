"""The lineage test: is candidate model B derived from reference model A?

Per tensor family (MLP inputs, attention inputs, embedding rows of shared tokens) a calibrated
p-value, a per-layer map, and a verdict that needs at least two families to agree:

* per sampled layer of B, its best-matching layer of A (units_match_test, Bonferroni over the
  A layers tried); layers combined with the Cauchy rule (valid under dependence);
* families combined by an intersection-union rule: "at least two of K families reject" has
  p = C(K,2) x (second-smallest family p), valid under any dependence between families;
* Holm–Bonferroni across several candidate parents in `lineage_test_against`.

The MLP family has two tests: matched gate/up rows (above) and a Mantel test on the coordinate
correlations of one down projection per layer, which sums over every hidden unit and so cannot
be defeated by permuting units (its p-value is a Monte Carlo permutation p over the max across
reference layers). The family takes 2 x the smaller p, so a copied MLP still counts once.

A candidate whose residual basis was permuted (a function-preserving disguise) is first re-aligned
through the embedding rows of shared tokens, as AWM does; the embedding family then does not count.

A checkpoint can hold several components (language model, vision encoder, audio encoder,
projector; ``components.py``). `lineage_compare` runs the test above on every pair of components
of the same kind, one from each side, Holm-corrected over the pairs tested, and reports each pair
in ``components``. The top-level verdict, p-value, evidence and layer map are those of the most
significant derived pair, or of the language models' pair when no pair is derived and they could be
compared (else the comparable pair with the smallest p-value), so "derived" at the top means some
component derives, and "not comparable" at the top means no pair could be compared.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compliance.engine.lineage.configs import config_compare
from compliance.engine.lineage.fingerprint import (
    ENGINE_VERSION,
    FAMILIES,
    Fingerprint,
    LayerPrint,
    fingerprint_build,
    fingerprint_is_bundle,
    fingerprint_load,
)
from compliance.engine.lineage.invariants import rotation_test
from compliance.engine.lineage.stats import (
    MatchResult,
    cauchy_combine,
    columns_standardise,
    gram,
    holm_adjust,
    mantel_best_layer_test,
    norm_similarity,
    paired_rows_test,
    units_match_test,
)
from compliance.engine.lineage.tokenizers import tokenizer_compare

# A false accusation of copying costs a vendor its funding; a missed one is caught by review of
# the declaration. So "derived" needs p <= 0.001 (after Holm across references), and a
# family counts as rejecting for "independent"/"inconclusive" at the ordinary 0.01.
DERIVED_ALPHA = 1e-3
FAMILY_ALPHA = 1e-2
# At least 32 shared hash-chosen tokens before the embedding family is tested.
MIN_SHARED_TOKENS = 32
# Residual re-alignment needs enough shared embedding rows for a 6-sd screen per column.
ALIGN_MIN_TOKENS = 128
# Components in report order, and how the reason names them.
COMPONENT_ORDER = ("language", "vision", "audio", "projector")
COMPONENT_NAMES = {"language": "Language model", "vision": "Vision encoder", "audio": "Audio encoder",
                   "projector": "Projector"}

METHOD = (
    "For up to 16 evenly spaced layers, a few hundred rows of the MLP-input and attention-input "
    "weight matrices are read from each model (the first rows of every attention head and of every "
    "expert, so reordered heads and experts still line up). Each row of the candidate is paired with its most "
    "similar row of the reference using half of the residual coordinates; the paired rows are then "
    "correlated on the other half, and that correlation is compared with what shuffling the "
    "candidate's coordinates would give (exact null mean and variance, normal tail). This finds "
    "copied weights even after fine-tuning, noise, casts, GGUF conversion, reordering of neurons, "
    "heads or experts, and layer pruning or duplication. If the candidate's residual coordinates were "
    "re-ordered, they are first lined up again using the embedding rows of shared tokens. Layers are combined with the Cauchy rule, "
    "and 'derived' requires at least two tensor families (MLP, attention, embeddings) to agree. "
    "The MLP family also compares, for each layer, how 128 residual coordinates correlate across all "
    "neurons of a down projection (a Mantel test with a permutation null), which no reordering of "
    "neurons can hide. Tokenizer, config and norm-gain comparisons and byte-identical blocks are "
    "shown as supporting evidence only."
)

NORM_LESSON = (
    "Raw cosine of norm gains is not evidence: the gains are positive with mean near 1, so any two "
    "models score about 0.99 and shuffling the coordinates leaves the figure unchanged; only the "
    "centred figure (Pearson) says anything about correspondence."
)


@dataclass
class LineageReport:
    """Result of testing `candidate` against `reference`."""

    candidate: str
    reference: str
    verdict: str
    p_value: float
    p_value_raw: float
    effect_size: float
    reason: str
    families: dict[str, Any]
    layers: list[dict[str, Any]]
    evidence: dict[str, Any]
    bytes_read: int
    method: str = METHOD
    engine_version: str = ENGINE_VERSION
    holm: dict[str, Any] | None = None
    # False when no weight-level comparison was possible at all (different residual width, or no
    # tensor of the same shape): the verdict stays "inconclusive" (never "independent": a
    # width-pruned copy looks like this too), and ``difference`` says why, so the check can tell
    # "cannot apply" apart from "tested and could not decide".
    comparable: bool = True
    difference: dict[str, Any] | None = None
    # One entry per pair of components of the same kind tested (see module docstring):
    # {"candidate", "reference", "verdict", "p_value", "p_value_raw", "layers", ...}. When it has
    # several entries, `p_value_raw` above is the lead pair's p already corrected over the pairs
    # (what a correction across references then starts from).
    components: list[dict[str, Any]] | None = None
    # The registry screen's entry for this reference (score, channels, kept or not and why) when
    # the references were screened; a reference screened out has verdict "not_tested".
    screen: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "verdict": self.verdict,
            "p_value": _p_round(self.p_value),
            "p_value_raw": _p_round(self.p_value_raw),
            "effect_size": round(self.effect_size, 4),
            "reason": self.reason,
            "method": self.method,
            "families": self.families,
            "layers": self.layers,
            "evidence": self.evidence,
            "bytes_read": self.bytes_read,
            "engine_version": self.engine_version,
            "holm": self.holm,
            "comparable": self.comparable,
            "difference": self.difference,
            "components": self.components or [],
            "screen": self.screen,
        }


def _p_round(p: float) -> float:
    return float(f"{p:.4g}")


def _as_fingerprint(x: Any) -> tuple[Fingerprint, int]:
    """A Fingerprint and the bytes read to get it now (0 for a bundle or an existing object)."""
    if isinstance(x, Fingerprint):
        return x, 0
    path = Path(os.fspath(x))
    if fingerprint_is_bundle(path):
        return fingerprint_load(path), 0
    fp = fingerprint_build(path=path)
    return fp, int(fp.meta.get("bytes_read", 0))


def _residual_alignment(cand: Fingerprint, ref: Fingerprint) -> dict[str, Any] | None:
    """Detect a permuted (and sign-flipped) residual basis and estimate the permutation, AWM-style.

    Embedding rows of shared tokens are compared column by column: in a copy whose residual
    coordinates were permuted, each candidate column correlates near 1 with exactly one reference
    column. Alignment is applied only when most columns find a confident, unique partner that is
    not already the same index, so independent models (unrelated embeddings) are left as they are.
    """
    if cand.embedding_rows is None or ref.embedding_rows is None:
        return None
    if cand.embedding_rows.shape[1] != ref.embedding_rows.shape[1]:
        return None
    ref_pos = {t: i for i, t in enumerate(ref.embedding_tokens)}
    pairs = [(ref_pos[t], i) for i, t in enumerate(cand.embedding_tokens) if t in ref_pos]
    if len(pairs) < ALIGN_MIN_TOKENS:
        return None
    a = columns_standardise(ref.embedding_rows[[r for r, _ in pairs]]).astype(np.float32)
    b = columns_standardise(cand.embedding_rows[[c for _, c in pairs]]).astype(np.float32)
    tokens, d = a.shape
    threshold = 6.0 / math.sqrt(tokens)
    # Cheap screens first (the full d x d matrix costs 17 G multiply-adds at d = 4096):
    # same basis already, or no partner for a sample of 64 candidate columns -> nothing to align.
    diagonal = np.abs(np.einsum("ij,ij->j", a, b)) / tokens
    if np.mean(diagonal > threshold) > 0.9:
        return None
    probe = np.linspace(0, d - 1, min(d, 64)).astype(int)
    if np.mean(np.abs((a.T @ b[:, probe]) / tokens).max(axis=0) > threshold) < 0.5:
        return None
    corr = (a.T @ b) / tokens  # [reference column, candidate column]
    best = np.argmax(np.abs(corr), axis=0)
    strength = np.abs(corr[best, np.arange(d)])
    # 6 sd of a null correlation over `tokens` rows: unrelated embeddings essentially never pass.
    confident = strength > threshold
    if confident.mean() < 0.5:
        return None
    if np.mean(best[confident] == np.arange(d)[confident]) > 0.9:
        return None  # already in the same basis
    if len(np.unique(best[confident])) < 0.9 * confident.sum():
        return None  # not a permutation: a rotation or a different model; do not guess
    order = np.full(d, -1, dtype=np.int64)
    for c in np.argsort(-strength):
        if confident[c] and order[best[c]] < 0:
            order[best[c]] = c
    leftover = iter(sorted(set(range(d)) - set(order[order >= 0].tolist())))
    for j in range(d):
        if order[j] < 0:
            order[j] = next(leftover)
    sign = np.sign(corr[np.arange(d), order]).astype(np.float32)
    sign[sign == 0] = 1.0
    return {"order": order, "sign": sign, "columns_aligned": int(confident.sum()), "width": d,
            "shared_tokens": tokens}


def _fingerprint_realigned(fp: Fingerprint, order: np.ndarray, sign: np.ndarray) -> Fingerprint:
    layers = {}
    for index, lp in fp.layers.items():
        layers[index] = LayerPrint(
            index=index,
            families={f: fr.realigned(order, sign) for f, fr in lp.families.items()},
            norm_in=None if lp.norm_in is None else lp.norm_in[order],
            norm_post=None if lp.norm_post is None else lp.norm_post[order],
            invariants=lp.invariants,  # basis-free: a residual permutation leaves them as they are
        )
    return Fingerprint(meta=fp.meta, layers=layers, embedding_tokens=fp.embedding_tokens,
                       embedding_rows=None if fp.embedding_rows is None else
                       (fp.embedding_rows.astype(np.float32)[:, order] * sign[None, :]).astype(np.float16),
                       embedding_hashes=fp.embedding_hashes, tokenizer=fp.tokenizer)


def _sidak(p: float, m: int) -> float:
    """1 - (1 - p)^m without cancellation for tiny p."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return float(min(1.0, -math.expm1(m * math.log1p(-p))))


def _family_test(cand: Fingerprint, ref: Fingerprint, family: str) -> dict[str, Any] | None:
    ref_layers = [(i, lp.families[family]) for i, lp in sorted(ref.layers.items()) if family in lp.families]
    cand_layers = [(i, lp.families[family]) for i, lp in sorted(cand.layers.items()) if family in lp.families]
    ref_layers = [(i, fr) for i, fr in ref_layers if cand_layers and fr.test.shape[1] == cand_layers[0][1].test.shape[1]]
    if not ref_layers or not cand_layers:
        return None
    ref_grams = {i: gram(fr.test) for i, fr in ref_layers}
    per_layer = []
    for ci, cfr in cand_layers:
        if cfr.test.shape[1] != ref_layers[0][1].test.shape[1]:
            continue
        # Test rows are kept as float16 (FamilyRows.prepared); the candidate layer's are read as
        # float32 once here rather than once per reference layer.
        ctest = np.asarray(cfr.test, dtype=np.float32)
        cgram = gram(ctest)
        best: tuple[int, MatchResult] | None = None
        for ri, rfr in ref_layers:
            result = units_match_test(cfr.sketch, ctest, rfr.sketch, rfr.test, gram_b=cgram, gram_a=ref_grams[ri])
            if best is None or result.z > best[1].z:
                best = (ri, result)
        assert best is not None
        # Sidak over the reference layers tried: the best of L layers is a minimum of L p-values
        # (valid for independent or positively dependent p-values, and tighter than Bonferroni).
        p_layer = _sidak(best[1].p_value, len(ref_layers))
        per_layer.append({"candidate_layer": ci, "reference_layer": best[0], "p_value": p_layer, "result": best[1]})
    if not per_layer:
        return None
    p_family = cauchy_combine([x["p_value"] for x in per_layer])
    return {"p_value": p_family, "layers": per_layer}


def _mlp_out_test(cand: Fingerprint, ref: Fingerprint) -> dict[str, Any] | None:
    """Mantel test of down-projection coordinate correlations, best reference layer per candidate layer."""
    ref_layers = [(i, lp.mlp_out) for i, lp in sorted(ref.layers.items()) if lp.mlp_out is not None]
    cand_layers = [(i, lp.mlp_out) for i, lp in sorted(cand.layers.items()) if lp.mlp_out is not None]
    if not ref_layers or not cand_layers:
        return None
    per_layer = []
    for ci, cg in cand_layers:
        tried = [(ri, rg) for ri, rg in ref_layers if rg.shape == cg.shape]
        if not tried:
            continue
        index, best = mantel_best_layer_test([rg for _, rg in tried], cg, seed=ci)
        # The p-value already accounts for choosing the best reference layer (max over layers per permutation).
        per_layer.append({"candidate_layer": ci, "reference_layer": tried[index][0], "p_value": best.p_value,
                          "result": best})
    if not per_layer:
        return None
    return {"p_value": cauchy_combine([x["p_value"] for x in per_layer]), "layers": per_layer}


def _float32_values(x: np.ndarray) -> np.ndarray:
    """`x` as float32 values: as it is when float16 or float32 already (float32 holds every float16)."""
    return x if x.dtype in (np.float16, np.float32) else x.astype(np.float32)


def _embedding_test(cand: Fingerprint, ref: Fingerprint) -> dict[str, Any] | None:
    if cand.embedding_rows is None or ref.embedding_rows is None:
        return None
    if cand.embedding_rows.shape[1] != ref.embedding_rows.shape[1]:
        return None
    ref_pos = {t: i for i, t in enumerate(ref.embedding_tokens)}
    pairs = [(ref_pos[t], i) for i, t in enumerate(cand.embedding_tokens) if t in ref_pos]
    identical = sum(
        1 for ri, ci in pairs if ref.embedding_hashes[ri] == cand.embedding_hashes[ci]
    )
    if len(pairs) < MIN_SHARED_TOKENS:
        return {"p_value": None, "shared_tokens": len(pairs), "identical_rows": identical}
    # float16 as stored, not cast to float32 first: paired_rows_test works on a float64 copy,
    # which holds the same values either way. Other dtypes are rounded to float32 as before.
    a = _float32_values(ref.embedding_rows[[ri for ri, _ in pairs]])
    b = _float32_values(cand.embedding_rows[[ci for _, ci in pairs]])
    result = paired_rows_test(a, b)
    return {"p_value": result.p_value, "shared_tokens": len(pairs), "identical_rows": identical, "result": result}


def _norm_evidence(cand: Fingerprint, ref: Fingerprint, layer_map: dict[int, int]) -> dict[str, Any]:
    rows = []
    for ci, lp in sorted(cand.layers.items()):
        ri = layer_map.get(ci, ci)
        rp = ref.layers.get(ri)
        if rp is None:
            continue
        for kind in ("norm_in", "norm_post"):
            a, b = getattr(rp, kind), getattr(lp, kind)
            if a is None or b is None or a.shape != b.shape:
                continue
            rows.append({"candidate_layer": ci, "reference_layer": ri, "tensor": kind, **norm_similarity(a, b)})
    summary: dict[str, Any] = {"layers": rows, "lesson": NORM_LESSON}
    if rows:
        summary["mean_raw_cosine"] = round(float(np.mean([r["raw_cosine"] for r in rows])), 4)
        summary["mean_raw_cosine_shuffled"] = round(float(np.mean([r["raw_cosine_shuffled"] for r in rows])), 4)
        summary["mean_pearson"] = round(float(np.mean([r["pearson"] for r in rows])), 4)
    return summary


def _identical_blocks(cand: Fingerprint, ref: Fingerprint) -> dict[str, int]:
    ref_hashes = {h for lp in ref.layers.values() for fr in lp.families.values() for h in fr.hashes}
    cand_hashes = [h for lp in cand.layers.values() for fr in lp.families.values() for h in fr.hashes]
    return {"blocks_compared": len(cand_hashes), "identical_blocks": sum(1 for h in cand_hashes if h in ref_hashes)}


def _blas_single_thread() -> Any:
    """Limit BLAS to one thread: the matrices are a few hundred rows, where threading costs more
    than it gains (5x slower measured on a loaded 2-core worker), and workers run in parallel anyway."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the test is the same, only slower on busy hosts
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def lineage_compare(*, candidate: Any, reference: Any, alpha: float = DERIVED_ALPHA) -> LineageReport:
    """Test whether `candidate` is derived from `reference`.

    Each may be a model folder, a .safetensors or .gguf file, a fingerprint bundle, or a
    Fingerprint. Returns a LineageReport (verdict derived | independent | inconclusive).
    """
    cand, cand_bytes = _as_fingerprint(candidate)
    ref, ref_bytes = _as_fingerprint(reference)
    with _blas_single_thread():
        return _components_compare(cand, ref, cand_bytes, ref_bytes, alpha)


def _component_entry(kind: str, report: LineageReport) -> dict[str, Any]:
    return {"candidate": kind, "reference": kind, "verdict": report.verdict, "p_value": _p_round(report.p_value),
            "p_value_raw": _p_round(report.p_value_raw), "effect_size": round(report.effect_size, 4),
            "comparable": report.comparable, "difference": report.difference, "reason": report.reason,
            "family_p_values": report.evidence.get("family_p_values", {}), "layers": report.layers,
            # The tokenizer goes with the language model (the declaration's tokenizer entry is checked on it).
            **({"tokenizer": report.evidence.get("tokenizer")} if kind == "language" else {})}


def _components_compare(cand: Fingerprint, ref: Fingerprint, cand_bytes: int, ref_bytes: int,
                        alpha: float) -> LineageReport:
    """Every candidate component against the reference component of the same kind, Holm over the pairs."""
    cands, refs = cand.component_prints(), ref.component_prints()
    kinds = [k for k in COMPONENT_ORDER if k in cands and k in refs]
    split = {"candidate": sorted(cands, key=COMPONENT_ORDER.index),
             "reference": sorted(refs, key=COMPONENT_ORDER.index)}
    if not kinds:
        return LineageReport(
            candidate=cand.name, reference=ref.name, verdict="inconclusive", p_value=1.0, p_value_raw=1.0,
            effect_size=0.0, families={}, layers=[], bytes_read=cand_bytes + ref_bytes, comparable=False,
            reason=(f"no component of the same kind: the candidate holds {', '.join(split['candidate'])}, the "
                    f"reference {', '.join(split['reference'])}"),
            evidence={"components": split, "family_p_values": {}, "notes": []},
            difference={"components": [split["candidate"], split["reference"]]}, components=[])
    reports = {k: _fingerprints_compare(cands[k], refs[k], cand_bytes, ref_bytes, alpha) for k in kinds}
    tested = [k for k in kinds if reports[k].comparable]
    for k, p_adj in zip(tested, holm_adjust([reports[k].p_value_raw for k in tested])):
        report = reports[k]
        report.p_value = p_adj
        if report.verdict == "derived" and p_adj > alpha:
            report.verdict = "inconclusive"
            report.reason = (f"shared weights at p = {report.p_value_raw:.3g}, but not significant after Holm "
                             f"correction over {len(tested)} component pairs (adjusted p = {p_adj:.3g}).")
    derived = [k for k in tested if reports[k].verdict == "derived"]
    if derived:
        lead = min(derived, key=lambda k: reports[k].p_value)
    elif "language" in tested or ("language" in reports and not tested):
        lead = "language"
    else:  # the language models could not be compared (another width) but something else was
        lead = min(tested or kinds, key=lambda k: reports[k].p_value)
    top = reports[lead]
    entries = [_component_entry(k, reports[k]) for k in kinds]
    if len(kinds) > 1 or len(cands) > 1 or len(refs) > 1:
        others = "; ".join(f"{COMPONENT_NAMES[k].lower()}: {reports[k].verdict} (p = {reports[k].p_value:.3g})"
                           for k in kinds if k != lead)
        top.reason = (f"{COMPONENT_NAMES[lead]}: {top.reason}" + (f" Other components: {others}." if others else "")
                      + f" Holm-corrected over {len(tested)} component pair(s).")
        top.p_value_raw = top.p_value
    top.evidence["components"] = {**split, "pairs_tested": len(tested), "lead": lead,
                                  "lead_rule": ("the most significant derived component; else the language "
                                                "models' when they could be compared; else the comparable pair "
                                                "with the smallest p-value")}
    top.components = entries
    top.candidate, top.reference = cand.name, ref.name
    top.bytes_read = cand_bytes + ref_bytes
    return top


def components_rescale(report: LineageReport, p_adjusted: float, alpha: float) -> None:
    """Carry a correction across references (`p_value_raw` -> `p_adjusted`) to every component entry:
    each entry's p-value is multiplied by the same Holm factor and its verdict re-decided."""
    factor = p_adjusted / report.p_value_raw if report.p_value_raw > 0 else 1.0
    for entry in report.components or []:
        entry["p_value"] = _p_round(min(1.0, entry["p_value"] * max(1.0, factor)))
        if entry["verdict"] == "derived" and entry["p_value"] > alpha:
            entry["verdict"] = "inconclusive"


def _fingerprints_compare(cand: Fingerprint, ref: Fingerprint, cand_bytes: int, ref_bytes: int,
                          alpha: float) -> LineageReport:
    alignment = _residual_alignment(cand, ref)
    if alignment is not None:
        cand = _fingerprint_realigned(cand, alignment["order"], alignment["sign"])
    # The embedding test first, before the family tests derive the reference's test rows (56 MB
    # at d = 4096): its float64 working copies (about 60 MB) then do not come on top of them.
    # It reads only the embedding rows, so its answer is the same; it is reported in its place below.
    emb = _embedding_test(cand, ref)
    families: dict[str, Any] = {}
    p_values: dict[str, float] = {}
    layer_rows: dict[int, dict[str, Any]] = {}
    weights, weighted = 0.0, 0.0
    notes = list(cand.meta.get("notes", [])) + list(ref.meta.get("notes", []))
    width_c, width_r = cand.meta.get("hidden_size"), ref.meta.get("hidden_size")

    for family in FAMILIES:
        out = _family_test(cand, ref, family)
        if out is None:
            continue
        p_values[family] = out["p_value"]
        fam_layers = []
        for item in out["layers"]:
            res: MatchResult = item["result"]
            confident = res.confident_fraction * res.n_units
            weights += confident
            weighted += confident * res.confident_correlation
            entry = {
                "candidate_layer": item["candidate_layer"],
                "reference_layer": item["reference_layer"],
                "p_value": _p_round(item["p_value"]),
                **res.to_dict(),
            }
            fam_layers.append(entry)
            row = layer_rows.setdefault(item["candidate_layer"], {"candidate_layer": item["candidate_layer"], "families": {}})
            row["families"][family] = entry
        families[family] = {"p_value": _p_round(out["p_value"]), "layers_tested": len(fam_layers)}

    down = _mlp_out_test(cand, ref)
    rotation = _rotation_invariant_test(cand, ref)
    if down is not None:
        # Gate/up rows and down projections are one module: a copied MLP must count once, so the
        # MLP family takes the better of its tests, Bonferroni-corrected (x2, x3 with the
        # rotation-invariant unit test folded in below).
        if "mlp" in p_values:
            p_values["mlp"] = min(1.0, 2.0 * min(p_values["mlp"], down["p_value"]))
            families["mlp"]["p_value_rows"] = families["mlp"]["p_value"]
            families["mlp"]["p_value"] = _p_round(p_values["mlp"])
        else:
            p_values["mlp"] = down["p_value"]
        for item in down["layers"]:
            res = item["result"]
            entry = {"candidate_layer": item["candidate_layer"], "reference_layer": item["reference_layer"],
                     "p_value": _p_round(item["p_value"]), **res.to_dict()}
            row = layer_rows.setdefault(item["candidate_layer"], {"candidate_layer": item["candidate_layer"], "families": {}})
            row["families"]["mlp_out"] = entry
        families["mlp_out"] = {"p_value": _p_round(down["p_value"]), "layers_tested": len(down["layers"]),
                               "note": ("down projections: coordinate correlations over all hidden units (Mantel "
                                        "test); part of the MLP family, not a family of its own")}

    _rotation_fold(rotation, p_values, families, layer_rows)

    if emb is not None and alignment is not None:
        # The embeddings were used to find the alignment, so they cannot also count as evidence.
        families["embedding"] = {"p_value": None, "shared_tokens": emb["shared_tokens"],
                                 "note": "used to re-align the residual basis; not counted as a family"}
    elif emb is not None and emb.get("p_value") is not None:
        p_values["embedding"] = emb["p_value"]
        res = emb["result"]
        families["embedding"] = {"p_value": _p_round(emb["p_value"]), "shared_tokens": emb["shared_tokens"],
                                 "identical_rows": emb["identical_rows"], **res.to_dict()}
    elif emb is not None:
        families["embedding"] = {"p_value": None, "shared_tokens": emb["shared_tokens"],
                                 "note": f"fewer than {MIN_SHARED_TOKENS} shared sampled tokens: not tested"}

    # Per-layer map: combine the families' layer p-values; name the matched reference layer only if significant.
    layers_out = []
    layer_map: dict[int, int] = {}
    for ci in sorted(layer_rows):
        row = layer_rows[ci]
        fams = row["families"]
        p_layer = cauchy_combine([f["p_value"] for f in fams.values()])
        best_family = min(fams.values(), key=lambda f: f["p_value"])
        matched = best_family["reference_layer"] if p_layer <= FAMILY_ALPHA else None
        if matched is not None:
            layer_map[ci] = matched
        layers_out.append({
            "candidate_layer": ci,
            "reference_layer": matched,
            "best_reference_layer": best_family["reference_layer"],
            "p_value": _p_round(p_layer),
            "statistic": round(max(f["z"] for f in fams.values()), 3),
            "families": fams,
        })

    k = len(p_values)
    ordered = sorted(p_values.values())
    if k >= 2:
        p_raw = min(1.0, math.comb(k, 2) * ordered[1])
    else:
        p_raw = 1.0
    effect = weighted / weights if weights > 0 else 0.0
    units = rotation.get("mlp_units")
    if units and (bool(width_c and width_r and width_c != width_r) or _rotated_basis(families)):
        # Matched rows say nothing across a rotation or another width: the effect size is then the
        # correlation of the MLP unit Grams (median over layers), the invariant analogue.
        effect = float(np.median([x["correlation"] for x in units["layers"]]))
    rejecting = sorted(f for f, p in p_values.items() if p <= FAMILY_ALPHA)

    difference: dict[str, Any] | None = None
    widths_differ = bool(width_c and width_r and width_c != width_r)
    if widths_differ:
        difference = {"hidden_size": [width_c, width_r]}
    elif k == 0:
        difference = {"families": 0}
    if widths_differ and k >= 2 and p_raw <= alpha:
        verdict = "derived"
        reason = (f"residual widths differ ({width_c} vs {width_r}), but the rotation- and width-independent "
                  f"statistics of {', '.join(rejecting)} show shared weights (combined p = {p_raw:.3g}): a "
                  "width-pruned copy or a smaller sibling of the reference.")
    elif widths_differ:
        verdict = "inconclusive"
        reason = (f"residual widths differ ({width_c} vs {width_r}); only the width-independent statistics apply "
                  + (f"(p = {', '.join(f'{f} {p_values[f]:.3g}' for f in sorted(p_values))})" if p_values else
                     "and none could be computed")
                  + " and they do not reach a verdict (width-pruned or different architecture). "
                  "See tokenizer and config evidence.")
    elif k < 2:
        verdict = "inconclusive"
        reason = (f"only {k} tensor family could be compared ({', '.join(p_values) or 'none'}); a verdict needs two"
                  + (f"; {notes[0]}" if notes else ""))
    elif p_raw <= alpha:
        verdict = "derived"
        reason = (f"{len(rejecting)} of {k} tensor families ({', '.join(rejecting)}) show shared weights "
                  f"(combined p = {p_raw:.3g}); {len(layer_map)} of {len(layers_out)} sampled layers map to a reference layer."
                  + (" The residual basis had been permuted and was re-aligned first." if alignment else "")
                  + (" Only the rotation-invariant statistics match, not the weights coordinate by coordinate: the "
                     "residual basis was rotated (as QuaRot/SpinQuant pipelines ship it, or to disguise the copy)."
                     if _rotated_basis(families) and not widths_differ else ""))
    elif not rejecting and alignment is not None:
        verdict = "inconclusive"
        reason = (f"the candidate's embedding columns are a re-ordering of the reference's ({alignment['columns_aligned']} "
                  f"of {alignment['width']} matched), which independent training does not produce, but no transformer "
                  "family shows shared weights: embeddings reused in a new model? Review the evidence.")
    elif not rejecting:
        verdict = "independent"
        reason = (f"no tensor family shows shared weights (smallest family p = {ordered[0]:.3g} over {k} families); "
                  "this is absence of evidence at the power of the test, not proof of independent training.")
    else:
        verdict = "inconclusive"
        reason = (f"only {', '.join(rejecting)} show(s) shared weights (p = "
                  + ", ".join(f"{p_values[f]:.3g}" for f in rejecting)
                  + f"); 'derived' needs two families at p <= {alpha:g}. Partial reuse, or chance: review the layer map.")

    evidence = {
        "family_p_values": {f: _p_round(p) for f, p in p_values.items()},
        "config": config_compare(cand.meta.get("config", {}), ref.meta.get("config", {})),
        "tokenizer": tokenizer_compare(cand.tokenizer, ref.tokenizer),
        "norms": _norm_evidence(cand, ref, layer_map),
        "identical": {**_identical_blocks(cand, ref),
                      "identical_embedding_rows": (emb or {}).get("identical_rows", 0)},
        "declared_base_models": cand.meta.get("declared_base_models", []),
        "bytes": {"candidate": cand_bytes, "reference": ref_bytes,
                  "candidate_total": cand.meta.get("total_bytes"), "reference_total": ref.meta.get("total_bytes")},
        "layers_sampled": {"candidate": sorted(cand.layers), "reference": sorted(ref.layers)},
        "residual_alignment": None if alignment is None else {
            "applied": True, "columns_aligned": alignment["columns_aligned"], "width": alignment["width"],
            "shared_tokens": alignment["shared_tokens"],
            "note": ("the candidate's residual coordinates are a permutation of the reference's (found through "
                     "embedding rows of shared tokens); the tests ran after undoing it. Re-ordering the residual "
                     "basis preserves the function, so this is itself a sign of deliberate disguise."),
        },
        "rotation_invariant": {**_rotation_evidence(rotation), "rotated_basis_suspected": _rotated_basis(families)},
        "notes": notes,
    }
    return LineageReport(
        candidate=cand.name, reference=ref.name, verdict=verdict, p_value=p_raw, p_value_raw=p_raw,
        effect_size=effect, reason=reason, families=families, layers=layers_out, evidence=evidence,
        bytes_read=cand_bytes + ref_bytes, difference=difference,
        # Different widths: comparable (a result to act on) when a width-independent statistic found
        # shared weights; when none did, it stays "not comparable" (information, not a risk), as a
        # new model of another width should, even though the invariant tests ran.
        comparable=difference is None or (widths_differ and bool(rejecting)),
    )


ROTATION_NOTE = (
    "invariant to rotations (any orthogonal change) of the residual basis once norm gains are folded in, "
    "to residual width pruning, head permutation and layer pruning; not to rotations inside a head, and "
    "(unit test only) not to permuted MLP units"
)


def _rotation_invariant_test(cand: Fingerprint, ref: Fingerprint) -> dict[str, Any]:
    """The rotation-invariant statistics (invariants.py) on the layers that carry them."""
    return rotation_test({i: lp.invariants for i, lp in cand.layers.items() if lp.invariants},
                         {i: lp.invariants for i, lp in ref.layers.items() if lp.invariants})


def _rotation_fold(rotation: dict[str, Any], p_values: dict[str, float], families: dict[str, Any],
                   layer_rows: dict[int, dict[str, Any]]) -> None:
    """Fold the rotation-invariant tests into their modules' families.

    Head products are part of the attention family and unit Grams part of the MLP family, so a
    copied module still counts once however many of its tests fire: each family takes its best
    test, Bonferroni-corrected by the number of tests it has (attention x2; MLP x3 with rows,
    down projections and unit Grams). The "at least two families" rule is unchanged.
    """
    for test, family, name in (("attn_heads", "attn", "attention head products (QK, VV) in head space"),
                               ("mlp_units", "mlp", "Gram of MLP units (gate/up rows, gains folded)")):
        out = rotation.get(test)
        if out is None:
            continue
        p_test = out["p_value"]
        if family in p_values:
            # The rows test (and for the MLP the down-projection test) already sit in p_values[family],
            # Bonferroni-corrected by their own count; undo that to widen the count by one.
            tests = 2 if "p_value_rows" in families.get(family, {}) else 1
            best = min(1.0, min(p_values[family] / tests, p_test))
            entry = families.setdefault(family, {"p_value": _p_round(p_values[family])})
            entry.setdefault("p_value_rows", entry["p_value"])
            p_values[family] = min(1.0, (tests + 1) * best)
            entry["p_value"] = _p_round(p_values[family])
        else:
            p_values[family] = p_test
            families[family] = {"p_value": _p_round(p_test), "layers_tested": len(out["layers"]),
                                "note": f"rotation-invariant test only ({name})"}
        for item in out["layers"]:
            entry = {"candidate_layer": item["candidate_layer"], "reference_layer": item["reference_layer"],
                     "p_value": _p_round(item["p_value"]), "z": round(float(item["z"]), 3),
                     **{k: v for k, v in item.items() if k not in ("candidate_layer", "reference_layer", "p_value", "z")}}
            row = layer_rows.setdefault(item["candidate_layer"], {"candidate_layer": item["candidate_layer"], "families": {}})
            row["families"][test] = entry
        families[test] = {"p_value": _p_round(p_test), "layers_tested": len(out["layers"]),
                          "note": f"{name}: {ROTATION_NOTE}; part of the {family} family, not a family of its own"}


def _rotated_basis(families: dict[str, Any]) -> bool:
    """True when a rotation-invariant test fires while no coordinate-wise test of any module does."""
    invariant = any((families.get(t) or {}).get("p_value", 1.0) <= FAMILY_ALPHA for t in ("attn_heads", "mlp_units"))
    coordinate = [families[f].get("p_value_rows", families[f]["p_value"]) for f in ("mlp", "attn")
                  if f in families and "rotation-invariant test only" not in families[f].get("note", "")]
    coordinate += [families[f]["p_value"] for f in ("mlp_out", "embedding")
                   if f in families and families[f].get("p_value") is not None]
    return invariant and bool(coordinate) and min(coordinate) > FAMILY_ALPHA


def _rotation_evidence(rotation: dict[str, Any]) -> dict[str, Any]:
    """What the rotation-invariant tests found, for the report (also when the other tests agree)."""
    return {
        "tests": {k: None if v is None else {"p_value": _p_round(v["p_value"]), "layers_tested": len(v["layers"])}
                  for k, v in rotation.items()},
        "note": ROTATION_NOTE,
    }


def _screened_out_report(cand: Fingerprint, name: str, entry: dict[str, Any]) -> LineageReport:
    return LineageReport(
        candidate=cand.name, reference=name, verdict="not_tested", p_value=1.0, p_value_raw=1.0, effect_size=0.0,
        reason=(f"screened out: screen score {entry['score']} (rank {entry['rank']}); {entry['why']}. "
                "The full test did not run on this reference."),
        families={}, layers=[], evidence={"screen": entry}, bytes_read=0, screen=entry)


def _reference_name(ref: Any, index: int) -> str:
    if isinstance(ref, Fingerprint):
        return ref.name or f"reference {index + 1}"
    return Path(os.fspath(ref)).name


def lineage_test_against(*, candidate: Any, references: list[Any], alpha: float = DERIVED_ALPHA,
                         screen: bool | None = None, names: list[str] | None = None,
                         keep_top: int | None = None, keep_score: float | None = None) -> list[LineageReport]:
    """Test `candidate` against several possible parents, Holm–Bonferroni adjusted across them.

    The candidate is fingerprinted once. A report's `p_value` is the Holm-adjusted one and its
    verdict is re-decided on it; `p_value_raw` keeps the unadjusted figure.

    With `screen` (default: when there are at least screen.SCREEN_MIN_REFERENCES references) every
    reference is first scored on its screening sketch (read from a bundle without its rows) and
    the full test runs only on the ones kept (screen.screen_rank); the others get a "not_tested"
    report carrying their score. Holm still counts every reference, the untested ones at p = 1,
    so screening never makes a verdict easier to reach. Reports come back in the order given.
    """
    from compliance.engine.lineage.screen import (
        KEEP_SCORE,
        KEEP_TOP,
        SCREEN_MIN_REFERENCES,
        screen_rank,
        screen_sketch_build,
        screen_sketches_load,
    )

    cand, cand_bytes = _as_fingerprint(candidate)
    labels = list(names) if names is not None else [_reference_name(r, i) for i, r in enumerate(references)]
    use_screen = len(references) >= SCREEN_MIN_REFERENCES if screen is None else screen
    entries: list[dict[str, Any] | None] = [None] * len(references)
    if use_screen and references:
        sketches = {}
        for i, ref in enumerate(references):
            fp_or_path = ref if isinstance(ref, Fingerprint) else Path(os.fspath(ref))
            if not isinstance(fp_or_path, Fingerprint) and fingerprint_is_bundle(fp_or_path):
                sketches[str(i)] = screen_sketches_load(fp_or_path)
            else:
                ref_fp = fp_or_path if isinstance(fp_or_path, Fingerprint) else fingerprint_build(path=fp_or_path)
                sketches[str(i)] = {kind: screen_sketch_build(part, component=kind)
                                    for kind, part in ref_fp.component_prints().items()}
        with _blas_single_thread():
            ranked = screen_rank(candidate=cand.component_prints(), references=sketches,
                                 keep_top=KEEP_TOP if keep_top is None else keep_top,
                                 keep_score=KEEP_SCORE if keep_score is None else keep_score)
        del sketches  # 0.4-0.8 MB a reference: 20-40 MB for 50, not needed by the full tests
        for entry in ranked.entries:
            i = int(entry.reference)
            entries[i] = {**entry.to_dict(), "reference": labels[i], "references_screened": len(references)}
    reports = []
    for i, ref in enumerate(references):
        entry = entries[i]
        if entry is not None and not entry["kept"]:
            reports.append(_screened_out_report(cand, labels[i], entry))
            continue
        report = lineage_compare(candidate=cand, reference=ref, alpha=alpha)
        report.screen = entry
        reports.append(report)
    if reports:
        reports[0].bytes_read += cand_bytes
    adjusted = holm_adjust([r.p_value_raw for r in reports])
    for report, p_adj in zip(reports, adjusted):
        components_rescale(report, p_adj, alpha)
        report.p_value = p_adj
        report.holm = {"references": len(reports), "p_value_adjusted": _p_round(p_adj)}
        if report.verdict == "derived" and p_adj > alpha:
            report.verdict = "inconclusive"
            report.reason = (f"shared weights at p = {report.p_value_raw:.3g}, but not significant after Holm "
                             f"correction over {len(reports)} references (adjusted p = {p_adj:.3g}).")
    return reports

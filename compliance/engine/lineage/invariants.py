"""Statistics that survive a rotation of the residual basis (QuaRot, SpinQuant, or a disguise).

Why: every other family compares weights coordinate by coordinate in the residual basis. A
function-preserving rotation x -> Q x of that basis (norm gains folded into the next matrices
first, so RMSNorm commutes with Q) turns every residual-input matrix W into W G Q^T and every
residual-output matrix into Q W, and those tests then see unrelated numbers. Products that
contract the residual index are unchanged:

* attention, per query head i:  QK_i = Wq_i G^2 Wk_i^T   (head_dim x head_dim; G = input norm gain)
* attention, per key/value head: VV_g = Wv_g G^2 Wv_g^T
* MLP, over the first sampled units: K = (Wg G)(Wg G)^T + (Wu G)(Wu G)^T (rows scaled to unit length)

None of them needs the two models to have the same residual width: a width-pruned copy keeping a
subset of residual coordinates still shares most of each sum, and a subset of heads is found by
matching heads. Head-space and unit-space coordinates are what the nulls permute or flip.

Stored per layer (for up to INV_LAYERS layers), small and width-independent: each head's matrix
compressed to G x G group sums (G <= INV_GROUPS groups of head coordinates that must flip
together, with fixed pseudo-random signs inside a group), and the upper triangle of K.
Invariant to: orthogonal transforms of the residual basis (with folded gains), residual
permutations and sign flips (special cases), head permutation (heads are matched), GQA
grouping, layer pruning/duplication (layers are matched), residual width pruning.
Not invariant to: rotations inside a head's q/k or v space, sign flips of whole rotary pairs or
value dimensions (function-preserving too, but not part of a residual-basis rotation), and, for
the MLP statistic only, permutation of MLP units (the attention statistic still applies).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from compliance.engine.lineage.roles import LayerRoles, MatrixBlock
from compliance.engine.lineage.stats import (
    cauchy_combine,
    chaos_tail,
    flip_chaos_parts,
    mantel_best_layer_test,
)

# 8 layers x (8 q heads x 16 x 16 + 8 kv heads x 16 x 16 + 8,256 unit-Gram entries) x 2 bytes
# = 0.20 MB at Llama-3-8B shape (hidden 4096, head_dim 128, 8 kv heads): independent of the hidden size.
INV_LAYERS = 8
# 16 groups of 4 head coordinates = 64 of 128 q/k rows per head: 240 off-diagonal group pairs,
# enough for z ~ 6 on one copied head, and half the bytes read of the whole head.
INV_GROUPS = 16
INV_GROUP_SIZE = 4
# Query heads kept per key/value group (the first ones): the value test uses every kv head and
# the query/key test these, so reads and storage scale with the kv heads, not the query heads.
INV_QUERY_PER_KV = 1
# Units of the first MLP input block whose Gram is stored (128 x 128 upper triangle).
INV_UNITS = 128

_Q = re.compile(r"(?:^|[._])(q_proj|wq|attn_q|query|q)(?:\.weight)?$")
_K = re.compile(r"(?:^|[._])(k_proj|wk|attn_k|key|k)(?:\.weight)?$")
_V = re.compile(r"(?:^|[._])(v_proj|wv|attn_v|value|v)(?:\.weight)?$")


def invariant_layers(indices: list[int]) -> list[int]:
    """Up to INV_LAYERS evenly spaced layers of the fingerprint's sampled ones."""
    if len(indices) <= INV_LAYERS:
        return list(indices)
    picks = np.unique(np.round(np.linspace(0, len(indices) - 1, INV_LAYERS)).astype(int))
    return [indices[i] for i in picks]


def head_groups(head_dim: int, rotary_dim: int) -> list[list[int]]:
    """Groups of head coordinates whose joint sign flip preserves the function under either rotary
    layout (rotate-half pairs x, x + r/2, and interleaved pairs 2i, 2i+1): the union of both
    pairings, so the null holds whichever layout the model uses. Coordinates outside the rotary
    part are grouped in fours. Value coordinates use rotary_dim = 0."""
    parent = list(range(head_dim))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(x: int, y: int) -> None:
        parent[find(x)] = find(y)

    rot = rotary_dim - rotary_dim % 2
    for x in range(rot // 2):
        union(x, x + rot // 2)
    for x in range(0, rot, 2):
        union(x, x + 1)
    for x in range(rot, head_dim):
        union(x, rot + (x - rot) // INV_GROUP_SIZE * INV_GROUP_SIZE)
    groups: dict[int, list[int]] = {}
    for x in range(head_dim):
        groups.setdefault(find(x), []).append(x)
    return sorted(groups.values(), key=lambda g: g[0])


def _groups_kept(head_dim: int, rotary_dim: int) -> tuple[list[list[int]], np.ndarray]:
    """The first INV_GROUPS groups and fixed +-1 signs for every head coordinate. The first ones,
    not evenly spaced ones: their rows form two runs per head (rotate-half layout), so a remote
    model is read with a few range requests per head rather than one per pair of rows."""
    groups = head_groups(head_dim, rotary_dim)[:INV_GROUPS]
    rng = np.random.default_rng(5_000_011 + head_dim)
    signs = np.where(rng.random(head_dim) < 0.5, -1.0, 1.0)
    return groups, signs


def _attention_blocks(blocks: list[MatrixBlock]) -> tuple[MatrixBlock, MatrixBlock, MatrixBlock] | None:
    """(q, k, v) blocks by name, else by structure (q widest, then k before v in name order)."""
    if len(blocks) != 3:
        return None  # fused qkv, MLA low-rank inputs: not handled here
    by = {}
    for block in blocks:
        base = block.name.rsplit(".weight", 1)[0]
        for key, pattern in (("q", _Q), ("k", _K), ("v", _V)):
            if pattern.search(base) and key not in by:
                by[key] = block
                break
    if len(by) == 3:
        return by["q"], by["k"], by["v"]
    ordered = sorted(blocks, key=lambda b: (-b.n_rows, b.name))
    q = ordered[0]
    k, v = sorted(ordered[1:], key=lambda b: b.name)
    return q, k, v


def _group_rank(group: str) -> tuple[int, int]:
    """Dense or shared MLP first, else the lowest-numbered expert (the same choice in both models)."""
    match = re.match(r"expert:(\d+)", group)
    return (1, int(match.group(1))) if match else (0, 0)


def _scaled(m: np.ndarray) -> np.ndarray:
    """Scale to unit RMS and store as float16 (the tests are scale-free)."""
    rms = float(np.sqrt(np.mean(np.asarray(m, dtype=np.float64) ** 2)))
    return (m / max(rms, 1e-30)).astype(np.float16)


def invariants_read(model: Any, lr: LayerRoles, config: dict[str, Any], head_dim: int | None) -> dict[str, np.ndarray]:
    """Read one layer's rotation-invariant products (see module docstring). Missing parts are skipped."""
    out: dict[str, np.ndarray] = {}
    gain_in = model.tensor(lr.norm_in).astype(np.float64) if lr.norm_in else None
    gain_post = model.tensor(lr.norm_post).astype(np.float64) if lr.norm_post else None
    heads = config.get("num_attention_heads")
    kv = config.get("num_key_value_heads") or heads
    qkv = _attention_blocks(lr.attn_in)
    if qkv and head_dim and isinstance(heads, int) and isinstance(kv, int) and heads % kv == 0:
        q, k, v = qkv
        if q.n_rows == heads * head_dim and k.n_rows == kv * head_dim and v.n_rows == kv * head_dim:
            rotary = int(round(head_dim * float(config.get("partial_rotary_factor") or 1.0)))
            qk_groups, qk_signs = _groups_kept(head_dim, rotary)
            v_groups, v_signs = _groups_kept(head_dim, 0)

            per = heads // kv
            q_heads = [g * per + j for g in range(kv) for j in range(min(per, INV_QUERY_PER_KV))]

            def compressed(block: MatrixBlock, which: list[int], groups: list[list[int]],
                           signs: np.ndarray) -> np.ndarray:
                """[len(which), G, d]: each head's signed group sums, from only the rows they need."""
                within = [x for g in groups for x in g]
                local = np.array([h * head_dim + x for h in which for x in within])
                order = np.argsort(local, kind="stable")
                raw = model.tensor(block.name, rows=block.row_offset + local[order])
                rows = np.empty(raw.shape, dtype=np.float32)
                rows[order] = raw
                rows *= np.tile(signs[within], len(which))[:, None].astype(np.float32)
                starts = np.cumsum([0] + [len(g) for g in groups])[:-1]
                starts = (np.arange(len(which))[:, None] * len(within) + starts[None, :]).reshape(-1)
                return np.add.reduceat(rows, starts, axis=0).reshape(len(which), len(groups), -1).astype(np.float64)

            qc = compressed(q, q_heads, qk_groups, qk_signs)
            kc = compressed(k, list(range(kv)), qk_groups, qk_signs)
            vc = compressed(v, list(range(kv)), v_groups, v_signs)
            d = qc.shape[2]
            g2 = np.ones(d) if gain_in is None or gain_in.shape[0] != d else gain_in ** 2
            qk = np.stack([(qc[n] * g2[None, :]) @ kc[i // per].T for n, i in enumerate(q_heads)])
            vv = np.stack([(c * g2[None, :]) @ c.T for c in vc])
            out["qk"] = np.stack([_scaled(m) for m in qk])
            out["vv"] = np.stack([_scaled(m) for m in vv])
    first = min((b.group for b in lr.mlp_in), key=_group_rank, default=None)
    mlp = [b for b in lr.mlp_in if b.group == first]
    if mlp:
        n = min(INV_UNITS, min(b.n_rows for b in mlp))
        gram = None
        for block in mlp[:2]:
            w = model.tensor(block.name, rows=slice(block.row_offset, block.row_offset + n)).astype(np.float64)
            if gain_post is not None and gain_post.shape[0] == w.shape[1]:
                w = w * gain_post[None, :]
            w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-30)
            part = w @ w.T
            gram = part if gram is None else gram + part
        if gram is not None and n >= 8:
            out["units"] = gram[np.triu_indices(n)].astype(np.float16)
    return out


def _units_matrix(tri: np.ndarray) -> np.ndarray:
    n = int(round((math.sqrt(8 * len(tri) + 1) - 1) / 2))
    m = np.zeros((n, n), dtype=np.float32)
    m[np.triu_indices(n)] = tri
    return m + np.triu(m, 1).T


def _z_matrix(cand: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """z of every (candidate head, reference head) pair, used only to choose partners."""
    out = np.zeros((len(cand), len(ref)))
    for i, block in enumerate(cand):
        t, var, _ = flip_chaos_parts(ref, block)
        out[i] = np.where(var > 0, t / np.sqrt(np.maximum(var, 1e-300)), 0.0)
    return out


def _heads_layer_test(cand: dict[str, np.ndarray], ref_q: np.ndarray, ref_q_kv: np.ndarray, ref_v: np.ndarray,
                      ref_v_where: list[tuple[int, int]]) -> dict[str, Any] | None:
    """One candidate layer against the attention heads of every reference layer.

    Two directions, each matching on one product and testing on the other, so the test's
    sign-flip null is untouched by the matching (q/k flips and value flips are independent):
    * kv heads matched on QK (mean over the group's query heads of their best z), then the
      value products VV of the matched pairs tested, one chaos over all of the layer's value flips;
    * kv heads matched on VV, then the QK products of their query heads (in order) tested, one
      chaos over the layer's q/k flips (a kv group's query heads share its key flips).
    The layer's p is the Cauchy combination of the two (valid under their dependence).
    """
    qk, vv = cand.get("qk"), cand.get("vv")
    if qk is None or vv is None or qk.shape[1:] != ref_q.shape[1:] or vv.shape[1:] != ref_v.shape[1:]:
        return None
    kv = len(vv)
    per = len(qk) // kv
    n_ref_kv = len(ref_v)
    zq = _z_matrix(qk, ref_q)  # [cand q heads, ref q heads]
    score = np.full((kv, n_ref_kv), -np.inf)
    for r in range(n_ref_kv):
        cols = np.where(ref_q_kv == r)[0]
        if len(cols):
            best_per_q = zq[:, cols].max(axis=1)
            score[:, r] = best_per_q.reshape(kv, per).mean(axis=1)
    match_by_qk = score.argmax(axis=1)
    t = var = third = 0.0
    for g in range(kv):
        tt, vr, th = flip_chaos_parts(ref_v[[match_by_qk[g]]], vv[g])
        t, var, third = t + tt[0], var + vr[0], third + th[0]
    z_vv, p_vv = chaos_tail(t, var, third)
    match_by_vv = _z_matrix(vv, ref_v).argmax(axis=1)
    t = var = third = 0.0
    for g in range(kv):
        cols = np.where(ref_q_kv == match_by_vv[g])[0]
        for j, col in enumerate(cols[:per]):
            tt, vr, th = flip_chaos_parts(ref_q[[col]], qk[g * per + j])
            t, var, third = t + tt[0], var + vr[0], third + th[0]
    z_qk, p_qk = chaos_tail(t, var, third)
    layers = [ref_v_where[r][0] for r in match_by_qk]
    ref_layer = max(set(layers), key=layers.count)
    return {"reference_layer": ref_layer, "p_value": cauchy_combine([p_vv, p_qk]), "z": float(max(z_vv, z_qk)),
            "z_values": round(float(z_vv), 3), "z_query_keys": round(float(z_qk), 3), "kv_heads": kv,
            "kv_heads_same_reference_layer": layers.count(ref_layer)}


def rotation_test(cand_layers: dict[int, dict[str, np.ndarray]],
                  ref_layers: dict[int, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The rotation-invariant tests of a candidate against a reference, from stored invariants.

    Returns {"attn_heads": {...} | None, "mlp_units": {...} | None}; each has a family p-value
    (Cauchy over candidate layers, each layer Cauchy over its heads) and per-layer rows with the
    best reference layer, z and p.
    """
    result: dict[str, Any] = {"attn_heads": None, "mlp_units": None}
    ref_q, ref_q_kv, ref_v, ref_v_where = [], [], [], []
    for ri, inv in sorted(ref_layers.items()):
        if "qk" not in inv or "vv" not in inv or len(inv["qk"]) % len(inv["vv"]):
            continue
        per = len(inv["qk"]) // len(inv["vv"])
        for g in range(len(inv["vv"])):
            ref_v.append(inv["vv"][g].astype(np.float64))
            ref_v_where.append((ri, g))
            for j in range(per):
                ref_q.append(inv["qk"][g * per + j].astype(np.float64))
                ref_q_kv.append(len(ref_v) - 1)
    per_layer = []
    if ref_v and len({m.shape for m in ref_q}) == 1 and len({m.shape for m in ref_v}) == 1:
        q_stack, q_kv, v_stack = np.stack(ref_q), np.array(ref_q_kv), np.stack(ref_v)
        for ci, inv in sorted(cand_layers.items()):
            if "qk" not in inv or "vv" not in inv or len(inv["qk"]) % len(inv["vv"]):
                continue
            row = _heads_layer_test(inv, q_stack, q_kv, v_stack, ref_v_where)
            if row is not None:
                per_layer.append({"candidate_layer": ci, **row})
    if per_layer:
        result["attn_heads"] = {"p_value": cauchy_combine([x["p_value"] for x in per_layer]), "layers": per_layer}
    ref_units = [(ri, _units_matrix(inv["units"])) for ri, inv in sorted(ref_layers.items()) if "units" in inv]
    if ref_units:
        per_layer = []
        for ci, inv in sorted(cand_layers.items()):
            if "units" not in inv:
                continue
            cg = _units_matrix(inv["units"])
            tried = [(ri, rg) for ri, rg in ref_units if rg.shape == cg.shape]
            if not tried or cg.shape[0] < 8:
                continue
            index, res = mantel_best_layer_test([rg for _, rg in tried], cg, seed=7919 + ci, n_perm=99)
            per_layer.append({"candidate_layer": ci, "reference_layer": tried[index][0], "p_value": res.p_value,
                              "z": res.z, "correlation": res.statistic})
        if per_layer:
            result["mlp_units"] = {"p_value": cauchy_combine([x["p_value"] for x in per_layer]), "layers": per_layer}
    return result


__all__ = ["INV_GROUPS", "INV_LAYERS", "INV_UNITS", "head_groups", "invariant_layers", "invariants_read",
           "rotation_test"]

"""Screening the registry: which references deserve the full lineage test?

The full test costs seconds per reference (7-14 s at d = 4096) and reads a bundle of ~17 MB,
so a submission against 50 references would cost minutes. Each reference therefore carries a
small sketch (about 1.5 MB at d = 4096, stored inside its bundle and readable alone), and a
candidate is scored against every sketch in well under a second each. The full test then runs
on the references the screen keeps: the `keep_top` best-scoring ones, plus every one whose score
reaches KEEP_SCORE. Nothing is hidden: every reference's score and channels are reported,
screened out or not.

The score is -log10 of the smallest of three channel p-values, each a cheap cousin of a
family of the full test, chosen so that every disguise the full test sees through is seen by
at least one channel:

* rows: for MATCH_ROWS rows per family and layer of the reference, the 256-d sketch of H1
  (stats.rows_prepare) and a fixed 128-d projection of H2 are kept; each row is matched to its
  best candidate row on H1, among the candidate's layers at a similar relative depth (so
  pruned, duplicated and re-ordered layers, heads, experts and units still find their
  partner), and the pairs are scored on the H2 projections, with the Hoeffding variance of the
  full test. Matching and scoring must see disjoint coordinates: scoring on a second half of
  the same H1 sketch was biased (both halves estimate the same H1 correlation, so the argmax
  selected for it) and gave independent d = 4096 pairs p ~ 1e-10. Survives fine-tuning, casts,
  GGUF, upcycling, a replaced tokenizer.
* down projections: the Mantel z of the 128 x 128 coordinate correlations, best reference
  layer per candidate layer (Sidak), layers Cauchy-combined. Survives permuted hidden units.
* token geometry: the cosine Gram matrix of TOKENS hash-chosen embedding rows (shared tokens
  only), Mantel z. It is unchanged by any orthogonal map of the residual basis, so it survives
  a permuted, sign-flipped or rotated residual basis, which defeats the first two channels.

What it misses: a residual basis permuted *and* a new tokenizer (the full test misses this too).
On real models, independently trained embeddings of a shared tokenizer share some geometry
(similar words lie close in both), so the token channel keeps more references than on the
generated ones: that costs time, never a miss. A component name keys each sketch (`model`
today; `language`, `vision`, ... once a checkpoint is split into components).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from compliance.engine.lineage.fingerprint import FAMILIES, Fingerprint
from compliance.engine.lineage.stats import cauchy_combine, rows_standardise

DEFAULT_COMPONENT = "model"
# 16 rows per family and layer: 16 layers x 2 families x 16 x (256 + 128) bytes = 0.2 MB at any
# width. A fine-tune at row correlation 0.7 gives z ~ 0.7 x sqrt(16 x 16 x 128) ~ 130.
MATCH_ROWS = 16
# Coordinates of the H2 projection the matched pairs are scored on.
SCORE_DIM = 128
# A reference row looks for its partner among candidate layers at a similar relative depth
# (within 0.15 of the stack: 5 of 16 sampled layers): the labelled pruned and up-scaled stacks
# shift layers by less than that, and it cuts the cost and the chance of a spurious partner
# to a third of pooling every layer.
DEPTH_WINDOW = 0.15
# 256 tokens: a 256 x 256 Gram (64 K pairs) keeps the Mantel z of a copied embedding in the
# hundreds, and costs 128 KB.
TOKENS = 256
MIN_SHARED_TOKENS = 32
# Keep every reference with a channel p <= 1e-6 (score 6), and the 3 best whatever their score.
# The channels' normal tails are not exact after choosing the best layer (the down-projection
# null is skewed: independent pairs reach p ~ 1e-5 now and then), so the threshold sits well
# above where independent pairs go and far below where derived ones start (BENCHMARKS.md:
# "Many references"); the top 3 are the margin behind it.
KEEP_SCORE = 6.0
KEEP_TOP = 3
# Fewer references than this are all tested in full: screening would save nothing.
SCREEN_MIN_REFERENCES = 5
_P_FLOOR = 1e-300


@dataclass
class ScreenSketch:
    """What the screen keeps of one component of one reference (see module docstring)."""

    component: str
    name: str
    hidden_size: int | None
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # family -> [n, 256] float16 H1 sketches
    score: dict[str, np.ndarray] = field(default_factory=dict)  # family -> [n, SCORE_DIM] float16 H2 projections
    depth: dict[str, np.ndarray] = field(default_factory=dict)  # family -> [n] relative depth (0..1) of each row
    mlp_out: np.ndarray | None = None  # [layers, c, c] float16 down-projection coordinate correlations
    tokens: list[str] = field(default_factory=list)
    token_gram: np.ndarray | None = None  # [t, t] float16 cosine Gram of the tokens' embedding rows

    @property
    def nbytes(self) -> int:
        arrays = [*self.rows.values(), self.mlp_out, self.token_gram]
        return sum(a.nbytes for a in arrays if a is not None)


def _token_key(token: str) -> bytes:
    return hashlib.sha1(("screen:" + token).encode("utf-8", "replace")).digest()


def _token_gram(rows: np.ndarray) -> np.ndarray:
    """Cosine Gram of embedding rows after centring each coordinate: invariant to any
    orthogonal map (permutation, sign flip, rotation) of the residual basis."""
    x = np.asarray(rows, dtype=np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-20)
    return x @ x.T


@functools.lru_cache(maxsize=8)
def _score_projection(n: int) -> np.ndarray:
    """Fixed Gaussian projection of n H2 coordinates to SCORE_DIM (the same for every model of width 2n)."""
    rng = np.random.default_rng(4_000_037 + n)
    projection = (rng.standard_normal((n, SCORE_DIM)) / math.sqrt(SCORE_DIM)).astype(np.float32)
    projection.flags.writeable = False
    return projection


def _score_rows(test: np.ndarray) -> np.ndarray:
    """H2 test rows [k, n] as centred unit-length SCORE_DIM projections (as-is when n is small)."""
    t = np.asarray(test, dtype=np.float32)
    if t.shape[1] > SCORE_DIM:
        t = t @ _score_projection(t.shape[1])
    return rows_standardise(t).astype(np.float32)


def _depth(fp: Fingerprint, index: int) -> float:
    """Relative depth of layer `index` in the model's stack (0 first, 1 last)."""
    n = int(fp.meta.get("n_layers") or (max(fp.layers) + 1 if fp.layers else 1))
    return index / max(n - 1, 1)


def screen_sketch_build(fp: Fingerprint, *, component: str = DEFAULT_COMPONENT) -> ScreenSketch:
    """The screening sketch of a fingerprint (one component)."""
    sketch = ScreenSketch(component=component, name=fp.name, hidden_size=fp.meta.get("hidden_size"))
    for family in FAMILIES:
        parts, scores, depth = [], [], []
        for index, lp in sorted(fp.layers.items()):
            fr = lp.families.get(family)
            if fr is None:
                continue
            pick = np.unique(np.round(np.linspace(0, fr.n_rows - 1, min(MATCH_ROWS, fr.n_rows))).astype(int))
            parts.append(fr.sketch[pick])
            scores.append(_score_rows(fr.test[pick]))
            depth.append(np.full(len(pick), _depth(fp, index), dtype=np.float32))
        if parts and len({p.shape[1] for p in parts}) == 1 and len({p.shape[1] for p in scores}) == 1:
            sketch.rows[family] = np.concatenate(parts).astype(np.float16)
            sketch.score[family] = np.concatenate(scores).astype(np.float16)
            sketch.depth[family] = np.concatenate(depth)
    grams = [lp.mlp_out for _, lp in sorted(fp.layers.items()) if lp.mlp_out is not None]
    if grams and len({g.shape for g in grams}) == 1:
        sketch.mlp_out = np.stack(grams).astype(np.float16)
    if fp.embedding_rows is not None and fp.embedding_tokens:
        chosen = sorted(range(len(fp.embedding_tokens)), key=lambda i: _token_key(fp.embedding_tokens[i]))[:TOKENS]
        chosen.sort()
        sketch.tokens = [fp.embedding_tokens[i] for i in chosen]
        sketch.token_gram = _token_gram(fp.embedding_rows[chosen]).astype(np.float16)
    return sketch


def screen_sketch_arrays(sketch: ScreenSketch) -> dict[str, np.ndarray]:
    """The sketch as plain arrays (for a bundle; no pickles): JSON metadata as uint8."""
    meta = {"component": sketch.component, "name": sketch.name, "hidden_size": sketch.hidden_size,
            "tokens": sketch.tokens}
    out = {"meta": np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)}
    for family, rows in sketch.rows.items():
        # Unit-length rows of ~N(0, 1/s) values as int8 in steps of 1/(4 sqrt(s)): correlation 0.997.
        out[f"rows8.{family}"] = np.clip(np.rint(rows.astype(np.float32) * 4 * math.sqrt(rows.shape[1])),
                                         -127, 127).astype(np.int8)
        out[f"score8.{family}"] = np.clip(np.rint(sketch.score[family].astype(np.float32) * 4 * math.sqrt(
            sketch.score[family].shape[1])), -127, 127).astype(np.int8)
        out[f"depth.{family}"] = sketch.depth[family]
    if sketch.mlp_out is not None:
        # Correlations in [-1, 1] as int8 hundredths-and-a-bit (1/127): the Mantel z barely moves.
        out["mlp_out8"] = np.clip(np.rint(sketch.mlp_out.astype(np.float32) * 127), -127, 127).astype(np.int8)
    if sketch.token_gram is not None:
        out["token_gram"] = sketch.token_gram
    return out


def screen_sketch_from_arrays(arrays: Mapping[str, np.ndarray]) -> ScreenSketch:
    """Inverse of screen_sketch_arrays."""
    meta = json.loads(np.asarray(arrays["meta"], dtype=np.uint8).tobytes().decode("utf-8"))
    return ScreenSketch(
        component=meta["component"], name=meta["name"], hidden_size=meta.get("hidden_size"),
        rows={k.split(".", 1)[1]: (v.astype(np.float32) / (4 * math.sqrt(v.shape[1]))).astype(np.float16)
              for k, v in arrays.items() if k.startswith("rows8.")},
        score={k.split(".", 1)[1]: v.astype(np.float16) for k, v in arrays.items() if k.startswith("score8.")},
        depth={k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("depth.")},
        mlp_out=None if "mlp_out8" not in arrays else (arrays["mlp_out8"].astype(np.float32) / 127).astype(np.float16),
        tokens=list(meta.get("tokens", [])), token_gram=arrays.get("token_gram"),
    )


def screen_sketches_load(path: Any) -> dict[str, ScreenSketch]:
    """The sketches stored in a bundle, by component, without reading its rows. A bundle written
    before sketches existed (format 2) is loaded in full and sketched here."""
    from compliance.engine.lineage.fingerprint import bundle_members, fingerprint_load

    members: dict[str, dict[str, np.ndarray]] = {}
    try:
        found = bundle_members(path, prefix="screen/")
    except KeyError:
        found = {}
    for key, value in found.items():
        _, component, name = key.split("/", 2)
        members.setdefault(component, {})[name] = value
    if not members:
        sketch = screen_sketch_build(fingerprint_load(path))
        return {sketch.component: sketch}
    return {component: screen_sketch_from_arrays(arrays) for component, arrays in members.items()}


def _u_centre_stack(grams: np.ndarray) -> np.ndarray:
    """U-centre each symmetric matrix of a stack [L, n, n] (see stats._u_centre)."""
    a = np.array(grams, dtype=np.float64)
    n = a.shape[-1]
    idx = np.arange(n)
    a[:, idx, idx] = 0.0
    row = a.sum(axis=2)
    total = row.sum(axis=1)
    out = a - row[:, :, None] / (n - 2) - row[:, None, :] / (n - 2) + (total / ((n - 1) * (n - 2)))[:, None, None]
    out[:, idx, idx] = 0.0
    return out


def _mantel_sd_factor(n: int) -> float:
    return 2.0 / (n * (n - 1)) * (1 + 2 / (n - 2) + 2 / ((n - 2) * (n - 3)))


def _mantel_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mantel z of every pair of U-centred matrices: a [La, n, n], b [Lb, n, n] -> [La, Lb]."""
    n = a.shape[-1]
    fa, fb = a.reshape(len(a), -1), b.reshape(len(b), -1)
    ss_a, ss_b = np.einsum("ij,ij->i", fa, fa), np.einsum("ij,ij->i", fb, fb)
    sd = np.sqrt(np.outer(ss_a, ss_b) * _mantel_sd_factor(n))
    return np.where(sd > 1e-12, (fa @ fb.T) / np.maximum(sd, 1e-300), 0.0)


def _sidak(p: float, m: int) -> float:
    if p <= 0.0:
        return 0.0
    return float(min(1.0, -math.expm1(m * math.log1p(-min(p, 1 - 1e-16)))))


@dataclass
class ScreenProbe:
    """The candidate's side of the screen, prepared once and scored against every sketch."""

    component: str
    hidden_size: int | None
    match: dict[str, np.ndarray]  # family -> pooled candidate H1 sketches (unit rows)
    test: dict[str, np.ndarray]  # family -> the same rows' H2 projections (unit rows)
    depth: dict[str, np.ndarray]  # family -> relative depth of each pooled row
    mlp_out: np.ndarray | None  # [layers, c, c] U-centred
    embedding: dict[str, np.ndarray]  # token -> embedding row (float32)
    # Token Gram of the candidate per set of shared tokens: references sharing a tokenizer share the set.
    grams: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)


def screen_probe_build(fp: Fingerprint, *, component: str = DEFAULT_COMPONENT) -> ScreenProbe:
    match, test, depth = {}, {}, {}
    for family in FAMILIES:
        layers = [(i, lp.families[family]) for i, lp in sorted(fp.layers.items()) if family in lp.families]
        if not layers or len({fr.sketch.shape[1] for _, fr in layers}) != 1:
            continue
        match[family] = np.concatenate([fr.sketch for _, fr in layers]).astype(np.float32)
        test[family] = np.concatenate([_score_rows(fr.test) for _, fr in layers])
        depth[family] = np.concatenate([np.full(fr.n_rows, _depth(fp, i), dtype=np.float32) for i, fr in layers])
    grams = [lp.mlp_out for _, lp in sorted(fp.layers.items()) if lp.mlp_out is not None]
    mlp_out = _u_centre_stack(np.stack(grams)) if grams and len({g.shape for g in grams}) == 1 else None
    embedding = {}
    if fp.embedding_rows is not None:
        rows = np.asarray(fp.embedding_rows, dtype=np.float32)
        embedding = {t: rows[i] for i, t in enumerate(fp.embedding_tokens)}
    return ScreenProbe(component=component, hidden_size=fp.meta.get("hidden_size"), match=match, test=test,
                       depth=depth, mlp_out=mlp_out, embedding=embedding)


def _rows_channel(probe: ScreenProbe, sketch: ScreenSketch) -> float | None:
    """p-value of the matched-rows statistic, families combined by Cauchy (None: nothing comparable)."""
    ps = []
    for family, ref_rows in sketch.rows.items():
        cand_m, cand_t = probe.match.get(family), probe.test.get(family)
        ref_s = sketch.score.get(family)
        if cand_m is None or ref_s is None or ref_rows.shape[1] != cand_m.shape[1] or ref_s.shape[1] != cand_t.shape[1]:
            continue
        ref_m = rows_standardise(np.asarray(ref_rows, dtype=np.float32))
        ref_t = rows_standardise(np.asarray(ref_s, dtype=np.float32))
        ref_depth, cand_depth = sketch.depth[family], probe.depth[family]
        best = np.zeros(len(ref_m), dtype=np.int64)
        sign = np.ones(len(ref_m), dtype=np.float32)
        for level in np.unique(ref_depth):  # one block of reference rows per reference layer
            rows = np.flatnonzero(ref_depth == level)
            # Candidate rows are pooled in layer order, so the window is one slice (no copy).
            lo = int(np.searchsorted(cand_depth, level - DEPTH_WINDOW, side="left"))
            hi = int(np.searchsorted(cand_depth, level + DEPTH_WINDOW, side="right"))
            if hi <= lo:
                lo, hi = 0, len(cand_depth)
            corr = ref_m[rows] @ cand_m[lo:hi].T
            pick = np.argmax(np.abs(corr), axis=1)
            best[rows] = lo + pick
            sign[rows] = np.where(corr[np.arange(len(rows)), pick] >= 0, 1.0, -1.0)
        partner = cand_t[best] * sign[:, None]
        r = float(np.einsum("ij,ij->", ref_t, partner, dtype=np.float64))
        # Hoeffding: null variance ||A^T diag(s) B||_F^2 / (n - 1), as stats.units_match_test.
        frob = float(np.sum((ref_t @ ref_t.T).astype(np.float64) * (partner @ partner.T)))
        n = ref_t.shape[1]
        z = r / math.sqrt(frob / max(n - 1, 1)) if frob > 1e-12 else 0.0
        ps.append(float(sps.norm.sf(z)))
    return cauchy_combine(ps) if ps else None


def _down_channel(probe: ScreenProbe, sketch: ScreenSketch) -> float | None:
    if probe.mlp_out is None or sketch.mlp_out is None or probe.mlp_out.shape[1:] != sketch.mlp_out.shape[1:]:
        return None
    z = _mantel_z(_u_centre_stack(sketch.mlp_out), probe.mlp_out)  # [ref layers, candidate layers]
    best = z.max(axis=0)
    return cauchy_combine([_sidak(float(sps.norm.sf(v)), z.shape[0]) for v in best])


def _token_channel(probe: ScreenProbe, sketch: ScreenSketch) -> tuple[float | None, int]:
    if sketch.token_gram is None or not probe.embedding:
        return None, 0
    shared = [i for i, t in enumerate(sketch.tokens) if t in probe.embedding]
    if len(shared) < MIN_SHARED_TOKENS:
        return None, len(shared)
    key = tuple(sketch.tokens[i] for i in shared)
    if key not in probe.grams:
        probe.grams[key] = _u_centre_stack(_token_gram(np.stack([probe.embedding[t] for t in key]))[None])
    ref = np.asarray(sketch.token_gram, dtype=np.float32)[np.ix_(shared, shared)]
    z = float(_mantel_z(_u_centre_stack(ref[None]), probe.grams[key])[0, 0])
    return float(sps.norm.sf(z)), len(shared)


@dataclass
class ScreenEntry:
    """One reference's screening result."""

    reference: str
    score: float  # -log10 of the smallest channel p-value (capped at 300)
    channels: dict[str, float | None]
    components: list[str]
    shared_tokens: int
    rank: int = 0
    kept: bool = False
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "score": round(self.score, 2), "rank": self.rank, "kept": self.kept,
                "why": self.why, "channels": {k: None if v is None else float(f"{v:.3g}") for k, v in self.channels.items()},
                "components": self.components, "shared_tokens": self.shared_tokens}


@dataclass
class ScreenResult:
    """The registry ranked against one candidate, with what was kept and why."""

    entries: list[ScreenEntry]
    keep_top: int
    keep_score: float

    @property
    def kept(self) -> list[ScreenEntry]:
        return [e for e in self.entries if e.kept]

    @property
    def screened_out(self) -> list[ScreenEntry]:
        return [e for e in self.entries if not e.kept]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": (f"every reference scored on cheap sketches (matched rows, down-projection correlations, "
                       f"token geometry); the {self.keep_top} best and every one scoring at least "
                       f"{self.keep_score:g} (a channel p <= {10 ** -self.keep_score:g}) get the full test"),
            "keep_top": self.keep_top, "keep_score": self.keep_score,
            "references": len(self.entries), "kept": len(self.kept),
            "entries": [e.to_dict() for e in sorted(self.entries, key=lambda e: e.rank)],
        }


def _score(probes: Mapping[str, ScreenProbe], sketches: Mapping[str, ScreenSketch], name: str) -> ScreenEntry:
    best: ScreenEntry | None = None
    for pc, probe in probes.items():
        for rc, sketch in sketches.items():
            if pc != rc and DEFAULT_COMPONENT not in (pc, rc):
                continue  # a vision tower is screened against vision towers, as the full test pairs them
            token_p, shared = _token_channel(probe, sketch)
            channels = {"rows": _rows_channel(probe, sketch), "down_projection": _down_channel(probe, sketch),
                        "token_geometry": token_p}
            ps = [p for p in channels.values() if p is not None]
            score = min(300.0, -math.log10(max(min(ps), _P_FLOOR))) if ps else 0.0
            entry = ScreenEntry(reference=name, score=score, channels=channels, components=[pc, rc],
                                shared_tokens=shared)
            if best is None or entry.score > best.score:
                best = entry
    assert best is not None
    return best


def screen_rank(*, candidate: Fingerprint | Mapping[str, Fingerprint],
                references: Mapping[str, Mapping[str, ScreenSketch]],
                keep_top: int = KEEP_TOP, keep_score: float = KEEP_SCORE) -> ScreenResult:
    """Rank `references` (name -> component -> sketch) against the candidate and mark what to keep.

    `candidate` is a Fingerprint or a mapping component -> Fingerprint; every candidate component
    is scored against every reference component and the best pair counts.
    """
    parts = {DEFAULT_COMPONENT: candidate} if isinstance(candidate, Fingerprint) else dict(candidate)
    probes = {c: screen_probe_build(fp, component=c) for c, fp in parts.items()}
    entries = [_score(probes, sketches, name) for name, sketches in references.items()]
    for rank, entry in enumerate(sorted(entries, key=lambda e: -e.score), start=1):
        entry.rank = rank
        if entry.score >= keep_score:
            entry.kept, entry.why = True, f"score {entry.score:.1f} >= {keep_score:g}"
        elif rank <= keep_top:
            entry.kept, entry.why = True, f"among the {keep_top} best"
        else:
            entry.why = f"score {entry.score:.2f} < {keep_score:g} and rank {rank} > {keep_top}"
    return ScreenResult(entries=entries, keep_top=keep_top, keep_score=keep_score)

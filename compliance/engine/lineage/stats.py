"""Statistics for the lineage test: row preparation, the matched-unit test, p-value combination.

The core test (a weight-only relative of Zhu et al.'s constrained test, ICML 2025):

* Rows of a residual-input matrix (MLP gate/up, attention q/k/v) are "units"; columns are
  residual coordinates. Columns are standardised (removes column scale, e.g. norm gains folded
  into the next matrix) and split by a fixed pseudo-random split into halves H1 and H2.
* Units of B are matched to units of A on H1 only (|correlation| of a random projection of
  H1; the argmax, so permuted units, upcycled experts and duplicated rows all find a partner).
* On H2, R = sum_b sign_b * <a_match(b), b> over the matched pairs. Under independence the
  joint distribution is invariant under permuting B's residual coordinates (i.i.d. init and a
  permutation-equivariant optimiser, Zhu et al.'s assumption), so R's null distribution is the
  permutation distribution over H2's coordinates. R is a linear permutation statistic: its
  exact null mean is 0 and its exact null variance is ||M||_F^2 / (n - 1) (Hoeffding 1951),
  M = A_H2^T diag(sign) B_H2. p = normal tail of z = R / sd (Hoeffding's combinatorial CLT;
  validated for uniformity by a KS test in bench/lineage_quality.py).
* The matching never looks at H2, so it cannot inflate R under the null.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

# 256-512 projected coordinates keep unrelated rows at |r| < 0.25 (4 sd at 256) while a copied
# row stays near 1: enough to find partners, and 8x cheaper than matching on 4096 coordinates.
SKETCH_DIM = 256
_EPS = 1e-12


@functools.lru_cache(maxsize=16)
def column_split(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed pseudo-random split of `d` residual coordinates into (H1, H2); same for every model of width d."""
    rng = np.random.default_rng(1_000_003 + d)
    order = rng.permutation(d)
    half = d // 2
    h1, h2 = np.sort(order[:half]), np.sort(order[half:])
    h1.flags.writeable = h2.flags.writeable = False  # cached: callers must not change them
    return h1, h2


@functools.lru_cache(maxsize=16)
def sketch_projection(n_in: int) -> np.ndarray | None:
    """Fixed Gaussian projection of H1 to SKETCH_DIM coordinates (None when H1 is already small)."""
    if n_in <= SKETCH_DIM:
        return None
    rng = np.random.default_rng(2_000_003 + n_in)
    projection = (rng.standard_normal((n_in, SKETCH_DIM)) / math.sqrt(SKETCH_DIM)).astype(np.float32)
    projection.flags.writeable = False  # cached: callers must not change it
    return projection


def rows_standardise(x: np.ndarray) -> np.ndarray:
    """Centre each row and scale it to unit length (rows of zeros stay zero)."""
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x / np.maximum(norm, 1e-20)


def columns_standardise(rows: np.ndarray) -> np.ndarray:
    """Centre and scale each residual coordinate over the sampled rows, as float16 for storage.

    Column scale -- outlier dimensions, norm gains folded into the next matrix -- then carries
    no weight, and the stored rows can still be re-ordered by a residual alignment later.
    """
    x = np.array(rows, dtype=np.float32)
    x -= x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.sqrt(np.mean(x * x, axis=0, keepdims=True)), 1e-20)
    return x.astype(np.float16)


def rows_prepare(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw unit rows [k, d] into (sketch [k, s] for matching on H1, test rows [k, d/2] on H2), float16.

    Columns are standardised first (centre and scale each residual coordinate over the
    sampled rows) so column scale -- outlier dimensions, folded norm gains -- carries no weight.
    """
    # float32 throughout: 4x faster than float64 on 512 x 4096 rows, and the stored result is float16 anyway.
    x = np.array(rows, dtype=np.float32)
    x -= x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.sqrt(np.mean(x * x, axis=0, keepdims=True)), 1e-20)
    h1, h2 = column_split(x.shape[1])
    s = rows_standardise(x[:, h1])
    projection = sketch_projection(len(h1))
    if projection is not None:
        s = rows_standardise(s @ projection)
    t = rows_standardise(x[:, h2])
    return s.astype(np.float16), t.astype(np.float16)


@dataclass
class MatchResult:
    """Outcome of matching B's units to A's and testing on H2."""

    z: float
    p_value: float
    statistic: float  # mean signed H2 correlation over all matched pairs
    confident_fraction: float  # share of B's units whose H1 match clears a 4-sd screen
    confident_correlation: float  # mean H2 correlation of those: the effect size
    n_units: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "z": round(self.z, 3),
            "p_value": self.p_value,
            "statistic": round(self.statistic, 4),
            "shared_unit_fraction": round(self.confident_fraction, 4),
            "matched_correlation": round(self.confident_correlation, 4),
            "units": self.n_units,
        }


def gram(t: np.ndarray) -> np.ndarray:
    """Row Gram matrix in float32 (used for the exact null variance)."""
    t32 = np.asarray(t, dtype=np.float32)
    return t32 @ t32.T


def units_match_test(
    sketch_b: np.ndarray, test_b: np.ndarray, sketch_a: np.ndarray, test_a: np.ndarray,
    gram_b: np.ndarray | None = None, gram_a: np.ndarray | None = None,
) -> MatchResult:
    """Match B's units to A's on H1, then test the matched pairs on H2 against the coordinate-permutation null."""
    sb = np.asarray(sketch_b, dtype=np.float32)
    sa = np.asarray(sketch_a, dtype=np.float32)
    tb = np.asarray(test_b, dtype=np.float32)
    n = tb.shape[1]
    corr = sb @ sa.T
    match = np.argmax(np.abs(corr), axis=1)
    best = corr[np.arange(len(match)), match]
    sign = np.where(best >= 0, 1.0, -1.0).astype(np.float32)
    # Only A's matched rows are read: gathered before the float32 cast, so float16 test rows
    # (as fingerprints keep them) cost no float32 copy of all of A.
    pair = np.einsum("ij,ij->i", tb, np.asarray(test_a[match], dtype=np.float32)) * sign
    r = float(pair.sum(dtype=np.float64))
    gb = gram(tb) if gram_b is None else gram_b
    ga = gram(test_a) if gram_a is None else gram_a
    # ||M||_F^2 = sum_{b,b'} s_b s_b' G_A[m_b, m_b'] G_B[b, b'] (M = A_H2^T diag(s) B_H2)
    frob = float(sign.astype(np.float64) @ ((ga[np.ix_(match, match)] * gb).astype(np.float64) @ sign))
    var = frob / max(n - 1, 1)
    z = r / math.sqrt(var) if var > _EPS else 0.0
    p = float(sps.norm.sf(z))
    screen = 4.0 / math.sqrt(sb.shape[1])
    confident = np.abs(best) > screen
    return MatchResult(
        z=z,
        p_value=p,
        statistic=float(pair.mean()) if len(pair) else 0.0,
        confident_fraction=float(confident.mean()) if len(pair) else 0.0,
        confident_correlation=float(pair[confident].mean()) if confident.any() else 0.0,
        n_units=len(pair),
    )


def paired_rows_test(rows_a: np.ndarray, rows_b: np.ndarray) -> MatchResult:
    """Test rows already paired by identity (embedding rows of the same token) on all coordinates.

    Same null as `units_match_test` (permute B's residual coordinates), no matching step.
    """
    def prep(x: np.ndarray) -> np.ndarray:
        # In place on one float64 copy (the same arithmetic as out of place, so the same bits):
        # two arrays at a time instead of three, 16 MB less at 500 tokens x 4096 (issue #16).
        x = np.array(x, dtype=np.float64)
        x -= x.mean(axis=0, keepdims=True)
        x /= np.maximum(np.sqrt((x**2).mean(axis=0, keepdims=True)), _EPS)
        x -= x.mean(axis=1, keepdims=True)  # rows_standardise, in place
        x /= np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x))[:, None], 1e-20)
        return x.astype(np.float32)

    a, b = prep(rows_a), prep(rows_b)
    n = a.shape[1]
    pair = np.einsum("ij,ij->i", a, b)
    r = float(pair.sum())
    var = float(np.sum((a @ a.T).astype(np.float64) * (b @ b.T))) / max(n - 1, 1)
    z = r / math.sqrt(var) if var > _EPS else 0.0
    return MatchResult(
        z=z, p_value=float(sps.norm.sf(z)), statistic=float(pair.mean()), confident_fraction=1.0,
        confident_correlation=float(pair.mean()), n_units=len(pair),
    )


def coordinate_gram(rows: np.ndarray) -> np.ndarray:
    """Correlation between sampled residual coordinates across all units of a down projection.

    `rows` are k rows of a down_proj [d, f] (one per sampled residual coordinate, f units wide).
    The result sums over every unit, so it does not change when the units are permuted.
    """
    return gram(rows_standardise(np.asarray(rows, dtype=np.float32)))


def _u_centre(m: np.ndarray) -> np.ndarray:
    """U-centre a symmetric matrix (zero diagonal, exactly zero off-diagonal row sums)."""
    n = m.shape[0]
    a = np.array(m, dtype=np.float64)
    np.fill_diagonal(a, 0.0)
    row = a.sum(axis=1)
    total = row.sum()
    out = a - row[:, None] / (n - 2) - row[None, :] / (n - 2) + total / ((n - 1) * (n - 2))
    np.fill_diagonal(out, 0.0)
    return out


def mantel_best_layer_test(ref_grams: list[np.ndarray], cand_gram: np.ndarray, *, n_perm: int = 199,
                           seed: int = 0) -> tuple[int, MatchResult]:
    """Best-matching reference layer for one candidate layer, with a permutation p-value that
    accounts for having chosen the best of L layers.

    Each permutation of the candidate's coordinates is applied to all L comparisons at once and
    the largest standardised statistic recorded, so the Monte Carlo p-value is exact for the
    max over layers (Phipson & Smyth: (1 + count) / (1 + n_perm)). When no permutation reaches
    the observed value, the tail beyond Monte Carlo resolution comes from a shifted gamma
    matching the exact mean and variance and the simulated skewness, Sidak-corrected for L.
    """
    n = cand_gram.shape[0]
    b = _u_centre(cand_gram)
    sb = float((b * b).sum())
    refs = [_u_centre(g) for g in ref_grams]
    sds = []
    for a in refs:
        sa = float((a * a).sum())
        var = 2 * sa * sb / (n * (n - 1)) * (1 + 2 / (n - 2) + 2 / ((n - 2) * (n - 3)))
        sds.append(math.sqrt(var) if var > _EPS else float("inf"))
    z_obs = np.array([float((a * b).sum()) / sd for a, sd in zip(refs, sds)])
    best = int(np.argmax(z_obs))
    rng = np.random.default_rng(seed)
    stacked = np.stack(refs) / np.array(sds)[:, None, None]
    exceed = 0
    null_best: list[float] = []
    for _ in range(n_perm):
        perm = rng.permutation(n)
        zs = np.einsum("lij,ij->l", stacked, b[np.ix_(perm, perm)])
        null_best.append(float(zs[best]))
        exceed += bool(zs.max() >= z_obs[best])
    p = (1 + exceed) / (1 + n_perm)
    if exceed == 0:
        skew = float(sps.skew(null_best))
        if skew >= 0.05:
            shape = 4.0 / skew**2
            tail = float(sps.gamma.sf(z_obs[best] * 2.0 / skew + shape, shape))
        else:
            tail = float(sps.norm.sf(z_obs[best]))
        tail = min(1.0, -math.expm1(len(refs) * math.log1p(-min(tail, 1 - 1e-16)))) if tail > 0 else 0.0
        p = min(p, tail)
    sa = float((refs[best] * refs[best]).sum())
    r = float((refs[best] * b).sum()) / math.sqrt(sa * sb) if sa * sb > _EPS else 0.0
    return best, MatchResult(z=float(z_obs[best]), p_value=p, statistic=r, confident_fraction=0.0,
                             confident_correlation=r, n_units=n)


def mantel_test(gram_a: np.ndarray, gram_b: np.ndarray) -> MatchResult:
    """Do the coordinate-correlation structures of two down projections agree (Mantel test)?

    Null: B's residual coordinates permuted (rows and columns together), the same symmetry as
    units_match_test. After U-centring, the statistic sum(A * B) has exact null mean 0 and
    variance 2 S_A S_B / (n (n-1)) * (1 + 2/(n-2) + 2/((n-2)(n-3))), S = sum of squares
    (checked against Monte Carlo to 1 %); p from the normal tail.
    """
    n = gram_a.shape[0]
    a, b = _u_centre(gram_a), _u_centre(gram_b)
    sa, sb = float((a * a).sum()), float((b * b).sum())
    stat = float((a * b).sum())
    var = 2 * sa * sb / (n * (n - 1)) * (1 + 2 / (n - 2) + 2 / ((n - 2) * (n - 3)))
    z = stat / math.sqrt(var) if var > _EPS else 0.0
    r = stat / math.sqrt(sa * sb) if sa * sb > _EPS else 0.0
    return MatchResult(z=z, p_value=float(sps.norm.sf(z)), statistic=r, confident_fraction=0.0,
                       confident_correlation=r, n_units=n)


def cauchy_combine(p_values: list[float]) -> float:
    """Cauchy combination (Liu & Xie 2020): valid for dependent p-values, as layers of one model are.

    Fisher's method assumes independence, which layers sharing one residual basis do not have.
    """
    ps = [min(max(p, 1e-300), 1.0) for p in p_values]
    if not ps:
        return 1.0
    terms = []
    for p in ps:
        # tan((0.5 - p) * pi) ~ 1 / (p * pi) for tiny p; the exact form loses precision below 1e-15.
        terms.append(1.0 / (p * math.pi) if p < 1e-15 else math.tan((0.5 - p) * math.pi))
    t = sum(terms) / len(terms)
    if t > 1e15:
        return min(1.0, 1.0 / (t * math.pi))
    return float(min(1.0, max(0.0, 0.5 - math.atan(t) / math.pi)))


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (family-wise error across candidate parents)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def vector_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Raw cosine similarity (uncentred)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > _EPS else 0.0


def vector_pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation = cosine after centring; 0 when either vector is constant."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return vector_cosine(a - a.mean(), b - b.mean())


def cosine_expected_unrelated(mean_a: float, std_a: float, mean_b: float, std_b: float) -> float:
    """Raw cosine two *unrelated* vectors get from their means and spreads alone.

    For uncorrelated coordinates cos ~ mu_a mu_b / sqrt((mu_a^2 + s_a^2)(mu_b^2 + s_b^2)): with
    norm gains near 1 and spread 0.05 this is 0.99, which is why raw cosine of norms misleads.
    """
    return mean_a * mean_b / math.sqrt((mean_a**2 + std_a**2) * (mean_b**2 + std_b**2))


def norm_similarity(a: np.ndarray, b: np.ndarray, *, seed: int = 42) -> dict[str, float]:
    """Raw cosine, cosine after shuffling B's coordinates, and Pearson for two norm-gain vectors."""
    rng = np.random.default_rng(seed)
    b = np.asarray(b, dtype=np.float64)
    return {
        "raw_cosine": round(vector_cosine(a, b), 4),
        "raw_cosine_shuffled": round(vector_cosine(a, rng.permutation(b)), 4),
        "pearson": round(vector_pearson(a, b), 4),
    }


def _skewed_tail(z: float, skew: float) -> float:
    """Upper tail beyond standardised `z` of a null with mean 0, variance 1 and skewness `skew`:
    a shifted gamma matching the three moments when skew is positive (as mantel_best_layer_test
    does), else the normal tail."""
    if skew >= 0.05:
        shape = 4.0 / skew**2
        return float(sps.gamma.sf(z * 2.0 / skew + shape, shape))
    return float(sps.norm.sf(z))


def flip_chaos_parts(ref_blocks: np.ndarray, cand_block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Null moments of comparing one candidate G x G block matrix with each of a stack of reference ones.

    Each block matrix is indexed on both sides by G groups of head coordinates whose joint sign
    flip preserves the function (q/k rotary pairs, value dimensions). Under independence B's
    distribution is unchanged by flipping any group (sign-symmetric initialisation and a
    sign-equivariant optimiser), so T = sum_{j != k} A_jk B_jk s_j s_k over random signs s is the
    null. T is a Rademacher chaos of order 2 in s: with C_jk = A_jk B_jk (zero diagonal) and
    S = (C + C^T) / 2, its exact null mean is 0, variance 2 tr(S^2) and third moment 8 tr(S^3).
    Diagonal blocks are invariant under the flips and carry no evidence; they are left out.

    Returns (T, variance, third moment), one entry per reference block matrix. Chaoses in
    independent sign vectors add: their T, variances and third moments simply sum.
    """
    a = np.asarray(ref_blocks, dtype=np.float64)
    b = np.asarray(cand_block, dtype=np.float64)
    c = a * b[None, :, :]
    g = c.shape[-1]
    diag = np.arange(g)
    c[:, diag, diag] = 0.0
    s = 0.5 * (c + np.swapaxes(c, 1, 2))
    return s.sum(axis=(1, 2)), 2.0 * np.einsum("nij,nij->n", s, s), 8.0 * np.einsum("nij,njk,nki->n", s, s, s)


def chaos_tail(t: float, var: float, third: float) -> tuple[float, float]:
    """(z, p) for an order-2 Rademacher chaos with observed value `t` and exact null moments."""
    if var <= _EPS:
        return 0.0, 1.0
    z = t / math.sqrt(var)
    return z, _skewed_tail(z, third / var**1.5)

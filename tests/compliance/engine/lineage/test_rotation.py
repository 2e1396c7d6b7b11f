"""Rotation-invariant lineage statistics: a rotated residual basis (QuaRot/SpinQuant style, norm
gains folded first) or a width-pruned sibling is still found; independent models stay independent."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from compliance.engine.lineage import Fingerprint, fingerprint_build, fingerprint_load, fingerprint_save, lineage_compare
from compliance.engine.lineage.invariants import head_groups
from compliance.engine.lineage.stats import chaos_tail, flip_chaos_parts
from tests.compliance.engine.lineage import tinymodels as tm


def test_the_rotated_copy_computes_the_same_function(llama_base: tm.TinyModel) -> None:
    """The transform the tests rely on is function-preserving (max logit difference < 1e-4)."""
    tokens = [5, 17, 300, 42, 999, 7, 64, 128]
    rotated = tm.residual_rotate(llama_base, seed=31)
    before, after = tm.llama_forward(llama_base, tokens), tm.llama_forward(rotated, tokens)
    assert np.max(np.abs(before - after)) < 1e-4
    # ...and it is a real disguise: no weight matrix keeps its coordinates.
    name = "model.layers.0.mlp.up_proj.weight"
    corr = np.corrcoef(llama_base.tensors[name].ravel(), rotated.tensors[name].ravel())[0, 1]
    assert abs(corr) < 0.05


def test_the_sign_flip_null_moments_are_exact() -> None:
    """Mean 0, variance 2 tr(S^2) and third moment 8 tr(S^3) of the flip statistic, against simulation."""
    rng = np.random.default_rng(0)
    g = 8
    a = rng.standard_normal((g, g)) + 0.5
    b = a + rng.standard_normal((g, g))
    t_obs, var, third = (x[0] for x in flip_chaos_parts(a[None], b))
    c = a * b
    np.fill_diagonal(c, 0.0)
    signs = rng.choice([-1.0, 1.0], size=(200_000, g))
    sims = np.einsum("ni,ij,nj->n", signs, c, signs)
    assert abs(sims.mean()) < 0.02 * np.sqrt(var)
    assert sims.var() == pytest.approx(var, rel=0.02)
    assert np.mean(sims**3) == pytest.approx(third, rel=0.1)
    assert t_obs == pytest.approx(c.sum())


def test_flip_test_p_values_are_uniform_for_unrelated_matrices() -> None:
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(400):
        a, b = rng.standard_t(3, (16, 16)), rng.standard_t(3, (16, 16))
        ps.append(chaos_tail(*(x[0] for x in flip_chaos_parts(a[None], b)))[1])
    assert sps.kstest(ps, "uniform").pvalue > 0.001
    assert np.mean(np.array(ps) < 0.05) < 0.09


def test_head_groups_flip_together_under_both_rotary_layouts() -> None:
    groups = head_groups(16, 16)
    assert groups[0] == [0, 1, 8, 9]  # rotate-half pairs (0, 8) and interleaved pairs (0, 1) together
    assert sorted(x for g in groups for x in g) == list(range(16))
    assert head_groups(8, 0) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # value dimensions: plain groups of four


ROTATED = {
    "rotated": lambda m: tm.residual_rotate(m, seed=31),
    "rotated + fine-tuned": lambda m: tm.finetune(tm.residual_rotate(m, seed=32), seed=33),
    "rotated + continued pretraining": lambda m: tm.continued_pretraining(tm.residual_rotate(m, seed=34), seed=35),
    "heads permuted + rotated + fine-tuned": lambda m: tm.finetune(
        tm.residual_rotate(tm.heads_permute(m, seed=36), seed=37), seed=38),
}


@pytest.mark.parametrize("name", sorted(ROTATED))
def test_a_rotated_residual_basis_is_called_derived(name: str, llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                    tmp_path: Path) -> None:
    candidate = tm.model_write(ROTATED[name](llama_base), tmp_path / "candidate")
    report = lineage_compare(candidate=candidate, reference=llama_print).to_dict()
    assert report["verdict"] == "derived", report["reason"]
    assert report["p_value"] < 1e-6
    # The coordinate-wise tests see nothing: the rotation-invariant ones carry the verdict.
    assert report["families"]["attn"]["p_value_rows"] > 1e-3
    assert report["families"]["attn_heads"]["p_value"] < 1e-6
    assert report["families"]["mlp_units"]["p_value"] < 1e-6
    assert report["evidence"]["residual_alignment"] is None
    # The report says what happened, for the reviewer.
    assert report["evidence"]["rotation_invariant"]["rotated_basis_suspected"] is True
    assert "rotated" in report["reason"]
    assert report["effect_size"] > 0.3  # the unit Grams' correlation, not the (blind) matched rows'


def test_qwen3_layout_rotated_copy_is_derived_and_an_independent_one_is_not(tmp_path: Path) -> None:
    """Explicit head_dim (128) wider than hidden / heads (64), per-head q/k norms: the head products
    are read per head_dim, not per hidden / heads."""
    base = tm.qwen3_make(seed=61)
    reference = fingerprint_build(path=tm.model_write(base, tmp_path / "qwen3"))
    assert reference.layers[0].invariants["qk"].shape == (2, 16, 16)  # one query head per KV group
    copy = tm.finetune(tm.residual_rotate(base, seed=62), seed=63)
    report = lineage_compare(candidate=tm.model_write(copy, tmp_path / "copy"), reference=reference)
    assert report.verdict == "derived", report.reason
    assert report.families["attn_heads"]["p_value"] < 1e-6
    other = lineage_compare(candidate=tm.model_write(tm.qwen3_make(seed=64), tmp_path / "other"), reference=reference)
    assert other.verdict == "independent", other.reason


def test_width_pruned_siblings_are_found_without_equal_width(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                             tmp_path: Path) -> None:
    pruned = tm.finetune(tm.width_prune(llama_base, seed=41, residual=0.75), seed=42)
    report = lineage_compare(candidate=tm.model_write(pruned, tmp_path / "pruned"), reference=llama_print)
    assert report.verdict == "derived", report.reason
    assert report.p_value < 1e-6
    assert report.comparable and report.difference == {"hidden_size": [192, 256]}
    assert "width" in report.reason
    assert report.effect_size > 0.3

    # Residual width, KV heads and MLP units all pruned: the heads still match, the first MLP
    # units no longer line up, so one family only -- "inconclusive" with the evidence, never independent.
    smaller = tm.width_prune(llama_base, seed=43, residual=0.75, kv_heads_kept=1, units=0.5)
    report = lineage_compare(candidate=tm.model_write(smaller, tmp_path / "smaller"), reference=llama_print)
    assert report.verdict == "inconclusive" and report.comparable  # a real inconclusive: reviewed
    assert report.families["attn_heads"]["p_value"] < 1e-4
    assert "attn" in report.reason


def test_independent_models_stay_independent_under_the_invariant_tests(llama_print: Fingerprint,
                                                                       tmp_path: Path) -> None:
    prints = [llama_print] + [fingerprint_build(path=tm.model_write(tm.llama_make(seed=s), tmp_path / f"i{s}"))
                              for s in (501, 502, 503)]
    for a, b in itertools.combinations(prints, 2):
        report = lineage_compare(candidate=b, reference=a).to_dict()
        assert report["verdict"] == "independent", report["reason"]
        assert report["families"]["attn_heads"]["p_value"] > 1e-3
        assert report["families"]["mlp_units"]["p_value"] > 1e-3
        assert report["evidence"]["rotation_invariant"]["rotated_basis_suspected"] is False
    # An independent model of another width is not "derived" (and not "independent" either).
    narrow = tm.width_prune(tm.llama_make(seed=504), seed=44, residual=0.75)
    report = lineage_compare(candidate=tm.model_write(narrow, tmp_path / "narrow"), reference=llama_print)
    assert report.verdict == "inconclusive"
    assert report.families["attn_heads"]["p_value"] > 1e-3
    assert not report.comparable  # nothing found across the widths: information, not a risk


def test_invariants_survive_the_bundle_and_stay_small(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                      tmp_path: Path) -> None:
    path = fingerprint_save(llama_print, tmp_path / "ref.npz")
    loaded = fingerprint_load(path)
    assert {i: sorted(lp.invariants) for i, lp in loaded.layers.items()} == \
        {i: sorted(lp.invariants) for i, lp in llama_print.layers.items()}
    stored = sum(v.nbytes for lp in loaded.layers.values() for v in lp.invariants.values())
    assert 0 < stored < 150_000
    candidate = tm.model_write(tm.residual_rotate(llama_base, seed=45), tmp_path / "rotated")
    direct = lineage_compare(candidate=candidate, reference=llama_print)
    via_bundle = lineage_compare(candidate=candidate, reference=path)
    assert (direct.verdict, direct.p_value) == (via_bundle.verdict, via_bundle.p_value)

"""The registry screen and the compact bundle: the screen must never hide a derived model, and a
compact bundle must give the verdicts the full-precision one gives."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from compliance.engine.lineage import (
    Fingerprint,
    fingerprint_build,
    fingerprint_is_bundle,
    fingerprint_load,
    fingerprint_save,
    lineage_compare,
    lineage_test_against,
)
from compliance.engine.lineage.fingerprint import BUNDLE_FORMAT, BUNDLE_FORMAT_FLOAT16
from compliance.engine.lineage.screen import KEEP_SCORE, screen_rank, screen_sketch_build, screen_sketches_load
from tests.compliance.engine.lineage import tinymodels as tm


@pytest.fixture(scope="module")
def decoys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fingerprint]:
    """Independent models with the reference's config, tokenizer and per-coordinate structure,
    plus a wider-MLP one: everything that makes a decoy look like the parent without being it."""
    root = tmp_path_factory.mktemp("decoys")
    out = {f"llama-{s}": fingerprint_build(path=tm.model_write(tm.llama_make(seed=s), root / f"l{s}"))
           for s in range(600, 608)}
    out["llama-wide"] = fingerprint_build(path=tm.model_write(tm.llama_make(seed=609, f=1024), root / "wide"))
    return out


def _registry(parent: Fingerprint, decoys: dict[str, Fingerprint]) -> dict[str, dict]:
    sketches = {name: {"model": screen_sketch_build(fp)} for name, fp in decoys.items()}
    sketches["parent"] = {"model": screen_sketch_build(parent)}
    return sketches


def test_screen_ranks_the_true_parent_first_among_many_decoys(llama_base, llama_print, decoys, tmp_path):
    candidate = fingerprint_build(path=tm.model_write(tm.finetune(llama_base, seed=61), tmp_path / "cand"))
    result = screen_rank(candidate=candidate, references=_registry(llama_print, decoys), keep_top=1)
    ranked = sorted(result.entries, key=lambda e: e.rank)
    assert ranked[0].reference == "parent" and ranked[0].kept
    assert ranked[0].score >= KEEP_SCORE
    # Every decoy is reported with its score and why it was left out: the screen hides nothing.
    out = result.to_dict()
    assert {e["reference"] for e in out["entries"]} == {"parent", *decoys}
    assert all(e["why"] for e in out["entries"])
    assert all(not e.kept for e in ranked[1:]), [(e.reference, e.score) for e in ranked[1:]]


# Derivations the screen must keep by its score alone (keep_top=0: no rank-based margin).
DERIVED: dict[str, Callable[[tm.TinyModel, Path], Path]] = {
    "fine-tuned (noise 3 x std, the heaviest labelled)": lambda m, d: tm.model_write(tm.finetune(m, seed=62, noise=3.0), d),
    "MLP units permuted + fine-tuned": lambda m, d: tm.model_write(tm.mlp_permute(tm.finetune(m, seed=63), seed=64), d),
    "heads permuted": lambda m, d: tm.model_write(tm.heads_permute(m, seed=65), d),
    "residual basis permuted + fine-tuned": lambda m, d: tm.model_write(
        tm.finetune(tm.residual_permute(m, seed=66), seed=67), d),
    "resharded": lambda m, d: tm.model_write(tm.finetune(m, seed=68), d, shards=3),
    "tokenizer replaced": lambda m, d: tm.model_write(tm.tokenizer_replace(m, seed=69), d),
    "layers pruned": lambda m, d: tm.model_write(tm.layers_prune(tm.finetune(m, seed=70)), d),
    "GGUF Q8_0": lambda m, d: tm.gguf_write(tm.finetune(m, seed=71), d.with_suffix(".gguf"), qtype="Q8_0"),
}


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_a_derived_candidate_is_never_screened_out(name, llama_base, llama_print, decoys, tmp_path):
    candidate = fingerprint_build(path=DERIVED[name](llama_base, tmp_path / "cand"))
    result = screen_rank(candidate=candidate, references=_registry(llama_print, decoys), keep_top=0)
    parent = next(e for e in result.entries if e.reference == "parent")
    assert parent.kept and parent.rank == 1, result.to_dict()
    assert parent.score >= 2 * KEEP_SCORE  # a margin, not a scrape past the threshold


def test_the_full_test_runs_only_on_kept_references_and_holm_counts_them_all(llama_base, llama_print, decoys,
                                                                             tmp_path):
    paths = []
    for name, fp in {**decoys, "parent": llama_print}.items():
        paths.append(fingerprint_save(fp, tmp_path / f"{name}.lineage"))
    candidate = tm.model_write(tm.finetune(llama_base, seed=72), tmp_path / "cand")
    reports = lineage_test_against(candidate=candidate, references=paths, names=[*decoys, "parent"], keep_top=2)
    parent = reports[-1]  # reports come back in the order of the references
    assert parent.verdict == "derived"
    assert parent.screen["kept"] and parent.screen["rank"] == 1 and parent.screen["reference"] == "parent"
    untested = [r for r in reports if r.verdict == "not_tested"]
    assert len(untested) == len(paths) - 2  # the parent and the best decoy (top 2) were tested
    for report in untested:
        assert report.screen["score"] < KEEP_SCORE and "screened out" in report.reason
    assert all(r.holm["references"] == len(paths) for r in reports)


def test_compact_bundle_round_trips_and_is_much_smaller(llama_base, llama_print, tmp_path):
    compact = fingerprint_save(llama_print, tmp_path / "ref.lineage")
    full = fingerprint_save(llama_print, tmp_path / "ref.npz", compact=False)
    assert fingerprint_is_bundle(compact) and fingerprint_is_bundle(full)
    assert compact.stat().st_size < full.stat().st_size / 2
    loaded = fingerprint_load(compact)
    assert loaded.meta["format"] == BUNDLE_FORMAT
    assert loaded.tokenizer is not None and loaded.tokenizer.vocab == llama_base.vocab
    assert sorted(loaded.layers) == sorted(llama_print.layers)
    for index, lp in llama_print.layers.items():
        for family, fr in lp.families.items():
            got = loaded.layers[index].families[family]
            assert got.rows.shape == fr.rows.shape and got.hashes == fr.hashes
            r = np.corrcoef(got.rows.astype(np.float64).ravel(), fr.rows.astype(np.float64).ravel())[0, 1]
            assert r > 0.9
            # The H1 sketch used for matching is kept almost exactly.
            assert np.corrcoef(got.sketch.ravel(), fr.sketch.ravel())[0, 1] > 0.99
        assert np.allclose(loaded.layers[index].mlp_out, lp.mlp_out, atol=2e-3)
    assert loaded.embedding_tokens == llama_print.embedding_tokens
    # The sketch is read from its own members, without the rows; it is keyed by component.
    with zipfile.ZipFile(compact) as archive:
        assert any(n.startswith("screen/language/") for n in archive.namelist())
    sketch = screen_sketches_load(compact)["language"]
    assert sketch.tokens == screen_sketch_build(llama_print).tokens


def _log_p(p: float) -> float:
    return -math.log10(max(p, 1e-300))


def test_compact_bundle_gives_the_verdicts_of_the_full_precision_one(llama_base, llama_print, tmp_path):
    compact = fingerprint_save(llama_print, tmp_path / "ref.lineage")
    full = fingerprint_save(llama_print, tmp_path / "ref.npz", compact=False)
    cases = {
        "fine-tuned hard": tm.finetune(llama_base, seed=73, noise=3.0),
        "units permuted": tm.mlp_permute(tm.finetune(llama_base, seed=74), seed=75),
        "residual permuted": tm.finetune(tm.residual_permute(llama_base, seed=76), seed=77),
        "independent": tm.llama_make(seed=78),
        "independent 2": tm.llama_make(seed=79),
    }
    for name, model in cases.items():
        candidate = fingerprint_build(path=tm.model_write(model, tmp_path / name.replace(" ", "-")))
        a = lineage_compare(candidate=candidate, reference=full)
        b = lineage_compare(candidate=candidate, reference=compact)
        assert a.verdict == b.verdict, (name, a.reason, b.reason)
        assert (a.evidence["residual_alignment"] is None) == (b.evidence["residual_alignment"] is None), name
        if name.startswith("independent"):
            assert a.verdict != "derived" and b.p_value > 1e-3
        else:
            assert a.verdict == "derived"
            # -log10 p moves by at most a fifth (the H2 rows correlate ~0.93 with the originals).
            assert _log_p(b.p_value) >= 0.8 * _log_p(a.p_value), (name, a.p_value, b.p_value)


def test_an_old_float16_bundle_still_loads_and_gives_the_same_result(llama_base, llama_print, tmp_path):
    old = fingerprint_save(llama_print, tmp_path / "old.lineage.npz", compact=False)
    with zipfile.ZipFile(old) as archive:
        assert "document.json.npy" in archive.namelist()  # the format-2 layout, as bundles were stored
    loaded = fingerprint_load(old)
    assert loaded.meta["format"] == BUNDLE_FORMAT_FLOAT16
    candidate = tm.model_write(tm.finetune(llama_base, seed=80), tmp_path / "cand")
    assert lineage_compare(candidate=candidate, reference=old).verdict == "derived"
    # Its screening sketch is built on the fly, since format 2 did not store one.
    assert screen_sketches_load(old)["model"].tokens == screen_sketch_build(llama_print).tokens


def test_a_reused_vision_encoder_beside_an_unrelated_language_model_is_not_screened_out(tmp_path):
    """Each component carries its own sketch: a VLM whose only reused part is the vision tower is
    kept by the screen (on the vision sketch alone, keep_top=0) among independent VLMs, and the
    full test then names the vision encoder."""
    refs = []
    for k in range(6):
        vlm = tm.vlm_make(layout="llava_ov", lm=tm.llama_make(seed=900 + k), vision_seed=920 + k, projector_seed=940 + k)
        refs.append(fingerprint_save(fingerprint_build(path=tm.model_write(vlm, tmp_path / f"ref{k}")),
                                     tmp_path / f"ref{k}.lineage"))
    tower = tm.tensors_finetune(tm.vision_make(seed=923), seed=5, noise=1.0)
    cand = tm.model_write(tm.vlm_make(layout="llava_ov", lm=tm.llama_make(seed=977), vision_seed=0, projector_seed=978,
                                      vision=tower), tmp_path / "cand")
    reports = lineage_test_against(candidate=cand, references=refs, keep_top=0)
    kept = [i for i, r in enumerate(reports) if r.verdict != "not_tested"]
    assert 3 in kept, [r.screen for r in reports]
    assert reports[3].screen["components"] == ["vision", "vision"]
    vision = next(c for c in reports[3].to_dict()["components"] if c["candidate"] == "vision")
    assert vision["verdict"] == "derived" and reports[3].verdict == "derived"

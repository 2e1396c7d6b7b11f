"""The lineage verdict on derived and independent pairs of tiny structured models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from compliance.engine.lineage import (
    Fingerprint,
    fingerprint_build,
    fingerprint_load,
    fingerprint_save,
    lineage_compare,
    lineage_test_against,
)
from tests.compliance.engine.lineage import tinymodels as tm

# Each entry: how the candidate is made from the reference and how it is written to disk.
DERIVATIONS: dict[str, Callable[[tm.TinyModel, Path], Path]] = {
    "fine-tune": lambda m, d: tm.model_write(tm.finetune(m, seed=11), d),
    "continued pretraining": lambda m, d: tm.model_write(tm.continued_pretraining(m, seed=12), d),
    "MLP units permuted": lambda m, d: tm.model_write(tm.mlp_permute(m, seed=13), d),
    "attention heads permuted": lambda m, d: tm.model_write(tm.heads_permute(m, seed=14), d),
    "norm gains folded": lambda m, d: tm.model_write(tm.norms_fold(m), d),
    "noise added": lambda m, d: tm.model_write(tm.noise_add(m, seed=15), d),
    "fp16 cast": lambda m, d: tm.model_write(m, d, dtype="F16"),
    "GGUF F16": lambda m, d: tm.gguf_write(tm.finetune(m, seed=16, noise=0.1, lowrank=0.1), d.with_suffix(".gguf")),
    "GGUF Q8_0": lambda m, d: tm.gguf_write(m, d.with_suffix(".gguf"), qtype="Q8_0"),
    "layers pruned": lambda m, d: tm.model_write(tm.layers_prune(m), d),
    "depth up-scaled": lambda m, d: tm.model_write(tm.depth_upscale(m), d),
    "tokenizer replaced": lambda m, d: tm.model_write(tm.tokenizer_replace(m, seed=17), d),
    "dense to MoE upcycled": lambda m, d: tm.model_write(tm.moe_upcycle(m, seed=18), d),
    "tensors renamed": lambda m, d: tm.model_write(tm.tensors_rename(m), d),
    "resharded": lambda m, d: tm.model_write(m, d, shards=3),
    "architecture renamed": lambda m, d: tm.model_write(tm.architecture_rename(tm.finetune(m, seed=19)), d),
    "FP8 with block scales (DeepSeek-V3 layout)": lambda m, d: tm.fp8_write(tm.finetune(m, seed=22), d),
    "residual basis permuted and sign-flipped": lambda m, d: tm.model_write(
        tm.finetune(tm.residual_permute(m, seed=20), seed=21), d),
}


@pytest.mark.parametrize("name", sorted(DERIVATIONS))
def test_derived_models_are_called_derived(name: str, llama_base: tm.TinyModel, llama_print: Fingerprint,
                                           tmp_path: Path) -> None:
    candidate = DERIVATIONS[name](llama_base, tmp_path / "candidate")
    report = lineage_compare(candidate=candidate, reference=llama_print).to_dict()
    assert report["verdict"] == "derived", report["reason"]
    assert report["p_value"] < 1e-6
    assert report["effect_size"] > 0.3
    assert report["bytes_read"] > 0
    if report["evidence"]["residual_alignment"] is None:
        assert report["families"]["mlp_out"]["p_value"] < 1e-6  # down projections agree too, units permuted or not


def test_independent_models_with_identical_config_tokenizer_and_recipe_are_not_derived(
    llama_print: Fingerprint, tmp_path: Path
) -> None:
    for seed in (101, 102, 103):
        other = tm.model_write(tm.llama_make(seed=seed), tmp_path / f"indep-{seed}")
        report = lineage_compare(candidate=other, reference=llama_print).to_dict()
        assert report["verdict"] != "derived"
        assert report["p_value"] > 1e-3
        assert abs(report["effect_size"]) < 0.1
        assert report["families"]["mlp_out"]["p_value"] > 1e-4
        # The supporting evidence looks damning and must not decide: same tokenizer, same config.
        assert report["evidence"]["tokenizer"]["identical_vocab"] is True
        assert report["evidence"]["norms"]["mean_raw_cosine"] > 0.95
        assert abs(report["evidence"]["norms"]["mean_pearson"]) < 0.2


def test_layer_map_follows_pruning_and_duplication(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                   tmp_path: Path) -> None:
    pruned = tm.model_write(tm.layers_prune(llama_base), tmp_path / "pruned")  # keeps 0, 2, 3, 5
    layers = lineage_compare(candidate=pruned, reference=llama_print).to_dict()["layers"]
    assert [(x["candidate_layer"], x["reference_layer"]) for x in layers] == [(0, 0), (1, 2), (2, 3), (3, 5)]
    upscaled = tm.model_write(tm.depth_upscale(llama_base), tmp_path / "dus")  # 0-3 then 2-5
    layers = lineage_compare(candidate=upscaled, reference=llama_print).to_dict()["layers"]
    assert [x["reference_layer"] for x in layers] == [0, 1, 2, 3, 2, 3, 4, 5]


def test_moe_expert_pruning_and_independent_moe(tmp_path: Path) -> None:
    base = tm.glm_moe_make(seed=5)
    ref = fingerprint_build(path=tm.model_write(base, tmp_path / "glm"))
    pruned = tm.model_write(tm.experts_prune(tm.finetune(base, seed=6), keep=[1, 3, 4, 6]), tmp_path / "pruned")
    assert lineage_compare(candidate=pruned, reference=ref).verdict == "derived"
    other = tm.model_write(tm.glm_moe_make(seed=7), tmp_path / "other")
    assert lineage_compare(candidate=other, reference=ref).verdict != "derived"


def test_bert_fine_tune_and_independent_bert(tmp_path: Path) -> None:
    base = tm.bert_make(seed=8)
    ref = fingerprint_build(path=tm.model_write(base, tmp_path / "bert", dtype="F32"))
    tuned = tm.model_write(tm.finetune(base, seed=9), tmp_path / "tuned")
    report = lineage_compare(candidate=tuned, reference=ref)
    assert report.verdict == "derived"
    assert report.evidence["tokenizer"]["available"] is True
    other = tm.model_write(tm.bert_make(seed=10), tmp_path / "other")
    assert lineage_compare(candidate=other, reference=ref).verdict != "derived"


def test_bundle_gives_the_same_verdict_as_the_full_model(llama_base: tm.TinyModel, llama_dir: Path,
                                                         tmp_path: Path) -> None:
    # Format 2 (float16) is exact; the compact format 3 is tested in test_screen.py.
    bundle = fingerprint_save(fingerprint_build(path=llama_dir), tmp_path / "ref.lineage.npz", compact=False)
    weights_bytes = (llama_dir / "model.safetensors").stat().st_size
    assert bundle.stat().st_size < weights_bytes
    derived = tm.model_write(tm.mlp_permute(tm.finetune(llama_base, seed=21), seed=22), tmp_path / "derived")
    indep = tm.model_write(tm.llama_make(seed=23), tmp_path / "indep")
    for candidate in (derived, indep):
        full = lineage_compare(candidate=candidate, reference=llama_dir).to_dict()
        via_bundle = lineage_compare(candidate=candidate, reference=bundle).to_dict()
        assert via_bundle["verdict"] == full["verdict"]
        assert via_bundle["p_value"] == pytest.approx(full["p_value"], rel=1e-6, abs=1e-12)
        assert via_bundle["layers"] == full["layers"]
        assert via_bundle["families"] == full["families"]
    loaded = fingerprint_load(bundle)
    assert loaded.tokenizer is not None and loaded.tokenizer.vocab == llama_base.vocab


def test_several_candidate_parents_are_holm_corrected(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                      tmp_path: Path) -> None:
    others = [fingerprint_build(path=tm.model_write(tm.llama_make(seed=s), tmp_path / f"o{s}")) for s in (31, 32)]
    candidate = tm.model_write(tm.finetune(llama_base, seed=33), tmp_path / "cand")
    reports = lineage_test_against(candidate=candidate, references=[others[0], llama_print, others[1]])
    assert [r.verdict for r in reports] == ["independent", "derived", "independent"] or \
        reports[1].verdict == "derived" and all(r.verdict != "derived" for r in (reports[0], reports[2]))
    for r in reports:
        assert r.p_value >= r.p_value_raw
        assert r.to_dict()["holm"]["references"] == 3


def test_report_is_json_ready_and_explains_itself(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                  tmp_path: Path) -> None:
    candidate = tm.model_write(tm.finetune(llama_base, seed=41), tmp_path / "cand",
                               card="---\nbase_model: example/llama-base\n---\n# Tuned\n")
    data = json.loads(json.dumps(lineage_compare(candidate=candidate, reference=llama_print).to_dict()))
    for key in ("verdict", "p_value", "effect_size", "reason", "method", "evidence", "layers", "bytes_read",
                "engine_version"):
        assert key in data
    assert data["evidence"]["declared_base_models"] == ["example/llama-base"]
    assert "shuffling" in data["evidence"]["norms"]["lesson"]
    norms = data["evidence"]["norms"]
    assert {"mean_raw_cosine", "mean_pearson", "mean_raw_cosine_shuffled"} <= set(norms)
    layer = data["layers"][0]
    assert {"candidate_layer", "reference_layer", "p_value", "statistic"} <= set(layer)


def test_different_width_is_inconclusive_not_independent(llama_print: Fingerprint, tmp_path: Path) -> None:
    narrow = tm.model_write(tm.llama_make(seed=51, d=128, f=256, heads=2, kv_heads=1), tmp_path / "narrow")
    report = lineage_compare(candidate=narrow, reference=llama_print)
    assert report.verdict == "inconclusive"
    assert "width" in report.reason


def test_commands_print_stable_json(llama_base: tm.TinyModel, llama_dir: Path, tmp_path: Path) -> None:
    """`manage.py fingerprint` and `manage.py compare --json` (command instances: no settings needed)."""
    from io import StringIO

    from django.core.management import call_command

    from compliance.management.commands import compare, fingerprint

    out = StringIO()
    call_command(fingerprint.Command(), str(llama_dir), "-o", str(tmp_path / "b.npz"), stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["bundle"]["bytes"] > 0 and summary["n_layers"] == 6
    candidate = tm.model_write(tm.finetune(llama_base, seed=61), tmp_path / "cand")
    out = StringIO()
    call_command(compare.Command(), str(candidate), str(tmp_path / "b.npz"), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["verdict"] == "derived" and report["bytes_read"] > 0


def test_partial_reuse_of_the_mlp_only_is_inconclusive_with_the_reason(llama_base: tm.TinyModel,
                                                                        llama_print: Fingerprint,
                                                                        tmp_path: Path) -> None:
    """MLP weights copied into an otherwise fresh model: one family is not enough for 'derived'."""
    fresh = tm.llama_make(seed=71, vocab=[t + "_v2" for t in llama_base.vocab])
    for name, w in llama_base.tensors.items():
        if ".mlp." in name:
            fresh.tensors[name] = w.copy()
    report = lineage_compare(candidate=tm.model_write(fresh, tmp_path / "partial"), reference=llama_print)
    assert report.verdict == "inconclusive"
    assert "mlp" in report.reason
    assert report.families["mlp"]["p_value"] < 1e-10 and report.families["attn"]["p_value"] > 1e-3


def test_single_safetensors_file_without_config_or_tokenizer(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                             tmp_path: Path) -> None:
    path = tm.safetensors_write(tmp_path / "bare.safetensors", tm.finetune(llama_base, seed=81).tensors, "BF16")
    report = lineage_compare(candidate=path, reference=llama_print)
    assert report.verdict == "derived"  # MLP and attention suffice; embeddings need a tokenizer
    assert "embedding" not in report.evidence["family_p_values"]
    junk = tm.safetensors_write(tmp_path / "junk.safetensors", {"a": np.ones((3, 4), np.float32)}, "F32")
    assert lineage_compare(candidate=junk, reference=llama_print).verdict == "inconclusive"


def test_residual_permutation_is_undone_and_reported(llama_base: tm.TinyModel, llama_print: Fingerprint,
                                                     tmp_path: Path) -> None:
    disguised = tm.mlp_permute(tm.residual_permute(tm.finetune(llama_base, seed=91), seed=92), seed=93)
    report = lineage_compare(candidate=tm.model_write(disguised, tmp_path / "disguised"), reference=llama_print)
    assert report.verdict == "derived"
    alignment = report.evidence["residual_alignment"]
    assert alignment["applied"] and alignment["columns_aligned"] >= 0.9 * alignment["width"]
    assert report.families["embedding"]["p_value"] is None  # used for the alignment, not counted
    assert "re-aligned" in report.reason
    other = lineage_compare(candidate=tm.model_write(tm.llama_make(seed=94), tmp_path / "other"), reference=llama_print)
    assert other.evidence["residual_alignment"] is None

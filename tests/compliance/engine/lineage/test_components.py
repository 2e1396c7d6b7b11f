"""Multimodal checkpoints: split into components by structure, and tested component by component.

The cases of issue #14: a VLM whose language model is a copy of a registered LLM, two VLMs sharing
a language model, a reused vision encoder with unrelated language models, and independent VLMs,
in the LLaVA-OneVision and Qwen2.5-VL layouts and in a custom layout where every name is replaced.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest

from compliance.engine.lineage import (
    Fingerprint,
    fingerprint_build,
    fingerprint_load,
    fingerprint_save,
    lineage_compare,
    lineage_test_against,
)
from compliance.engine.lineage.components import components_split
from compliance.engine.weights import model_open
from tests.compliance.engine.lineage import tinymodels as tm

LAYOUTS = ("llava_ov", "qwen25vl", "custom")


def _style(layout: str) -> str:
    return "qwen" if layout == "qwen25vl" else "siglip"


def _split(path: Path) -> dict[str, dict]:
    model = model_open(path)
    parts = components_split({n: r.shape for n, r in model.tensors.items()}, model.config)
    return {p.kind: p.to_dict() | {"names": p.tensors} for p in parts}


def _by_kind(report: dict) -> dict[str, dict]:
    assert all(c["candidate"] == c["reference"] for c in report["components"])
    return {c["candidate"]: c for c in report["components"]}


@pytest.fixture(scope="module")
def vlm_refs(llama_base: tm.TinyModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fingerprint]:
    """One reference VLM per layout, its language model the registered Llama (seed 1), vision seed 10."""
    where = tmp_path_factory.mktemp("vlm-refs")
    return {layout: fingerprint_build(path=tm.model_write(
        tm.vlm_make(layout=layout, lm=llama_base, vision_seed=10, projector_seed=20), where / layout))
        for layout in LAYOUTS}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_components_are_split_by_structure_whatever_the_names(layout: str, llama_base: tm.TinyModel,
                                                              tmp_path: Path) -> None:
    path = tm.model_write(tm.vlm_make(layout=layout, lm=llama_base, vision_seed=1, projector_seed=2), tmp_path / "m")
    parts = _split(path)
    assert set(parts) == {"language", "vision", "projector"}
    assert parts["language"]["hidden_size"] == 256 and parts["language"]["layers"] == 6
    assert parts["vision"]["hidden_size"] == tm.VISION_WIDTH and parts["vision"]["layers"] == tm.VISION_LAYERS
    # The vision encoder is told by its patch embedding, the language model by its vocabulary table.
    assert "patch embedding" in parts["vision"]["evidence"][0]
    assert "vocabulary-sized embedding" in parts["language"]["evidence"][0]
    names = {kind: set(p["names"]) for kind, p in parts.items()}
    assert not names["language"] & names["vision"] and not names["projector"] & (names["language"] | names["vision"])
    expected_projector = {"llava_ov": "model.multi_modal_projector", "qwen25vl": "visual.merger",
                          "custom": "bridge"}[layout]
    assert parts["projector"]["prefix"] == expected_projector
    if layout == "custom":
        assert parts["vision"]["method"] == parts["language"]["method"] == "structure"


def test_a_plain_llm_is_one_language_component_and_a_vision_encoder_one_vision_component(
        llama_dir: Path, tmp_path: Path) -> None:
    assert list(_split(llama_dir)) == ["language"]
    encoder = tm.model_write(tm.vision_encoder_make(seed=3), tmp_path / "siglip")
    assert list(_split(encoder)) == ["vision"]
    fp = fingerprint_build(path=encoder)
    assert fp.component == "vision" and fp.components == {} and fp.meta["notes"] == []


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("copy", ["verbatim", "fine-tuned"])
def test_vlm_whose_language_model_copies_a_registered_llm_is_derived(
        layout: str, copy: str, llama_base: tm.TinyModel, llama_print: Fingerprint, tmp_path: Path) -> None:
    lm = llama_base if copy == "verbatim" else tm.finetune(llama_base, seed=31)
    vlm = tm.model_write(tm.vlm_make(layout=layout, lm=lm, vision_seed=32, projector_seed=33), tmp_path / "vlm")
    report = lineage_compare(candidate=vlm, reference=llama_print).to_dict()
    assert report["verdict"] == "derived", report["reason"]
    # The reference is a text-only LLM: only the language models are comparable, one pair tested.
    assert [(c["candidate"], c["reference"], c["verdict"]) for c in report["components"]] == [
        ("language", "language", "derived")]
    assert report["p_value"] < 1e-6 and report["layers"] and report["components"][0]["layers"] == report["layers"]
    assert report["evidence"]["components"]["candidate"] == ["language", "vision", "projector"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_two_vlms_sharing_a_language_model_are_derived_through_it(
        layout: str, llama_base: tm.TinyModel, vlm_refs: dict[str, Fingerprint], tmp_path: Path) -> None:
    other = tm.vlm_make(layout=layout, lm=tm.finetune(llama_base, seed=41), vision_seed=42, projector_seed=43)
    report = lineage_compare(candidate=tm.model_write(other, tmp_path / "vlm"), reference=vlm_refs[layout]).to_dict()
    parts = _by_kind(report)
    assert report["verdict"] == "derived" and parts["language"]["verdict"] == "derived"
    assert parts["vision"]["verdict"] != "derived" and parts["projector"]["verdict"] != "derived"
    assert report["evidence"]["components"]["lead"] == "language"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reused_vision_encoder_with_unrelated_language_models(layout: str, vlm_refs: dict[str, Fingerprint],
                                                              tmp_path: Path) -> None:
    """The 2026 case: the vision tower of another vendor, fine-tuned, under a language model of one's own."""
    tower = tm.tensors_finetune(tm.vision_make(seed=10, style=_style(layout)), seed=51)
    vlm = tm.vlm_make(layout=layout, lm=tm.llama_make(seed=52), vision_seed=0, projector_seed=53, vision=tower)
    report = lineage_compare(candidate=tm.model_write(vlm, tmp_path / "vlm"), reference=vlm_refs[layout]).to_dict()
    parts = _by_kind(report)
    assert report["verdict"] == "derived"
    assert parts["vision"]["verdict"] == "derived" and parts["vision"]["p_value"] < 1e-6
    assert parts["language"]["verdict"] == "independent"
    # The report says which component derives and that the language models are independent.
    assert report["reason"].startswith("Vision encoder:")
    assert "language model: independent" in report["reason"]
    assert report["evidence"]["components"]["pairs_tested"] == 3
    # Holm over the three pairs: the lead p-value is at least 3 x the vision pair's own one.
    assert parts["vision"]["p_value"] >= min(1.0, 3 * parts["vision"]["p_value_raw"]) * 0.999


@pytest.mark.parametrize("layout", LAYOUTS)
def test_independent_vlms_are_never_derived(layout: str, vlm_refs: dict[str, Fingerprint], tmp_path: Path) -> None:
    for seed in (61, 62):
        vlm = tm.vlm_make(layout=layout, lm=tm.llama_make(seed=seed), vision_seed=seed + 100, projector_seed=seed + 200)
        report = lineage_compare(candidate=tm.model_write(vlm, tmp_path / f"v{seed}"),
                                 reference=vlm_refs[layout]).to_dict()
        assert report["verdict"] in ("independent", "inconclusive")
        assert all(c["verdict"] != "derived" for c in report["components"])
        assert report["evidence"]["components"]["lead"] == "language"


def test_a_standalone_vision_encoder_reference_finds_the_tower_in_any_layout(vlm_refs: dict[str, Fingerprint],
                                                                             tmp_path: Path) -> None:
    encoder = fingerprint_build(path=tm.model_write(tm.vision_encoder_make(seed=10), tmp_path / "siglip"))
    for layout in ("llava_ov", "custom"):  # SigLIP towers, one renamed beyond recognition
        report = lineage_compare(candidate=vlm_refs[layout], reference=encoder).to_dict()
        assert [(c["candidate"], c["verdict"]) for c in report["components"]] == [("vision", "derived")]
    # Qwen2.5-VL's tower is another model: comparable, and not derived.
    report = lineage_compare(candidate=vlm_refs["qwen25vl"], reference=encoder).to_dict()
    assert report["verdict"] != "derived"
    # A text-only LLM against a vision encoder: nothing of the same kind.
    lm_only = lineage_compare(candidate=tm.model_write(tm.llama_make(seed=71), tmp_path / "lm"), reference=encoder)
    assert lm_only.verdict == "inconclusive" and not lm_only.comparable and lm_only.components == []


def test_bundles_keep_every_component_and_old_bundles_load_as_a_language_model(
        vlm_refs: dict[str, Fingerprint], llama_print: Fingerprint, tmp_path: Path) -> None:
    ref = vlm_refs["llava_ov"]
    bundle = fingerprint_save(ref, tmp_path / "vlm.npz")
    loaded = fingerprint_load(bundle)
    assert list(loaded.component_prints()) == ["language", "vision", "projector"]
    assert loaded.components["vision"].meta["hidden_size"] == tm.VISION_WIDTH
    tower = tm.tensors_finetune(tm.vision_make(seed=10), seed=81)
    cand = tm.model_write(tm.vlm_make(layout="llava_ov", lm=tm.llama_make(seed=82), vision_seed=0, projector_seed=83,
                                      vision=tower), tmp_path / "cand")
    # The float16 bundle (format 2) gives the very same p-values; the compact one (4-bit rows) the
    # same verdicts, each component found again in it.
    exact = fingerprint_load(fingerprint_save(ref, tmp_path / "vlm-f16.npz", compact=False))
    assert list(exact.component_prints()) == ["language", "vision", "projector"]
    direct, via, via_exact = (lineage_compare(candidate=cand, reference=r).to_dict() for r in (ref, bundle, exact))
    assert [(c["candidate"], c["verdict"], c["p_value"]) for c in direct["components"]] == \
        [(c["candidate"], c["verdict"], c["p_value"]) for c in via_exact["components"]]
    assert [(c["candidate"], c["verdict"]) for c in direct["components"]] == \
        [(c["candidate"], c["verdict"]) for c in via["components"]]
    assert next(c for c in via["components"] if c["candidate"] == "vision")["verdict"] == "derived"
    # A bundle written before components: no component arrays, no "component" in its metadata.
    before = Fingerprint(meta={k: v for k, v in llama_print.meta.items() if k != "component"},
                         layers=llama_print.layers, embedding_tokens=llama_print.embedding_tokens,
                         embedding_rows=llama_print.embedding_rows, embedding_hashes=llama_print.embedding_hashes,
                         tokenizer=llama_print.tokenizer)
    old_fp = fingerprint_load(fingerprint_save(before, tmp_path / "old.npz"))
    assert "component" not in old_fp.meta and list(old_fp.component_prints()) == ["language"]
    report = lineage_compare(candidate=vlm_refs["custom"], reference=old_fp).to_dict()
    assert [(c["candidate"], c["verdict"]) for c in report["components"]] == [("language", "derived")]


def test_correction_across_references_reaches_the_component_entries(vlm_refs: dict[str, Fingerprint],
                                                                    llama_print: Fingerprint, tmp_path: Path) -> None:
    tower = tm.tensors_finetune(tm.vision_make(seed=10), seed=91)
    cand = tm.model_write(tm.vlm_make(layout="llava_ov", lm=tm.llama_make(seed=92), vision_seed=0, projector_seed=93,
                                      vision=tower), tmp_path / "cand")
    reports = lineage_test_against(candidate=cand, references=[llama_print, vlm_refs["llava_ov"]])
    assert reports[0].verdict != "derived" and reports[1].verdict == "derived"
    vision = _by_kind(reports[1].to_dict())["vision"]
    assert vision["verdict"] == "derived" and vision["p_value"] <= reports[1].p_value * 1.001


def test_compare_command_prints_components(vlm_refs: dict[str, Fingerprint], tmp_path: Path) -> None:
    from django.core.management import call_command

    from compliance.management.commands import compare

    ref = fingerprint_save(vlm_refs["qwen25vl"], tmp_path / "ref.npz")
    tower = tm.tensors_finetune(tm.vision_make(seed=10, style="qwen"), seed=95)
    cand = tm.model_write(tm.vlm_make(layout="qwen25vl", lm=tm.llama_make(seed=96), vision_seed=0, projector_seed=97,
                                      vision=tower), tmp_path / "cand")
    out = StringIO()
    call_command(compare.Command(), str(cand), str(ref), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert {"verdict", "p_value", "evidence", "layers", "components"} <= set(data)
    assert data["verdict"] == "derived"
    for entry in data["components"]:
        assert {"candidate", "reference", "verdict", "p_value", "layers"} <= set(entry)
        assert entry["candidate"] in ("language", "vision", "audio", "projector")
    assert {c["candidate"]: c["verdict"] for c in data["components"]}["vision"] == "derived"
    out = StringIO()
    call_command(compare.Command(), str(cand), str(ref), stdout=out)
    assert "vision: derived" in out.getvalue() and "language: independent" in out.getvalue()


def _encoder_layers(prefix: str, d: int, f: int, layers: int, qkv: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        p = f"{prefix}{i}."
        if qkv == "fused":
            shapes[p + "attn.qkv.weight"], shapes[p + "attn.proj.weight"] = (3 * d, d), (d, d)
            shapes[p + "norm1.weight"], shapes[p + "norm2.weight"] = (d,), (d,)
        else:
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[p + f"self_attn.{n}.weight"] = (d, d)
            shapes[p + "self_attn_layer_norm.weight"], shapes[p + "final_layer_norm.weight"] = (d,), (d,)
        shapes[p + "mlp.fc1.weight" if qkv == "fused" else p + "fc1.weight"] = (f, d)
        shapes[p + "mlp.fc2.weight" if qkv == "fused" else p + "fc2.weight"] = (d, f)
    return shapes


def _llm_layers(prefix: str, d: int = 896, f: int = 4864, layers: int = 4, vocab: int = 151655) -> dict:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (d, d), p + "self_attn.k_proj.weight": (128, d),
                   p + "self_attn.v_proj.weight": (128, d), p + "self_attn.o_proj.weight": (d, d),
                   p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d),
                   p + "mlp.down_proj.weight": (d, f), p + "input_layernorm.weight": (d,),
                   p + "post_attention_layernorm.weight": (d,)}
    return shapes | {f"{prefix}embed_tokens.weight": (vocab, d), f"{prefix}norm.weight": (d,)}


def test_internvl_and_qwen2_audio_shapes_split_into_their_components() -> None:
    """Real widths, shapes only: InternVL2 (InternViT-300M 1024 wide, ``mlp1`` over 2 x 2 merged
    patches, Qwen2-0.5B) and Qwen2-Audio (Whisper-large-v3 encoder 1280 wide with 128 mel bins)."""
    internvl = _encoder_layers("vision_model.encoder.layers.", 1024, 4096, 4, "fused") | {
        "vision_model.embeddings.patch_embedding.weight": (1024, 3, 14, 14),
        "vision_model.embeddings.position_embedding": (1, 1025, 1024),
        "mlp1.0.weight": (4096,), "mlp1.1.weight": (896, 4096), "mlp1.3.weight": (896, 896),
        "language_model.lm_head.weight": (151655, 896)} | _llm_layers("language_model.model.")
    parts = {p.kind: p for p in components_split(internvl, {"llm_config": {"vocab_size": 151655}})}
    assert set(parts) == {"language", "vision", "projector"}
    assert (parts["vision"].hidden_size, parts["language"].hidden_size, parts["projector"].prefix) == (1024, 896, "mlp1")
    assert set(parts["projector"].tensors) == {"mlp1.0.weight", "mlp1.1.weight", "mlp1.3.weight"}
    audio = _encoder_layers("audio_tower.layers.", 1280, 5120, 4, "separate") | {
        "audio_tower.conv1.weight": (1280, 128, 3), "audio_tower.conv2.weight": (1280, 1280, 3),
        "audio_tower.embed_positions.weight": (1500, 1280), "audio_tower.layer_norm.weight": (1280,),
        "multi_modal_projector.linear.weight": (896, 1280), "lm_head.weight": (151655, 896),
    } | _llm_layers("language_model.model.")
    parts = {p.kind: p for p in components_split(audio, {})}
    assert set(parts) == {"language", "audio", "projector"}
    assert "mel-spectrogram" in parts["audio"].evidence[0] and parts["audio"].hidden_size == 1280
    assert parts["projector"].tensors == ["multi_modal_projector.linear.weight"]


def test_a_tower_renumbered_into_the_language_models_block_sequence_is_still_a_vision_encoder(
        vlm_refs: dict[str, Fingerprint], tmp_path: Path) -> None:
    """One name prefix for every block (``dec.0-3`` the tower, ``dec.4-9`` the language model): the
    blocks are told apart by their residual width, and the reused tower is found as a vision encoder."""
    tower = tm.tensors_finetune(tm.vision_make(seed=10), seed=111)
    vlm = tm.vlm_make(layout="custom", lm=tm.llama_make(seed=112), vision_seed=0, projector_seed=113, vision=tower)
    merged = {}
    for name, w in vlm.tensors.items():
        parts = name.split(".")
        if parts[0] == "enc":
            name = ".".join(["dec", parts[1], *parts[2:]])
        elif parts[0] == "dec":
            name = ".".join(["dec", str(int(parts[1]) + tm.VISION_LAYERS), *parts[2:]])
        merged[name] = w
    vlm.tensors = merged
    path = tm.model_write(vlm, tmp_path / "merged")
    parts = _split(path)
    assert {k: (p["prefix"], p["hidden_size"], p["layers"]) for k, p in parts.items() if k != "projector"} == {
        "language": ("dec.", 256, 6), "vision": ("dec.", tm.VISION_WIDTH, tm.VISION_LAYERS)}
    report = lineage_compare(candidate=path, reference=vlm_refs["custom"]).to_dict()
    assert {c["candidate"]: c["verdict"] for c in report["components"]}["vision"] == "derived"
    assert {c["candidate"]: c["verdict"] for c in report["components"]}["language"] != "derived"


def test_language_models_of_other_widths_leave_the_verdict_to_the_components_that_compare(
        vlm_refs: dict[str, Fingerprint], tmp_path: Path) -> None:
    narrow = tm.llama_make(seed=121, d=128, f=256, heads=2, kv_heads=1)
    vlm = tm.vlm_make(layout="llava_ov", lm=narrow, vision_seed=122, projector_seed=123)
    report = lineage_compare(candidate=tm.model_write(vlm, tmp_path / "narrow"), reference=vlm_refs["llava_ov"])
    parts = _by_kind(report.to_dict())
    assert parts["language"]["comparable"] is False and "width" in parts["language"]["reason"]
    # The vision encoders could be compared: the report stands on them, not on "not comparable".
    assert report.comparable and report.evidence["components"]["lead"] == "vision"
    # Vision and projector (same vision-side width) were tested; the language pair could not be.
    assert report.verdict != "derived" and report.evidence["components"]["pairs_tested"] == 2

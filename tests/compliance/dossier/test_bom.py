"""The CycloneDX ML-BOM: valid against the 1.6 schema and carrying the lineage as data."""

from __future__ import annotations

import json

from compliance.dossier.bom import PROPERTY_PREFIX, dossier_bom_json, dossier_bom_validate
from compliance.dossier.sample import sample_context_build


def _props(component: dict) -> dict[str, str]:
    return {p["name"].removeprefix(PROPERTY_PREFIX + ":"): p["value"] for p in component.get("properties", [])}


def test_bom_validates_against_the_bundled_cyclonedx_1_6_schema():
    text = dossier_bom_json(context=sample_context_build())
    assert dossier_bom_validate(bom_json=text) == []
    bom = json.loads(text)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"


def test_hostile_strings_still_give_a_valid_bom():
    assert dossier_bom_validate(bom_json=dossier_bom_json(context=sample_context_build(hostile=True))) == []


def test_model_files_hashes_and_licences():
    context = sample_context_build()
    bom = json.loads(dossier_bom_json(context=context))
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["version"] == "3" and model["supplier"]["name"] == context.project.vendor
    files = {c["name"]: c for c in model["components"] if c["type"] == "file"}
    weights = files["model-00001-of-00002.safetensors"]
    assert weights["hashes"] == [{"alg": "SHA-256", "content": context.artifacts[0].sha256}]
    assert weights["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert _props(weights)["artifact:kind"] == "weights"


def test_declared_and_detected_lineage_are_both_recorded():
    bom = json.loads(dossier_bom_json(context=sample_context_build()))
    model = bom["metadata"]["component"]
    assert _props(model)["declared:from_scratch"] == "true"
    # The vision encoder is declared from scratch, and the check found otherwise.
    encoder = next(c for c in model["components"] if c["name"] == "vision encoder")
    encoder_props = _props(encoder)
    assert encoder_props["declared:base_model"] == "none (trained from scratch)"
    assert encoder_props["detected:lineage:Qwen2.5-VL-7B-Instruct"].startswith("derived (p = 1e-30")
    # The detected base model is an ancestor in the pedigree, marked as detected.
    (ancestor,) = model["pedigree"]["ancestors"]
    assert ancestor["name"] == "Qwen2.5-VL-7B-Instruct"
    assert _props(ancestor)["lineage:source"] == "detected"


def test_same_dossier_number_gives_the_same_serial_number():
    first = json.loads(dossier_bom_json(context=sample_context_build()))
    second = json.loads(dossier_bom_json(context=sample_context_build()))
    assert first["serialNumber"] == second["serialNumber"]


def test_validator_reports_an_invalid_bom():
    errors = dossier_bom_validate(bom_json='{"bomFormat": "CycloneDX", "specVersion": "1.6", "unexpected": 1}')
    assert errors and "unexpected" in errors[0]

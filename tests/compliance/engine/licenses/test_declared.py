"""Declared licences from metadata, model cards and SBOMs (real formats, built on the fly)."""

import json

from compliance.engine.licenses import license_declarations_extract
from tests.compliance.engine.licenses.conftest import installed_file


def _one(path, text):
    found = license_declarations_extract(path=path, data=text.encode() if isinstance(text, str) else text)
    assert len(found) == 1, found
    return found[0]


def test_model_card_other_with_license_name_maps_to_scancode_key():
    card = "---\nlicense: other\nlicense_name: llama3.1\nlicense_link: https://llama.meta.com/llama3_1/license/\nbase_model:\n- meta-llama/Llama-3.1-8B\n---\n# Model\n"
    found = _one("README.md", card)
    assert found.license_expression == "LicenseRef-scancode-llama-3.1-license-2024"
    assert found.base_models == ["meta-llama/Llama-3.1-8B"]
    assert found.license_link.startswith("https://llama.meta.com")


def test_model_card_hf_ids_for_gemma_and_openrail():
    assert _one("README.md", "---\nlicense: gemma\n---\n").license_expression == "LicenseRef-scancode-gemma-tou-2024-04-01"
    assert _one("README.md", "---\nlicense: creativeml-openrail-m\n---\n").license_expression == "LicenseRef-scancode-stable-diffusion-2022-08-22"
    assert _one("README.md", "---\nlicense: apache-2.0\n---\n").license_expression == "Apache-2.0"


def test_broken_front_matter_is_reported_not_raised():
    found = _one("README.md", "---\nlicense: [unclosed\n---\n")
    assert found.error and "README.md" in found.error


def test_real_core_metadata_license_expression():
    path = installed_file("license-expression", "METADATA")
    found = license_declarations_extract(path="METADATA", data=open(path, "rb").read())
    assert found and found[0].license_expression == "Apache-2.0"
    assert found[0].component == "license-expression"


def test_pyproject_setup_cfg_package_json_cargo_go_mod():
    assert _one("pyproject.toml", '[project]\nname = "x"\nlicense = "MIT OR Apache-2.0"\n').license_expression == "MIT OR Apache-2.0"
    assert _one("setup.cfg", "[metadata]\nname = x\nlicense = BSD-3-Clause\n").license_expression == "BSD-3-Clause"
    assert _one("package.json", json.dumps({"name": "x", "license": "ISC"})).license_expression == "ISC"
    cargo = _one("Cargo.toml", '[package]\nname = "x"\nlicense = "MIT/Apache-2.0"\n')
    assert cargo.license_expression == "MIT OR Apache-2.0"
    go = _one("go.mod", "module example.com/thing\n\ngo 1.22\n")
    assert go.component == "example.com/thing" and go.license_expression is None


def test_cyclonedx_bom_from_the_library(tmp_path):
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6

    bom = Bom()
    bom.components.add(Component(name="tiny-model", type=ComponentType.MACHINE_LEARNING_MODEL,
                                 licenses=[LicenseExpression("Apache-2.0 OR MIT")]))
    text = JsonV1Dot6(bom).output_as_string()
    found = license_declarations_extract(path="sbom.cdx.json", data=text.encode())
    assert [(f.component, f.license_expression, f.source) for f in found] == [("tiny-model", "Apache-2.0 OR MIT", "cyclonedx")]


def test_spdx_json_and_tag_value():
    doc = {"spdxVersion": "SPDX-2.3", "packages": [{"name": "w", "licenseDeclared": "GPL-2.0-only", "licenseConcluded": "NOASSERTION"}]}
    assert _one("bom.spdx.json", json.dumps(doc)).license_expression == "GPL-2.0-only"
    tv = "SPDXVersion: SPDX-2.3\nPackageName: w\nPackageLicenseDeclared: MPL-2.0\n"
    found = _one("w.spdx", tv)
    assert (found.component, found.license_expression) == ("w", "MPL-2.0")


def test_unrelated_files_declare_nothing():
    assert license_declarations_extract(path="src/model.py", data=b"license = 'MIT'\n") == []

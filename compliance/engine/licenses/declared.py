"""Declared licences: what metadata, model cards and SBOMs say a thing is under.

Detection says what the files contain; declarations say what the vendor (or
upstream) claims. The inventory compares the two. Parsers here are small and
strict: a malformed file yields a `DeclaredLicense` with an `error`, never
an exception, because one bad package.json must not stop a scan.

Model cards: Hugging Face front matter uses its own ids (`llama3.1`,
`gemma`, `openrail`); `HF_LICENSE_IDS` maps them to SPDX ids or ScanCode
keys (as LicenseRef-scancode-<key>), following licenses-and-code.md.
"""

from __future__ import annotations

import configparser
import email.parser
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field

import functools

from license_expression import ExpressionError, get_spdx_licensing


@functools.cache
def _spdx_licensing():
    """SPDX licensing, built on first use (it parses a 1 MB key index, about 0.2 s)."""
    return get_spdx_licensing()

# Hugging Face `license:` ids -> SPDX expression (or LicenseRef-scancode-<key>
# where SPDX has no id; SPDX rejected OpenRAIL, license-list-XML #1622).
HF_LICENSE_IDS = {
    "apache-2.0": "Apache-2.0",
    "mit": "MIT",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cc-by-nc-nd-4.0": "CC-BY-NC-ND-4.0",
    "cc0-1.0": "CC0-1.0",
    "gpl-3.0": "GPL-3.0-only",
    "agpl-3.0": "AGPL-3.0-only",
    "lgpl-3.0": "LGPL-3.0-only",
    "openrail": "LicenseRef-scancode-bigscience-open-rail-m",
    "bigscience-openrail-m": "LicenseRef-scancode-bigscience-open-rail-m",
    "bigscience-bloom-rail-1.0": "LicenseRef-scancode-bigscience-rail-1.0",
    "bigcode-openrail-m": "LicenseRef-scancode-bigcode-open-rail-m-v1",
    "creativeml-openrail-m": "LicenseRef-scancode-stable-diffusion-2022-08-22",
    "llama2": "LicenseRef-scancode-llama-2-license-2023",
    "llama3": "LicenseRef-scancode-llama-license-2023",
    "llama3.1": "LicenseRef-scancode-llama-3.1-license-2024",
    "llama3.2": "LicenseRef-scancode-llama-3.2-license-2024",
    "llama3.3": "LicenseRef-scancode-llama-3.3-license-2024",
    "llama4": "LicenseRef-scancode-llama-4-license-2025",
    "gemma": "LicenseRef-scancode-gemma-tou-2024-04-01",
    "qwen": "LicenseRef-scancode-qwen-2024",
    "tongyi-qianwen": "LicenseRef-scancode-tongyi-qianwen-2023",
    "deepseek": "LicenseRef-scancode-deepseek-la-1.0",
    "deepseek-license": "LicenseRef-scancode-deepseek-la-1.0",
}

# PyPI trove classifiers that name a licence (the common ones; others go to ScanCode).
CLASSIFIER_LICENSES = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: BSD License": "LicenseRef-scancode-bsd-unspecified",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: Public Domain": "LicenseRef-scancode-public-domain",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

MODEL_CARD_NAMES = ("README.md", "readme.md", "MODEL_CARD.md", "model_card.md", "modelcard.md")


@dataclass
class DeclaredLicense:
    """One licence declaration found in a metadata file."""

    path: str
    source: str  # model-card | pyproject | setup.cfg | core-metadata | package.json | cargo | go.mod | cyclonedx | spdx
    raw: str | None
    license_expression: str | None
    component: str | None = None
    license_link: str | None = None
    base_models: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DeclaredLicense":
        return cls(**data)


def spdx_expression_normalise(*, text: str | None) -> str | None:
    """A declared licence string as an SPDX expression, or None if it is not one.

    Valid SPDX ("Apache-2.0", "MIT OR Apache-2.0") is normalised by
    license-expression; free text ("Apache License 2.0", "BSD") goes through
    ScanCode's index like ScanCode's own package scan does.
    """
    if not text or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        parsed = _spdx_licensing().parse(text, validate=True, strict=False)
        if parsed is not None:
            return str(parsed)
    except ExpressionError:
        pass
    except Exception:
        pass
    lowered = text.lower()
    if lowered in HF_LICENSE_IDS:
        return HF_LICENSE_IDS[lowered]
    if text.startswith("LicenseRef-"):
        return text
    return _scancode_expression_from_text(text=text)


def _scancode_expression_from_text(*, text: str) -> str | None:
    """Detect the licence named in a short free-text declaration."""
    from compliance.engine.licenses.scancode_index import scancode_spdx_expression, scancode_state_get

    from licensedcode.detection import detect_licenses

    state = scancode_state_get()
    expressions = [
        d.license_expression
        for d in detect_licenses(index=state.index, query_string=text[:20000])
        if d.license_expression
    ]
    if not expressions:
        return None
    from packagedcode.utils import combine_expressions

    combined = combine_expressions(expressions=expressions, relation="AND", unique=True, licensing=state.licensing)
    return scancode_spdx_expression(expression=str(combined))


def _model_card_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    import yaml

    if not text.startswith("---"):
        return []
    end = text.find("\n---", 3)
    if end < 0:
        return [DeclaredLicense(path=path, source="model-card", raw=None, license_expression=None,
                                error=f"{path}: YAML front matter opens with '---' but never closes")]
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as error:
        return [DeclaredLicense(path=path, source="model-card", raw=None, license_expression=None,
                                error=f"{path}: model card front matter is not valid YAML ({error})")]
    if not isinstance(meta, dict):
        return []
    raw = meta.get("license")
    name = meta.get("license_name")
    link = meta.get("license_link")
    base = meta.get("base_model") or []
    base_models = [base] if isinstance(base, str) else [str(b) for b in base if b]
    if raw is None and name is None:
        if base_models:
            return [DeclaredLicense(path=path, source="model-card", raw=None, license_expression=None,
                                    base_models=base_models)]
        return []
    raws = raw if isinstance(raw, list) else [raw]
    expressions = []
    for value in raws:
        value = str(value).strip() if value is not None else ""
        if value.lower() == "other" or not value:
            # `license: other` + `license_name: llama3.1`: the name carries it.
            key = str(name or "").strip().lower()
            expressions.append(HF_LICENSE_IDS.get(key) or (f"LicenseRef-{re.sub(r'[^A-Za-z0-9.-]+', '-', key)}" if key else None))
        else:
            expressions.append(HF_LICENSE_IDS.get(value.lower()) or spdx_expression_normalise(text=value))
    expressions = [e for e in expressions if e]
    return [DeclaredLicense(
        path=path, source="model-card", raw=", ".join(str(r) for r in raws if r is not None) + (f" ({name})" if name else ""),
        license_expression=" AND ".join(f"({e})" if " " in e else e for e in expressions) or None,
        license_link=str(link) if link else None, base_models=base_models,
        component=str(meta.get("model_name")) if meta.get("model_name") else None,
    )]


def _core_metadata_parse(*, path: str, text: str, source: str) -> list[DeclaredLicense]:
    message = email.parser.Parser().parsestr(text, headersonly=True)
    name = message.get("Name")
    expression = message.get("License-Expression")
    if expression:
        return [DeclaredLicense(path=path, source=source, raw=expression, component=name,
                                license_expression=spdx_expression_normalise(text=expression))]
    found = []
    classifiers = [c.strip() for c in message.get_all("Classifier") or [] if c.strip().startswith("License ::")]
    for classifier in classifiers:
        spdx = CLASSIFIER_LICENSES.get(classifier) or spdx_expression_normalise(text=classifier)
        found.append(DeclaredLicense(path=path, source=source, raw=classifier, component=name, license_expression=spdx))
    license_field = (message.get("License") or "").strip()
    # A License field holding the whole licence text is common (hundreds of
    # lines); its first line is what people mean by the declaration.
    if license_field and license_field.upper() != "UNKNOWN" and not found:
        found.append(DeclaredLicense(path=path, source=source, raw=license_field.splitlines()[0][:200], component=name,
                                     license_expression=spdx_expression_normalise(text=license_field)))
    return found


def _pyproject_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [DeclaredLicense(path=path, source="pyproject", raw=None, license_expression=None,
                                error=f"{path}: not valid TOML ({error})")]
    project = data.get("project") or data.get("tool", {}).get("poetry") or {}
    name = project.get("name")
    value = project.get("license")
    found = []
    if isinstance(value, str):
        found.append(DeclaredLicense(path=path, source="pyproject", raw=value, component=name,
                                     license_expression=spdx_expression_normalise(text=value)))
    elif isinstance(value, dict) and value.get("text"):
        found.append(DeclaredLicense(path=path, source="pyproject", raw=value["text"][:200], component=name,
                                     license_expression=spdx_expression_normalise(text=value["text"])))
    for classifier in project.get("classifiers") or []:
        if classifier.startswith("License ::") and not found:
            found.append(DeclaredLicense(path=path, source="pyproject", raw=classifier, component=name,
                                         license_expression=CLASSIFIER_LICENSES.get(classifier) or spdx_expression_normalise(text=classifier)))
    return found


def _setup_cfg_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as error:
        return [DeclaredLicense(path=path, source="setup.cfg", raw=None, license_expression=None,
                                error=f"{path}: not a valid setup.cfg ({error})")]
    if not parser.has_section("metadata"):
        return []
    name = parser.get("metadata", "name", fallback=None)
    value = parser.get("metadata", "license", fallback=None)
    found = []
    if value:
        found.append(DeclaredLicense(path=path, source="setup.cfg", raw=value, component=name,
                                     license_expression=spdx_expression_normalise(text=value)))
    for classifier in parser.get("metadata", "classifiers", fallback="").splitlines():
        classifier = classifier.strip()
        if classifier.startswith("License ::") and not found:
            found.append(DeclaredLicense(path=path, source="setup.cfg", raw=classifier, component=name,
                                         license_expression=CLASSIFIER_LICENSES.get(classifier) or spdx_expression_normalise(text=classifier)))
    return found


def _package_json_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return [DeclaredLicense(path=path, source="package.json", raw=None, license_expression=None,
                                error=f"{path}: not valid JSON ({error})")]
    if not isinstance(data, dict):
        return []
    name = data.get("name")
    values = []
    if isinstance(data.get("license"), str):
        values.append(data["license"])
    elif isinstance(data.get("license"), dict):
        values.append(data["license"].get("type"))
    for item in data.get("licenses") or []:
        values.append(item.get("type") if isinstance(item, dict) else item)
    return [DeclaredLicense(path=path, source="package.json", raw=str(v), component=name,
                            license_expression=spdx_expression_normalise(text=str(v)))
            for v in values if v]


def _cargo_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [DeclaredLicense(path=path, source="cargo", raw=None, license_expression=None,
                                error=f"{path}: not valid TOML ({error})")]
    package = data.get("package") or {}
    value = package.get("license")
    if not value:
        return []
    # Cargo allowed "MIT/Apache-2.0" before SPDX syntax; it means OR.
    normal = value.replace("/", " OR ") if "/" in value and " " not in value else value
    return [DeclaredLicense(path=path, source="cargo", raw=value, component=package.get("name"),
                            license_expression=spdx_expression_normalise(text=normal))]


def _go_mod_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    # go.mod declares no licence; record the module so the inventory can say
    # "declared by: none (Go module X)" rather than silently nothing.
    match = re.search(r"^module\s+(\S+)", text, re.MULTILINE)
    if not match:
        return []
    return [DeclaredLicense(path=path, source="go.mod", raw=None, license_expression=None, component=match.group(1))]


def _cyclonedx_licenses(entries) -> list[str]:
    found = []
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("expression"):
            found.append(entry["expression"])
        lic = entry.get("license") or {}
        if lic.get("id"):
            found.append(lic["id"])
        elif lic.get("name"):
            found.append(lic["name"])
    return found


def _sbom_json_parse(*, path: str, data: dict) -> list[DeclaredLicense]:
    found = []
    if data.get("bomFormat") == "CycloneDX":
        components = list(data.get("components") or [])
        root = (data.get("metadata") or {}).get("component")
        if root:
            components.insert(0, root)
        for component in components:
            for value in _cyclonedx_licenses(component.get("licenses")):
                found.append(DeclaredLicense(path=path, source="cyclonedx", raw=value,
                                             component=component.get("name"),
                                             license_expression=spdx_expression_normalise(text=value)))
        return found
    if str(data.get("spdxVersion", "")).startswith("SPDX-"):
        for package in data.get("packages") or []:
            for key in ("licenseDeclared", "licenseConcluded"):
                value = package.get(key)
                if value and value not in ("NOASSERTION", "NONE"):
                    found.append(DeclaredLicense(path=path, source="spdx", raw=value, component=package.get("name"),
                                                 license_expression=spdx_expression_normalise(text=value)))
                    break
    return found


def _spdx_tag_value_parse(*, path: str, text: str) -> list[DeclaredLicense]:
    found = []
    name = None
    pending = {}
    for line in text.splitlines():
        if line.startswith("PackageName:"):
            name = line.split(":", 1)[1].strip()
        for key in ("PackageLicenseDeclared:", "PackageLicenseConcluded:"):
            if line.startswith(key):
                value = line.split(":", 1)[1].strip()
                if value not in ("NOASSERTION", "NONE") and name not in pending:
                    pending[name] = value
    for name, value in pending.items():
        found.append(DeclaredLicense(path=path, source="spdx", raw=value, component=name,
                                     license_expression=spdx_expression_normalise(text=value)))
    return found


MANIFEST_NAMES = ("PKG-INFO", "METADATA", "pyproject.toml", "setup.cfg", "package.json", "Cargo.toml", "go.mod")
SBOM_SUFFIXES = (".cdx.json", ".spdx.json", ".spdx", "bom.json", "sbom.json")


def path_declares_licenses(*, path: str) -> bool:
    """True for a file whose name alone says it declares licences: a model card, package
    metadata or manifest, or an SBOM (JSON SBOMs under other names are told by their content)."""
    base = os.path.basename(path)
    return base in MODEL_CARD_NAMES or base in MANIFEST_NAMES or base.lower().endswith(SBOM_SUFFIXES)


def license_declarations_extract(*, path: str, data: bytes) -> list[DeclaredLicense]:
    """Declared licences in one file, recognised by its name (and for JSON, its shape)."""
    base = os.path.basename(path)
    lowered = base.lower()
    is_candidate = (
        path_declares_licenses(path=path)
        or (lowered.endswith(".json") and len(data) < 50 * 1024 * 1024 and b'"bomFormat"' in data[:4096])
        or (lowered.endswith(".json") and b'"spdxVersion"' in data[:4096])
    )
    if not is_candidate:
        return []
    text = data.decode("utf-8", errors="replace")
    try:
        if base in MODEL_CARD_NAMES:
            return _model_card_parse(path=path, text=text)
        if base in ("PKG-INFO", "METADATA"):
            return _core_metadata_parse(path=path, text=text, source="core-metadata")
        if base == "pyproject.toml":
            return _pyproject_parse(path=path, text=text)
        if base == "setup.cfg":
            return _setup_cfg_parse(path=path, text=text)
        if base == "package.json":
            return _package_json_parse(path=path, text=text)
        if base == "Cargo.toml":
            return _cargo_parse(path=path, text=text)
        if base == "go.mod":
            return _go_mod_parse(path=path, text=text)
        if lowered.endswith(".spdx") or (text.lstrip().startswith("SPDXVersion:")):
            return _spdx_tag_value_parse(path=path, text=text)
        if lowered.endswith(".json"):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                return [DeclaredLicense(path=path, source="sbom", raw=None, license_expression=None,
                                        error=f"{path}: SBOM is not valid JSON ({error})")]
            return _sbom_json_parse(path=path, data=parsed) if isinstance(parsed, dict) else []
    except Exception as error:  # a parser bug must not stop the scan; say where
        return [DeclaredLicense(path=path, source="unknown", raw=None, license_expression=None,
                                error=f"{path}: could not read licence declaration ({type(error).__name__}: {error})")]
    return []

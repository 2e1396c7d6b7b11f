"""CycloneDX 1.6 ML-BOM of a submission, embedded in the dossier.

Built with ``cyclonedx-python-lib`` so the output follows the specification
the library ships (and is validated against its bundled JSON schema in the
tests). Layout:

- ``metadata.component``: the submitted model (``machine-learning-model``),
  named after the project, versioned by the submission version, supplied by
  the vendor consortium;
- nested under it, one ``file`` component per artifact with its SHA-256 and
  the licence recorded at upload, and one ``machine-learning-model``
  component per declared component (encoder, decoder, tokenizer...);
- lineage as data, not prose: the declaration (from-scratch claim, declared
  base model per component) and what the checks detected are ``properties``
  in the ``sovereign-ai-portal:`` namespace, and every base model, declared
  or detected, is a ``pedigree.ancestors`` entry whose properties say which.

Pure Python (no Django).
"""

from __future__ import annotations

import math
import uuid
import warnings
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.dependency import Dependency
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion

from compliance.dossier.context import DossierContext, LineageResult

__all__ = ["PROPERTY_PREFIX", "dossier_bom_json", "dossier_bom_build", "dossier_bom_validate"]

PROPERTY_PREFIX = "sovereign-ai-portal"
# Fixed namespace so the same dossier number always yields the same BOM
# serial number (a re-render is byte-comparable, not a new BOM).
_SERIAL_NAMESPACE = uuid.UUID("6f1f4f0e-2b7c-4d7e-9a55-6d0b8f3f6a11")
_LICENCES = LicenseFactory()


def _prop(name: str, value: Any) -> Property:
    return Property(name=f"{PROPERTY_PREFIX}:{name}", value=str(value))


def _licences(text: str) -> list:
    """SPDX id, SPDX expression, or a named licence for anything else."""
    text = (text or "").strip()
    if not text:
        return []
    return [_LICENCES.make_from_string(text)]


def _sha256(value: str) -> list[HashType]:
    value = (value or "").strip().lower()
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return [HashType(alg=HashAlgorithm.SHA_256, content=value)]
    return []


def _p_text(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "unknown"
    return f"{p:.3g}"


def _detected_lineage(context: DossierContext) -> list[tuple[str, LineageResult]]:
    """(check name, lineage result) for every lineage result of every check."""
    return [(check.name, result) for check in context.checks for result in check.lineage]


def dossier_bom_build(*, context: DossierContext) -> Bom:
    """Return the CycloneDX ``Bom`` object for the submission in ``context``."""
    submission = context.submission
    declaration = context.declaration
    supplier = OrganizationalEntity(name=context.project.vendor or "unknown vendor")
    model_ref = f"submission-{submission.id}"

    files = [
        Component(
            type=ComponentType.FILE,
            name=artifact.filename or f"artifact-{artifact.id}",
            bom_ref=f"artifact-{artifact.id}",
            hashes=_sha256(artifact.sha256),
            licenses=_licences(artifact.licence),
            properties=[
                _prop("artifact:kind", artifact.kind),
                _prop("artifact:size_bytes", artifact.size),
                *([_prop("artifact:uploaded_by", artifact.uploaded_by)] if artifact.uploaded_by else []),
            ],
        )
        for artifact in context.artifacts
    ]

    detected = _detected_lineage(context)
    parts = []
    for index, declared in enumerate(declaration.components):
        ancestors = []
        if declared.base_model:
            ancestors.append(
                Component(
                    type=ComponentType.MACHINE_LEARNING_MODEL,
                    name=declared.base_model,
                    bom_ref=f"declared-base-{index}",
                    properties=[_prop("lineage:source", "declared")],
                )
            )
        props = [
            _prop("declared:base_model", declared.base_model or "none (trained from scratch)"),
        ]
        for check_name, result in detected:
            if result.component and result.component != declared.component:
                continue
            props.append(
                _prop(
                    f"detected:lineage:{result.reference_model}",
                    f"{result.conclusion} (p = {_p_text(result.p_value)}, {result.statistic_name}; check {check_name})",
                )
            )
        parts.append(
            Component(
                type=ComponentType.MACHINE_LEARNING_MODEL,
                name=declared.component,
                bom_ref=f"component-{index}",
                licenses=_licences(declared.licence),
                pedigree=Pedigree(ancestors=ancestors, notes=declared.notes or None) if ancestors or declared.notes else None,
                properties=props,
            )
        )

    # Detected base models become ancestors of the whole model when a check
    # concluded derivation; the conclusion text and p-value go with them.
    ancestors = []
    for index, (check_name, result) in enumerate(detected):
        if result.p_value is not None and result.p_value < 0.01:
            ancestors.append(
                Component(
                    type=ComponentType.MACHINE_LEARNING_MODEL,
                    name=result.reference_model,
                    bom_ref=f"detected-base-{index}",
                    hashes=_sha256(result.reference_sha256),
                    properties=[
                        _prop("lineage:source", "detected"),
                        _prop("lineage:check", check_name),
                        _prop("lineage:p_value", _p_text(result.p_value)),
                        _prop("lineage:statistic", result.statistic_name),
                        _prop("lineage:conclusion", result.conclusion),
                        *([_prop("lineage:component", result.component)] if result.component else []),
                    ],
                )
            )

    licence_rows = [row for check in context.checks for row in check.licences]
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=context.project.name,
        version=str(submission.version),
        bom_ref=model_ref,
        supplier=supplier,
        description=f"{context.programme.name}: submission {submission.version} of {context.project.name}",
        components=[*files, *parts],
        pedigree=Pedigree(ancestors=ancestors) if ancestors else None,
        properties=[
            _prop("declared:from_scratch", str(bool(declaration.from_scratch)).lower()),
            _prop("dossier:number", context.dossier_number),
            _prop("submission:id", submission.id),
            *([_prop("declared:compute", declaration.compute)] if declaration.compute else []),
            *(
                _prop(f"detected:licence:{row.subject}", f"{row.expression} -> {row.outcome}")
                for row in licence_rows[:500]  # a 10,000-file licence scan belongs in the JSON attachment
            ),
        ],
    )
    bom = Bom(serial_number=uuid.uuid5(_SERIAL_NAMESPACE, context.dossier_number))
    bom.metadata.component = model
    bom.metadata.timestamp = context.issued_at
    bom.metadata.supplier = supplier
    # Declare the graph (model -> its files and parts) so consumers need not
    # infer it from nesting; also silences the library's "no dependencies" warning.
    # Built directly rather than with Bom.register_dependency, which scans every registered
    # dependency for each new one: 2,000 declared components (data from before the field
    # limits) took 47 s there, quadratic; the same graph built here is a sorted-set insert each.
    members = [*files, *parts]
    bom.dependencies.update([
        Dependency(ref=model.bom_ref, dependencies=[Dependency(ref=member.bom_ref) for member in members]),
        *(Dependency(ref=member.bom_ref) for member in members),
    ])
    return bom


def dossier_bom_json(*, context: DossierContext) -> str:
    """CycloneDX 1.6 JSON text of the submission's ML-BOM."""
    bom = dossier_bom_build(context=context)
    with warnings.catch_warnings():
        # The library warns about components outside the dependency graph
        # (nested ones); nesting is how 1.6 expresses "part of".
        warnings.simplefilter("ignore", UserWarning)
        text = JsonV1Dot6(bom).output_as_string(indent=2)
    return text


def dossier_bom_validate(*, bom_json: str) -> list[str]:
    """Errors from validating ``bom_json`` against the bundled CycloneDX 1.6
    strict JSON schema; empty when valid."""
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom_json)
    if error is None:
        return []
    data = getattr(error, "data", None)
    message = getattr(data, "message", None) or str(data or error)
    path = "/".join(str(part) for part in getattr(data, "absolute_path", []) or [])
    return [f"{path or '(root)'}: {message}"[:2000]]

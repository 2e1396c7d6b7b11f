"""Lineage: is this model derived from a known open model, declared or not?

Tests the submitted weights against the programme's reference models and the vendor's
declared base models (those in the registry), Holm-corrected across all of them, with
``compliance.engine.lineage``. Findings name the reference, the verdict and the numbers.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from compliance.checks import CheckContext, CheckFailed, CheckOutcome, storage_place
from compliance.models import ProgrammePolicy, ReferenceModel
from projects.models import Artifact
from projects.storage import StoredRangeReader, stored_file_is_local, stored_range_reader

# Names of the files a model directory view is made of (the lineage engine reads these).
MODEL_FILES = {"config.json", "tokenizer.json", "tokenizer.model", "vocab.txt", "tokenizer_config.json",
               "special_tokens_map.json", "merges.txt", "README.md", "generation_config.json",
               "model.safetensors.index.json"}


def _folder(artifact: Artifact) -> str:
    return str(PurePosixPath(artifact.original_name).parent)


def _base(artifact: Artifact) -> str:
    return PurePosixPath(artifact.original_name).name


def applies(artifact: Artifact) -> bool:
    """GGUF files; a sharded model's index; a single safetensors file with no index beside it."""
    if artifact.kind not in {Artifact.Kind.WEIGHTS, Artifact.Kind.OTHER}:
        return False
    name = _base(artifact).lower()
    if name.endswith(".gguf") or name == "model.safetensors.index.json":
        return True
    if name.endswith(".safetensors"):
        siblings = Artifact.objects.filter(submission_id=artifact.submission_id,
                                           original_name__endswith="model.safetensors.index.json")
        return not any(_folder(s) == _folder(artifact) for s in siblings)
    return False


def artifacts_read(artifact: Artifact) -> list[Artifact]:
    """What the lineage check reads: a GGUF file alone, or the model files of its folder
    (the check waits for intake to accept every one of them)."""
    if _base(artifact).lower().endswith(".gguf"):
        return [artifact]
    return [a for a in Artifact.objects.filter(submission_id=artifact.submission_id)
            if _folder(a) == _folder(artifact)
            and (_base(a) in MODEL_FILES or _base(a).lower().endswith(".safetensors"))]


@dataclass
class ModelView:
    """A model folder for the engine: ``path`` (a file or a temporary folder) and the weight
    files held in object storage, by base name, read by range (``remote``)."""

    path: Path
    remote: dict[str, StoredRangeReader] = field(default_factory=dict)


@contextlib.contextmanager
def model_view(artifact: Artifact) -> Iterator[ModelView]:
    """The artifact with its sibling files (same folder of the submission) under their original
    base names in a temporary directory, as the engine expects a model directory. On local
    storage they are linked (nothing copied); on object storage the small files are copied and
    the safetensors weights stay where they are, read by range: lineage samples well under 1 %
    of a large checkpoint's bytes, so a download would cost 100x what the check reads.
    GGUF is copied: its reader (the gguf package) memory-maps a local file."""
    siblings = artifacts_read(artifact)
    with tempfile.TemporaryDirectory(prefix="model-view-") as tmp:
        root = Path(tmp)
        remote: dict[str, StoredRangeReader] = {}
        for sibling in siblings:
            if sibling.status == Artifact.Status.REJECTED:
                continue
            if _base(sibling).lower().endswith(".safetensors") and not stored_file_is_local(
                    stored_name=sibling.file.name):
                remote[_base(sibling)] = stored_range_reader(stored_name=sibling.file.name, name=_base(sibling))
            else:
                storage_place(sibling.file.name, root / _base(sibling))
        yield ModelView(path=root / _base(artifact) if _base(artifact).lower().endswith(".gguf") else root,
                        remote=remote)


def _references(artifact: Artifact) -> tuple[list[ReferenceModel], list[dict], bool]:
    """References to test against: the programme's and the declared base models found in the registry.
    Returns them, the declared entries, and whether from-scratch training was claimed."""
    submission = artifact.submission
    declaration = getattr(submission, "declaration", None)
    declared = list(declaration.base_models) if declaration else []
    from_scratch = bool(declaration and declaration.from_scratch)
    policy = ProgrammePolicy.objects.filter(programme_id=submission.project.programme_id).first()
    refs = {r.pk: r for r in (policy.reference_models.all() if policy else [])}
    names = [d.get("name", "") for d in declared]
    for ref in ReferenceModel.objects.filter(name__in=names):
        refs[ref.pk] = ref
    return [r for r in refs.values() if r.bundle], declared, from_scratch


def _finding(severity, code, title, explanation, evidence) -> dict:
    return {"severity": severity, "category": "lineage", "code": code, "title": title[:300],
            "explanation": explanation, "evidence": evidence}


def engine_version() -> str:
    from compliance.engine.lineage import ENGINE_VERSION

    return ENGINE_VERSION


def reuse_inputs(artifact: Artifact) -> dict:
    """What ``run`` reads: every file of the model view (names, SHA-256, and whether intake
    rejected it, since rejected siblings are left out), the references it tests against with
    their bundles' SHA-256, the declared base models and from-scratch claim, the programme's
    from-scratch rule, and the weights' total size the summary reports."""
    references, declared, from_scratch = _references(artifact)
    policy = ProgrammePolicy.objects.filter(programme_id=artifact.submission.project.programme_id).first()
    return {
        "reads": sorted([a.original_name, a.sha256, a.status == Artifact.Status.REJECTED]
                        for a in artifacts_read(artifact)),
        "sha256": artifact.sha256, "name": artifact.original_name,
        "references": sorted([r.name, r.bundle.name, r.bundle_sha256] for r in references),
        "declared": declared, "from_scratch": from_scratch,
        "from_scratch_required": bool(policy and policy.from_scratch_required),
        "weights_bytes": sum(a.size for a in Artifact.objects.filter(
            submission_id=artifact.submission_id, original_name__endswith=".safetensors")) or artifact.size,
    }
def lineage_verdict(verdicts: list[str]) -> str:
    """The check's verdict over every reference: derived if any is; not comparable when no
    reference could be compared at all; independent when every comparable one is; otherwise
    inconclusive (a comparison ran and could not decide)."""
    comparable = [v for v in verdicts if v != "not_comparable"]
    if "derived" in comparable:
        return "derived"
    if verdicts and not comparable:
        return "not_comparable"
    if comparable and all(v == "independent" for v in comparable):
        return "independent"
    return "inconclusive"


def lineage_numbers(data: dict) -> dict:
    """The layer map's key numbers for the finding's sentence: sampled layers, how many map to a
    reference layer, how many to the same position, and the median over sampled layers of the
    best family's matched-row correlation (centred and aligned; the raw cosine of norm gains is
    never quoted: any two models score about 0.99 on it)."""
    layers = data.get("layers") or []
    similarities = []
    for layer in layers:
        values = [f.get("matched_correlation") for f in (layer.get("families") or {}).values()
                  if isinstance(f.get("matched_correlation"), (int, float))]
        if values:
            similarities.append(max(values))
    return {"sampled": len(layers),
            "matched": sum(1 for x in layers if x.get("reference_layer") is not None),
            "in_place": sum(1 for x in layers if x.get("reference_layer") == x.get("candidate_layer")),
            "median_similarity": round(statistics.median(similarities), 4) if similarities else None}


def _report_finding(*, ref: ReferenceModel, report, data: dict, declared_names: set, from_scratch: bool,
                    scratch_required: bool, references: int) -> dict:
    """The finding for one reference's report, with the params its sentence needs."""
    numbers = f"p = {data['p_value']:.3g} (Holm-adjusted over {references}), effect size {data['effect_size']}"
    params = {"reference": ref.name, "layers": lineage_numbers(data)}
    if not report.comparable:
        finding = _finding("info", "lineage_not_comparable", f"Not comparable with {ref.name}",
                           f"{report.reason} No weight-level comparison applies; this is not a risk.", data)
        return {**finding, "params": {**params, "difference": report.difference}}
    if report.verdict == "derived" and ref.name in declared_names:
        finding = _finding("info", "declared_base_confirmed", f"Declared base model confirmed: {ref.name}",
                           f"{report.reason} {numbers}.", data)
    elif report.verdict == "derived":
        severity = "critical" if (from_scratch or scratch_required) else "high"
        claim = " although training from scratch was declared" if from_scratch else ""
        params["scratch"] = from_scratch
        finding = _finding(severity, "undeclared_derivation", f"Undeclared derivation from {ref.name}{claim}",
                           f"{report.reason} {numbers}.", data)
    elif report.verdict == "inconclusive":
        finding = _finding("medium", "lineage_inconclusive", f"Inconclusive against {ref.name}",
                           f"{report.reason} {numbers}.", data)
    elif ref.name in declared_names:
        finding = _finding("medium", "declared_base_not_confirmed",
                           f"Declared base model {ref.name} not found in the weights",
                           f"{report.reason} {numbers}. The vendor declared this base model, but the "
                           "weights show no derivation from it.", data)
    else:
        finding = _finding("info", "no_derivation_found", f"No evidence of derivation from {ref.name}",
                           f"{report.reason} {numbers}.", data)
    return {**finding, "params": params}


def _screen_summary(reports: list, screened_out: list[dict]) -> dict | None:
    """What the registry screen did, for the reviewer: every reference screened out with its
    score, rank and channel p-values, and the kept ones' scores, so nothing is hidden by it."""
    entries = [r.screen for r in reports if r.screen is not None]
    if not entries:
        return None
    return {"references": len(entries), "kept": [e for e in entries if e["kept"]],
            "screened_out": sorted(screened_out, key=lambda e: e["rank"]),
            "method": ("each reference was scored on a small sketch (matched rows, down-projection correlations, "
                       "token geometry); the full test ran on the best-scoring ones and on every one above the "
                       "keep threshold; Holm counts every reference, the screened-out ones at p = 1")}


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.lineage import ENGINE_VERSION, fingerprint_build, lineage_test_against
    from compliance.engine.weights import WeightsFormatError

    artifact = ctx.artifact
    references, declared, from_scratch = _references(artifact)
    declared_names = {d.get("name", "") for d in declared}
    policy = ProgrammePolicy.objects.filter(programme_id=artifact.submission.project.programme_id).first()
    scratch_required = bool(policy and policy.from_scratch_required)
    findings: list[dict] = []
    for entry in declared:
        if not any(r.name == entry.get("name") for r in references):
            findings.append(_finding(
                "low", "declared_base_not_in_registry",
                f"Declared base model {entry.get('name')} is not in the registry of known models",
                "The portal holds no fingerprint of this model, so the declaration cannot be verified from the "
                "weights. Staff can add it with add_reference_model.", {"declared": entry})
                | {"params": {"model": entry.get("name", "")}})
    if not references:
        return CheckOutcome(
            verdict="inconclusive", state="inconclusive",
            incomplete="no reference model with a fingerprint is configured for this programme",
            summary={"references": 0, "reason": "no reference model with a fingerprint is configured"},
            findings=findings + [_finding(
                "medium", "lineage_no_references", "Lineage not tested: no reference models configured",
                "The programme's policy names no reference model with a fingerprint bundle, and no declared base "
                "model is in the registry. Add references to the policy to test this model.", {})],
            engine_version=ENGINE_VERSION, inputs={"sha256": artifact.sha256})
    ctx.progress(0.1, "reading the model's sampled tensors")
    with model_view(artifact) as view:
        try:
            candidate = fingerprint_build(path=view.path, remote=view.remote)
        except WeightsFormatError as exc:
            raise CheckFailed(f"{artifact.original_name}: {exc}") from exc
        ctx.progress(0.5, f"testing against {len(references)} reference model(s)")
        with tempfile.TemporaryDirectory(prefix="bundles-") as bundles:
            bundle_paths = [str(storage_place(ref.bundle.name, Path(bundles) / f"{ref.pk}.npz"))
                            for ref in references]
            # Past a few references the engine screens the registry first (small sketches read
            # from each bundle) and runs the full test only on the references the screen keeps.
            reports = lineage_test_against(candidate=candidate, references=bundle_paths,
                                           names=[ref.name for ref in references])
    ctx.progress(0.9, "recording findings")
    verdicts = []
    rows = []
    not_comparable = []
    screened_out = []
    for ref, report in zip(references, reports):
        if report.verdict == "not_tested":
            screened_out.append(report.screen)
            continue
        data = report.to_dict()
        data["reference_name"] = ref.name
        verdict = report.verdict if report.comparable else "not_comparable"
        verdicts.append(verdict)
        rows.append({"reference": ref.name, "verdict": verdict, "p_value": data["p_value"],
                     "effect_size": data["effect_size"], "bytes_read": data["bytes_read"]})
        if not report.comparable:
            not_comparable.append({"reference": ref.name, "reason": report.reason, "difference": report.difference})
        findings.append(_report_finding(ref=ref, report=report, data=data, declared_names=declared_names,
                                        from_scratch=from_scratch, scratch_required=scratch_required,
                                        references=len(references)))
    verdict = lineage_verdict(verdicts)
    return CheckOutcome(
        # Not comparable with any reference is a result (nothing could apply), not a risk.
        verdict=verdict, state="inconclusive" if verdict == "inconclusive" else "succeeded",
        # Bytes of the submitted weights actually read (the sampled rows and headers only).
        summary={"references": rows, "bytes_read": int(candidate.meta.get("bytes_read", 0)),
                 "weights_bytes": sum(a.size for a in Artifact.objects.filter(
                     submission_id=artifact.submission_id, original_name__endswith=".safetensors")) or artifact.size,
                 "from_scratch_claimed": from_scratch,
                 # References no weight-level comparison could apply to, with the reason (not a risk).
                 "not_comparable": not_comparable,
                 "screen": _screen_summary(reports, screened_out)},
        findings=findings, engine_version=ENGINE_VERSION,
        inputs={"sha256": artifact.sha256, "references": {r.name: r.bundle_sha256 for r in references}})

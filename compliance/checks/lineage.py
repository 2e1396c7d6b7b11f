"""Lineage: is this model derived from a known open model, declared or not?

Tests the submitted weights against the programme's reference models and the vendor's
declared base models (those in the registry), Holm-corrected across all of them, with
``compliance.engine.lineage``. Findings name the reference, the verdict and the numbers.

A multimodal model (or reference) is judged component by component: each derived component
(language model, vision or audio encoder, projector) is a finding of its own that says which
component of which reference it derives from, checked against the declaration's entry for that
component (``backbone`` covers the language model, ``vision_encoder`` the vision encoder,
``other`` the audio encoder and projector; an entry without a component covers any): declared
and confirmed is information, undeclared has the severity the programme's policy gives any
undeclared derivation (critical under a from-scratch rule or claim, else high). A declared
tokenizer is checked on the language models' tokenizers; a shared tokenizer nobody declared is
evidence only (independent models share tokenizers).
"""

from __future__ import annotations

import copy
import hashlib
import json
import statistics
import tempfile
from pathlib import Path, PurePosixPath

from compliance.checks import CheckContext, CheckFailed, CheckOutcome, storage_place
from compliance.checks.model_view import MODEL_FILES, ModelView, artifacts_read, model_entry, model_view, view_error_text  # noqa: F401
from compliance.models import ProgrammePolicy, ReferenceModel
from projects.models import Artifact

def applies(artifact: Artifact) -> bool:
    """GGUF files; a sharded model's index; a single safetensors file with no index beside it."""
    return model_entry(artifact)


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


# Which declared component covers which engine component (projects.models.Declaration.Component).
DECLARED_COMPONENT = {"backbone": "language", "vision_encoder": "vision"}


def _declares(entry: dict, kind: str) -> bool:
    """Whether a declared base-model entry covers the engine component `kind`. A tokenizer entry
    covers no weights; "other" covers what has no entry of its own (audio encoder, projector)."""
    component = entry.get("component") or ""
    if not component:
        return True
    if component == "other":
        return kind not in DECLARED_COMPONENT.values()
    return DECLARED_COMPONENT.get(component) == kind


def _is_multimodal(report) -> bool:
    split = (report.evidence or {}).get("components") or {}
    kinds = [c["candidate"] for c in report.components or []]
    return len(split.get("candidate", [])) > 1 or len(split.get("reference", [])) > 1 or kinds not in ([], ["language"])


def _component_findings(*, ref: ReferenceModel, report, data: dict, declared: list[dict], from_scratch: bool,
                        scratch_required: bool, references: int) -> list[dict]:
    """Findings for a multimodal comparison: one per derived component pair, checked against the
    declaration's entries for ``ref`` component by component, and one per declared component of
    ``ref`` that was tested and not found. With nothing derived and nothing declared, the
    reference's usual finding (its lead component's verdict)."""
    entries = [e for e in declared if e.get("name") == ref.name]
    tested = {c["candidate"]: c for c in report.components if c.get("comparable")}
    derived = [c for c in report.components if c["verdict"] == "derived"]
    findings = []
    for part in derived:
        numbers = (f"p = {part['p_value']:.3g} (Holm-adjusted over {references} reference(s) and the component "
                   f"pairs), effect size {part['effect_size']}")
        params = {"reference": ref.name, "component": part["candidate"], "reference_component": part["reference"],
                  "layers": lineage_numbers(part)}
        evidence = {**data, "component": {k: v for k, v in part.items() if k != "layers"},
                    "layers": part["layers"], "p_value": part["p_value"]}
        if any(_declares(e, part["candidate"]) for e in entries):
            findings.append(_finding(
                "info", "component_derivation_confirmed",
                f"Declared {part['candidate']} confirmed: derived from the {part['reference']} of {ref.name}",
                f"{part['reason']} {numbers}.", evidence) | {"params": params})
            continue
        severity = "critical" if (from_scratch or scratch_required) else "high"
        params["scratch"] = from_scratch
        findings.append(_finding(
            severity, "component_derivation_undeclared",
            f"Undeclared {part['candidate']} derived from the {part['reference']} of {ref.name}",
            f"{part['reason']} {numbers}.", evidence) | {"params": params})
    derived_kinds = {c["candidate"] for c in derived}
    for entry in entries:
        kind = DECLARED_COMPONENT.get(entry.get("component") or "")
        if kind and kind in tested and kind not in derived_kinds:
            part = tested[kind]
            findings.append(_finding(
                "medium", "component_declared_not_confirmed",
                f"Declared {kind} from {ref.name} not found in the weights",
                f"{part['reason']} The vendor declared this component's source, but its weights show no "
                "derivation from it.", {**data, "component": {k: v for k, v in part.items() if k != "layers"}})
                | {"params": {"reference": ref.name, "component": kind, "layers": lineage_numbers(part)}})
    if not derived and not findings:
        # An entry naming no weight component of its own (none given, or "other") still declares the model.
        loose = {ref.name} if any(not DECLARED_COMPONENT.get(e.get("component") or "") and
                                  e.get("component") != "tokenizer" for e in entries) else set()
        findings.append(_report_finding(ref=ref, report=report, data=data, declared_names=loose,
                                        from_scratch=from_scratch, scratch_required=scratch_required,
                                        references=references))
    return findings


# A declared tokenizer is confirmed when at least this share of token ids map to the same strings.
TOKENIZER_SAME_ID = 0.9


def _tokenizer_findings(*, ref: ReferenceModel, data: dict, declared: list[dict]) -> list[dict]:
    """The declaration's tokenizer entries naming ``ref``, checked on the language models' tokenizers.
    A tokenizer reused without a declaration is no finding: independently trained models share
    tokenizers legitimately, and a tokenizer carries no weights (the evidence shows it anyway)."""
    if not any(e.get("component") == "tokenizer" and e.get("name") == ref.name for e in declared):
        return []
    language = next((c for c in data.get("components", []) if c["candidate"] == "language"), None)
    tokenizer = (language or {}).get("tokenizer") or (data.get("evidence") or {}).get("tokenizer") or {}
    if not tokenizer.get("available"):
        return []
    share = float(tokenizer.get("same_id_ratio", 0.0))
    params = {"reference": ref.name, "same_id": f"{share:.0%}"}
    if tokenizer.get("identical_vocab") or share >= TOKENIZER_SAME_ID:
        return [_finding("info", "declared_tokenizer_confirmed", f"Declared tokenizer confirmed: {ref.name}",
                         f"{params['same_id']} of token ids are the same strings as in {ref.name}'s tokenizer.",
                         {"tokenizer": tokenizer}) | {"params": params}]
    return [_finding("low", "declared_tokenizer_not_found", f"Declared tokenizer of {ref.name} not found",
                     f"Only {params['same_id']} of token ids are the same strings as in {ref.name}'s tokenizer.",
                     {"tokenizer": tokenizer}) | {"params": params}]
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


# --- the engine's report, reused for the same weights against the same references ---------------

def report_key(*, artifact: Artifact, references: list[ReferenceModel], engine: str) -> str:
    """The SHA-256 of what the engine's report depends on: the model files it reads (base name and
    SHA-256; the weights' bytes), the reference set (name and bundle SHA-256) and the engine version.
    Nothing of the submission, its project or its declaration: the same weights give the same key
    whoever submits them."""
    payload = {"engine_version": engine,
               "files": sorted([PurePosixPath(a.original_name).name, a.sha256] for a in artifacts_read(artifact)
                               if a.status != Artifact.Status.REJECTED),
               "references": sorted([r.name, r.bundle_sha256] for r in references)}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _StoredReport:
    """An engine report read back from a stored ``CheckRun.report``: what the findings read of
    ``compliance.engine.lineage.LineageReport`` (its attributes and ``to_dict``)."""

    def __init__(self, data: dict):
        self._data = data

    def __getattr__(self, name: str):
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict:
        return copy.deepcopy(self._data)


def _renamed(value, old: str, new: str):
    """``value`` with the candidate's name as the earlier run knew it replaced by this run's own."""
    if isinstance(value, str):
        return value.replace(old, new) if old else value
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    return value


def report_reusable(*, artifact: Artifact, key: str, references: list[ReferenceModel]):
    """The stored report of an earlier lineage run with the same key, from any project, as
    (reports in ``references``' order, cache summary), or None (none, or caching switched off).
    The cache summary says where it came from without naming another project. A staff re-run
    of this artifact's lineage check runs the engine again."""
    from compliance.models import CheckRun
    from compliance.services.reuse import result_cache_on

    if not key or not result_cache_on():
        return None
    # A staff re-run (its attempt base moved on) asks for the engine itself, not an earlier figure.
    if CheckRun.objects.filter(artifact_id=artifact.pk, check_name="lineage", attempt_base__gt=0).exists():
        return None
    source = (CheckRun.objects.filter(check_name="lineage", report_key=key, report__isnull=False,
                                      state__in=[CheckRun.State.SUCCEEDED, CheckRun.State.INCONCLUSIVE])
              .exclude(artifact_id=artifact.pk).select_related("submission")
              .order_by("-finished_at", "-pk").first())
    stored = (source.report or {}) if source else {}
    by_name = stored.get("reports") or {}
    if source is None or any(ref.name not in by_name for ref in references):
        return None
    # The key covers the files' base names, so only a temporary folder's name can differ.
    name = PurePosixPath(artifact.original_name).name
    reports = [_StoredReport(_renamed(by_name[ref.name], str(stored.get("candidate") or ""), name))
               for ref in references]
    cache = {"reused": True, "key": key, "from": "another submission"}
    if source.submission.project_id == artifact.submission.project_id:
        cache.update({"from": f"v{source.submission.number}", "from_version": source.submission.number})
    return reports, cache


def _report_store(*, artifact: Artifact, key: str, reports: list, references: list[ReferenceModel],
                  candidate_name: str, bytes_read: int, cache: dict | None) -> None:
    """Record the key on this run, and the report when this run computed it (a reused one is
    already stored where it came from)."""
    from compliance.models import CheckRun

    fields = {"report_key": key, "report": None}
    if cache is None:
        fields["report"] = {"candidate": candidate_name, "bytes_read": bytes_read,
                            "reports": {ref.name: r.to_dict() for ref, r in zip(references, reports)}}
    CheckRun.objects.filter(artifact_id=artifact.pk, check_name="lineage").update(**fields)


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
    key = report_key(artifact=artifact, references=references, engine=ENGINE_VERSION)
    # The same weights tested against the same references by the same engine, in any submission:
    # that report stands (the findings below are still this submission's, from its declaration).
    reused = report_reusable(artifact=artifact, key=key, references=references)
    cache = reused[1] if reused else None
    if reused:
        reports, bytes_read, candidate_name = reused[0], 0, ""
        ctx.progress(0.5, "same weights and references as an earlier check: its lineage report is reused")
    else:
        ctx.progress(0.1, "reading the model's sampled tensors")
        with model_view(artifact) as view:
            try:
                candidate = fingerprint_build(path=view.path, remote=view.remote)
            except WeightsFormatError as exc:
                raise CheckFailed(f"{artifact.original_name}: "
                                  f"{view_error_text(error=exc, view=view, artifact=artifact)}") from exc
            ctx.progress(0.5, f"testing against {len(references)} reference model(s)")
            with tempfile.TemporaryDirectory(prefix="bundles-") as bundles:
                bundle_paths = [str(storage_place(ref.bundle.name, Path(bundles) / f"{ref.pk}.npz"))
                                for ref in references]
                # Past a few references the engine screens the registry first (small sketches read
                # from each bundle) and runs the full test only on the references the screen keeps.
                reports = lineage_test_against(candidate=candidate, references=bundle_paths,
                                               names=[ref.name for ref in references])
        bytes_read, candidate_name = int(candidate.meta.get("bytes_read", 0)), str(candidate.name or "")
    _report_store(artifact=artifact, key=key, reports=reports, references=references,
                  candidate_name=candidate_name, bytes_read=bytes_read, cache=cache)
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
                     "effect_size": data["effect_size"], "bytes_read": data["bytes_read"],
                     # Per component pair (language, vision, audio, projector): who derives from what;
                     # "component" (the dossier's column) names the derived ones, else the lead one.
                     "components": [{k: c[k] for k in ("candidate", "reference", "verdict", "p_value")}
                                    for c in data["components"]],
                     "component": (", ".join(c["candidate"] for c in data["components"] if c["verdict"] == "derived")
                                   or (data["evidence"].get("components") or {}).get("lead", ""))
                     if _is_multimodal(report) else ""})
        if not report.comparable:
            not_comparable.append({"reference": ref.name, "reason": report.reason, "difference": report.difference})
        findings.extend(_tokenizer_findings(ref=ref, data=data, declared=declared))
        if report.comparable and _is_multimodal(report):
            findings.extend(_component_findings(ref=ref, report=report, data=data, declared=declared,
                                                from_scratch=from_scratch, scratch_required=scratch_required,
                                                references=len(references)))
            continue
        findings.append(_report_finding(ref=ref, report=report, data=data, declared_names=declared_names,
                                        from_scratch=from_scratch, scratch_required=scratch_required,
                                        references=len(references)))
    verdict = lineage_verdict(verdicts)
    return CheckOutcome(
        # Not comparable with any reference is a result (nothing could apply), not a risk.
        verdict=verdict, state="inconclusive" if verdict == "inconclusive" else "succeeded",
        # Bytes of the submitted weights actually read (the sampled rows and headers only).
        # (none when the report was reused: this run read nothing of them).
        summary={"references": rows, "bytes_read": bytes_read,
                 "weights_bytes": sum(a.size for a in Artifact.objects.filter(
                     submission_id=artifact.submission_id, original_name__endswith=".safetensors")) or artifact.size,
                 "from_scratch_claimed": from_scratch,
                 # References no weight-level comparison could apply to, with the reason (not a risk).
                 "not_comparable": not_comparable,
                 "screen": _screen_summary(reports, screened_out),
                 # Whether the engine's report was computed here or reused (and from where).
                 "cache": cache or {"reused": False, "key": key}},
        findings=findings, engine_version=ENGINE_VERSION,
        inputs={"sha256": artifact.sha256, "references": {r.name: r.bundle_sha256 for r in references}})

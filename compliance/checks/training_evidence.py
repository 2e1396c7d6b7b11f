"""Training evidence: does the vendor's bundle of checkpoints and training log support a
from-scratch claim?

Judges an artifact of kind ``training_evidence`` (a ``training-evidence/1`` archive) with
``compliance.engine.training_evidence`` against every registered reference model that has a
fingerprint bundle, and maps the report's findings (codes and params) onto the portal's, whose
words come from ``compliance.finding_texts``. A malformed bundle is a result, not a failure:
a high finding saying which file and rule, so the vendor can fix and upload again.

The submitted model is the submission's model entry (``compliance.checks.model_view``), whose
files the check reads too, so it waits for intake to accept them; a submission without one gets
the engine's information finding that the comparison was not made.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from compliance.checks import CheckContext, CheckFailed, CheckOutcome, storage_place
from compliance.checks.model_view import artifacts_read, model_view, submitted_models, view_error_text
from compliance.models import ReferenceModel
from projects.models import Artifact


def applies(artifact: Artifact) -> bool:
    return artifact.kind == Artifact.Kind.TRAINING_EVIDENCE


def reads(artifact: Artifact) -> list[Artifact]:
    """The bundle, and the files of every model entry of the submission (each is compared with the
    last checkpoint)."""
    files = [artifact]
    for model in submitted_models(artifact.submission_id):
        files += [a for a in artifacts_read(model) if a not in files]
    return files


def _references() -> list[ReferenceModel]:
    """The registry: a run from scratch is independent of every known model, not only the
    programme's chosen references."""
    return list(ReferenceModel.objects.exclude(bundle="").order_by("name"))


def engine_version() -> str:
    from compliance.engine.lineage import ENGINE_VERSION as LINEAGE
    from compliance.engine.training_evidence import ENGINE_VERSION

    return f"{ENGINE_VERSION}+{LINEAGE}"


def reuse_inputs(artifact: Artifact) -> dict:
    """What ``run`` reads: the bundle and the submitted model's files (names and SHA-256), and
    every registered reference's bundle."""
    return {"sha256": artifact.sha256, "name": artifact.original_name,
            "reads": sorted([a.original_name, a.sha256] for a in reads(artifact)),
            "references": sorted([r.name, r.bundle.name, r.bundle_sha256] for r in _references())}


def _sentence_params(params: dict) -> dict:
    """Params as the sentences show them: lists of steps as '300, 400'."""
    return {k: ", ".join(str(x) for x in v) if isinstance(v, list) else v for k, v in params.items()
            if not isinstance(v, dict)}


def finding_from_engine(finding) -> dict:
    """One engine finding as the portal records it: code, params, the English message, evidence."""
    return {"severity": finding.severity, "category": "training_evidence", "code": finding.code,
            "title": finding.message[:300], "explanation": finding.message, "evidence": finding.params,
            "params": _sentence_params(finding.params)}


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.lineage import fingerprint_build
    from compliance.engine.training_evidence import TrainingEvidenceError, training_evidence_judge
    from compliance.engine.weights import WeightsFormatError

    artifact = ctx.artifact
    references = _references()
    inputs = {"sha256": artifact.sha256, "references": {r.name: r.bundle_sha256 for r in references}}
    ctx.progress(0.1, f"testing against {len(references)} reference model(s)")
    # Every model entry the submission lists (as the lineage check sees them), by its file name.
    submitted = []
    for model in submitted_models(artifact.submission_id):
        ctx.progress(0.05, f"reading the sampled tensors of {model.original_name}")
        with model_view(model) as view:
            try:
                submitted.append((model.original_name, fingerprint_build(path=view.path, remote=view.remote)))
            except WeightsFormatError as exc:
                raise CheckFailed(f"{model.original_name}: "
                                  f"{view_error_text(error=exc, view=view, artifact=model)}") from exc
    with ctx.local_path() as path, tempfile.TemporaryDirectory(prefix="bundles-") as bundles:
        paths = {ref.name: storage_place(ref.bundle.name, Path(bundles) / f"{ref.pk}.npz") for ref in references}
        try:
            report = training_evidence_judge(path=path, references=paths, submitted_models=submitted)
        except (TrainingEvidenceError, WeightsFormatError) as exc:
            reason = str(exc)
            return CheckOutcome(
                verdict="malformed", summary={"malformed_reason": reason}, engine_version=engine_version(), inputs=inputs,
                findings=[{"severity": "high", "category": "training_evidence", "code": "training_evidence_malformed",
                           "title": f"Training evidence {artifact.original_name} could not be read",
                           "explanation": reason, "evidence": {"reason": reason},
                           "params": {"artifact": artifact.original_name, "reason": reason.rstrip(".")}}])
    ctx.progress(0.9, "recording findings")
    data = report.to_dict()
    # No "reason"/"references" keys: the dossier would print the engine's English sentence in a Korean
    # dossier and read the names as lineage reports; the verdict's words come from VERDICT_LABELS.
    summary = {"verdict": data["verdict"], "verdict_reason": data["reason"], "reference_models": data["references"],
               "log": data["log"],
               # The chain for the dossier's figure: per step, each test's kind, target, verdict, p-value.
               "checkpoints": [{"step": c["step"], "kind": c["kind"],
                                "tests": [{k: t[k] for k in ("kind", "against", "verdict", "p_value")}
                                          for t in c["tests"]]} for c in data["checkpoints"]]}
    return CheckOutcome(verdict=report.verdict, summary=summary,
                        findings=[finding_from_engine(f) for f in report.findings],
                        engine_version=engine_version(), inputs=inputs)

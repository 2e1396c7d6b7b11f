"""The portal's own test of a derived-from-model challenge: the calibrated lineage test between
the project's latest submitted model and the named model, when that model is a registered
reference with a fingerprint.

A public accusation is often a raw cosine of norm gains (any two trained models score about 0.99
on it); the result stored here carries the engine's verdict and permutation p-value and, from the
same layers, the raw cosine beside the centred (Pearson) figure and the shuffled-pairing baseline,
so the page can show the challenger's number next to what it is worth.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.db.models import Q

from compliance.checks import storage_place
from compliance.checks.model_view import model_entry, model_view
from compliance.models import Challenge, ReferenceModel
from projects.models import Artifact, Submission


def challenge_reference(*, challenge: Challenge) -> ReferenceModel | None:
    """The registered reference the challenge names (by its claimed source, then the model
    field), matched case-insensitively on the registry's name; only ones with a fingerprint."""
    names = [n for n in (challenge.claimed_source.strip(), challenge.model_named.strip()) if n]
    for name in names:
        ref = ReferenceModel.objects.filter(name__iexact=name).exclude(bundle="").first()
        if ref is not None:
            return ref
    return None


def challenge_model_artifact(*, challenge: Challenge) -> Artifact | None:
    """The model entry of the project's latest submission that has left draft."""
    submissions = (Submission.objects.filter(project_id=challenge.project_id)
                   .exclude(status=Submission.Status.DRAFT).order_by("-number"))
    for submission in submissions:
        for artifact in (submission.artifacts.filter(Q(kind=Artifact.Kind.WEIGHTS) | Q(kind=Artifact.Kind.OTHER))
                         .exclude(status=Artifact.Status.REJECTED).order_by("pk")):
            if model_entry(artifact):
                return artifact
    return None


def challenge_retest_run(*, challenge: Challenge) -> dict:
    """Run the test and return what is stored on the challenge (never raises for a missing
    reference or model: that is an inconclusive result with its reason)."""
    from compliance.engine.lineage import fingerprint_build, lineage_test_against
    from compliance.engine.weights import WeightsFormatError

    ref = challenge_reference(challenge=challenge)
    if ref is None:
        return {"state": "not_registered", "verdict": "inconclusive",
                "reason": "the named model is not a registered reference with a fingerprint; an officer can "
                          "register it (add_reference_model) and re-test"}
    artifact = challenge_model_artifact(challenge=challenge)
    if artifact is None:
        return {"state": "no_model", "verdict": "inconclusive", "reference": ref.name,
                "reason": "the project has no submitted model to test"}
    try:
        with model_view(artifact) as view:
            candidate = fingerprint_build(path=view.path, remote=view.remote)
            with tempfile.TemporaryDirectory(prefix="bundles-") as bundles:
                bundle = storage_place(ref.bundle.name, Path(bundles) / f"{ref.pk}.npz")
                report = lineage_test_against(candidate=candidate, references=[str(bundle)])[0]
    except WeightsFormatError as exc:
        return {"state": "failed", "verdict": "inconclusive", "reference": ref.name, "reason": str(exc)}
    data = report.to_dict()
    norms = (data.get("evidence") or {}).get("norms") or {}
    return {"state": "done", "reference": ref.name, "submission": artifact.submission.number,
            "verdict": report.verdict if report.comparable else "not_comparable",
            "reason": "" if report.comparable else (report.reason or ""),
            "p_value": data.get("p_value"), "effect_size": data.get("effect_size"),
            "norms": {k: norms.get(k) for k in ("mean_raw_cosine", "mean_raw_cosine_shuffled", "mean_pearson")},
            "norm_rows": len(norms.get("layers") or [])}


def challenge_retest_execute(*, challenge_id: int) -> str:
    """The task's body: claim the queued re-test (a second delivery finds it taken), run it,
    store the result."""
    from portal.services import audit_record

    claimed = Challenge.objects.filter(pk=challenge_id, retest__state="queued").update(retest={"state": "running"})
    if not claimed:
        return "skipped"
    challenge = Challenge.objects.select_related("project").get(pk=challenge_id)
    try:
        result = challenge_retest_run(challenge=challenge)
    except Exception as exc:  # recorded, not lost: the officer sees why and can re-queue
        result = {"state": "failed", "verdict": "inconclusive", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    Challenge.objects.filter(pk=challenge_id).update(retest=result)
    audit_record(actor=None, action="challenge.retested", object_type="challenge", object_id=challenge_id,
                 object_label=f"#{challenge_id} {challenge.project.code}", project_id=challenge.project_id,
                 data={k: v for k, v in result.items() if k != "reason"})
    return result["state"]

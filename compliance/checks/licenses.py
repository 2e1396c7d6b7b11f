"""Licences: what every file of a source archive, model card or SBOM is licensed under, the
inventory per artifact, and the programme's policy applied to it.

Detection is ``compliance.engine.licenses`` (ScanCode's index, tiered for speed). The
inventory is kept in the run's summary, so a policy change re-evaluates it without
rescanning (``licence_policy_reevaluate``).
"""

from __future__ import annotations

from django.conf import settings

from compliance.checks import CheckContext, CheckOutcome
from compliance.models import CheckRun, Finding, ProgrammePolicy
from projects.models import Artifact

APPLIES_TO = {Artifact.Kind.SOURCE_ARCHIVE, Artifact.Kind.MODEL_CARD, Artifact.Kind.SBOM,
              Artifact.Kind.MODEL_DIRECTORY}
POLICY_CATEGORY = "license-policy"
# Per-file findings for notices of other copyright holders; more than this many go to the evidence only.
MAX_HOLDER_FINDINGS = 20


def applies(artifact: Artifact) -> bool:
    return artifact.kind in APPLIES_TO


def policy_for(programme_id: int) -> dict:
    policy = ProgrammePolicy.objects.filter(programme_id=programme_id).first()
    return policy.as_engine_policy() if policy else {}


def policy_findings(*, inventory: dict, policy: dict) -> list[dict]:
    """The programme's policy applied to a stored inventory, as finding dicts."""
    from compliance.engine.licenses import LicensePolicy, license_policy_evaluate

    engine_policy = LicensePolicy.from_dict(policy)
    return [{"severity": f.severity, "category": POLICY_CATEGORY, "code": f.code, "title": f.title,
             "explanation": f.message, "evidence": f.evidence}
            for f in license_policy_evaluate(inventory=inventory, policy=engine_policy)]


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.licenses import ENGINE_VERSION, license_scan

    artifact = ctx.artifact
    ctx.progress(0.05, "detecting licences file by file")
    cache_dir = getattr(settings, "LICENSE_CACHE_DIR", None) or (settings.VAR_DIR / "license-cache")
    with ctx.local_path() as path:
        result = license_scan(source=path, cache_dir=cache_dir, source_name=artifact.original_name)
    data = result.to_dict()
    inventory = data["inventory"]
    ctx.progress(0.85, "applying the programme's policy")
    findings = policy_findings(inventory=inventory, policy=policy_for(artifact.submission.project.programme_id))
    files = [{"path": f["path"], "license_expression": f["license_expression"],
              "matches": f["matches"][:5], "holders": f.get("holders", [])[:5]}
             for f in data["files"] if f.get("license_expression") or f.get("holders")]
    verdict = "denied" if any(f["code"] == "license-denied" for f in findings) else (
        "review" if any(f["severity"] in {"critical", "high", "medium"} for f in findings) else "compliant")
    return CheckOutcome(
        verdict=verdict,
        summary={"inventory": inventory, "files": files[:500], "files_total": len(data["files"]),
                 "stats": data.get("stats", {})},
        findings=findings, engine_version=f"licenses-{ENGINE_VERSION}",
        inputs={"sha256": artifact.sha256, "policy": policy_for(artifact.submission.project.programme_id)})


def licence_policy_reevaluate(*, programme_id: int) -> int:
    """After a policy change: replace the policy findings of every licence run of the programme,
    from the inventories they stored. No file is read again. Returns the runs re-evaluated."""
    from django.db import transaction

    policy = policy_for(programme_id)
    count = 0
    runs = CheckRun.objects.filter(check_name="licenses", state=CheckRun.State.SUCCEEDED,
                                   submission__project__programme_id=programme_id)
    for run in runs.iterator():
        inventory = (run.summary or {}).get("inventory")
        if not inventory:
            continue
        with transaction.atomic():
            # Decided findings stay as decided; open ones are replaced by the new evaluation.
            Finding.objects.filter(check_run=run, category=POLICY_CATEGORY, status=Finding.Status.OPEN).delete()
            kept = set(Finding.objects.filter(check_run=run, category=POLICY_CATEGORY).values_list("code", "title"))
            Finding.objects.bulk_create([
                Finding(check_run=run, submission_id=run.submission_id, severity=f["severity"], category=f["category"],
                        code=f["code"][:80], title=f["title"][:300], explanation=f["explanation"],
                        evidence=f["evidence"])
                for f in policy_findings(inventory=inventory, policy=policy) if (f["code"], f["title"]) not in kept])
            run.inputs = {**(run.inputs or {}), "policy": policy}
            run.save(update_fields=["inputs"])
        count += 1
    return count

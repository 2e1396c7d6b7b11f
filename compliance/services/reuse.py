"""Reuse of earlier check results: a new version's check whose inputs did not change is not run again.

A run's ``reuse_key`` is the SHA-256 of the check's name, its engine version and every input
its ``run`` reads (``CheckSpec.reuse_inputs``: the file's SHA-256 and name, and the declaration
and policy parts the check uses). It is taken when a run succeeds, before and after the check
ran, and kept only when both agree (an input changed mid-run makes the result unreusable).

When a submission is submitted, each run whose key equals that of a SUCCEEDED run of an
earlier version of the same project is recorded as finished at once (``reused_from``), with
the earlier run's verdict and summary and a copy of its findings (open again, ``carried_from``
the earlier finding, whose decisions the page shows as context). Never across projects: a
vendor's identical file in another project is judged on its own. Findings the programme's
policy produces are computed again from the stored inventory, not copied.

``PORTAL_RESULT_CACHE=0`` switches this off with every other result cache. What was reused is
said in words by ``reuse_notes`` (the page, the API and the dossier use the same sentences).
"""

from __future__ import annotations

import hashlib
import json

from django.utils import timezone

from compliance.checks import CheckSpec, check_registry
from compliance.models import CheckRun, Finding
from compliance.services.policy import POLICY_CATEGORY, carried_policy_findings, policy_findings, policy_for
from portal.services import audit_record
from projects.models import Artifact

# Policy findings are recomputed on reuse from the inventory the run stored (as a policy change does).
_POLICY_EVALUATORS = {"licenses": policy_findings, "code": carried_policy_findings}


def check_reuse_key(*, spec: CheckSpec | None, artifact: Artifact) -> str:
    """The SHA-256 naming everything the check's result depends on; '' when the check is never reused."""
    if spec is None or spec.reuse_inputs is None or spec.engine_version is None:
        return ""
    payload = {"check": spec.name, "engine_version": spec.engine_version(), "inputs": spec.reuse_inputs(artifact)}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_run_reusable(*, run: CheckRun, key: str) -> CheckRun | None:
    """The latest succeeded run of an earlier version of the same project with the same file,
    check, engine version and key; None when there is none (or the check is never reused)."""
    spec = check_registry().get(run.check_name)
    if not key or spec is None or spec.engine_version is None:
        return None
    return (CheckRun.objects
            .filter(check_name=run.check_name, state=CheckRun.State.SUCCEEDED, reuse_key=key,
                    engine_version=spec.engine_version(), artifact__sha256=run.artifact.sha256,
                    # Tenant isolation: only this project's own earlier versions.
                    submission__project_id=run.submission.project_id,
                    submission__number__lt=run.submission.number)
            .select_related("submission").order_by("-submission__number", "-pk").first())


def _findings_copy(*, run: CheckRun, source: CheckRun) -> int:
    """The source's findings as new open findings of ``run``; policy findings computed again."""
    earlier = list(Finding.objects.filter(check_run=source).order_by("pk"))
    evaluate = _POLICY_EVALUATORS.get(run.check_name)
    inventory = (source.summary or {}).get("inventory") if evaluate else None
    copies = []
    for f in earlier:
        if inventory and f.category == POLICY_CATEGORY:
            continue
        copies.append(Finding(check_run=run, submission_id=run.submission_id, severity=f.severity,
                              category=f.category, code=f.code, title=f.title, explanation=f.explanation,
                              evidence=f.evidence, carried_from=f))
    if inventory:
        by_text = {(f.code, f.title): f for f in earlier if f.category == POLICY_CATEGORY}
        for f in evaluate(inventory=inventory, policy=policy_for(run.submission.project.programme_id)):
            copies.append(Finding(check_run=run, submission_id=run.submission_id, severity=f["severity"],
                                  category=f["category"], code=f["code"][:80], title=f["title"][:300],
                                  explanation=f["explanation"], evidence=f["evidence"],
                                  carried_from=by_text.get((f["code"][:80], f["title"][:300]))))
    Finding.objects.bulk_create(copies)
    return len(copies)


def check_run_reuse(*, run: CheckRun, source: CheckRun, key: str) -> CheckRun:
    """Record ``run`` as finished with ``source``'s result (call inside a transaction, with the
    run not yet sent). Intake's verdict decides a freshly uploaded file's quarantine as a run
    would; a carried-over file keeps the intake state it was carried with."""
    from compliance.services.runs import _artifact_intake_result

    now = timezone.now()
    Finding.objects.filter(check_run=run).delete()
    copied = _findings_copy(run=run, source=source)
    step = f"not run again: same file, engine and inputs as v{source.submission.number}"
    CheckRun.objects.filter(pk=run.pk).update(
        state=CheckRun.State.SUCCEEDED, verdict=source.verdict, summary=source.summary, error="",
        engine_version=source.engine_version, inputs=source.inputs, progress=1.0, step=step[:200],
        started_at=None, finished_at=now, lease_expires_at=None, reuse_key=key, reused_from=source)
    run.refresh_from_db()
    if run.check_name == "intake" and run.artifact.carried_from_id is None:
        _artifact_intake_result(artifact=run.artifact, verdict=source.verdict, summary=source.summary)
    audit_record(actor="worker", action="check.reused", object_type="check_run", object_id=run.pk,
                 object_label=f"{run.check_name} on {run.artifact.original_name}",
                 submission_id=run.submission_id, project_id=run.submission.project_id,
                 data={"from_run": source.pk, "from_version": source.submission.number,
                       "sha256": run.artifact.sha256, "engine_version": source.engine_version,
                       "reuse_key": key, "verdict": source.verdict, "findings": copied})
    return run


def result_cache_on() -> bool:
    """``PORTAL_RESULT_CACHE`` (default on). Off (the benchmark's baseline), no earlier result is
    reused: neither a whole run here nor a per-file or lineage report cache in the checks."""
    from django.conf import settings

    return bool(getattr(settings, "PORTAL_RESULT_CACHE", True))


def check_run_try_reuse(*, run: CheckRun) -> bool:
    """Reuse an earlier result for ``run`` when one matches exactly; True when it did."""
    if not result_cache_on():
        return False
    key = check_reuse_key(spec=check_registry().get(run.check_name), artifact=run.artifact)
    source = check_run_reusable(run=run, key=key)
    if source is None:
        return False
    # Held while its result and findings are copied: a staff re-run of the earlier run finishing
    # now (``_finish`` locks the same row) cannot replace its findings halfway through the copy.
    source = (CheckRun.objects.select_for_update(of=("self",)).select_related("submission")
              .filter(pk=source.pk, state=CheckRun.State.SUCCEEDED, reuse_key=key).first())
    if source is None:
        return False
    check_run_reuse(run=run, source=source, key=key)
    return True


def reuse_notes(*, run: CheckRun, short: bool = False) -> list[str]:
    """What ``run`` took from the result caches, in the active language: the per-file results the
    licence and code checks reused, or the lineage report reused from an earlier check of the same
    weights (``summary["cache"]``). Empty for a run whose whole result came from an earlier version
    (``reused_from``: its cache figures were that run's) or that computed everything itself.
    ``short``: the page's table cell (the API and the dossier give the whole sentence)."""
    from django.utils import translation

    from compliance.dossier.labels import cache_notes

    if run.reused_from_id:
        return []
    return cache_notes(translation.get_language() or "en", (run.summary or {}).get("cache"), short=short)

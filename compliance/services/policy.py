"""A programme's policy: its settings, and its judgement of stored licence inventories.

The licence check and the code check both judge inventories by the same policy; the
judgement lives here so that neither check imports the other, and a policy change
re-applies it to every stored inventory without reading a file again.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from compliance.models import CheckRun, Finding, ProgrammePolicy
from portal.selectors import user_can_manage
from portal.services import audit_record
from projects.models import Programme

POLICY_CATEGORY = "license-policy"

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


# Policy findings on the carried licences alone: whether the vendor's own files declare a licence,
# and whether declarations agree, is the licence check's business (it sees every file).
CARRIED_SKIPPED_CODES = {"license-missing", "license-unrecognised", "license-declared-mismatch"}


def carried_policy_findings(*, inventory: dict, policy: dict) -> list[dict]:
    """The programme's policy applied to the licences of copied code, titled as such."""
    findings = []
    for finding in policy_findings(inventory=inventory, policy=policy):
        if finding["code"] in CARRIED_SKIPPED_CODES:
            continue
        findings.append({**finding, "title": f"Copied code: {finding['title']}"[:300],
                         "explanation": "Licence of code copied from an indexed open project. " + finding["explanation"],
                         "category": POLICY_CATEGORY, "params": {"carried": True}})
    return findings


def programme_policy_get_or_create(*, programme: Programme) -> ProgrammePolicy:
    policy, _created = ProgrammePolicy.objects.get_or_create(programme=programme)
    return policy


def programme_policy_update(*, user, programme: Programme, allowed: str, denied: str, review: str,
                            from_scratch_required: bool, reference_models=(), code_corpora=(),
                            denied_categories=(), review_categories=(), allowed_categories=(),
                            accept_model_use_restrictions: bool = False, expected_monthly_users: int | None = None,
                            require_declared_license: bool = True, outbound_license: str = "",
                            challenge_reply_days: int | None = None) -> ProgrammePolicy:
    """Change a programme's policy; every listed expression must parse as SPDX.

    Arguments left out take their defaults: the policy is what this call says."""
    if not user_can_manage(user=user):
        raise PermissionDenied(_("Only ministry administrators and programme officers may change policies."))
    from compliance.spdx import spdx_lines_validate

    errors = {}
    for field, text in (("allowed_licenses", allowed), ("denied_licenses", denied), ("review_licenses", review)):
        problems = spdx_lines_validate(text)
        if problems:
            errors[field] = problems
    from compliance.spdx import spdx_expression_problem

    outbound_license = (outbound_license or "").strip()
    if outbound_license and (problem := spdx_expression_problem(outbound_license)):
        errors["outbound_license"] = [problem]
    if expected_monthly_users is not None and expected_monthly_users < 0:
        errors["expected_monthly_users"] = [_("The number of users cannot be negative.")]
    if challenge_reply_days is not None and not 1 <= challenge_reply_days <= 365:
        errors["challenge_reply_days"] = [_("Give between 1 and 365 days, or leave it blank for the default.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        policy = programme_policy_get_or_create(programme=programme)
        policy.challenge_reply_days = challenge_reply_days
        policy.allowed_categories = list(allowed_categories)
        policy.accept_model_use_restrictions = accept_model_use_restrictions
        policy.expected_monthly_users = expected_monthly_users
        policy.require_declared_license = require_declared_license
        policy.outbound_license = outbound_license
        policy.allowed_licenses = allowed.strip()
        policy.denied_licenses = denied.strip()
        policy.review_licenses = review.strip()
        policy.from_scratch_required = from_scratch_required
        policy.denied_categories = list(denied_categories)
        policy.review_categories = list(review_categories)
        policy.save()
        policy.reference_models.set(reference_models)
        policy.code_corpora.set(code_corpora)
        reevaluated = licence_policy_reevaluate(programme_id=programme.pk)
        audit_record(actor=user, action="policy.update", object_type="programme", object_id=programme.pk,
                     object_label=str(programme), data=policy.as_engine_policy()
                     | {"from_scratch_required": from_scratch_required, "challenge_reply_days": challenge_reply_days,
                        "reference_models": [str(m) for m in policy.reference_models.all()],
                        "licence_runs_reevaluated": reevaluated})
    return policy


def licence_policy_reevaluate(*, programme_id: int) -> int:
    """After a policy change: replace the policy findings of every licence run of the programme,
    from the inventories they stored. No file is read again. Returns the runs re-evaluated."""
    policy = policy_for(programme_id)
    count = 0
    # Licence runs hold the artifact's inventory; code runs hold the licences their copied code carries.
    evaluators = {"licenses": policy_findings, "code": carried_policy_findings}
    runs = CheckRun.objects.filter(check_name__in=list(evaluators), state=CheckRun.State.SUCCEEDED,
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
                        evidence=f["evidence"], params=f.get("params") or {})
                for f in evaluators[run.check_name](inventory=inventory, policy=policy)
                if (f["code"], f["title"]) not in kept])
            run.inputs = {**(run.inputs or {}), "policy": policy}
            run.save(update_fields=["inputs"])
        count += 1
    return count

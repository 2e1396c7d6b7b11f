"""Licences: what every file of a source archive, model card or SBOM is licensed under, the
inventory per artifact, and the programme's policy applied to it.

Detection is ``compliance.engine.licenses`` (ScanCode's index, tiered for speed). The
inventory is kept in the run's summary, so a policy change re-evaluates it without
rescanning (``compliance.services.policy.licence_policy_reevaluate``).
"""

from __future__ import annotations

import re

from compliance.checks import (CheckContext, CheckOutcome, TooLargeToRead, archive_files_expected,
                               artifact_members, scan_limits, scan_progress, too_large_outcome)
from compliance.services.filecache import file_result_cache
from compliance.services.policy import policy_findings, policy_for
from projects.models import Artifact

APPLIES_TO = {Artifact.Kind.SOURCE_ARCHIVE, Artifact.Kind.MODEL_CARD, Artifact.Kind.SBOM,
              Artifact.Kind.MODEL_DIRECTORY}
# Per-file findings for notices of other copyright holders; more than this many go to the evidence only.
MAX_HOLDER_FINDINGS = 20


def applies(artifact: Artifact) -> bool:
    """Source archives, model directories, model cards and SBOMs; and a licence file, a
    dependency manifest or a model card uploaded on its own under another kind (not weights)."""
    if artifact.kind in APPLIES_TO:
        return True
    if artifact.kind not in {Artifact.Kind.OTHER, Artifact.Kind.CONFIG, Artifact.Kind.TRAINING_EVIDENCE}:
        return False
    from compliance.engine.licenses import license_file_is_legal
    from compliance.engine.licenses.declared import path_declares_licenses

    name = artifact.original_name.replace("\\", "/")
    return path_declares_licenses(path=name) or license_file_is_legal(path=name)


def vendor_names(project) -> list[str]:
    """Names under which the vendor's own copyright notices appear: the vendor, its consortium, and
    the project itself ('Copyright 2026 The saebyeok-lm authors' for project saebyeok)."""
    names = [project.vendor.name, project.vendor.name_ko, project.code, project.title, project.title_ko]
    for member in project.consortium_members or []:
        names.append(member.get("name", "") if isinstance(member, dict) else str(member))
    return [n for n in names if n and n.strip()]


_HOLDER_NOISE = re.compile(r"\b(co|corp|corporation|inc|ltd|llc|gmbh|limited|company|the|and|its|affiliates|"
                           r"contributors|authors|all rights reserved)\b|[^\w]+", re.IGNORECASE)


def _holder_words(name: str) -> frozenset[str]:
    return frozenset(_HOLDER_NOISE.sub(" ", name.lower()).split())


def holder_is_own(*, holder: str, own_names: list[str]) -> bool:
    """A holder is the vendor's own when, legal suffixes aside, every word of one of the vendor's names
    is in the holder's name, or every word of the holder's is in the vendor's: 'Doran AI Co., Ltd.' and
    'Doran AI' are one holder; 'Google AI' is not 'Doran AI'."""
    words = _holder_words(holder)
    if not words:
        return False
    for name in own_names:
        own = _holder_words(name)
        if own and (own <= words or (words <= own and max(len(w) for w in words) >= 4)):
            return True
    return False


def holder_findings(*, inventory: dict, own_names: list[str]) -> list[dict]:
    """One finding per other copyright holder whose notices the vendor's files carry (most files first).

    Another holder's notice is not wrong in itself (vendored code keeps its notices, as licences
    require), but a reviewer must see whose code ships under the vendor's name."""
    holders = inventory.get("holders") or {}
    others = sorted(((h, files) for h, files in holders.items() if not holder_is_own(holder=h, own_names=own_names)),
                    key=lambda kv: (-len(kv[1]), kv[0]))
    findings = []
    for holder, files in others[:MAX_HOLDER_FINDINGS]:
        findings.append({
            "severity": "low", "category": "copyright", "code": "copyright-other-holder",
            "title": f"Copyright notice of another holder: {holder} ({len(files)} file(s))"[:300],
            "explanation": f"{len(files)} file(s) carry a copyright notice of {holder}, which is not the vendor or "
                           "a consortium member. Check that the code is declared third-party code and that its "
                           "licence allows this use.",
            "evidence": {"holder": holder, "files": files[:50], "file_count": len(files), "own_names": own_names}})
    if len(others) > MAX_HOLDER_FINDINGS:
        rest = others[MAX_HOLDER_FINDINGS:]
        findings.append({
            "severity": "low", "category": "copyright", "code": "copyright-other-holder",
            "title": f"Copyright notices of {len(rest)} more holder(s)",
            "explanation": "Further holders, listed in the evidence with their files.",
            "evidence": {"holders": {h: files[:10] for h, files in rest[:500]}, "holder_count": len(rest)}})
    return findings


def engine_version() -> str:
    from compliance.engine.licenses import ENGINE_VERSION

    return f"licenses-{ENGINE_VERSION}"


def reuse_inputs(artifact: Artifact) -> dict:
    """What ``run`` reads: the bytes, the vendor's file name (single files are read under it),
    the programme's policy (findings and verdict) and the vendor's own names (holder findings)."""
    # The stored name too: on local storage the file is read at its stored path.
    return {"sha256": artifact.sha256, "name": artifact.original_name, "stored_name": artifact.file.name,
            "policy": policy_for(artifact.submission.project.programme_id),
            "own_names": vendor_names(artifact.submission.project)}


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.licenses import license_scan

    artifact = ctx.artifact
    ctx.progress(0.05, "detecting licences file by file")
    # The database's per-file cache, shared by every worker on every host (issue #16), not the
    # detector's per-host sqlite one (the CLI's); PORTAL_RESULT_CACHE=0 turns it off.
    cache = file_result_cache()
    with ctx.local_path() as path:
        try:
            members = artifact_members(path=path, original_name=artifact.original_name)
        except TooLargeToRead as error:
            return too_large_outcome(error=error, check="licenses", sha256=artifact.sha256)
        progress = scan_progress(ctx, step="detecting licences file by file", start=0.05, end=0.85,
                                 expected=archive_files_expected(artifact))
        result = license_scan(source=members, source_name=artifact.original_name, cache=cache, progress=progress,
                              **scan_limits())
    # Not `result.to_dict()`: only the files with a licence or a holder are shown, and turning every
    # file's result into a dict was 0.33 of 5.3 s of version 2 at 20,000 files (cProfile,
    # bench/v2_fixed_cost.py). The same dicts as `FileLicenseResult.to_dict` gives.
    inventory = result.inventory.to_dict()
    ctx.progress(0.85, "applying the programme's policy")
    findings = policy_findings(inventory=inventory, policy=policy_for(artifact.submission.project.programme_id))
    findings.extend(holder_findings(inventory=inventory, own_names=vendor_names(artifact.submission.project)))
    files = []
    for f in result.files:
        holders = f.holders
        if f.license_expression or holders:
            files.append({"path": f.path, "license_expression": f.license_expression,
                          "matches": [m.to_dict() for m in f.matches[:5]], "holders": holders[:5]})
    verdict = "denied" if any(f["code"] == "license-denied" for f in findings) else (
        "review" if any(f["severity"] in {"critical", "high", "medium"} for f in findings) else "compliant")
    return CheckOutcome(
        verdict=verdict,
        summary={"inventory": inventory, "files": files[:500], "files_total": len(result.files),
                 "stats": dict(result.stats),
                 # How many files' results came from the per-file cache (issue #16); absent when it is off.
                 **({"cache": dict(result.cache)} if result.cache else {})},
        findings=findings, engine_version=engine_version(),
        inputs={"sha256": artifact.sha256, "policy": policy_for(artifact.submission.project.programme_id)})

"""The portal's own test of a derived-from-model challenge: the calibrated lineage test between
the project's latest submitted model and the named model, when that model is a registered
reference with a fingerprint.

A public accusation is often a raw cosine of norm gains (any two trained models score about 0.99
on it); the result stored here carries the engine's verdict and permutation p-value and, from the
same layers, the raw cosine beside the centred (Pearson) figure and the shuffled-pairing baseline,
so the page can show the challenger's number next to what it is worth.

A copied-code claim ("copied from vllm 0.6.3") is answered by the copied-code engine on the
project's latest submitted source archives against the named project's code: an indexed code
corpus of that name, else a source archive of it among the challenger's evidence files (indexed
for this re-test only, in a temporary index: a challenger's upload never joins the registry).
A licence claim is answered by the programme's policy applied to the licence inventory of the
latest submission, with the inventory lines the policy flags or the challenger names. Each
result is "inconclusive" with its reason when it cannot decide (the named code is not available,
the project submitted nothing the engine reads).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db.models import Q

from compliance.checks import TooLargeToRead, artifact_members, storage_place, stored_local_path
from compliance.checks.model_view import model_entry, model_view
from compliance.models import Challenge, ChallengeFile, CheckRun, CodeCorpus, ReferenceModel
from projects.models import Artifact, Submission

# What the page shows of a copied-code re-test: the first regions, each with both sides' lines.
RETEST_REGIONS_SHOWN = 20
# Inventory lines shown for a licence re-test, and files named per line.
RETEST_LICENCE_LINES = 30
RETEST_FILES_PER_LINE = 10


def challenge_reference(*, challenge: Challenge) -> ReferenceModel | None:
    """The registered reference the challenge names (by its claimed source, then the model
    field), matched case-insensitively on the registry's name; only ones with a fingerprint."""
    if challenge.reference_id and challenge.reference.bundle:
        return challenge.reference  # chosen (or registered from a bundle) by an officer
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
    """Run the re-test the claim calls for and return what is stored on the challenge (never
    raises for missing code, reference or model: that is an inconclusive result with its reason)."""
    if challenge.claim == Challenge.Claim.COPIED_CODE:
        return copied_code_retest(challenge=challenge)
    if challenge.claim == Challenge.Claim.LICENCE_BREACH:
        return licence_retest(challenge=challenge)
    return lineage_retest(challenge=challenge)


def lineage_retest(*, challenge: Challenge) -> dict:
    """The calibrated lineage test against the named reference model."""
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
    from compliance.checks.model_view import artifacts_read

    # The model's files (weights, config, tokenizer) are read only once intake accepted them, as
    # the lineage check reads them only then.
    unchecked = _unchecked("lineage", artifact.submission, artifacts_read(artifact))
    if unchecked is not None:
        return {**unchecked, "reference": ref.name}
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
    return {"state": "done", "kind": "lineage", "reference": ref.name, "submission": artifact.submission.number,
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
    challenge = Challenge.objects.select_related("project", "reference").get(pk=challenge_id)
    try:
        result = challenge_retest_run(challenge=challenge)
    except Exception as exc:  # recorded, not lost: the officer sees why and can re-queue
        result = {"state": "failed", "verdict": "inconclusive", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    Challenge.objects.filter(pk=challenge_id).update(retest=result)
    audit_record(actor=None, action="challenge.retested", object_type="challenge", object_id=challenge_id,
                 object_label=f"#{challenge_id} {challenge.project.code}", project_id=challenge.project_id,
                 data={k: v for k, v in result.items() if k != "reason"})
    return result["state"]


# --- copied code --------------------------------------------------------------------------

def _inconclusive(kind: str, state: str, reason: str, **extra) -> dict:
    return {"state": state, "kind": kind, "verdict": "inconclusive", "reason": reason, **extra}


def challenge_source_artifacts(*, challenge: Challenge, applies: Callable[[Artifact], bool]
                               ) -> tuple[Submission | None, list[Artifact]]:
    """The latest submission past draft that holds files ``applies`` accepts, and those files
    (intake did not reject them; some may still be quarantined: see ``_unchecked``)."""
    submissions = (Submission.objects.filter(project_id=challenge.project_id)
                   .exclude(status=Submission.Status.DRAFT).order_by("-number"))
    for submission in submissions:
        artifacts = [a for a in submission.artifacts.exclude(status=Artifact.Status.REJECTED).order_by("pk")
                     if applies(a)]
        if artifacts:
            return submission, artifacts
    return None, []


def _unchecked(kind: str, submission: Submission, artifacts: list[Artifact]) -> dict | None:
    """Vendor bytes are read only once intake accepted them, as the checks do (their runs wait
    on intake): a re-test sent before that is inconclusive and says to run it again."""
    waiting = [a.original_name for a in artifacts if a.status != Artifact.Status.ACCEPTED]
    if not waiting:
        return None
    return _inconclusive(kind, "not_checked", f"intake has not yet accepted {', '.join(waiting[:5])} of version "
                                              f"{submission.number}; run the re-test again once it has",
                         submission=submission.number)


_VERSION = re.compile(r"^v?\d[\w.+-]*$")


def challenge_named_code(*, challenge: Challenge) -> tuple[str, str]:
    """(project name, version or "") the challenger names: "vllm 0.6.3", "vllm==0.6.3",
    "vllm@v0.6.3", "https://github.com/vllm-project/vllm"; the claimed source, else the model field."""
    text = (challenge.claimed_source or "").strip() or (challenge.model_named or "").strip()
    words = [w for w in re.split(r"[\s=@,]+", text.rstrip("/")) if w]
    if not words:
        return "", ""
    name = words[0].rsplit("/", 1)[-1]
    version = next((w for w in words[1:] if _VERSION.match(w)), "")
    return name, version.lstrip("v") if version[:1] == "v" and version[1:2].isdigit() else version


def _same_name(a: str, b: str) -> bool:
    from compliance.checks.code import _name_key

    return bool(_name_key(a)) and _name_key(a) == _name_key(b)


def _named_corpus(*, name: str, version: str) -> tuple[CodeCorpus | None, str]:
    """The indexed corpus of that name: the version named if indexed, else the newest indexed
    one (and a note saying so)."""
    if not settings.CODE_INDEX_DIR.exists():
        return None, ""
    corpora = [c for c in CodeCorpus.objects.order_by("-indexed_at", "-pk") if _same_name(c.name, name)]
    exact = [c for c in corpora if version and c.version.lstrip("v") == version]
    if exact:
        return exact[0], ""
    if corpora and not version:
        return corpora[0], ""
    if corpora:
        return corpora[0], (f"{name} {version} is not indexed; compared with the indexed {corpora[0].name} "
                            f"{corpora[0].version}")
    return None, ""


def _challenger_archive(*, challenge: Challenge, name: str) -> ChallengeFile | None:
    """A source archive among the challenger's evidence files that intake accepted, the one
    whose file name carries the project's name first."""
    from compliance.checks.code import _name_key
    from compliance.engine.licenses.sources import source_is_archive

    key = _name_key(name)
    candidates = []
    for row in challenge.files.filter(side=ChallengeFile.Side.CHALLENGER, intake_status="accepted"):
        lowered = row.original_name.lower()
        if lowered.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".txz")):
            candidates.append(row)
        elif source_is_archive(path=row.original_name, name=row.original_name):
            candidates.append(row)
    candidates.sort(key=lambda r: (key not in re.sub(r"[^a-z0-9]", "", r.original_name.lower()), r.pk))
    return candidates[0] if candidates else None


def copied_code_retest(*, challenge: Challenge) -> dict:
    """The copied-code engine on the latest submitted source against the named project's code."""
    from compliance.checks.code import applies
    from compliance.engine.codematch import code_index_add, code_scan

    name, version = challenge_named_code(challenge=challenge)
    if not name:
        return _inconclusive("copied_code", "no_code", "the challenge does not name the project the code was "
                                                        "copied from")
    named = f"{name} {version}".strip()
    submission, artifacts = challenge_source_artifacts(challenge=challenge, applies=applies)
    if submission is None:
        return _inconclusive("copied_code", "no_source", "the project has no submitted source code to compare",
                             named=named)
    if (waiting := _unchecked("copied_code", submission, artifacts)) is not None:
        return waiting
    corpus, note = _named_corpus(name=name, version=version)
    with tempfile.TemporaryDirectory(prefix="challenge-code-") as tmp:
        if corpus is not None:
            index_dir, packages = str(settings.CODE_INDEX_DIR), [(corpus.name, corpus.version)]
            compared = {"compared_with": f"{corpus.name} {corpus.version}".strip(), "code_source": "index",
                        "licence": corpus.license_expression}
        else:
            upload = _challenger_archive(challenge=challenge, name=name)
            if upload is None:
                return _inconclusive(
                    "copied_code", "no_code",
                    f"the named code ({named}) is neither an indexed code corpus nor a source archive among the "
                    "challenger's evidence files that intake accepted; an officer can index it "
                    "(index_reference) and re-test", named=named)
            index_dir = str(Path(tmp) / "index")
            with stored_local_path(upload.file.name) as path:
                members = artifact_members(path=path, original_name=upload.original_name)
                summary = code_index_add(index_dir=index_dir, source=members, name=name, version=version or None)
            if not summary.files:
                return _inconclusive("copied_code", "no_code",
                                     f"{upload.original_name} holds no code file the engine reads", named=named)
            packages = [(summary.name, summary.version)]
            compared = {"compared_with": named, "code_source": "challenger_evidence",
                        "evidence_file": upload.original_name, "evidence_sha256": upload.sha256,
                        "reference_files": summary.files}
        matches, files_scanned, unread = [], 0, []
        for artifact in artifacts:
            with stored_local_path(artifact.file.name) as path:
                try:
                    members = artifact_members(path=path, original_name=artifact.original_name)
                except TooLargeToRead as error:
                    unread.append(f"{artifact.original_name}: {error}")
                    continue
                result = code_scan(source=members, index_dir=index_dir, packages=packages)
            files_scanned += result.files_scanned
            matches.extend((artifact.original_name, m.to_dict()) for m in result.matches)
    regions = [{"artifact": archive, "path": m["path"], "lines": m["lines"],
                "origin_path": m["origin"]["path"], "origin_lines": m["origin"]["lines"],
                "label": m.get("label", "")} for archive, m in matches]
    return {"state": "done", "kind": "copied_code", "named": named, **compared, "note": note,
            "submission": submission.number, "archives": [a.original_name for a in artifacts],
            "verdict": "copied" if matches else "no_copies_found",
            "regions": len(matches),
            "lines": sum(m["lines"][1] - m["lines"][0] + 1 for _a, m in matches),
            "files": len({(archive, m["path"]) for archive, m in matches}),
            "files_scanned": files_scanned, "unread": unread[:5],
            "shown": regions[:RETEST_REGIONS_SHOWN]}


# --- licence ------------------------------------------------------------------------------

def _stored_inventory(*, artifact: Artifact, engine: str) -> tuple[dict | None, int | None]:
    """The inventory the licence check stored for these bytes with this engine, if any: the same
    input and engine give the same inventory, so it is not scanned again."""
    run = (CheckRun.objects.filter(artifact__sha256=artifact.sha256, check_name="licenses",
                                   state=CheckRun.State.SUCCEEDED, engine_version=engine)
           .order_by("-finished_at", "-pk").first())
    inventory = (run.summary or {}).get("inventory") if run else None
    return (inventory, run.pk) if inventory else (None, None)


_NOT_LICENCE_WORDS = {"and", "or", "with", "the", "licence", "license", "licensed", "under", "code", "model",
                      "from", "this", "that", "its", "their", "breach", "breaches", "copied", "only", "later"}


def _claimed_licence_words(challenge: Challenge) -> set[str]:
    text = f"{challenge.claimed_source} {challenge.statement[:2000]}".lower()
    return {w.strip(".") for w in re.split(r"[^a-z0-9.+-]+", text)
            if len(w.strip(".")) >= 3 and w.strip(".") not in _NOT_LICENCE_WORDS}


def _expression_cited(expression: str, cited: set[str]) -> bool:
    """Whether a licence of the expression is the one the challenger cites ("GPL-3.0" cites
    GPL-3.0-only, "Apache" cites Apache-2.0)."""
    keys = {k for k in re.split(r"[\s()]+", expression.lower()) if k and k not in {"and", "or", "with"}}
    return any(key == word or key.startswith(word) for key in keys for word in cited)


def licence_retest(*, challenge: Challenge) -> dict:
    """The programme's policy on the latest submission's licence inventory, with the inventory
    lines it flags and those naming the licence the challenger cites."""
    from compliance.checks.licenses import applies, engine_version
    from compliance.engine.licenses import license_scan
    from compliance.services.policy import policy_findings, policy_for

    submission, artifacts = challenge_source_artifacts(challenge=challenge, applies=applies)
    if submission is None:
        return _inconclusive("licence", "no_source", "the project has no submitted file the licence check reads")
    if (waiting := _unchecked("licence", submission, artifacts)) is not None:
        return waiting
    policy = policy_for(challenge.project.programme_id)
    engine = engine_version()
    cache_dir = getattr(settings, "LICENSE_CACHE_DIR", None) or (settings.VAR_DIR / "license-cache")
    cited = _claimed_licence_words(challenge)
    lines, findings, sources, unread = [], [], [], []
    for artifact in artifacts:
        inventory, run_id = _stored_inventory(artifact=artifact, engine=engine)
        if inventory is None:
            with stored_local_path(artifact.file.name) as path:
                try:
                    members = artifact_members(path=path, original_name=artifact.original_name)
                except TooLargeToRead as error:
                    unread.append(f"{artifact.original_name}: {error}")
                    continue
                inventory = license_scan(source=members, cache_dir=str(cache_dir),
                                         source_name=artifact.original_name).to_dict()["inventory"]
        sources.append({"artifact": artifact.original_name, "run": run_id})
        # The policy's word on each expression, from its own findings (denied, needs review).
        status_of = {}
        for finding in policy_findings(inventory=inventory, policy=policy):
            findings.append({"artifact": artifact.original_name, "severity": finding["severity"],
                             "code": finding["code"], "title": finding["title"][:300]})
            expression = (finding.get("evidence") or {}).get("expression")
            if expression and finding["code"] in {"license-denied", "license-review"}:
                status_of[expression] = "denied" if finding["code"] == "license-denied" else "review"
        for expression, files in sorted((inventory.get("expressions") or {}).items()):
            status = status_of.get(expression, "allowed")
            named = _expression_cited(expression, cited)
            if status == "allowed" and not named:
                continue
            lines.append({"artifact": artifact.original_name, "expression": expression, "status": status,
                          "cited": named, "file_count": len(files), "files": list(files)[:RETEST_FILES_PER_LINE]})
    if not sources:
        return _inconclusive("licence", "failed", "; ".join(unread)[:500] or "no file could be read")
    verdict = "denied" if any(f["code"] == "license-denied" for f in findings) else (
        "review" if any(f["severity"] in {"critical", "high", "medium"} for f in findings) else "compliant")
    lines.sort(key=lambda x: ({"denied": 0, "review": 1}.get(x["status"], 2), not x["cited"], x["expression"]))
    return {"state": "done", "kind": "licence", "submission": submission.number, "verdict": verdict,
            "sources": sources, "unread": unread[:5], "lines": lines[:RETEST_LICENCE_LINES],
            "lines_total": len(lines), "findings": findings[:RETEST_LICENCE_LINES]}

"""Code provenance: which files of a source archive were copied from known open code,
from which project, under which licence, and whether the copy is training or inference code.

Matching is ``compliance.engine.codematch`` (winnowing over normalised tokens) against the
reference index built by ``index_reference`` (the registry of code corpora).
"""

from __future__ import annotations

import re
from collections import defaultdict

from django.conf import settings

from compliance.checks import (CheckContext, CheckOutcome, TooLargeToRead, archive_files_expected,
                               artifact_members, scan_limits, scan_progress, too_large_outcome)
from compliance.engine.parallel import RunStats
from compliance.services.filecache import file_result_cache
from compliance.services.policy import carried_policy_findings, policy_for
from compliance.models import CodeCorpus, ProgrammePolicy
from projects.models import Artifact

# Findings listed one per copied file up to this many; the rest are summarised per origin.
MAX_FILE_FINDINGS = 50
# Side-by-side excerpts: for the first 100 matched files and matches, at most 80 lines a side, from the
# first 2 Mi characters of a file.
EXCERPT_MATCHES = 100
EXCERPT_LINES = 80
EXCERPT_FILE_BYTES = 2 * 1024 * 1024


def _lines(text: str, first: int, last: int) -> str:
    # "\n" only: the tokenizers number lines that way (splitlines also splits at \r, \x0c, \u2028).
    lines = text.split("\n")[max(0, first - 1):last]
    return "\n".join(lines[:EXCERPT_LINES])


def _reference_text(match: dict, roots: dict[tuple[str, str], str]) -> str | None:
    """The reference file's text, where the indexed tree is still on this worker."""
    from pathlib import Path

    root = roots.get((match["origin"]["name"], match["origin"].get("version") or ""))
    if not root:
        return None
    candidate = Path(root) / match["origin"]["path"]
    try:
        if candidate.is_file() and candidate.stat().st_size <= EXCERPT_FILE_BYTES:
            return candidate.read_text("utf-8", errors="replace")
    except OSError:
        return None
    return None


def excerpts_attach(*, texts: dict[str, str], matches: list[dict]) -> None:
    """Add `excerpt` (vendor lines, from `texts`: the matched vendor files as the scan read them)
    and `origin.excerpt` (reference lines) to the first matches, so reviewers read the two
    regions side by side."""
    shown = matches[:EXCERPT_MATCHES]
    roots = {(c.name, c.version): c.origin for c in CodeCorpus.objects.all()}
    for match in shown:
        text = texts.get(match["path"])
        if text is not None:
            match["excerpt"] = _lines(text, *match["lines"])
        reference = _reference_text(match, roots)
        if reference is not None:
            match["origin"]["excerpt"] = _lines(reference, *match["origin"]["lines"])


def _name_key(name: str) -> str:
    """'huggingface/Transformers', 'transformers==5.2', 'megatron_core' -> comparable keys."""
    base = name.strip().lower().rstrip("/").rsplit("/", 1)[-1]
    base = re.split(r"[=<>@ ]", base, maxsplit=1)[0]
    return re.sub(r"[^a-z0-9]", "", base)


def declared_entry(*, name: str, declared: list[dict]) -> dict | None:
    """The vendor's declared third-party entry for an origin project, if any.

    Names match after normalisation (case, punctuation, an owner prefix, a version suffix),
    or when one is a prefix of the other of at least 4 characters ('megatron' declared,
    'megatron-core' indexed). Versions are not compared: a vendor who declares vllm and
    copied from a neighbouring release has still declared vllm.
    """
    key = _name_key(name)
    for entry in declared:
        other = _name_key(str(entry.get("name", "")))
        if not other or not key:
            continue
        shorter, longer = sorted((key, other), key=len)
        if key == other or (len(shorter) >= 4 and longer.startswith(shorter)):
            return entry
    return None


def origin_finding(*, name: str, version: str, licence: str, items: list[dict], declared: list[dict],
                   from_scratch: bool) -> dict:
    """One finding per origin project: undeclared copy, declared copy, or a copy used otherwise than declared."""
    lines = sum(m["lines"][1] - m["lines"][0] + 1 for m in items)
    labels = sorted({m.get("label", "other") for m in items})
    by_label = {label: sum(1 for m in items if m.get("label", "other") == label) for label in labels}
    training = by_label.get("training", 0)
    entry = declared_entry(name=name, declared=declared)
    amount = f"{len(items)} region(s), {lines} lines, {', '.join(labels)} code"
    evidence = {"origin": name, "version": version, "license_expression": licence, "lines": lines,
                "regions": len(items), "labels": labels, "regions_by_label": by_label,
                "declared": entry, "matches": items[:MAX_FILE_FINDINGS]}
    if entry is None:
        severity = "high" if training else "medium"
        explanation = (f"{len(items)} region(s) of the vendor's code ({lines} lines) match {name} {version}, "
                       "which the declaration does not list as third-party code. Training code copied from another "
                       "project weighs on a claim of own training"
                       + (" (this submission claims a backbone trained from scratch)" if from_scratch else "")
                       + "; inference code usually does not, but its licence applies either way.")
        return {"severity": severity, "category": "code", "code": "undeclared_third_party_code",
                "title": f"Code copied from {name} {version} ({licence or 'licence unknown'}): {amount}",
                "explanation": explanation, "evidence": evidence}
    declared_use = entry.get("use") or "other"
    if training and declared_use != "training":
        return {"severity": "high", "category": "code", "code": "third_party_code_use_mismatch",
                "title": f"{name} declared as {declared_use} code, but {training} copied region(s) are training code",
                "explanation": f"The declaration lists {name} for {declared_use} use; {training} of the {len(items)} "
                               f"matched region(s) are labelled training code by path and content (see each region's "
                               "label). A reviewer should confirm which side of the model the copied code serves.",
                "evidence": evidence}
    return {"severity": "info", "category": "code", "code": "declared_third_party_code",
            "title": f"Declared code from {name} {version} ({licence or 'licence unknown'}): {amount}",
            "explanation": f"The vendor declared {name} ({declared_use} use) and the copied regions agree with it. "
                           "Its licence obligations still apply (see the licence findings).",
            "evidence": evidence}


def carried_inventory(*, matches: list[dict], source: str) -> dict | None:
    """The licences copied code carries, as a licence inventory (one entry per vendor file)."""
    from compliance.engine.licenses import license_inventory_build
    from compliance.engine.licenses.detect import FileLicenseResult, LicenseMatch

    per_file: dict[str, dict[str, dict]] = defaultdict(dict)
    for match in matches:
        expression = match.get("license_expression")
        if expression:
            per_file[match["path"]].setdefault(expression, match)
    if not per_file:
        return None
    files = []
    for path, by_expression in sorted(per_file.items()):
        expressions = sorted(by_expression)
        files.append(FileLicenseResult(
            path=path, sha256="", size=0,
            license_expression=expressions[0] if len(expressions) == 1
            else " AND ".join(f"({e})" for e in expressions),
            license_expression_scancode=None, mode="copied-code",
            matches=[LicenseMatch(
                license_expression=expression, license_expression_scancode="",
                rule=f"copied from {m['origin']['name']} {m['origin'].get('version') or ''}: "
                     f"{m['origin']['path']}".strip()
                     + (" (the file's own licence header)" if m["origin"].get("license_source") == "file" else ""),
                start_line=m["lines"][0], end_line=m["lines"][1], score=100.0, matcher="codematch",
                matched_length=m.get("score", 0), coverage=100.0)
                for expression, m in sorted(by_expression.items())]))
    return license_inventory_build(files=files, declared=[], source=source).to_dict()


def corpora_scope(*, programme_id: int) -> dict:
    """Which indexed code corpora the programme's policy compares vendor code against.

    The policy's list is obeyed (issue #10: it was saved but every corpus was scanned). A policy
    that lists none has not narrowed the comparison, and a ministry asking "was anything copied?"
    expects every reference it holds to be used, so then every indexed corpus is scanned; the
    evidence says which of the two happened."""
    policy = ProgrammePolicy.objects.filter(programme_id=programme_id).first()
    listed = list(policy.code_corpora.order_by("name", "version")) if policy else []
    if listed:
        return {"scope": "policy", "packages": [(c.name, c.version) for c in listed],
                "listed": [f"{c.name} {c.version}".strip() for c in listed],
                "note": "the corpora the programme's policy lists"}
    return {"scope": "all", "packages": None, "listed": [],
            "note": "every indexed corpus: the programme's policy lists no code corpora"}


def applies(artifact: Artifact) -> bool:
    """Source archives, model directories, and a single source file uploaded as 'other'."""
    if artifact.kind in {Artifact.Kind.SOURCE_ARCHIVE, Artifact.Kind.MODEL_DIRECTORY}:
        return True
    from compliance.engine.codematch.tokens import path_is_code

    return artifact.kind == Artifact.Kind.OTHER and path_is_code(path=artifact.original_name)


ENGINE_VERSION = "codematch-1"


def engine_version() -> str:
    return ENGINE_VERSION


def reuse_inputs(artifact: Artifact) -> dict:
    """What ``run`` reads: the bytes and the vendor's file name, the code corpora compared with
    (the policy's scope, and each indexed corpus as last indexed, with where its tree lies for
    excerpts), the declared third-party code and from-scratch claim, and the programme's policy
    (applied to the licences copied code carries)."""
    programme_id = artifact.submission.project.programme_id
    declaration = getattr(artifact.submission, "declaration", None)
    scope = corpora_scope(programme_id=programme_id)
    return {
        # The stored name too: on local storage the file is read at its stored path.
        "sha256": artifact.sha256, "name": artifact.original_name, "stored_name": artifact.file.name,
        "scope": [scope["scope"], scope["packages"]],
        "corpora": [[c.name, c.version, c.license_expression, c.origin, c.files, c.fingerprints,
                     c.indexed_at.isoformat() if c.indexed_at else None]
                    for c in CodeCorpus.objects.order_by("name", "version")],
        "index_present": settings.CODE_INDEX_DIR.exists(),
        "third_party_code": list(declaration.third_party_code or []) if declaration else [],
        "from_scratch": bool(declaration and declaration.from_scratch),
        "policy": policy_for(programme_id),
    }


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.codematch import code_scan

    artifact = ctx.artifact
    index_dir = settings.CODE_INDEX_DIR
    if not CodeCorpus.objects.exists() or not index_dir.exists():
        return CheckOutcome(
            verdict="inconclusive", state="inconclusive", incomplete="no reference code is indexed",
            summary={"reason": "no reference code is indexed"},
            findings=[{"severity": "medium", "category": "code", "code": "code_no_references",
                       "title": "Copied-code check not run: no reference code indexed",
                       "explanation": "Index known open projects with `python manage.py index_reference` "
                                      "(for example transformers, vllm) to test vendor code against them.",
                       "evidence": {}}],
            engine_version=ENGINE_VERSION, inputs={"sha256": artifact.sha256})
    ctx.progress(0.05, "fingerprinting the vendor's code")
    with ctx.local_path() as path:
        try:
            members = artifact_members(path=path, original_name=artifact.original_name)
        except TooLargeToRead as error:
            return too_large_outcome(error=error, check="code", sha256=artifact.sha256)
        texts: dict[str, str] = {}

        def keep_text(vendor_path: str, text: str) -> None:
            # Matched files in scan order: the first matches are the ones shown with excerpts.
            if len(texts) < EXCERPT_MATCHES:
                texts[vendor_path] = text[:EXCERPT_FILE_BYTES]

        scope = corpora_scope(programme_id=artifact.submission.project.programme_id)
        # Per-file results from the shared cache first, the rest split across processes (issue #16).
        scan_run = RunStats()
        cache = file_result_cache()
        progress = scan_progress(ctx, step="fingerprinting the vendor's code", start=0.05, end=0.8,
                                 expected=archive_files_expected(artifact))
        result = code_scan(source=members, index_dir=index_dir, on_matched_file=keep_text,
                           packages=scope["packages"], cache=cache, engine_version=ENGINE_VERSION, run=scan_run,
                           progress=progress, **scan_limits()).to_dict()
    scanned = [f"{p['name']} {p['version'] or ''}".strip() for p in result["index_packages"]]
    corpora = {"scope": scope["scope"], "note": scope["note"], "scanned": scanned,
               # Listed by the policy but absent from this worker's index: not compared against.
               "listed_not_indexed": [name for name in scope["listed"] if name not in scanned]}
    if not scanned:
        listed = ", ".join(scope["listed"])
        return CheckOutcome(
            verdict="inconclusive", state="inconclusive",
            incomplete=("none of the policy's code corpora is indexed" if listed else "no reference code is indexed"),
            summary={"reason": "none of the policy's code corpora is indexed" if listed
                     else "no reference code is indexed", "corpora": corpora},
            findings=[{"severity": "medium", "category": "code", "code": "code_no_references",
                       "title": "Copied-code check not run: "
                                + ("none of the policy's code corpora is indexed" if listed
                                   else "no reference code indexed"),
                       "explanation": (f"The programme's policy lists code corpora to compare against ({listed}), "
                                       "and none of them is in the reference index. " if listed else "")
                                      + "Index them with `python manage.py index_reference`"
                                      + (", or change the policy." if listed else "."),
                       "evidence": {"corpora": corpora}}],
            engine_version=ENGINE_VERSION, inputs={"sha256": artifact.sha256, "corpora": []})
    matches = result["matches"]
    ctx.progress(0.8, "reading the matched regions on both sides")
    excerpts_attach(texts=texts, matches=matches)
    ctx.progress(0.9, "summarising matches by origin")
    # Grouped by the licence each match carries: the reference file's own
    # licence when its header states one (vendored code inside a project keeps
    # its licence: MIT files inside an Apache-2.0 package), else the package's.
    by_origin: dict[tuple, list] = defaultdict(list)
    for match in matches:
        origin = match["origin"]
        by_origin[(origin["name"], origin.get("version") or "", match.get("license_expression") or "")].append(match)
    declaration = getattr(artifact.submission, "declaration", None)
    declared = list(declaration.third_party_code or []) if declaration else []
    from_scratch = bool(declaration and declaration.from_scratch)
    findings = [origin_finding(name=name, version=version, licence=licence, items=items, declared=declared,
                               from_scratch=from_scratch)
                for (name, version, licence), items in sorted(by_origin.items(), key=lambda kv: -len(kv[1]))]
    for finding in findings:
        finding["evidence"]["corpora"] = corpora
    carried = carried_inventory(matches=matches, source=f"{artifact.original_name} (copied code)")
    if carried is not None:
        findings.extend(carried_policy_findings(inventory=carried,
                                                policy=policy_for(artifact.submission.project.programme_id)))
    verdict = "copied" if matches else "no_copies_found"
    return CheckOutcome(
        verdict=verdict,
        summary={"matches": matches[:500], "files_scanned": result.get("files_scanned"),
                 # Which reference code this verdict is about: a "no copies found" means "in these".
                 "corpora": corpora,
                 "files_with_matches": result.get("files_with_matches"),
                 "origins": [{"name": k[0], "version": k[1], "license_expression": k[2], "regions": len(v),
                              "lines": sum(m["lines"][1] - m["lines"][0] + 1 for m in v),
                              "labels": sorted({m.get("label", "other") for m in v}),
                              "declared": declared_entry(name=k[0], declared=declared) is not None,
                              "package_license_expression": v[0]["origin"].get("package_license_expression")}
                             for k, v in by_origin.items()],
                 # The licences the copied code brings with it, as an inventory: the programme's
                 # policy is applied to it here and again, without rescanning, when the policy changes.
                 "inventory": carried,
                 "stats": {"code_files": result.get("code_files"), "processes": scan_run.processes,
                           "worker_cpu_seconds": scan_run.worker_cpu_seconds,
                           **({"processes_retired": scan_run.retired} if scan_run.retired else {})},
                 **({"cache": scan_run.cache_summary()} if cache is not None else {})},
        findings=findings, engine_version=ENGINE_VERSION,
        inputs={"sha256": artifact.sha256, "corpora": scanned})

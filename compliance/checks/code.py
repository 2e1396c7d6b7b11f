"""Code provenance: which files of a source archive were copied from known open code,
from which project, under which licence, and whether the copy is training or inference code.

Matching is ``compliance.engine.codematch`` (winnowing over normalised tokens) against the
reference index built by ``index_reference`` (the registry of code corpora).
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings

from compliance.checks import CheckContext, CheckOutcome
from compliance.models import CodeCorpus
from projects.models import Artifact

# Findings listed one per copied file up to this many; the rest are summarised per origin.
MAX_FILE_FINDINGS = 50


def applies(artifact: Artifact) -> bool:
    return artifact.kind in {Artifact.Kind.SOURCE_ARCHIVE, Artifact.Kind.MODEL_DIRECTORY}


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.codematch import code_scan

    artifact = ctx.artifact
    index_dir = settings.CODE_INDEX_DIR
    if not CodeCorpus.objects.exists() or not index_dir.exists():
        return CheckOutcome(
            verdict="inconclusive", state="inconclusive",
            summary={"reason": "no reference code is indexed"},
            findings=[{"severity": "medium", "category": "code", "code": "code_no_references",
                       "title": "Copied-code check not run: no reference code indexed",
                       "explanation": "Index known open projects with `python manage.py index_reference` "
                                      "(for example transformers, vllm) to test vendor code against them.",
                       "evidence": {}}],
            engine_version="codematch-1", inputs={"sha256": artifact.sha256})
    ctx.progress(0.05, "fingerprinting the vendor's code")
    with ctx.local_path() as path:
        result = code_scan(source=path, index_dir=index_dir).to_dict()
    matches = result["matches"]
    ctx.progress(0.9, "summarising matches by origin")
    by_origin: dict[tuple, list] = defaultdict(list)
    for match in matches:
        origin = match["origin"]
        by_origin[(origin["name"], origin.get("version") or "", match.get("license_expression") or "")].append(match)
    findings = []
    for (name, version, licence), items in sorted(by_origin.items(), key=lambda kv: -len(kv[1])):
        lines = sum(m["lines"][1] - m["lines"][0] + 1 for m in items)
        labels = sorted({m.get("label", "other") for m in items})
        training = any(m.get("label") == "training" for m in items)
        findings.append({
            "severity": "high" if training else "medium", "category": "code", "code": "undeclared_third_party_code",
            "title": f"Code copied from {name} {version} ({licence or 'licence unknown'}): "
                     f"{len(items)} region(s), {lines} lines, {', '.join(labels)} code",
            "explanation": f"{len(items)} region(s) of the vendor's code match {name} {version}. Training code "
                           "copied from another project weighs on a from-scratch claim; inference code usually "
                           "does not, but its licence still applies.",
            "evidence": {"origin": name, "version": version, "license_expression": licence, "lines": lines,
                         "labels": labels, "matches": items[:MAX_FILE_FINDINGS]}})
    verdict = "copied" if matches else "no_copies_found"
    return CheckOutcome(
        verdict=verdict,
        summary={"matches": matches[:500], "files_scanned": result.get("files_scanned"),
                 "files_with_matches": result.get("files_with_matches"),
                 "origins": [{"name": k[0], "version": k[1], "license_expression": k[2], "regions": len(v)}
                             for k, v in by_origin.items()]},
        findings=findings, engine_version="codematch-1",
        inputs={"sha256": artifact.sha256,
                "corpora": [f"{c.name} {c.version}" for c in CodeCorpus.objects.order_by("name")]})

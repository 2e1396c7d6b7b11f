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
# Side-by-side excerpts: for the first 100 matches, at most 80 lines a side, from files of at most 2 MiB.
EXCERPT_MATCHES = 100
EXCERPT_LINES = 80
EXCERPT_FILE_BYTES = 2 * 1024 * 1024


def _lines(text: str, first: int, last: int) -> str:
    lines = text.splitlines()[max(0, first - 1):last]
    return "\n".join(lines[:EXCERPT_LINES])


def _vendor_texts(path, wanted: set[str]) -> dict[str, str]:
    """The vendor files named by matches, read from the archive as streams (never extracted)."""
    from compliance.engine.archives import ArchiveError, archive_iter_members

    texts: dict[str, str] = {}
    try:
        for member in archive_iter_members(path=path, strict=False):
            data = member.reader.read(EXCERPT_FILE_BYTES) if member.path in wanted else member.reader.read()
            if member.path in wanted:
                texts[member.path] = data.decode("utf-8", "replace")
            if len(texts) == len(wanted):
                break
    except ArchiveError:  # a single source file rather than an archive
        if len(wanted) == 1:
            with open(path, "rb") as fh:
                texts[next(iter(wanted))] = fh.read(EXCERPT_FILE_BYTES).decode("utf-8", "replace")
    return texts


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


def excerpts_attach(*, path, matches: list[dict]) -> None:
    """Add `excerpt` (vendor lines) and `origin.excerpt` (reference lines) to the first matches,
    so reviewers read the two regions side by side."""
    shown = matches[:EXCERPT_MATCHES]
    texts = _vendor_texts(path, {m["path"] for m in shown})
    roots = {(c.name, c.version): c.origin for c in CodeCorpus.objects.all()}
    for match in shown:
        text = texts.get(match["path"])
        if text is not None:
            match["excerpt"] = _lines(text, *match["lines"])
        reference = _reference_text(match, roots)
        if reference is not None:
            match["origin"]["excerpt"] = _lines(reference, *match["origin"]["lines"])


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
        ctx.progress(0.8, "reading the matched regions on both sides")
        excerpts_attach(path=path, matches=matches)
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

"""A dossier for a submission with a 50,000-file source tree and 500 copied-code regions
(issue #16: a dossier in under 30 s). The runs' results are the checks' own summaries and
findings, built with the checks' own functions and stored directly (no scanning). Print shows
capped tables with "N more" notes; the attached findings.json keeps every row; the run's
per-file reuse is said in the checks chapter. ``-s`` prints the measured seconds (BENCHMARKS.md)."""

from __future__ import annotations

import json
import time
from io import BytesIO

import pytest
from pypdf import PdfReader

from compliance.checks.code import carried_inventory, origin_finding
from compliance.checks.licenses import holder_findings
from compliance.dossier.context import dossier_context_build
from compliance.dossier.render import TABLE_ROWS_SHOWN
from compliance.dossiers import dossier_render_now
from compliance.engine.licenses import license_inventory_build
from compliance.engine.licenses.detect import CopyrightStatement, FileLicenseResult, LicenseMatch
from compliance.models import CheckRun, Finding
from compliance.services.policy import policy_findings, policy_for
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

FILES = 50_000
MATCHES = 500
LICENCES = ["Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause", "ISC", "GPL-2.0-only", "LGPL-2.1-or-later",
            "MPL-2.0", "Zlib", "Unlicense", "CC0-1.0", "Python-2.0", "BSL-1.0", "EPL-2.0", "AGPL-3.0-only"]
ORIGINS = [(f"upstream-project-{i}", f"{i}.{i % 7}.0") for i in range(25)]


def _path(i: int) -> str:
    return f"src/module_{i // 500:03d}/sub_{(i // 50) % 10}/file_{i:05d}.py"


def _licence_results() -> list[FileLicenseResult]:
    """One result per file: a licence header on one file in five, a holder on one in ten."""
    results = []
    for i in range(FILES):
        expression = LICENCES[i % len(LICENCES)] if i % 5 == 0 else None
        matches = [LicenseMatch(license_expression=expression, license_expression_scancode=expression.lower(),
                                rule=f"{expression.lower()}_header_{i % 3}.RULE", start_line=1, end_line=3,
                                score=100.0, matcher="2-aho", matched_length=30, coverage=100.0)] if expression else []
        copyrights = [CopyrightStatement(kind="holder", value=f"Contributor {i % 400} Inc.", start_line=1,
                                         end_line=1)] if i % 10 == 0 else []
        results.append(FileLicenseResult(path=_path(i), sha256=f"{i:064x}", size=4000 + i % 999,
                                         license_expression=expression, license_expression_scancode=None,
                                         matches=matches, copyrights=copyrights, mode="cache:exact"))
    return results


def _matches() -> list[dict]:
    rows = []
    for i in range(MATCHES):
        name, version = ORIGINS[i % len(ORIGINS)]
        licence = LICENCES[i % 4]
        rows.append({"path": _path(i * 97), "lines": [10 + i % 50, 40 + i % 50],
                     "origin": {"name": name, "version": version, "path": f"{name}/lib/part_{i}.py",
                                "lines": [1, 31], "license_expression": licence, "siblings": [], "sibling_count": 0,
                                "package_license_expression": licence, "license_source": "package",
                                **({"excerpt": "\n".join(f"ref line {n}" for n in range(31))} if i < 100 else {})},
                     "license_expression": licence, "label": "training" if i % 3 == 0 else "inference",
                     "score": 120, "query_coverage": 0.9, "origin_coverage": 0.8, "matched_tokens": None,
                     **({"excerpt": "\n".join(f"vendor line {n}" for n in range(31))} if i < 100 else {})})
    return rows


def _store(run: CheckRun, *, verdict: str, summary: dict, findings: list[dict]) -> None:
    CheckRun.objects.filter(pk=run.pk).update(state=CheckRun.State.SUCCEEDED, verdict=verdict, summary=summary,
                                              progress=1.0, engine_version="bench/1")
    Finding.objects.bulk_create([
        Finding(check_run=run, submission_id=run.submission_id, severity=f["severity"],
                category=f.get("category", run.check_name), code=f["code"][:80], title=f["title"][:300],
                explanation=f.get("explanation", ""), evidence=f.get("evidence") or {}, params=f.get("params") or {})
        for f in findings])


def _large_submission(world):
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", b"not scanned here\n")},
                                   submit=True)
    runs = {r.check_name: r for r in CheckRun.objects.filter(submission=submission)}
    policy = policy_for(world.programme.pk)
    results = _licence_results()
    inventory = license_inventory_build(files=results, declared=[], source="src.tar.gz").to_dict()
    files = [{"path": r.path, "license_expression": r.license_expression,
              "matches": [m.to_dict() for m in r.matches][:5], "holders": r.holders[:5]}
             for r in results if r.license_expression or r.holders]
    _store(runs["licenses"], verdict="review", summary={
        "inventory": inventory, "files": files[:500], "files_total": len(results), "stats": {"files": FILES},
        "cache": {"files": FILES, "reused": FILES - 1050, "computed": 1050, "engine_version": "licenses/bench"}},
        findings=policy_findings(inventory=inventory, policy=policy)
        + holder_findings(inventory=inventory, own_names=["Vendor A"]))
    matches = _matches()
    by_origin: dict[tuple, list] = {}
    for m in matches:
        by_origin.setdefault((m["origin"]["name"], m["origin"]["version"], m["license_expression"]), []).append(m)
    carried = carried_inventory(matches=matches, source="src.tar.gz (copied code)")
    _store(runs["code"], verdict="copied", summary={
        "matches": matches, "files_scanned": FILES, "files_with_matches": MATCHES, "corpora": {"scope": "all"},
        "origins": [{"name": k[0], "version": k[1], "license_expression": k[2], "regions": len(v)}
                    for k, v in by_origin.items()], "inventory": carried,
        "cache": {"files": FILES, "reused": FILES - 500, "computed": 500, "engine_version": "code/bench"}},
        findings=[origin_finding(name=k[0], version=k[1], licence=k[2], items=v, declared=[], from_scratch=True)
                  for k, v in by_origin.items()])
    _store(runs["intake"], verdict="pass", summary={"detected_kind": "source_archive", "findings": 0}, findings=[])
    return submission


def test_a_50000_file_source_tree_dossier_prints_capped_tables_and_attaches_everything(world, dossier_signing_key):
    """What prints and what is attached; its time is bench/submission_e2e.py's and BENCHMARKS.md's
    (a timed test would pass or fail with the machine's load)."""
    started = time.perf_counter()
    submission = _large_submission(world)
    print(f"\nbuilding the runs' results: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    dossier_context_build(submission=submission, lang="en")
    print(f"context alone: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    dossier, pdf = dossier_render_now(submission=submission, lang="en")
    seconds = time.perf_counter() - started
    reader = PdfReader(BytesIO(pdf))
    print(f"\n50,000-file dossier: {seconds:.1f} s, {len(reader.pages)} pages, {len(pdf) / 1e6:.2f} MB")
    text = "\n".join(page.extract_text() for page in reader.pages)
    # The checks chapter says what was reused, and caps the code table with a note.
    assert "48,950 of 50,000 files' results reused" in text.replace("\n", " ")
    assert f"{MATCHES - TABLE_ROWS_SHOWN} more rows" in text.replace("\n", " ")
    # Attached: every code match and every finding.
    attached = reader.attachments
    findings_json = json.loads(attached["findings.json"][0])
    code = next(c for c in findings_json["checks"] if c["kind"] == "code")
    assert len(code["code_matches"]) == MATCHES
    assert len(findings_json["findings"]) == Finding.objects.filter(submission=submission).count()

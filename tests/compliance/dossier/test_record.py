"""The dossier records what the database says (issue #10).

A reviewer requested changes; page 1 of the dossier said "Cleared with conditions", the
summary said "copied: —" beside 140 matched lines, and the confirmed undeclared-code finding
was missing from "Open risks". For every submission decision (and none), with findings in
every state the model knows, in English and Korean: render the real PDF, read its text back
with poppler, and hold the status, the counts and the open risks against the rows.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from compliance.dossier.context import dossier_context_build
from compliance.dossier.labels import label_for
from compliance.dossier.render import dossier_render
from compliance.models import CheckRun, Finding, FindingDecision, SubmissionDecision
from compliance.services import decisions
from projects.models import Submission
from projects.services import submission_status_set
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

# Findings per status. Open ones stay below high so that "approved" can be decided (a reviewer
# must first decide every open critical and high finding); every status also has an
# information finding, which records a fact and is no risk.
SEVERITIES_BY_STATUS = {
    Finding.Status.OPEN: ["medium", "low", "info"],
    Finding.Status.CONFIRMED: ["high", "info"],
    Finding.Status.WAIVED: ["critical", "low", "info"],
    Finding.Status.FALSE_POSITIVE: ["high", "medium", "info"],
}
COPIED_LINES = 140  # the undeclared copy: 140 lines from one origin


def _code_run(submission):
    artifact = submission.artifacts.get()
    now = timezone.now()
    origin = {"name": "gguf", "version": "0.10.0", "path": "gguf/gguf_writer.py", "lines": [1, 140]}
    # The shape compliance.checks.code writes: matches, and per origin the lines and regions.
    return CheckRun.objects.create(
        artifact=artifact, submission=submission, check_name="code", state="succeeded", verdict="copied",
        engine_version="codematch-1", inputs={"sha256": artifact.sha256}, queued_at=now, started_at=now,
        finished_at=now,
        summary={"matches": [{"path": "vendor/writer.py", "lines": [10, 149], "origin": origin,
                              "license_expression": "MIT", "label": "inference", "query_coverage": 0.97}],
                 "files_scanned": 12, "files_with_matches": 1,
                 "origins": [{"name": "gguf", "version": "0.10.0", "license_expression": "MIT", "regions": 3,
                              "lines": COPIED_LINES, "labels": ["inference"], "declared": False}],
                 "inventory": None})


def _submission_with_every_finding_state(world) -> Submission:
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", b"\x1f\x8b" + b"\x00" * 62)})
    run = _code_run(submission)
    statuses = dict(SEVERITIES_BY_STATUS)
    for status in Finding.Status.values:  # a state added to the model later is covered too
        statuses.setdefault(status, ["medium"])
    number = 0
    for status, severities in statuses.items():
        for severity in severities:
            number += 1
            title = f"R{number:02d} {status} {severity}"
            if (status, severity) == (Finding.Status.CONFIRMED, "high"):
                title = f"R{number:02d} Code copied from gguf 0.10.0 (MIT): {COPIED_LINES} lines, not declared"
            finding = Finding.objects.create(check_run=run, submission=submission, severity=severity,
                                             category="code", code="undeclared_copy", title=title)
            if status in FindingDecision.Decision.values:
                decisions.finding_decide(user=world.reviewer, finding=finding, decision=status,
                                         justification=f"reviewed {status}")
            elif status != Finding.Status.OPEN:
                Finding.objects.filter(pk=finding.pk).update(status=status)
    submission_status_set(submission=submission, status=Submission.Status.CHECKED)
    return submission


def _pdf_text(pdf: bytes, tmp_path, *, layout: bool) -> str:
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(path), "-"]
    return subprocess.run(args, capture_output=True, check=True, timeout=120).stdout.decode()


def _between(text: str, start: str, end: str) -> str:
    head = text.index(start)
    return text[head:text.index(end, head)]


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _expected_open_risks(submission) -> list[Finding]:
    """Spelled out here, as the issue says it: open or confirmed, information aside."""
    rows = list(Finding.objects.filter(submission=submission))
    expected = [f for f in rows if f.status in {"open", "confirmed"} and f.severity != "info"]
    assert expected == [f for f in rows if f.is_open_risk]  # the model's definition says the same
    return expected


def _assert_dossier_matches_rows(submission, lang: str, tmp_path) -> None:
    context = dossier_context_build(submission=submission, lang=lang, dossier_number="D-2026-000001")
    pdf = dossier_render(context=context).pdf_bytes
    layout = _pdf_text(pdf, tmp_path, layout=True)
    flat = _flat(_pdf_text(pdf, tmp_path, layout=False))
    latest = SubmissionDecision.objects.filter(submission=submission).order_by("decided_at", "id").last()
    with translation.override(lang):
        expected_status = str(Submission.Status(latest.decision if latest else submission.status).label)
        status_words = {value: str(label) for value, label in Finding.Status.choices}
        severity_words = [str(Finding.Severity(s).label) for s in Finding.SEVERITY_ORDER]
        other_statuses = {str(label) for value, label in Submission.Status.choices} - {expected_status}

    # 1. The overall status is the decision, worded as the portal words it.
    cover = next(line.strip() for line in layout.splitlines() if label_for(lang, "overall_status") + ":" in line)
    assert cover == f"{label_for(lang, 'overall_status')}: {expected_status}", cover
    assert not any(cover.endswith(": " + other) for other in other_statuses)
    assert "Cleared with conditions" not in layout and "조건부 적합" not in layout

    # 2. The counts by status and severity are the rows' counts.
    table = _between(layout, label_for(lang, "findings_by_status"), label_for(lang, "findings_by_severity"))
    header = next(line for line in table.splitlines() if label_for(lang, "total") in line)
    assert re.split(r"\s{2,}", header.strip())[1:] == [*severity_words, label_for(lang, "total")]
    for status, word in status_words.items():
        line = next(line for line in table.splitlines() if line.strip().startswith(word + " "))
        counts = [int(n) for n in line.strip()[len(word):].split()]
        rows = Finding.objects.filter(submission=submission, status=status)
        expected = [rows.filter(severity=s).count() for s in Finding.SEVERITY_ORDER]
        assert counts == [*expected, sum(expected)], (status, line)

    # 3. Open risks are exactly the open and confirmed findings, the confirmed copy among them.
    risks = _flat(_between(layout, label_for(lang, "open_risks"), label_for(lang, "findings_by_status")))
    expected_risks = _expected_open_risks(submission)
    assert any("Code copied from gguf" in f.title for f in expected_risks)
    for finding in Finding.objects.filter(submission=submission):
        marker = finding.title.split(" ")[0]  # R01, R02...: unique
        assert (marker in risks) == (finding in expected_risks), (finding.title, finding.status, finding.severity)

    # 4. What the code check found is said with its numbers, not "copied: —".
    found = _flat(label_for(lang, "found_code", lines=COPIED_LINES, regions=3, origins="gguf 0.10.0 (MIT)"))
    assert found in flat, flat[:3000]


@pytest.mark.parametrize("decision", [None, *SubmissionDecision.Decision.values])
def test_dossier_states_the_decision_counts_and_open_risks_of_the_rows(world, decision, tmp_path, client):
    submission = _submission_with_every_finding_state(world)
    if decision is not None:
        decisions.submission_decide(user=world.reviewer, submission=submission, decision=decision,
                                    justification=f"decided {decision}")
    submission.refresh_from_db()
    for lang in ("en", "ko"):
        _assert_dossier_matches_rows(submission, lang, tmp_path)

    # The portal's submission page lists the same open risks as the dossier.
    client.force_login(world.reviewer)
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    listed = re.findall(r'<a href="#finding-(\d+)">', _between(page, 'id="h-open-risks"', "</ul>"))
    assert sorted(map(int, listed)) == sorted(f.pk for f in _expected_open_risks(submission))

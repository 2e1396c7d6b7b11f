"""A dossier is bounded whatever the submission holds (issue #10).

A declaration with a 1 MB data summary and 1,000 base-model rows was accepted, and its dossier
hit the render time limit on every retry. Print now caps every vendor-controlled text and
table, and the attached findings JSON keeps everything. These tests build a submission at the
field limits (data summary 20,000 characters, 100 base models, 100 third-party entries,
conversations of 10,000-character messages, 255-character file names) and one with data from before the limits,
render them for real and check the caps by what a reader sees (pages, "N more" notes), not by
the clock: bench/dossier_limits.py measures the time.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from io import BytesIO

import pytest
from django.utils import timezone
from pypdf import PdfReader

from compliance.dossier.context import dossier_context_build
from compliance.dossier.labels import label_for
from compliance.dossier.render import (
    ARTIFACTS_SHOWN,
    DECLARED_ROWS_SHOWN,
    FINDINGS_PER_SEVERITY,
    MESSAGES_PER_FINDING_SHOWN,
    TEXT_CLIP,
    dossier_render,
)
from compliance.models import CheckRun, Finding, FindingMessage
from projects.models import Artifact, Declaration, Submission
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

AT_LIMITS = {"summary": 20_000, "base_models": 100, "third_party": 100, "reply": 10_000, "filename": 255}
BEFORE_LIMITS = {"summary": 1_000_000, "base_models": 1_000, "third_party": 1_000, "reply": 50_000, "filename": 500}
ARTIFACTS = 60  # more than print shows
FINDINGS = 150  # 30 per severity, more than print shows
MESSAGES = MESSAGES_PER_FINDING_SHOWN + 2  # per finding, more than print shows


def _text(length: int) -> str:
    """Half prose, half one unbroken word: the text WeasyPrint lays out slowest."""
    prose = ("Korean web text, books and code; " * (length // 66 + 1))[: length // 2]
    return prose + "x" * (length - len(prose))


def _submission(world, size: dict) -> object:
    submission = signed_submission(world=world, files={"model.safetensors": ("weights", b"\x00" * 64)})
    # Written with the ORM, past any service: existing rows may predate the services' limits.
    Declaration.objects.filter(submission=submission).update(
        data_summary=_text(size["summary"]),
        base_models=[{"component": "backbone", "name": f"base-{i}-" + "b" * 120, "source": _text(300),
                      "license": "Apache-2.0"} for i in range(size["base_models"])],
        third_party_code=[{"name": f"pkg-{i}", "version": "1.0", "license": "MIT", "use": "inference",
                           "source": "https://example.invalid/" + "s" * 200} for i in range(size["third_party"])])
    first = submission.artifacts.get()
    Artifact.objects.bulk_create([
        Artifact(submission=submission, kind="other", original_name=f"{i:03d}" + "f" * (size["filename"] - 3),
                 file=first.file.name, size=1, sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                 uploaded_by=world.vendor_user)
        for i in range(ARTIFACTS - 1)])
    now = timezone.now()
    run = CheckRun.objects.create(
        artifact=first, submission=submission, check_name="code", state="succeeded", verdict="copied",
        engine_version="codematch-1", inputs={"sha256": first.sha256}, queued_at=now, started_at=now, finished_at=now,
        summary={"matches": [{"path": f"src/{i}/" + "p" * 200, "lines": [1, 40], "label": "training",
                              "origin": {"name": "gguf", "version": "0.10.0", "path": "gguf/x.py", "lines": [1, 40]},
                              "license_expression": "MIT"} for i in range(500)],
                 "origins": [{"name": "gguf", "version": "0.10.0", "license_expression": "MIT", "regions": 500,
                              "lines": 20_000, "declared": False}]})
    severities = Finding.SEVERITY_ORDER
    Finding.objects.bulk_create([
        Finding(check_run=run, submission=submission, severity=severities[i % 5], category="code",
                code="undeclared_copy", title=f"Finding {i} " + "t" * 250, explanation=_text(2_000),
                evidence={"files": ["e" * 300] * 20})
        for i in range(FINDINGS)])
    # Every finding's conversation longer than print shows, each message as long as one may be.
    FindingMessage.objects.bulk_create([
        FindingMessage(finding=finding, author=world.vendor_user if n % 2 else world.reviewer,
                       side="vendor" if n % 2 else "ministry", kind="reply" if n % 2 else "question",
                       body=_text(size["reply"]))
        for finding in Finding.objects.filter(submission=submission) for n in range(MESSAGES)])
    return Submission.objects.get(pk=submission.pk)  # not the instance holding the old declaration


def _attachment(pdf: bytes, name: str) -> dict:
    return json.loads(PdfReader(BytesIO(pdf)).attachments[name][0])


def _render(submission, lang: str):
    context = dossier_context_build(submission=submission, lang=lang, dossier_number="D-2026-000002")
    result = dossier_render(context=context)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=result.pdf_bytes, capture_output=True,
                          check=True, timeout=120).stdout.decode()
    return result, re.sub(r"\s+", "", text)


def _assert_everything_is_in_the_json(pdf: bytes, size: dict) -> None:
    data = _attachment(pdf, "findings.json")
    assert data["declaration"]["data_summary"] == _text(size["summary"])
    assert len(data["declaration"]["components"]) == size["base_models"] + size["third_party"]
    assert len(data["findings"]) == FINDINGS
    assert all([m["body"] for m in f["messages"]] == [_text(size["reply"])] * MESSAGES for f in data["findings"])
    assert len(data["checks"][0]["code_matches"]) == 500
    manifest = _attachment(pdf, "manifest.json")
    assert len(manifest["artifacts"]) == ARTIFACTS
    assert {len(a["filename"]) for a in manifest["artifacts"][1:]} == {size["filename"]}


def test_a_submission_at_the_field_limits_prints_a_bounded_dossier(world):
    submission = _submission(world, AT_LIMITS)
    result, flat = _render(submission, "en")
    # Before the caps: 143 pages for the bench's sample at the limits, 414 for 200 declared rows
    # before the fixed table layout.
    assert result.pages <= 60, result.pages
    assert result.findings_shown == 5 * FINDINGS_PER_SEVERITY < FINDINGS
    components = AT_LIMITS["base_models"] + AT_LIMITS["third_party"]
    for note in [
        label_for("en", "more_rows", count=components - DECLARED_ROWS_SHOWN),
        label_for("en", "more_rows", count=ARTIFACTS - ARTIFACTS_SHOWN),
        label_for("en", "more_messages", count=MESSAGES - MESSAGES_PER_FINDING_SHOWN),
        # The data summary, clipped with a pointer to the full text.
        label_for("en", "clipped", count=f"{AT_LIMITS['summary'] - TEXT_CLIP:,}"),
    ]:
        assert re.sub(r"\s+", "", note) in flat, note
    # File names print their first 150 characters (the manifest has all 255).
    assert "f" * 140 in flat.replace("\u200b", "") and "f" * 160 not in flat.replace("\u200b", "")
    _assert_everything_is_in_the_json(result.pdf_bytes, AT_LIMITS)


def test_data_from_before_the_limits_still_gets_its_dossier(world):
    """1 MB summary, 1,000 base models and 1,000 third-party entries, 50,000-character replies."""
    submission = _submission(world, BEFORE_LIMITS)
    result, flat = _render(submission, "ko")
    assert result.pages <= 60, result.pages
    components = BEFORE_LIMITS["base_models"] + BEFORE_LIMITS["third_party"]
    assert re.sub(r"\s+", "", label_for("ko", "more_rows", count=f"{components - DECLARED_ROWS_SHOWN:,}")) in flat
    assert re.sub(r"\s+", "", label_for("ko", "clipped", count=f"{BEFORE_LIMITS['summary'] - TEXT_CLIP:,}")) in flat
    _assert_everything_is_in_the_json(result.pdf_bytes, BEFORE_LIMITS)

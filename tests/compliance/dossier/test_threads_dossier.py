"""The dossier prints each finding's conversation: who (side and name), when, what, and the SHA-256
of an attached file, in English and Korean, read back from the real PDF with poppler; older
messages beyond the print cap are pointed to, and the attached findings.json keeps them all."""

from __future__ import annotations

import io
import json
import re
import subprocess

import pytest
from pypdf import PdfReader

from compliance.dossier.context import dossier_context_build
from compliance.dossier.labels import label_for
from compliance.dossier.render import MESSAGES_PER_FINDING_SHOWN, dossier_render
from compliance.models import CheckRun, Finding
from compliance.services.threads import message_post
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


def _flat_pdf_text(pdf: bytes) -> str:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True,
                          timeout=120).stdout.decode()
    return re.sub(r"\s+", "", text)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("lang,vendor_side,ministry_side,question", [
    ("en", "Vendor", "Ministry", "Question to the vendor"),
    ("ko", "수행기관", "부처", "수행기관에 대한 질의"),
])
def test_the_dossier_prints_each_findings_thread(world, lang, vendor_side, ministry_side, question):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="lineage",
                                     code="derived", title="Encoder layers match Qwen2.5-VL")
    message_post(user=world.reviewer, finding=finding, body="Which checkpoint did training start from?")
    reply = message_post(user=world.vendor_user, finding=finding, body="Random initialisation, seed 1234.",
                         attachment_name="seed.log", attachment_file=io.BytesIO(b"seed=1234\n"))
    later = [message_post(user=world.reviewer if n % 2 else world.vendor_user, finding=finding, body=f"Follow-up {n}")
             for n in range(MESSAGES_PER_FINDING_SHOWN)]

    context = dossier_context_build(submission=submission, lang=lang, dossier_number="D-THREADS-1")
    result = dossier_render(context=context)
    flat = _flat_pdf_text(result.pdf_bytes)

    # The latest messages print, each with its side, author and text; the first two are older.
    for message in later:
        assert _flat(message.body) in flat
    assert _flat(f"{ministry_side} · Reviewer") in flat and _flat(f"{vendor_side} · Vendor-A") in flat
    assert _flat(label_for(lang, "more_messages", count=2)) in flat
    assert "Whichcheckpoint" not in flat, "older than the print cap: in findings.json only"
    # Everything, with the attachment's hash, in the attached JSON.
    data = json.loads(PdfReader(io.BytesIO(result.pdf_bytes)).attachments["findings.json"][0])
    (printed,) = [f for f in data["findings"] if f["id"] == finding.pk]
    assert [m["body"] for m in printed["messages"]][:2] == ["Which checkpoint did training start from?",
                                                          "Random initialisation, seed 1234."]
    assert printed["messages"][0]["side"] == "ministry" and printed["messages"][0]["kind"] == "question"
    assert printed["messages"][1]["attachment_sha256"] == reply.attachment.sha256

    # With the cap not reached the attachment's name and full hash print too.
    message_kinds = context.vocabulary["message_kind"]
    assert message_kinds["question"] == question
    short = dossier_context_build(submission=submission, lang=lang, dossier_number="D-THREADS-2")
    for info in short.findings:
        info.messages = info.messages[:2]
    flat = _flat_pdf_text(dossier_render(context=short).pdf_bytes)
    assert "Whichcheckpointdidtrainingstartfrom?" in flat and _flat(question) in flat
    assert "seed.log" in flat and reply.attachment.sha256 in flat

"""A vendor file named with a right-to-left override reads as it is, not as it pretends, wherever a
person reads it: the dossier (read back by poppler's pdftotext, not by our code) and the e-mail a
finding about it sends. Metadata keeps the vendor's exact name."""

from __future__ import annotations

import json
import subprocess

import pytest
from django.core import mail

from compliance.dossiers import dossier_render_now
from compliance.models import CheckRun, Finding
from compliance.services import decisions
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

TRICK = "invoice\u202egnp.exe"  # reads "invoiceexe.png" when the override is obeyed
SHOWN = "invoice⟦U+202E⟧gnp.exe"
# Longer than the 40 characters after which print adds an (invisible) break opportunity, a
# zero-width space: that one must stay invisible, the vendor's own override must not.
LONG_TRICK = "quarterly-financial-statements-2026-final-approved\u202exslx.exe"


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in this process when sent (the e-mail task's real body, no broker)."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def _submission_with_trick_file(world):
    submission = signed_submission(world=world, files={TRICK: ("other", b"plain notes\n"),
                                                       LONG_TRICK: ("other", b"more notes\n")}, submit=True)
    artifact = submission.artifacts.get(original_name=TRICK)
    assert artifact.original_name == TRICK  # stored as the vendor sent it
    run = CheckRun.objects.filter(submission=submission, artifact=artifact).first()
    CheckRun.objects.filter(submission=submission).update(state=CheckRun.State.SUCCEEDED)
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="intake",
                                     code="test_finding", title=f"Executable disguised as an image: {TRICK}")
    return submission, finding


def test_the_dossier_shows_the_override_and_its_attachment_keeps_the_bytes(world, tmp_path, dossier_signing_key):
    submission, _finding = _submission_with_trick_file(world)
    _dossier, pdf = dossier_render_now(submission=submission, lang="en")
    path = tmp_path / "d.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), str(tmp_path / "d.txt")], check=True, timeout=120)
    text = (tmp_path / "d.txt").read_text(encoding="utf-8")
    assert SHOWN in text
    assert "\u202e" not in text
    assert text.count("⟦U+202E⟧") >= 2 * 2  # both files, in the artifact table and in their checks' headings
    assert "⟦U+200B⟧" not in text, "print's own break opportunities must stay invisible"
    # The attached findings.json is metadata: the vendor's exact characters.
    from pypdf import PdfReader

    attachments = PdfReader(str(path)).attachments
    findings = json.loads(attachments["findings.json"][0])
    assert TRICK in json.dumps(findings, ensure_ascii=False)


def test_the_e_mail_about_a_finding_shows_the_override(world, eager_tasks, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    submission, finding = _submission_with_trick_file(world)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.finding_decide(user=world.reviewer, finding=finding, decision="confirmed")
    [message] = [m for m in mail.outbox if m.to == [world.vendor_user.email]]
    assert SHOWN in message.body and SHOWN in message.subject
    assert "\u202e" not in message.body + message.subject + message.alternatives[0][0]


def test_pages_show_the_override_and_never_obey_it(world):
    from django.test import Client

    submission, _finding = _submission_with_trick_file(world)
    draft = signed_submission(world=world, files={TRICK: ("other", b"plain notes\n")})
    for user, path in ((world.auditor, "/audit/"), (world.reviewer, f"/submissions/{submission.pk}/"),
                       (world.officer, "/dashboard/"), (world.officer, "/findings/"),
                       (world.vendor_user, f"/submissions/{draft.pk}/edit/"),
                       (world.vendor_user, f"/submissions/{submission.pk}/")):
        client = Client()
        client.force_login(user)
        page = client.get(path).content.decode()
        assert SHOWN in page, path
        assert "\u202e" not in page, f"{path} carries the raw override"

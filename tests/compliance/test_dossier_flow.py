"""Dossiers in the portal: request, render on the worker side, download (audited), verify."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from compliance.dossiers import dossier_render_execute
from compliance.models import CheckRun, Dossier, Finding
from portal.models import AuditEvent
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def checked_submission(world, settings, tmp_path):
    settings.DOSSIER_SIGNING_KEY = str(tmp_path / "sign" / "key.pem")
    settings.DOSSIER_SIGNING_CERT = str(tmp_path / "sign" / "cert.pem")
    settings.DOSSIER_SIGNING_GENERATE = True
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    CheckRun.objects.filter(pk=run.pk).update(state="succeeded", verdict="accepted")
    Finding.objects.create(check_run=run, submission=submission, severity="high", category="intake",
                           code="declared_kind_mismatch", title="<img src=x> declared as weights but is text")
    return submission


def _client(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_request_render_download_verify(world, checked_submission):
    reviewer = _client(world.reviewer)
    response = reviewer.post("/api/dossiers/", {"submission": checked_submission.pk, "lang": "ko"}, format="json")
    assert response.status_code == 201, response.content
    dossier = Dossier.objects.get(pk=response.json()["id"])
    assert dossier.number.startswith("D-") and dossier.state == Dossier.State.QUEUED
    assert dossier_render_execute(dossier_id=dossier.pk) == "ready"
    assert dossier_render_execute(dossier_id=dossier.pk) == "not claimable", "a second delivery changes nothing"
    dossier.refresh_from_db()
    assert dossier.state == Dossier.State.READY and len(dossier.sha256) == 64

    download = reviewer.get(f"/dossiers/{dossier.pk}/download/")
    assert download.status_code == 200
    pdf = b"".join(download.streaming_content)
    assert pdf.startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="dossier.download", object_id=str(dossier.pk)).count() == 1

    # Vendors and unassigned reviewers learn nothing about dossiers.
    for user in (world.vendor_user, world.other_vendor_user, world.reviewer_unassigned):
        assert _client(user).get(f"/dossiers/{dossier.pk}/download/").status_code == 404

    anonymous = APIClient()
    from django.core.files.uploadedfile import SimpleUploadedFile

    ok = anonymous.post("/api/dossiers/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)}, format="multipart")
    assert ok.status_code == 200
    body = ok.json()
    assert body["ok"] and body["issued"] and body["unaltered"] and body["signature_valid"]
    assert body["submission"] == checked_submission.pk and body["dossier_number"] == dossier.number

    flipped = bytearray(pdf)
    flipped[len(flipped) // 2] ^= 0x01
    bad = anonymous.post("/api/dossiers/verify/", {"file": SimpleUploadedFile("d.pdf", bytes(flipped))},
                         format="multipart").json()
    assert not bad["ok"] and not bad["issued"] and bad["reasons"]

    by_hash = anonymous.post("/api/dossiers/verify/", {"sha256": dossier.sha256}, format="json").json()
    assert by_hash["issued"] is True and by_hash["submission"] == checked_submission.pk


def test_regenerating_makes_a_new_number(world, checked_submission):
    reviewer = _client(world.reviewer)
    first = reviewer.post("/api/dossiers/", {"submission": checked_submission.pk}, format="json").json()
    second = reviewer.post("/api/dossiers/", {"submission": checked_submission.pk}, format="json").json()
    assert first["number"] != second["number"]


def test_who_may_request(world, checked_submission):
    body = {"submission": checked_submission.pk}
    assert _client(world.auditor).post("/api/dossiers/", body, format="json").status_code == 403
    assert _client(world.vendor_user).post("/api/dossiers/", body, format="json").status_code == 403
    assert _client(world.other_vendor_user).post("/api/dossiers/", body, format="json").status_code == 404
    assert _client(world.officer).post("/api/dossiers/", body, format="json").status_code == 201


def test_operator_commands(world, checked_submission, tmp_path, capsys):
    out = tmp_path / "dossier.pdf"
    call_command("dossier_render", str(checked_submission.pk), "--lang", "ko", "-o", str(out))
    rendered = json.loads(capsys.readouterr().out)
    assert rendered["sha256"] and out.read_bytes().startswith(b"%PDF-")
    call_command("dossier_verify", str(out), "--json")
    verified = json.loads(capsys.readouterr().out)
    assert verified["issued"] and verified["unaltered"] and verified["signature_valid"]
    assert verified["submission"] == checked_submission.pk
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(SystemExit):
        call_command("dossier_verify", str(truncated), "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["reasons"]

"""Signed audit checkpoints: OpenSSL accepts the portal's, forgeries are refused, witnesses and
dossiers keep the chain honest even when the database's own checkpoints are gone."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection

from portal.checkpoints import DOSSIER_ATTACHMENT_NAME, audit_checkpoint_check_signature, audit_checkpoint_export
from portal.models import AuditCheckpoint, AuditEvent
from portal.services import audit_chain_seal, audit_checkpoint_create, audit_record

pytestmark = pytest.mark.django_db


def _verify(capsys, *args: str) -> tuple[int, dict]:
    status = 0
    try:
        call_command("audit_verify", "--json", *args)
    except SystemExit as exc:
        status = exc.code
    return status, json.loads(capsys.readouterr().out)


def _delete_newest(count: int) -> None:
    audit_chain_seal()
    with connection.cursor() as cursor:
        for pk in AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("pk", flat=True)[:count]:
            cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [pk])


def _openssl_verify(exported: dict, folder) -> subprocess.CompletedProcess:
    """What a witness runs offline: OpenSSL, not our code, is the judge."""
    (folder / "payload").write_text(exported["signed_payload"], encoding="utf-8")
    (folder / "sig.der").write_bytes(base64.b64decode(exported["signature"]["value"]))
    (folder / "cert.pem").write_text(exported["certificate_pem"])
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "sig.der"),
         "-content", str(folder / "payload"), "-CAfile", str(folder / "cert.pem"), "-purpose", "any",
         "-out", str(folder / "out")],
        capture_output=True, timeout=60)


def test_checkpoint_signature_validates_with_openssl_and_our_check(world, signing_settings, tmp_path):
    checkpoint = audit_checkpoint_create(reason="manual")
    exported = audit_checkpoint_export(checkpoint=checkpoint)
    assert exported["event_count"] == AuditEvent.objects.count() and exported["number"] == 1
    assert _openssl_verify(exported, tmp_path).returncode == 0
    assert audit_checkpoint_check_signature(exported=exported) == []
    # The certificate in the export is the portal's signing certificate.
    assert exported["certificate_pem"].encode() == open(signing_settings.DOSSIER_SIGNING_CERT, "rb").read()

    forged = {**exported, "event_count": exported["event_count"] + 5}
    forged["signed_payload"] = json.dumps({k: forged[k] for k in ("schema", "number", "created_at", "reason",
                                                                  "event_count", "head_event_id", "head_hash")},
                                          sort_keys=True, separators=(",", ":"))
    assert _openssl_verify(forged, tmp_path).returncode != 0
    assert any("changed after signing" in r for r in audit_checkpoint_check_signature(exported=forged))


def test_a_checkpoint_signed_by_another_key_is_refused(world, signing_settings, attacker_identity, capsys):
    from portal.audit_chain import checkpoint_payload
    from portal.services import _audit_chain_head
    from portal.signing import cms_detached_sign

    audit_checkpoint_create(reason="manual")
    _delete_newest(2)
    # The forger signs the truncated head under the portal's name, with a key of their own.
    count, head, head_id = _audit_chain_head()
    latest = AuditCheckpoint.objects.get(number=1)
    forged = AuditCheckpoint(number=2, created_at=latest.created_at, reason="beat", event_count=count,
                             head_event_id=head_id, head_hash=head,
                             signer_fingerprint=attacker_identity.fingerprint_sha256,
                             certificate_pem=attacker_identity.cert_pem.decode())
    forged.signature = base64.b64encode(cms_detached_sign(data=checkpoint_payload(forged.signed_fields()),
                                                          identity=attacker_identity)).decode()
    forged.save()
    status, result = _verify(capsys)
    assert status == 1
    assert any(r.startswith("checkpoint 2 is not validly signed") and "not the portal's signing certificate" in r
               for r in result["reasons"]), result["reasons"]
    assert any("events removed after checkpoint 1" in r for r in result["reasons"])


def test_a_witness_copy_catches_truncation_after_the_checkpoints_were_deleted(world, signing_settings, tmp_path,
                                                                             capsys):
    witness = tmp_path / "witness.json"
    call_command("audit_checkpoint", "--export", str(witness))
    capsys.readouterr()
    assert _verify(capsys, "--checkpoint", str(witness))[0] == 0
    # The attacker cuts the newest events and every stored checkpoint that would tell.
    _delete_newest(3)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditcheckpoint")
    assert _verify(capsys)[0] == 0, "the database alone can no longer tell: that is what the witness is for"
    status, result = _verify(capsys, "--checkpoint", str(witness))
    assert status == 1
    (verdict,) = result["witnesses"]
    assert verdict["ok"] is False
    assert any("events removed after checkpoint 1" in r for r in verdict["reasons"])
    assert any("no longer in the portal's database" in r for r in verdict["reasons"])


def test_an_edited_witness_copy_is_refused(world, signing_settings, tmp_path, capsys):
    checkpoint = audit_checkpoint_create(reason="manual")
    exported = audit_checkpoint_export(checkpoint=checkpoint)
    exported["head_hash"] = "f" * 64
    (tmp_path / "cp.json").write_text(json.dumps(exported))
    status, result = _verify(capsys, "--checkpoint", str(tmp_path / "cp.json"))
    assert status == 1 and "signed_payload does not match" in result["witnesses"][0]["reasons"][0]


def test_audit_checkpoint_json_prints_the_export_and_beat_skips_an_unchanged_head(world, signing_settings, capsys):
    from django.conf import settings

    from portal.tasks import audit_checkpoint_task

    call_command("audit_checkpoint", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed == audit_checkpoint_export(checkpoint=AuditCheckpoint.objects.get(number=printed["number"]))
    assert printed["reason"] == "manual" and printed["event_count"] == AuditEvent.objects.count()

    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["task"] == audit_checkpoint_task.name
    assert audit_checkpoint_task() == printed["number"], "nothing happened since: no new checkpoint"
    audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=1)
    number = audit_checkpoint_task()
    assert number == printed["number"] + 1
    assert AuditCheckpoint.objects.get(number=number).reason == "beat"


def test_a_dossier_embeds_its_checkpoint_and_audit_verify_checks_it(world, signing_settings, tmp_path, capsys):
    from compliance.dossier.checkpoint import ATTACHMENT_NAME
    from compliance.dossiers import dossier_render_now
    from tests.factories import signed_submission

    assert ATTACHMENT_NAME == DOSSIER_ATTACHMENT_NAME
    submission = signed_submission(world=world, submit=True)
    dossier, pdf = dossier_render_now(submission=submission, lang="en")
    checkpoint = AuditCheckpoint.objects.get(reason="dossier")
    path = tmp_path / f"{dossier.number}.pdf"
    path.write_bytes(pdf)

    # A reader sees the checkpoint in the verification section (poppler, not our code, reads the PDF).
    subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), str(tmp_path / "d.txt")], check=True, timeout=60)
    text = " ".join((tmp_path / "d.txt").read_text(encoding="utf-8").split())
    assert f"issued under audit checkpoint {checkpoint.number}" in text
    assert f"held {checkpoint.event_count:,} events" in text

    # The public verify answer (page, API, dossier_verify) names the checkpoint and vouches for it.
    from compliance.dossiers import dossier_verify_bytes

    public = dossier_verify_bytes(pdf_bytes=pdf)["audit_checkpoint"]
    assert public == {"number": checkpoint.number, "event_count": checkpoint.event_count,
                      "head_hash": checkpoint.head_hash, "signature_valid": True, "held": True, "ok": True,
                      "reasons": []}

    status, result = _verify(capsys, "--dossier", str(path))
    assert status == 0, result["reasons"]
    assert result["dossiers"] == [{"file": str(path), "ok": True, "checkpoint": checkpoint.number,
                                   "event_count": checkpoint.event_count, "head_hash": checkpoint.head_hash,
                                   "reasons": []}]

    _delete_newest(3)  # the dossier.issue event and two recorded before the checkpoint
    status, result = _verify(capsys, "--dossier", str(path))
    assert status == 1 and result["dossiers"][0]["ok"] is False
    assert any(f"events removed after checkpoint {checkpoint.number}" in r for r in result["dossiers"][0]["reasons"])


def test_a_file_without_a_checkpoint_is_not_taken_as_proof(world, tmp_path, capsys):
    path = tmp_path / "not-a-dossier.pdf"
    path.write_bytes(b"%PDF-1.7\n%%EOF\n")
    status, result = _verify(capsys, "--dossier", str(path))
    assert status == 1 and "carries no readable audit checkpoint" in result["dossiers"][0]["reasons"][0]

"""The audit trail is append-only and hash-chained; audit_verify finds any tampering."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection

from portal.models import AuditEvent
from portal.selectors import audit_chain_verify

pytestmark = pytest.mark.django_db


def test_every_registry_change_is_chained(world):
    events = list(AuditEvent.objects.order_by("id"))
    actions = [e.action for e in events]
    assert actions.count("project.create") == 2 and "project.reviewer_assign" in actions
    for previous, event in zip(events, events[1:]):
        assert event.prev_hash == previous.entry_hash
    assert audit_chain_verify().ok


def test_the_orm_refuses_to_change_or_delete_entries(world):
    event = AuditEvent.objects.first()
    event.action = "forged"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(action="x")


def _verify_json(capsys) -> dict:
    try:
        call_command("audit_verify", "--json")
    except SystemExit:
        pass
    return json.loads(capsys.readouterr().out)


def test_audit_verify_reports_an_altered_entry(world, capsys):
    assert _verify_json(capsys)["ok"] is True
    target = AuditEvent.objects.order_by("id")[2]
    with connection.cursor() as cursor:  # what an attacker with database access would do
        cursor.execute("UPDATE portal_auditevent SET object_label = %s WHERE id = %s", ["tampered", target.pk])
    result = _verify_json(capsys)
    assert result["ok"] is False and result["first_bad_id"] == target.pk
    assert "altered" in result["reason"]


def test_audit_verify_reports_a_removed_entry(world, capsys):
    target = AuditEvent.objects.order_by("id")[1]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [target.pk])
    result = _verify_json(capsys)
    assert result["ok"] is False and "removed or reordered" in result["reason"]


def test_downloads_and_decisions_are_audited(world, client):
    from compliance.services.decisions import finding_decide
    from compliance.models import CheckRun, Finding
    from tests.factories import signed_submission

    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="t",
                                     code="t", title="A finding")
    finding_decide(user=world.reviewer, finding=finding, decision="waived", justification="Known and accepted.")
    event = AuditEvent.objects.filter(action="finding.decide").get()
    assert event.actor_label == world.reviewer.username
    assert event.data == {"decision": "waived", "justification": "Known and accepted."}
    assert event.submission_id == submission.pk

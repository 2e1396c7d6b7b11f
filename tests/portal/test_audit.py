"""The audit trail is append-only, hash-chained and checkpointed; audit_verify finds any tampering.

Every tampering is done the way an attacker with database access would do it: raw
SQL on the test database (the models refuse update and delete).
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from portal.audit_chain import event_hash
from portal.models import AuditCheckpoint, AuditEvent
from portal.selectors import audit_chain_verify
from portal.services import audit_chain_seal, audit_checkpoint_create, audit_record

pytestmark = pytest.mark.django_db


def _verify(capsys, *args: str) -> tuple[int, dict]:
    """Run `audit_verify --json ARGS`; return its exit status and its JSON."""
    status = 0
    try:
        call_command("audit_verify", "--json", *args)
    except SystemExit as exc:
        status = exc.code
    return status, json.loads(capsys.readouterr().out)


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _chain() -> list[AuditEvent]:
    audit_chain_seal()
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq"))


def test_every_registry_change_is_chained(world):
    events = _chain()
    actions = [e.action for e in events]
    assert actions.count("project.create") == 2 and "project.reviewer_assign" in actions
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for previous, event in zip(events, events[1:]):
        assert event.prev_hash == previous.entry_hash
    assert audit_chain_verify().ok


def test_the_orm_refuses_to_change_or_delete_entries_and_checkpoints(world, signing_settings):
    event = _chain()[0]
    event.action = "forged"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(action="x")
    checkpoint = audit_checkpoint_create(reason="manual")
    with pytest.raises(PermissionError):
        checkpoint.save()
    with pytest.raises(PermissionError):
        AuditCheckpoint.objects.update(event_count=1)
    with pytest.raises(PermissionError):
        AuditCheckpoint.objects.all().delete()


def test_intact_chain_with_a_checkpoint_exits_0(world, signing_settings, capsys):
    checkpoint = audit_checkpoint_create(reason="manual")
    audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=1)
    status, result = _verify(capsys)
    assert status == 0 and result["ok"] is True and result["reasons"] == []
    assert result["checkpoint"]["number"] == checkpoint.number
    assert result["events"] == checkpoint.event_count + 1
    assert result["head_hash"] == _chain()[-1].entry_hash


def test_a_rolled_back_transaction_leaves_no_event_and_no_hole(world, capsys):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            audit_record(actor=world.reviewer, action="finding.decide", object_type="finding", object_id=1)
            raise RuntimeError("the decision failed")
    assert AuditEvent.objects.count() == before
    assert _verify(capsys)[0] == 0


def _rewrite_from(position: int, **changes) -> None:
    """What a careful attacker does: change one entry, then recompute every hash after it."""
    events = _chain()
    prev = events[position - 2].entry_hash if position > 1 else "0" * 64
    for event in events[position - 1:]:
        row = event.hash_fields()
        if event.seq == position:
            row.update(changes)
        entry = event_hash(row=row, prev_hash=prev)
        sets = ", ".join(f"{column} = %s" for column in changes) if event.seq == position else ""
        params = list(changes.values()) if event.seq == position else []
        _sql(f"UPDATE portal_auditevent SET {sets + ', ' if sets else ''}prev_hash = %s, entry_hash = %s WHERE id = %s",
             [*params, prev, entry, event.pk])
        prev = entry


def _delete_newest(count: int) -> None:
    for event in _chain()[-count:]:
        _sql("DELETE FROM portal_auditevent WHERE id = %s", [event.pk])


def _change_actor_id(world) -> None:
    target = next(e for e in _chain() if e.actor_id == world.admin.pk)
    _sql("UPDATE portal_auditevent SET actor_id = %s WHERE id = %s", [world.reviewer_unassigned.pk, target.pk])


def _edit_middle(world) -> None:
    target = _chain()[2]
    _sql("UPDATE portal_auditevent SET object_label = %s WHERE id = %s", ["tampered", target.pk])


def _delete_middle(world) -> None:
    target = _chain()[1]
    _sql("DELETE FROM portal_auditevent WHERE id = %s", [target.pk])


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda world: _delete_newest(2), "events removed after checkpoint 1"),
        (lambda world: _rewrite_from(2, object_label="rewritten"), "events rewritten before checkpoint 1"),
        (_change_actor_id, "was altered after it was written"),
        (_edit_middle, "was altered after it was written"),
        (_delete_middle, "removed or reordered"),
    ],
    ids=["newest-deleted", "full-rewrite", "actor-id-changed", "middle-edited", "middle-deleted"],
)
def test_audit_verify_exits_1_with_the_reason(world, signing_settings, capsys, tamper, expected):
    audit_checkpoint_create(reason="manual")
    assert _verify(capsys)[0] == 0
    tamper(world)
    status, result = _verify(capsys)
    assert status == 1 and result["ok"] is False
    assert any(expected in reason for reason in result["reasons"]), result["reasons"]


def test_a_full_rewrite_passes_the_links_and_is_caught_only_by_the_checkpoint(world, signing_settings, capsys):
    audit_checkpoint_create(reason="manual")
    _rewrite_from(1, actor_label="someone-else")
    status, result = _verify(capsys)
    assert result["first_bad_id"] is None, "every link and hash was recomputed"
    assert status == 1 and result["reasons"] == [
        reason for reason in result["reasons"] if "events rewritten before checkpoint 1" in reason]


def test_human_output_says_why(world, signing_settings, capsys):
    audit_checkpoint_create(reason="manual")
    _delete_newest(1)
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "events removed after checkpoint 1" in capsys.readouterr().out


def test_downloads_and_decisions_are_audited(world, client):
    from compliance.models import CheckRun, Finding
    from compliance.services.decisions import finding_decide
    from tests.factories import signed_submission

    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="t",
                                     code="t", title="A finding")
    finding_decide(user=world.reviewer, finding=finding, decision="waived", justification="Known and accepted.")
    event = AuditEvent.objects.filter(action="finding.decide").get()
    assert event.actor_label == world.reviewer.username and event.actor_id == world.reviewer.pk
    assert event.data == {"decision": "waived", "justification": "Known and accepted."}
    assert event.submission_id == submission.pk


def test_rewriting_the_newest_entry_under_the_old_scheme_is_caught(world, capsys):
    """Version 1 did not cover the actor id; claiming it for a new entry is itself a tampering."""
    newest = _chain()[-1]
    row = {**newest.hash_fields(), "hash_version": 1, "actor_id": world.auditor.pk}
    _sql("UPDATE portal_auditevent SET hash_version = 1, actor_id = %s, entry_hash = %s WHERE id = %s",
         [world.auditor.pk, event_hash(row=row, prev_hash=newest.prev_hash), newest.pk])
    status, result = _verify(capsys)
    assert status == 1 and result["first_bad_id"] == newest.pk
    assert "claims hash version 1" in result["reasons"][0]

"""Issue #10 with a real worker: the lineage check no longer runs on a file intake has not
accepted; it waits, is blocked with a finding, and approval waits for a reviewer."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError

from compliance.models import CheckRun, Finding
from compliance.services.decisions import finding_decide, submission_decide
from portal.models import AuditEvent
from projects.models import Artifact, Submission
from tests.compliance.engine import hostile
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _all_runs_finished(submission_id: int) -> bool:
    runs = CheckRun.objects.filter(submission_id=submission_id)
    return runs.exists() and not runs.exclude(state__in=CheckRun.FINISHED_STATES).exists()


def test_lineage_waits_for_intake_is_blocked_by_a_quarantine_and_approval_waits_for_the_reviewer(
        celery_worker, tmp_path):
    world = build_world()
    weights = hostile.safetensors_valid(tmp_path / "model.safetensors").read_bytes()
    # The model folder's config has a duplicated key: intake quarantines it (which value wins
    # depends on the reader), and the lineage check reads the folder, config included.
    config = b'{"model_type": "llama", "hidden_size": 64, "hidden_size": 4096}'
    submission = signed_submission(world=world, files={
        "model/model.safetensors": ("weights", weights), "model/config.json": ("config", config)}, submit=True)
    wait_for(lambda: _all_runs_finished(submission.pk), what="intake to end and lineage to be blocked")

    lineage = CheckRun.objects.get(submission=submission, check_name="lineage")
    assert lineage.state == CheckRun.State.BLOCKED
    assert lineage.started_at is None and lineage.worker == "", "it never ran"
    assert "quarantined model/config.json" in lineage.error
    blocked = Finding.objects.get(check_run=lineage)
    assert (blocked.code, blocked.severity) == ("check_blocked", "high")
    config_artifact = Artifact.objects.get(submission=submission, original_name="model/config.json")
    assert config_artifact.status == Artifact.Status.QUARANTINED
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED
    with pytest.raises(ValidationError, match="open critical and high"):
        submission_decide(user=world.reviewer, submission=submission, decision="approved")

    # The reviewer reads the config, waives the duplicate key: the file is released, lineage runs.
    duplicate = Finding.objects.get(check_run__artifact=config_artifact, code="json_duplicate_keys")
    finding_decide(user=world.reviewer, finding=duplicate, decision="waived",
                   justification="The last value (4096) is the one the model was trained with.")
    wait_for(lambda: CheckRun.objects.filter(pk=lineage.pk, state="inconclusive").exists(),
             what="the released lineage check to run on the worker")
    lineage.refresh_from_db()
    assert lineage.worker.startswith("test-") and lineage.attempts == 1
    # No reference model is configured: it could not complete, and says so in a blocking finding.
    (incomplete,) = Finding.objects.filter(check_run=lineage, severity="high")
    assert incomplete.code == "check_incomplete" and "no reference model" in incomplete.evidence["error"]
    assert not Finding.objects.filter(check_run=lineage, code="check_blocked").exists()
    wait_for(lambda: Submission.objects.filter(pk=submission.pk, status="checked").exists(), what="checked")
    with pytest.raises(ValidationError):
        submission_decide(user=world.reviewer, submission=submission, decision="approved")
    finding_decide(user=world.reviewer, finding=incomplete, decision="waived",
                   justification="References are added next milestone; lineage re-checked then.")
    submission.refresh_from_db()
    assert submission_decide(user=world.reviewer, submission=submission, decision="approved").decision == "approved"
    released = AuditEvent.objects.get(action="artifact.released")
    assert released.object_label == "model/config.json" and released.data["decision"] == "waived"

"""Checks wait for intake; a check that could not finish, or could not start, is a finding that
blocks approval; a reviewer's decision on a quarantined artifact releases or rejects it.

Runs are executed in-process with `check_run_execute` (the code a worker runs); the test
transaction never commits, so nothing reaches the broker. The same flow with a real worker is
in test_pipeline.py.
"""

from __future__ import annotations

import re

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone, translation

from compliance import finding_texts
from compliance.models import CheckRun, Finding, FindingDecision, SubmissionDecision
from compliance.services.decisions import finding_decide, submission_decide
from compliance.services.runs import check_run_execute, check_run_rerun, check_runs_reconcile
from projects.models import Artifact, Submission
from tests.compliance.engine import hostile
from tests.factories import build_world, signed_submission

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def _run(submission: Submission, check: str, name: str | None = None) -> CheckRun:
    runs = CheckRun.objects.filter(submission=submission, check_name=check)
    if name:
        runs = runs.filter(artifact__original_name=name)
    return runs.get()


def _execute(run: CheckRun) -> str:
    outcome = check_run_execute(run_id=run.pk, worker="test-inline")
    run.refresh_from_db()
    return outcome


def _bomb_submission(world, tmp_path) -> Submission:
    bomb = hostile.zip_one_byte_bomb(tmp_path / "src.zip", size=2 * MiB).read_bytes()  # 2 MiB: the licence scan reads it
    return signed_submission(world=world, files={"src.zip": ("source_archive", bomb)}, submit=True)


def test_dependent_checks_wait_unsent_and_the_reconciler_leaves_them(tmp_path):
    world = build_world()
    submission = _bomb_submission(world, tmp_path)
    states = dict(CheckRun.objects.filter(submission=submission).values_list("check_name", "state"))
    assert states == {"intake": "queued", "licenses": "waiting", "code": "waiting"}
    # Long past the stale delay, the reconciler re-sends queued runs only: a waiting one has no message to lose.
    CheckRun.objects.filter(submission=submission).update(queued_at=timezone.now() - timedelta(hours=1))
    assert check_runs_reconcile()["resent"] == 1
    assert CheckRun.objects.filter(submission=submission, state="waiting").count() == 2
    # A stray delivery of a waiting run finds nothing to claim.
    assert check_run_execute(run_id=_run(submission, "licenses").pk, worker="stray") == "not claimable"
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKING


def test_a_compression_bomb_is_quarantined_its_checks_blocked_and_a_waiver_releases_it(tmp_path):
    world = build_world()
    submission = _bomb_submission(world, tmp_path)
    intake = _run(submission, "intake")
    assert _execute(intake) == CheckRun.State.SUCCEEDED and intake.verdict == "quarantined"
    artifact = Artifact.objects.get(submission=submission)
    assert artifact.status == Artifact.Status.QUARANTINED
    bomb = Finding.objects.get(check_run=intake, code="archive_compression_bomb")
    assert bomb.severity == "high" and bomb.evidence["ratio"] > 1000
    # The checks that would read it ended without running, each with a finding that says why.
    for check in ("licenses", "code"):
        run = _run(submission, check)
        assert run.state == CheckRun.State.BLOCKED and "quarantined src.zip" in run.error
        blocked = Finding.objects.get(check_run=run)
        assert (blocked.code, blocked.severity, blocked.status) == ("check_blocked", "high", "open")
        assert blocked.evidence["input"] == "src.zip"
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED  # every run ended
    with pytest.raises(ValidationError, match="open critical and high"):
        submission_decide(user=world.reviewer, submission=submission, decision="approved")

    # The reviewer looks at the archive and waives the bomb: the file is released, its checks sent.
    finding_decide(user=world.reviewer, finding=bomb, decision="waived",
                   justification="A padded test fixture from the vendor's CI; nobody extracts it.")
    artifact.refresh_from_db()
    assert artifact.status == Artifact.Status.ACCEPTED
    assert set(CheckRun.objects.filter(submission=submission).exclude(check_name="intake")
               .values_list("state", flat=True)) == {"queued"}
    assert not Finding.objects.filter(submission=submission, code="check_blocked").exists()
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKING
    assert _execute(_run(submission, "licenses")) in (CheckRun.State.SUCCEEDED, CheckRun.State.INCONCLUSIVE)
    # No code is indexed: a technical inconclusive, so "could not complete", high, with the reason.
    code_run = _run(submission, "code")
    assert _execute(code_run) == CheckRun.State.INCONCLUSIVE
    incomplete = Finding.objects.get(check_run=code_run, code="check_incomplete")
    assert incomplete.severity == "high" and incomplete.evidence["error"] == "no reference code is indexed"
    assert incomplete.evidence["attempt"] == 1 and incomplete.evidence["check"] == "code"
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED
    with pytest.raises(ValidationError):
        submission_decide(user=world.reviewer, submission=submission, decision="approved")
    for finding in Finding.objects.filter(submission=submission, severity__in=["critical", "high"], status="open"):
        finding_decide(user=world.reviewer, finding=finding, decision="waived",
                       justification="Programme has no code index yet; accepted for this milestone.")
    decision = submission_decide(user=world.reviewer, submission=submission, decision="approved")
    assert decision.decision == SubmissionDecision.Decision.APPROVED


def test_confirming_the_bomb_rejects_the_artifact_and_its_checks_stay_blocked(tmp_path):
    world = build_world()
    submission = _bomb_submission(world, tmp_path)
    intake = _run(submission, "intake")
    _execute(intake)
    bomb = Finding.objects.get(check_run=intake, code="archive_compression_bomb")
    finding_decide(user=world.reviewer, finding=bomb, decision=FindingDecision.Decision.CONFIRMED)
    assert Artifact.objects.get(submission=submission).status == Artifact.Status.REJECTED
    for check in ("licenses", "code"):
        run = _run(submission, check)
        assert run.state == CheckRun.State.BLOCKED and "src.zip was rejected" in run.error
        with translation.override("ko"):
            assert finding_texts.error_label(run.error) == "src.zip 파일이 거부되었습니다(반입 검사 또는 검토자)"
        assert Finding.objects.get(check_run=run).evidence["input_status"] == "rejected"
    # Waiving it afterwards does not resurrect a rejected file.
    finding_decide(user=world.reviewer, finding=bomb, decision="waived", justification="changed my mind")
    assert Artifact.objects.get(submission=submission).status == Artifact.Status.REJECTED


def test_a_failed_intake_is_a_finding_blocks_its_dependents_and_a_successful_rerun_replaces_it(tmp_path):
    world = build_world()
    archive = hostile.zip_realistic_config(tmp_path / "src.zip", b'{"model_type": "llama"}\n' * 40).read_bytes()
    submission = signed_submission(world=world, files={"src.zip": ("source_archive", archive)}, submit=True)
    artifact = Artifact.objects.get(submission=submission)
    recorded = artifact.sha256
    Artifact.objects.filter(pk=artifact.pk).update(sha256="0" * 64)  # storage and record disagree
    intake = _run(submission, "intake")
    assert _execute(intake) == CheckRun.State.FAILED
    incomplete = Finding.objects.get(check_run=intake, code="check_incomplete")
    assert incomplete.severity == "high" and "differs from the" in incomplete.evidence["error"]
    assert incomplete.evidence["state"] == "failed"
    code_run = _run(submission, "code")
    assert code_run.state == CheckRun.State.BLOCKED and code_run.error.startswith("intake of src.zip could not complete")
    # Both sentences are the portal's own, the one quoted inside the other too: a Korean reader
    # reads neither in English; the hashes stay as they are.
    with translation.override("ko"):
        korean = finding_texts.error_label(code_run.error)
        assert korean.startswith("src.zip 파일의 반입 검사를 마치지 못했습니다: src.zip: 저장된 파일의 SHA-256 "), korean
        assert korean.endswith("저장된 사본이 변경되었거나 손상되었습니다"), korean
        assert f"SHA-256 {recorded[:16]}…" in korean and "업로드 때 기록된 0000000000000000…" in korean, korean
        # The hash prefixes are hex and may hold letters (a run like "fcbfe"): take them out first.
        words = re.sub(r"[0-9a-f]{16}…", "", korean.replace("SHA-256", ""))
        assert not re.search(r"[A-Za-z]{4,}", words), korean
        assert finding_texts.error_label(CheckRun.objects.get(pk=intake.pk).error) in Finding.objects.get(
            check_run=intake, code="check_incomplete").text("reviewer").text
    # Fixed, and re-run by staff: the failure's finding is replaced, the blocked checks are sent.
    Artifact.objects.filter(pk=artifact.pk).update(sha256=recorded)
    check_run_rerun(user=world.officer, run=intake)
    assert _execute(intake) == CheckRun.State.SUCCEEDED
    assert not Finding.objects.filter(check_run=intake, code="check_incomplete").exists()
    assert _run(submission, "code").state == CheckRun.State.QUEUED


def test_a_staff_rerun_of_a_dependent_check_does_not_read_a_quarantined_file(tmp_path):
    world = build_world()
    submission = _bomb_submission(world, tmp_path)
    _execute(_run(submission, "intake"))
    code_run = _run(submission, "code")
    check_run_rerun(user=world.officer, run=code_run)  # queued by hand, bypassing the wait
    assert _execute(code_run) == "blocked"
    assert code_run.state == CheckRun.State.BLOCKED
    assert list(Finding.objects.filter(check_run=code_run).values_list("code", flat=True)) == ["check_blocked"]


def test_the_submission_page_shows_the_blocked_finding_in_korean(tmp_path):
    world = build_world()
    submission = _bomb_submission(world, tmp_path)
    _execute(_run(submission, "intake"))
    client = Client()
    client.force_login(world.reviewer)
    english = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "Code provenance not run on src.zip: intake did not accept src.zip" in english
    assert "Not run: intake did not accept the file" in english  # the run's state
    korean = client.get(f"/submissions/{submission.pk}/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "코드 출처 검사가 src.zip에서 실행되지 않았습니다" in korean, korean[:200]
    # Why, in the run's row and in the finding: the portal's own sentence, in the reader's language.
    assert "intake quarantined src.zip until a reviewer decides" in english
    # (The record's own English words stay inside the ministry's "Statistics and evidence".)
    assert "intake quarantined" not in re.sub(r"<details.*?</details>", "", korean, flags=re.DOTALL)
    assert "반입 검사가 src.zip 파일을 격리했습니다" in korean


def test_a_check_interrupted_too_often_is_a_finding_not_a_silent_failure(tmp_path):
    world = build_world()
    submission = signed_submission(world=world, files={"src.zip": ("source_archive", hostile.zip_realistic_config(
        tmp_path / "src.zip", b'{"a": 1}').read_bytes())}, submit=True)
    intake = _run(submission, "intake")
    # The fifth worker to take it died too (killed, out of memory): its lease lapsed.
    CheckRun.objects.filter(pk=intake.pk).update(state=CheckRun.State.RUNNING, attempts=5,
                                                 lease_expires_at=timezone.now() - timedelta(minutes=1))
    assert check_runs_reconcile()["failed"] == 1
    incomplete = Finding.objects.get(check_run=intake, code="check_incomplete")
    assert incomplete.evidence["attempt"] == 5 and "interrupted 5 times" in incomplete.evidence["error"]
    assert incomplete.title == "Intake safety could not complete on src.zip"
    # The run's error is the portal's own sentence, so a Korean reader reads it in Korean.
    with translation.override("ko"):
        assert finding_texts.error_label(CheckRun.objects.get(pk=intake.pk).error) == (
            "점검이 5번 중단되었습니다(워커가 종료되었거나 메모리가 부족했을 수 있습니다)")
    # So does the Korean dossier's account of that check (the English one keeps the stored words).
    from compliance.dossier.context import dossier_context_build

    for lang, words in (("ko", "점검이 5번 중단되었습니다"), ("en", "the check was interrupted 5 times")):
        (shown,) = [c for c in dossier_context_build(submission=submission, lang=lang).checks if c.id == intake.pk]
        assert words in shown.summary, (lang, shown.summary)
        with translation.override(lang):
            for audience in ("vendor", "reviewer"):
                assert words in incomplete.text(audience).text, (lang, audience)
    assert _run(submission, "code").state == CheckRun.State.BLOCKED
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED
    with pytest.raises(ValidationError):
        submission_decide(user=world.reviewer, submission=submission, decision="approved")

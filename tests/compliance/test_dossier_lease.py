"""Dossier rendering's claim, fence, lease, reconciliation and staff retry (issue #11), in
process; the same under a real worker killed mid-render is in test_lease_faults.py."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from compliance.dossiers import DOSSIER_JOB, _store, dossier_render_execute, dossier_request, dossiers_reconcile
from compliance import finding_texts
from compliance.models import CheckRun, Dossier
from compliance.services.runs import CHECK_RUN_JOB, _finish, check_run_claim, check_run_progress, check_run_rerun
from portal.models import AuditEvent
from tests.compliance.test_pipeline import wait_for
from tests.factories import signed_submission

PDF = b"%PDF-1.7\n% stands in for a rendered dossier: storage does not read it\n%%EOF\n"


@pytest.fixture
def submitted(world, settings, tmp_path):
    settings.DOSSIER_SIGNING_KEY = str(tmp_path / "sign" / "key.pem")
    settings.DOSSIER_SIGNING_CERT = str(tmp_path / "sign" / "cert.pem")
    settings.DOSSIER_SIGNING_GENERATE = True
    return signed_submission(world=world, submit=True)


def _lapse(dossier: Dossier) -> None:
    Dossier.objects.filter(pk=dossier.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def _claimed(dossier: Dossier, worker: str) -> Dossier:
    assert DOSSIER_JOB.claim(pk=dossier.pk, worker=worker)
    return Dossier.objects.select_related("submission__project").get(pk=dossier.pk)


def _stored_pdfs(settings) -> list[Path]:
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*.pdf") if p.is_file())


@pytest.mark.django_db
def test_a_redelivered_render_takes_over_only_a_lapsed_lease(world, submitted):
    dossier = dossier_request(user=world.officer, submission=submitted)
    _claimed(dossier, "killed-worker")
    # The first worker still holds a live lease: a second delivery leaves it alone.
    assert dossier_render_execute(dossier_id=dossier.pk, worker="second") == "not claimable"
    _lapse(dossier)  # the first worker was killed: nothing renews its lease any more
    assert dossier_render_execute(dossier_id=dossier.pk, worker="second") == "ready"
    dossier.refresh_from_db()
    assert (dossier.state, dossier.attempts, dossier.worker) == (Dossier.State.READY, 2, "second")
    assert AuditEvent.objects.get(action="dossier.issue", object_id=str(dossier.pk)).data["attempt"] == 2


@pytest.mark.django_db
def test_an_attempt_that_lost_its_claim_stores_no_file(world, submitted, settings):
    dossier = dossier_request(user=world.officer, submission=submitted)
    stale = _claimed(dossier, "slow-worker")
    _lapse(dossier)
    current = _claimed(dossier, "new-worker")
    assert _store(stale, PDF, "worker") is False
    assert _stored_pdfs(settings) == [], "a fenced-out attempt left a file behind"
    assert Dossier.objects.get(pk=dossier.pk).state == Dossier.State.RENDERING
    assert _store(current, PDF, "worker") is True
    assert [p.name for p in _stored_pdfs(settings)] == [f"{dossier.number}.pdf"]
    assert not AuditEvent.objects.filter(action="dossier.issue", data__attempt=1).exists()


@pytest.mark.django_db
def test_a_file_left_by_an_attempt_killed_before_commit_is_replaced_not_doubled(world, submitted, settings):
    dossier = dossier_request(user=world.officer, submission=submitted)
    # What a worker killed between writing the file and committing the row leaves behind.
    default_storage.save(f"dossiers/{dossier.number}.pdf", io.BytesIO(b"half a dossier"))
    owner = _claimed(dossier, "worker")
    assert _store(owner, PDF, "worker")
    (path,) = _stored_pdfs(settings)
    assert path.name == f"{dossier.number}.pdf" and path.read_bytes() == PDF
    owner.refresh_from_db()
    assert owner.file.name == f"dossiers/{dossier.number}.pdf"


@pytest.mark.django_db
def test_the_reconciler_requeues_lapsed_fails_exhausted_and_resends_lost_dossiers(world, submitted):
    def dossier(**fields) -> Dossier:
        d = dossier_request(user=world.officer, submission=submitted)
        Dossier.objects.filter(pk=d.pk).update(**fields)
        return d

    lapsed = timezone.now() - timedelta(seconds=1)
    long_ago = timezone.now() - timedelta(hours=1)
    killed_once = dossier(state="rendering", attempts=1, lease_expires_at=lapsed)
    killed_five_times = dossier(state="rendering", attempts=5, lease_expires_at=lapsed)
    retried_once_killed = dossier(state="rendering", attempts=6, attempt_base=5, lease_expires_at=lapsed)
    alive = dossier(state="rendering", attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=2))
    lost = dossier(queued_at=long_ago)

    assert dossiers_reconcile() == {"requeued": 2, "resent": 1, "failed": 1}
    states = dict(Dossier.objects.values_list("pk", "state"))
    assert states[killed_once.pk] == states[retried_once_killed.pk] == Dossier.State.QUEUED
    assert states[alive.pk] == Dossier.State.RENDERING
    assert states[lost.pk] == Dossier.State.QUEUED
    assert Dossier.objects.get(pk=lost.pk).queued_at > long_ago
    failed = Dossier.objects.get(pk=killed_five_times.pk)
    assert failed.state == Dossier.State.FAILED
    assert failed.error == "rendering was interrupted 5 times (worker killed or out of memory?)"
    with translation.override("ko"):
        assert finding_texts.error_label(failed.error) == "보고서 생성이 5번 중단되었습니다(워커가 종료되었거나 메모리가 부족했을 수 있습니다)"
    assert AuditEvent.objects.get(action="dossier.fail", object_id=str(failed.pk)).data["attempt"] == 5
    # Nothing left to do: a second pass changes nothing.
    assert dossiers_reconcile() == {"requeued": 0, "resent": 0, "failed": 0}


@pytest.mark.django_db
def test_a_dossier_left_rendering_before_leases_is_picked_up_after_the_migration(world, submitted):
    """The issue's two dossiers: 'rendering' with no lease, so nothing would ever look at them."""
    import importlib

    migration = importlib.import_module("compliance.migrations.0006_dossier_lease_and_attempt_base")
    stuck = dossier_request(user=world.officer, submission=submitted)
    Dossier.objects.filter(pk=stuck.pk).update(state="rendering", lease_expires_at=None, queued_at=None)
    assert dossiers_reconcile() == {"requeued": 0, "resent": 0, "failed": 0}
    migration._adopt_unleased_dossiers(apps, None)
    assert dossiers_reconcile()["requeued"] == 1
    assert Dossier.objects.get(pk=stuck.pk).state == Dossier.State.QUEUED


@pytest.mark.django_db
def test_staff_retry_a_failed_dossier_under_its_number(world, submitted, settings):
    dossier = dossier_request(user=world.officer, submission=submitted)
    Dossier.objects.filter(pk=dossier.pk).update(state="failed", attempts=5, error="interrupted 5 times")
    url = f"/dossiers/{dossier.pk}/retry/"

    def client(user):
        c = APIClient()
        c.force_login(user)
        return c

    page_url = reverse("submission-detail", kwargs={"pk": submitted.pk})
    reviewer_page, auditor_page = client(world.reviewer).get(page_url), client(world.auditor).get(page_url)
    assert reviewer_page.status_code == auditor_page.status_code == 200
    assert f'action="{url}"' in reviewer_page.content.decode(), "the submission page offers the retry"
    assert f'action="{url}"' not in auditor_page.content.decode(), "auditors only read"
    for outsider in (world.vendor_user, world.other_vendor_user, world.reviewer_unassigned):
        assert client(outsider).post(url).status_code == 404
    assert client(world.auditor).post(url).status_code == 403
    assert Dossier.objects.get(pk=dossier.pk).state == Dossier.State.FAILED

    response = client(world.reviewer).post(f"/api/dossiers/{dossier.pk}/retry/")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "queued" and response.json()["number"] == dossier.number
    retried = Dossier.objects.get(pk=dossier.pk)
    assert (retried.attempts, retried.attempt_base, retried.error) == (5, 5, "")
    assert AuditEvent.objects.get(action="dossier.retry", object_id=str(dossier.pk)).actor == world.reviewer
    # Only failed dossiers are retried: a second click says so and changes nothing.
    assert client(world.officer).post(url).status_code == 302
    assert Dossier.objects.get(pk=dossier.pk).state == Dossier.State.QUEUED

    assert dossier_render_execute(dossier_id=dossier.pk) == "ready"
    ready = Dossier.objects.get(pk=dossier.pk)
    assert ready.number == dossier.number and ready.attempts == 6
    assert [p.name for p in _stored_pdfs(settings)] == [f"{dossier.number}.pdf"]


@pytest.mark.django_db(transaction=True)
def test_the_lease_keeper_renews_while_the_render_lives(world, submitted, settings):
    settings.DOSSIER_LEASE_S = 1.5  # renewed every 0.5 s
    dossier = dossier_request(user=world.officer, submission=submitted)
    owner = _claimed(dossier, "worker")
    first_lease = owner.lease_expires_at
    with DOSSIER_JOB.keeper(row=owner):
        wait_for(lambda: Dossier.objects.get(pk=dossier.pk).lease_expires_at > first_lease, timeout=30,
                 what="the keeper to renew the lease")
    # A superseded attempt's keeper renews nothing: the fence filters on its attempt number.
    _lapse(dossier)
    _claimed(dossier, "next-worker")
    assert DOSSIER_JOB.renew(row=owner) is False


@pytest.mark.django_db
def test_a_rerun_supersedes_the_running_attempt_and_attempts_only_grow(world):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.get(submission=submission, check_name="intake")
    first = check_run_claim(run_id=run.pk, worker="first")
    assert first.attempts == 1
    check_run_rerun(user=world.officer, run=run)
    rerun_event = AuditEvent.objects.get(action="check.rerun", object_id=str(run.pk))
    assert rerun_event.data == {"superseded_attempt": 1, "next_attempt": 2}
    second = check_run_claim(run_id=run.pk, worker="second")
    assert second.attempts == 2, "never reset: the re-run is a new attempt"
    # The first execution ends later: its progress and its outcome are refused.
    check_run_progress(run=first, fraction=0.9, step="from the superseded attempt")
    finding = {"severity": "critical", "code": "stale", "title": "from the superseded attempt"}
    assert _finish(run=first, state=CheckRun.State.SUCCEEDED, verdict="rejected", findings=[finding]) is False
    run.refresh_from_db()
    assert (run.state, run.step, run.findings.count()) == (CheckRun.State.RUNNING, "starting", 0)
    assert _finish(run=second, state=CheckRun.State.SUCCEEDED, verdict="accepted") is True
    # Re-running a finished check supersedes nothing.
    check_run_rerun(user=world.officer, run=run)
    latest = AuditEvent.objects.filter(action="check.rerun").order_by("pk").last()
    assert latest.data == {"superseded_attempt": None, "next_attempt": 3}


@pytest.mark.django_db
def test_the_interrupted_attempt_budget_restarts_at_a_rerun(world):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.get(submission=submission, check_name="intake")
    CheckRun.objects.filter(pk=run.pk).update(state="failed", attempts=5)
    check_run_rerun(user=world.officer, run=run)
    run.refresh_from_db()
    assert (run.attempts, run.attempt_base) == (5, 5)
    run.attempts = 9
    assert not CHECK_RUN_JOB.exhausted(row=run), "4 interruptions since the re-run"
    run.attempts = 10
    assert CHECK_RUN_JOB.exhausted(row=run)

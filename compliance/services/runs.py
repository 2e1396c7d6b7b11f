"""Check runs, from creation to their end.

The pipeline's rules (see THREAT_MODEL.md and ARCHITECTURE.md):
- One ``CheckRun`` per (artifact, check) is the source of truth.
- A task claims its run with one conditional UPDATE; a second delivery finds
  nothing to claim and exits. Every write of a running check is fenced by the
  attempt number it claimed, so a worker presumed dead cannot overwrite the
  attempt that replaced it.
- Findings are replaced, never appended, when an attempt finishes: a check that
  ran twice still has exactly one set of findings.
"""

from __future__ import annotations

import logging
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.broker import task_send
from compliance.checks import CheckContext, CheckFailed, CheckOutcome, check_registry, checks_for
from compliance.models import CheckRun, Finding
from portal.selectors import user_can_manage
from portal.services import audit_record
from projects.models import Artifact, Submission
from projects.services import submission_status_set

logger = logging.getLogger(__name__)

# After this many interrupted attempts (worker killed, out of memory) a run fails for good.
MAX_ATTEMPTS = 5
# What the vendor's page shows for a run the broker could not take yet.
UNSENT_STEP = "waiting for the task queue; checks start when workers are available"
# A run still unsent this long after it was queued was refused by the broker (or its web
# process died between commit and send): the reconciler sends it. The grace covers a send
# in flight, whose publish is bounded at about 5 s (portal/settings.py), so a run is not
# sent twice for nothing (twice would be harmless: the claim lets one delivery through).
UNSENT_GRACE_S = 10


# --- enqueueing ---------------------------------------------------------------------------------

def _send(run: CheckRun) -> None:
    """Send the task for a run after commit (the worker must find the row). Never raises into
    the caller: a broker that cannot take the task leaves the run queued with no ``sent_at``,
    and the reconciler sends it once the broker is back (issue #11)."""
    from compliance.tasks import run_check_task

    spec = check_registry().get(run.check_name)
    if spec is None:
        return
    run_id = run.pk

    def send() -> None:
        sent = task_send(task=run_check_task, args=[run_id], label=f"check run {run_id}", queue=spec.queue,
                         soft_time_limit=spec.soft_time_limit, time_limit=spec.time_limit)
        if sent:
            CheckRun.objects.filter(pk=run_id).update(sent_at=timezone.now())
        else:
            CheckRun.objects.filter(pk=run_id, state=CheckRun.State.QUEUED).update(
                sent_at=None, step=UNSENT_STEP)

    # robust: whatever else goes wrong after commit is logged, and the other runs are still sent.
    transaction.on_commit(send, robust=True)


def check_runs_create_for_submission(*, submission: Submission) -> list[CheckRun]:
    """Create and enqueue every applicable check of every artifact (idempotent)."""
    runs = []
    now = timezone.now()
    with transaction.atomic():
        for artifact in submission.artifacts.all():
            for spec in checks_for(artifact):
                run, created = CheckRun.objects.get_or_create(
                    artifact=artifact, check_name=spec.name,
                    defaults={"submission": submission, "queued_at": now, "step": "waiting for a worker"})
                if created:
                    _send(run)
                runs.append(run)
        if runs:
            submission_status_set(submission=submission, status=Submission.Status.CHECKING)
        else:
            submission_status_set(submission=submission, status=Submission.Status.CHECKED)
    return runs


def check_run_rerun(*, user, run: CheckRun) -> CheckRun:
    """Staff action: run a check again from scratch (its findings are replaced when it ends)."""
    if not user_can_manage(user=user):
        raise PermissionDenied(_("Only ministry administrators and programme officers may re-run checks."))
    with transaction.atomic():
        CheckRun.objects.filter(pk=run.pk).update(
            state=CheckRun.State.QUEUED, progress=0.0, step="queued again by staff", error="", attempts=0,
            queued_at=timezone.now(), started_at=None, finished_at=None, lease_expires_at=None, worker="")
        run.refresh_from_db()
        audit_record(actor=user, action="check.rerun", object_type="check_run", object_id=run.pk,
                     object_label=f"{run.check_name} on {run.artifact.original_name}",
                     submission_id=run.submission_id, project_id=run.submission.project_id)
        submission_status_set(submission=run.submission, status=Submission.Status.CHECKING)
        _send(run)
    return run


# --- running ------------------------------------------------------------------------------------

def check_run_claim(*, run_id: int, worker: str) -> CheckRun | None:
    """Claim a queued run, or a running one whose lease lapsed. Returns None when
    there is nothing to do (already done, or running elsewhere)."""
    now = timezone.now()
    claimable = Q(state=CheckRun.State.QUEUED) | Q(state=CheckRun.State.RUNNING, lease_expires_at__lt=now)
    updated = CheckRun.objects.filter(claimable, pk=run_id).update(
        state=CheckRun.State.RUNNING, attempts=F("attempts") + 1, worker=worker[:200], started_at=now,
        finished_at=None, progress=0.0, step="starting", error="",
        lease_expires_at=now + timedelta(seconds=settings.CHECK_LEASE_S))
    if updated != 1:
        return None
    return CheckRun.objects.select_related("artifact", "submission", "submission__project").get(pk=run_id)


def check_run_progress(*, run: CheckRun, fraction: float, step: str) -> None:
    """Report progress and renew the lease; fenced by the attempt that owns the run."""
    now = timezone.now()
    CheckRun.objects.filter(pk=run.pk, attempts=run.attempts, state=CheckRun.State.RUNNING).update(
        progress=max(0.0, min(1.0, float(fraction))), step=step[:200],
        lease_expires_at=now + timedelta(seconds=settings.CHECK_LEASE_S))


def _finish(*, run: CheckRun, state: str, verdict: str = "", summary: dict | None = None, error: str = "",
            findings: list[dict] = (), engine_version: str = "", inputs: dict | None = None) -> bool:
    """Record the end of an attempt, atomically with its findings. False if the attempt lost its claim."""
    with transaction.atomic():
        owned = CheckRun.objects.select_for_update().filter(
            pk=run.pk, attempts=run.attempts, state=CheckRun.State.RUNNING).first()
        if owned is None:
            return False
        Finding.objects.filter(check_run=owned).delete()
        Finding.objects.bulk_create([
            Finding(check_run=owned, submission_id=owned.submission_id, severity=f["severity"],
                    category=f.get("category", owned.check_name)[:40], code=f["code"][:80], title=f["title"][:300],
                    explanation=f.get("explanation", ""), evidence=f.get("evidence") or {})
            for f in findings
        ])
        owned.state = state
        owned.verdict = verdict[:40]
        owned.summary = summary or {}
        owned.error = error
        owned.progress = 1.0
        owned.step = "done" if state != CheckRun.State.FAILED else "failed"
        owned.engine_version = engine_version[:40]
        owned.inputs = inputs or {}
        owned.finished_at = timezone.now()
        owned.lease_expires_at = None
        owned.save()
        if owned.check_name == "intake" and state == CheckRun.State.SUCCEEDED:
            _artifact_intake_result(artifact=owned.artifact, verdict=verdict, summary=owned.summary)
        audit_record(actor="worker", action=f"check.{state}", object_type="check_run", object_id=owned.pk,
                     object_label=f"{owned.check_name} on {owned.artifact.original_name}",
                     submission_id=owned.submission_id, project_id=owned.submission.project_id,
                     data={"verdict": verdict, "findings": len(findings), "attempt": owned.attempts,
                           "error": error[:500]})
        submission_status_recompute(submission_id=owned.submission_id)
    return True


def _artifact_intake_result(*, artifact: Artifact, verdict: str, summary: dict) -> None:
    status = {"accepted": Artifact.Status.ACCEPTED, "rejected": Artifact.Status.REJECTED}.get(
        verdict, Artifact.Status.QUARANTINED)
    Artifact.objects.filter(pk=artifact.pk).update(status=status,
                                                   detected_kind=str(summary.get("detected_kind", ""))[:40])


def submission_status_recompute(*, submission_id: int) -> None:
    """A submission whose checks all ended moves from 'checking' to 'checked'."""
    unfinished = CheckRun.objects.filter(submission_id=submission_id).exclude(
        state__in=CheckRun.FINISHED_STATES).exists()
    target = Submission.Status.CHECKING if unfinished else Submission.Status.CHECKED
    Submission.objects.filter(pk=submission_id, status__in=[Submission.Status.SUBMITTED,
                                                            Submission.Status.CHECKING,
                                                            Submission.Status.CHECKED]).update(status=target)


class _LeaseKeeper:
    """Renews a running check's lease from a side thread while the worker process lives,
    so a check that reads for minutes between progress reports is not taken for dead.
    A killed worker stops renewing, and the reconciler requeues its run."""

    def __init__(self, run: CheckRun):
        self.run = run
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"lease-{run.pk}", daemon=True)

    def _loop(self) -> None:
        from django.db import connection

        # A third of the lease: two renewals may fail before the run looks abandoned.
        interval = max(0.5, settings.CHECK_LEASE_S / 3)
        try:
            while not self.stopped.wait(interval):
                CheckRun.objects.filter(pk=self.run.pk, attempts=self.run.attempts,
                                        state=CheckRun.State.RUNNING).update(
                    lease_expires_at=timezone.now() + timedelta(seconds=settings.CHECK_LEASE_S))
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=10)


class TransientCheckError(Exception):
    """Raised by the executor for errors worth retrying (database or storage hiccups)."""


def check_run_execute(*, run_id: int, worker: str | None = None) -> str:
    """Claim a run, execute its check and record the outcome. Returns what happened."""
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import OperationalError

    worker = worker or socket.gethostname()
    run = check_run_claim(run_id=run_id, worker=worker)
    if run is None:
        return "not claimable"
    spec = check_registry().get(run.check_name)
    if spec is None:
        _finish(run=run, state=CheckRun.State.FAILED, error=f"no check named {run.check_name!r} on this worker")
        return "failed"
    ctx = CheckContext(artifact=run.artifact,
                       progress=lambda fraction, step: check_run_progress(run=run, fraction=fraction, step=step))
    try:
        with _LeaseKeeper(run):
            outcome: CheckOutcome = spec.run(ctx)
    except SoftTimeLimitExceeded:
        _finish(run=run, state=CheckRun.State.FAILED,
                error=f"the check took longer than its limit of {spec.soft_time_limit} s and was stopped")
        return "failed"
    except CheckFailed as exc:
        _finish(run=run, state=CheckRun.State.FAILED, error=str(exc))
        return "failed"
    except (OperationalError, ConnectionError, TimeoutError) as exc:
        # Put the run back so the retry (or the reconciler) can claim it.
        CheckRun.objects.filter(pk=run.pk, attempts=run.attempts, state=CheckRun.State.RUNNING).update(
            state=CheckRun.State.QUEUED, step=f"retrying after a transient error: {exc}"[:200],
            queued_at=timezone.now(), lease_expires_at=None)
        raise TransientCheckError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - any other error fails the run with its reason, never silently
        logger.exception("check %s on artifact %s failed", run.check_name, run.artifact_id)
        _finish(run=run, state=CheckRun.State.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:2000] or "the check crashed without a message")
        return "failed"
    state = CheckRun.State.INCONCLUSIVE if outcome.state == "inconclusive" else CheckRun.State.SUCCEEDED
    _finish(run=run, state=state, verdict=outcome.verdict, summary=outcome.summary, findings=outcome.findings,
            engine_version=outcome.engine_version, inputs=outcome.inputs)
    return state


def _reconcile_claim(*, pk: int, claimable: Q) -> CheckRun | None:
    """Lock one run for the reconciler, or None when it moved on or a check holds its row.

    ``skip_locked`` on PostgreSQL: the reconciler never waits on a row a check has locked
    (``_finish`` holds it while it writes findings and the audit entry; issue #11 saw two
    reconcile tasks wait 11-16 s on one). A skipped run is looked at again next tick. SQLite
    has no row locks (writers take turns on the whole file), so this is a plain read there.
    Call inside a transaction."""
    return (CheckRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("artifact", "submission").filter(claimable, pk=pk).first())


def check_runs_reconcile() -> dict:
    """Requeue runs whose worker vanished (lease lapsed), send runs the broker could not take
    (unsent) and re-send runs it may have lost (queued too long); fail runs interrupted too
    often. Safe to run anywhere, any time, twice at once: one short transaction per run."""
    now = timezone.now()
    counts = {"requeued": 0, "resent": 0, "failed": 0}
    lapsed = Q(state=CheckRun.State.RUNNING, lease_expires_at__lt=now)
    for pk in list(CheckRun.objects.filter(lapsed).values_list("pk", flat=True)):
        with transaction.atomic():
            run = _reconcile_claim(pk=pk, claimable=lapsed)
            if run is None:
                continue
            if run.attempts >= MAX_ATTEMPTS:
                if _finish(run=run, state=CheckRun.State.FAILED,
                           error=f"the check was interrupted {run.attempts} times (worker killed or out of memory?)"):
                    counts["failed"] += 1
                continue
            CheckRun.objects.filter(pk=run.pk).update(
                state=CheckRun.State.QUEUED, queued_at=now, lease_expires_at=None,
                step="requeued: its worker stopped reporting")
            _send(run)
            counts["requeued"] += 1
    stale_before = now - timedelta(seconds=settings.CHECK_QUEUED_STALE_S)
    unsent_before = now - timedelta(seconds=UNSENT_GRACE_S)
    to_send = Q(state=CheckRun.State.QUEUED) & (Q(queued_at__lt=stale_before)
                                                | Q(sent_at__isnull=True, queued_at__lt=unsent_before))
    for pk in list(CheckRun.objects.filter(to_send).values_list("pk", flat=True)):
        with transaction.atomic():
            run = _reconcile_claim(pk=pk, claimable=to_send)
            if run is None:
                continue
            CheckRun.objects.filter(pk=run.pk).update(queued_at=now, step="re-sent: no worker picked it up")
            _send(run)
            counts["resent"] += 1
    return counts

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
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _

from compliance.broker import task_send
from compliance.checks import CheckContext, CheckFailed, CheckOutcome, check_registry, checks_for, finding_text
from compliance.models import CheckRun, Finding
from compliance.notifications import checks_finished_notify, findings_raised_notify
from compliance.services.leases import LeasedJob, LeaseKeeper
from compliance.services.reuse import check_reuse_key, check_run_try_reuse
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

# Claim, fence, lease and budget of check runs (compliance.services.leases, shared with dossiers).
CHECK_RUN_JOB = LeasedJob(model=CheckRun, queued=CheckRun.State.QUEUED, running=CheckRun.State.RUNNING,
                          lease_setting="CHECK_LEASE_S", stale_setting="CHECK_QUEUED_STALE_S",
                          max_attempts=MAX_ATTEMPTS)


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
    """Create every applicable check of every artifact (idempotent). Intake is sent at once;
    checks that depend on it wait, unsent, until intake has accepted what they read. A run whose
    file, engine and inputs equal those of a succeeded run of an earlier version of the project
    takes that result at once instead (compliance.services.reuse); dependent checks are
    considered for reuse when intake has accepted what they read (``check_runs_release``)."""
    runs = []
    now = timezone.now()
    with transaction.atomic():
        for artifact in submission.artifacts.all():
            for spec in checks_for(artifact):
                waits = bool(spec.depends_on)
                run, created = CheckRun.objects.get_or_create(
                    artifact=artifact, check_name=spec.name,
                    defaults={"submission": submission, "queued_at": now,
                              "state": CheckRun.State.WAITING if waits else CheckRun.State.QUEUED,
                              "step": "waiting for intake to accept the file" if waits else "waiting for a worker"})
                if created and not waits and not check_run_try_reuse(run=run):
                    _send(run)
                runs.append(run)
        if runs:
            submission_status_set(submission=submission, status=Submission.Status.CHECKING)
            # Artifacts intake already judged (reused intake results) release their checks at once.
            check_runs_release(submission_id=submission.pk)
        else:
            submission_status_set(submission=submission, status=Submission.Status.CHECKED)
    return runs


def check_runs_create_for_artifact(*, artifact: Artifact) -> list[CheckRun]:
    """Create the applicable checks of one artifact added after submission (a file attached to a
    message on a finding; intake alone applies to correspondence), idempotent. The submission's
    status follows as for any run (checking while it runs, if it was not decided yet)."""
    runs = []
    now = timezone.now()
    with transaction.atomic():
        for spec in checks_for(artifact):
            waits = bool(spec.depends_on)
            run, created = CheckRun.objects.get_or_create(
                artifact=artifact, check_name=spec.name,
                defaults={"submission_id": artifact.submission_id, "queued_at": now,
                          "state": CheckRun.State.WAITING if waits else CheckRun.State.QUEUED,
                          "step": "waiting for intake to accept the file" if waits else "waiting for a worker"})
            if created and not waits:
                _send(run)
            runs.append(run)
        submission_status_recompute(submission_id=artifact.submission_id)
    return runs


# --- dependencies between checks ----------------------------------------------------------------

WAITS, READY, BLOCKS = "waiting", "ready", "blocked"


def check_run_inputs_status(*, run: CheckRun) -> tuple[str, str, Artifact | None]:
    """Whether a dependent run may start: READY when intake accepted every artifact it reads,
    BLOCKS (with the reason and the artifact) when intake ended without accepting one,
    WAITS while an intake that matters has not ended."""
    spec = check_registry().get(run.check_name)
    if spec is None or "intake" not in spec.depends_on:
        return READY, "", None
    inputs = spec.reads(run.artifact)
    intakes = {r.artifact_id: r for r in CheckRun.objects.filter(
        artifact_id__in=[a.pk for a in inputs], check_name="intake")}
    # Statuses read now, not from the rows the caller holds: a concurrent intake may have
    # committed since (two intakes of one model folder ending together on PostgreSQL).
    statuses = dict(Artifact.objects.filter(pk__in=[a.pk for a in inputs]).values_list("pk", "status"))
    waiting = False
    for artifact in inputs:
        artifact.status = statuses.get(artifact.pk, artifact.status)
        intake = intakes.get(artifact.pk)
        if intake is not None and intake.state not in CheckRun.FINISHED_STATES:
            waiting = True  # intake runs (or runs again): its answer is the one that counts
            continue
        if artifact.status == Artifact.Status.ACCEPTED:
            continue
        if intake is None:
            waiting = True  # not judged yet
            continue
        if artifact.status == Artifact.Status.REJECTED:
            return BLOCKS, f"{artifact.original_name} was rejected (by intake or by a reviewer)", artifact
        if intake.state in (CheckRun.State.FAILED, CheckRun.State.INCONCLUSIVE):
            return BLOCKS, (f"intake of {artifact.original_name} could not complete"
                            + (f": {intake.error}" if intake.error else "")), artifact
        return BLOCKS, (f"intake quarantined {artifact.original_name} until a reviewer decides the intake "
                        "findings that hold it"), artifact
    return (WAITS, "", None) if waiting else (READY, "", None)


def _pipeline_finding(*, code: str, run: CheckRun, evidence: dict) -> dict:
    """A finding the pipeline writes itself; stored in English, shown in the reader's language
    (compliance.checks.finding_text)."""
    with translation.override("en"):
        title, explanation = finding_text(code=code, evidence=evidence)
    return {"severity": "high", "category": run.check_name[:40], "code": code, "title": title[:300],
            "explanation": explanation, "evidence": evidence}


def _blocked_finding(*, run: CheckRun, reason: str, blocking: Artifact) -> dict:
    """High: approval waits until the check runs or a reviewer waives it."""
    return _pipeline_finding(code="check_blocked", run=run, evidence={
        "check": run.check_name, "artifact": run.artifact.original_name, "input": blocking.original_name,
        "input_status": blocking.status, "reason": reason})


def check_runs_release(*, submission_id: int) -> dict:
    """Reconsider a submission's waiting and blocked runs after an intake ended or a reviewer
    released or rejected a quarantined artifact: send those whose inputs are all accepted
    (or take an earlier version's result when nothing they read changed),
    block (with a finding saying why) those whose inputs intake did not accept. A waiting
    run is never sent by anything else (the reconciler re-sends queued runs only)."""
    counts = {"sent": 0, "blocked": 0, "reused": 0}
    now = timezone.now()
    with transaction.atomic():
        runs = (CheckRun.objects.select_for_update(of=("self",)).select_related("artifact")
                .filter(submission_id=submission_id, state__in=[CheckRun.State.WAITING, CheckRun.State.BLOCKED])
                .order_by("pk"))
        for run in runs:
            status, reason, blocking = check_run_inputs_status(run=run)
            if status == READY and check_run_try_reuse(run=run):
                counts["reused"] += 1
            elif status == READY:
                Finding.objects.filter(check_run=run).delete()
                CheckRun.objects.filter(pk=run.pk).update(
                    state=CheckRun.State.QUEUED, queued_at=now, finished_at=None, error="", progress=0.0,
                    step="queued: intake accepted what it reads")
                _send(run)
                counts["sent"] += 1
            elif status == BLOCKS and (run.state != CheckRun.State.BLOCKED or run.error != reason):
                Finding.objects.filter(check_run=run).delete()
                finding = _blocked_finding(run=run, reason=reason, blocking=blocking)
                Finding.objects.create(check_run=run, submission_id=run.submission_id, **finding)
                CheckRun.objects.filter(pk=run.pk).update(
                    state=CheckRun.State.BLOCKED, finished_at=now, error=reason, progress=1.0,
                    step="not run: intake did not accept the file")
                audit_record(actor="worker", action="check.blocked", object_type="check_run", object_id=run.pk,
                             object_label=f"{run.check_name} on {run.artifact.original_name}",
                             submission_id=run.submission_id, project_id=run.submission.project_id,
                             data={"reason": reason[:500]})
                counts["blocked"] += 1
            elif status == WAITS and run.state == CheckRun.State.BLOCKED:
                # Its intake runs again (staff re-run): wait for that one's answer.
                Finding.objects.filter(check_run=run).delete()
                CheckRun.objects.filter(pk=run.pk).update(state=CheckRun.State.WAITING, finished_at=None, error="",
                                                          progress=0.0, step="waiting for intake to accept the file")
        submission_status_recompute(submission_id=submission_id)
    return counts


def check_run_rerun(*, user, run: CheckRun) -> CheckRun:
    """Staff action: run a check again from scratch (its findings are replaced when it ends).

    Attempt numbers only grow: the next claim takes attempt N+1, so an execution still
    running as attempt N is superseded and every write it tries later (progress, lease,
    findings) is refused by the fence. Resetting the counter to 0 once let the older
    execution's findings be stored as the re-run's (issue #11). The interrupted-attempt
    budget restarts from here (``attempt_base``)."""
    if not user_can_manage(user=user):
        raise PermissionDenied(_("Only ministry administrators and programme officers may re-run checks."))
    with transaction.atomic():
        current = CheckRun.objects.select_for_update().get(pk=run.pk)
        superseded = current.attempts if current.state == CheckRun.State.RUNNING else None
        CheckRun.objects.filter(pk=run.pk).update(
            state=CheckRun.State.QUEUED, progress=0.0, step="queued again by staff", error="",
            attempt_base=F("attempts"), queued_at=timezone.now(), started_at=None, finished_at=None,
            lease_expires_at=None, worker="", reused_from=None, reuse_key="")
        run.refresh_from_db()
        audit_record(actor=user, action="check.rerun", object_type="check_run", object_id=run.pk,
                     object_label=f"{run.check_name} on {run.artifact.original_name}",
                     submission_id=run.submission_id, project_id=run.submission.project_id,
                     data={"superseded_attempt": superseded, "next_attempt": run.attempts + 1})
        submission_status_set(submission=run.submission, status=Submission.Status.CHECKING)
        _send(run)
    return run


# --- running ------------------------------------------------------------------------------------

def check_run_claim(*, run_id: int, worker: str) -> CheckRun | None:
    """Claim a queued run, or a running one whose lease lapsed. Returns None when
    there is nothing to do (already done, or running elsewhere)."""
    if not CHECK_RUN_JOB.claim(pk=run_id, worker=worker, finished_at=None, progress=0.0, step="starting",
                               error=""):
        return None
    return CheckRun.objects.select_related("artifact", "submission", "submission__project").get(pk=run_id)


def check_run_progress(*, run: CheckRun, fraction: float, step: str) -> None:
    """Report progress and renew the lease; fenced by the attempt that owns the run."""
    CHECK_RUN_JOB.renew(row=run, progress=max(0.0, min(1.0, float(fraction))), step=step[:200])


def _incomplete_finding(*, run: CheckRun, state: str, reason: str) -> dict:
    """A check that could not reach a verdict is a finding (high: approval waits for it), so a
    failure never reads as 'nothing found'. A later attempt that succeeds replaces it."""
    return _pipeline_finding(code="check_incomplete", run=run, evidence={
        "check": run.check_name, "artifact": run.artifact.original_name, "attempt": run.attempts,
        "state": str(state), "error": reason[:2000]})


def _finish(*, run: CheckRun, state: str, verdict: str = "", summary: dict | None = None, error: str = "",
            findings: list[dict] = (), engine_version: str = "", inputs: dict | None = None,
            incomplete: str = "", reuse_key: str = "") -> bool:
    """Record the end of an attempt, atomically with its findings. False if the attempt lost its claim.

    A FAILED attempt, or an INCONCLUSIVE one with an ``incomplete`` reason (technical, not a
    verdict), adds a ``check_incomplete`` finding."""
    with transaction.atomic():
        owned = CheckRun.objects.select_for_update().filter(
            pk=run.pk, attempts=run.attempts, state=CheckRun.State.RUNNING).first()
        if owned is None:
            return False
        reason = error if state == CheckRun.State.FAILED else (incomplete if state == CheckRun.State.INCONCLUSIVE else "")
        if state == CheckRun.State.FAILED or reason:
            findings = [*findings, _incomplete_finding(run=owned, state=state,
                                                       reason=reason or "the check failed without a message")]
        Finding.objects.filter(check_run=owned).delete()
        Finding.objects.bulk_create([
            Finding(check_run=owned, submission_id=owned.submission_id, severity=f["severity"],
                    category=f.get("category", owned.check_name)[:40], code=f["code"][:80], title=f["title"][:300],
                    explanation=f.get("explanation", ""), evidence=f.get("evidence") or {},
                    params=f.get("params") or {})
            for f in findings
        ])
        owned.state = state
        owned.verdict = verdict[:40]
        owned.summary = summary or {}
        owned.error = error
        owned.progress = 1.0
        owned.step = {CheckRun.State.FAILED: "failed", CheckRun.State.BLOCKED: "not run: intake did not accept the file"
                      }.get(state, "done")
        owned.engine_version = engine_version[:40]
        owned.inputs = inputs or {}
        # Only a success is reused later (compliance.services.reuse); this attempt ran the check itself.
        owned.reuse_key = reuse_key if state == CheckRun.State.SUCCEEDED else ""
        owned.reused_from = None
        owned.finished_at = timezone.now()
        owned.lease_expires_at = None
        owned.save()
        spec = check_registry().get(owned.check_name)
        findings_raised_notify(submission=owned.submission, check_label=spec.label if spec else owned.check_name,
                               findings=findings)
        if owned.check_name == "intake" and state == CheckRun.State.SUCCEEDED:
            _artifact_intake_result(artifact=owned.artifact, verdict=verdict, summary=owned.summary)
        if owned.check_name == "intake":
            # Whatever intake's end, the checks waiting for it learn it in this transaction (their
            # tasks are sent after commit, so a worker finds the artifact's new status).
            check_runs_release(submission_id=owned.submission_id)
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
    """A submission whose checks all ended moves from 'checking' to 'checked'; the move (one
    conditional UPDATE, so once however many runs end together) tells the vendor and reviewers."""
    unfinished = CheckRun.objects.filter(submission_id=submission_id).exclude(
        state__in=CheckRun.FINISHED_STATES).exists()
    if unfinished:
        Submission.objects.filter(pk=submission_id, status__in=[Submission.Status.SUBMITTED,
                                                                Submission.Status.CHECKING,
                                                                Submission.Status.CHECKED]).update(
            status=Submission.Status.CHECKING)
        return
    moved = Submission.objects.filter(pk=submission_id, status__in=[Submission.Status.SUBMITTED,
                                                                    Submission.Status.CHECKING]).update(
        status=Submission.Status.CHECKED)
    if moved:
        checks_finished_notify(submission_id=submission_id)


class _LeaseKeeper(LeaseKeeper):
    """Renews a running check's lease while the worker process lives (compliance.services.leases)."""

    def __init__(self, run: CheckRun):
        super().__init__(job=CHECK_RUN_JOB, row=run)


def _test_hold() -> None:
    """Test-only (PORTAL_TEST_CHECK_DELAY_S, 0 unless set): hold a finished check's outcome
    before recording it, so a test can re-run a check that is still running."""
    if settings.TEST_CHECK_DELAY_S > 0:
        time.sleep(settings.TEST_CHECK_DELAY_S)


def _attempt_superseded_record(*, run: CheckRun, outcome: str, findings: int) -> str:
    """The fence refused an attempt's outcome: say so in the audit trail, which then shows
    both the superseded attempt and the one that replaced it."""
    audit_record(actor="worker", action="check.superseded", object_type="check_run", object_id=run.pk,
                 object_label=f"{run.check_name} on {run.artifact.original_name}",
                 submission_id=run.submission_id, project_id=run.submission.project_id,
                 data={"attempt": run.attempts, "discarded_outcome": outcome, "discarded_findings": findings})
    return "superseded"


def _fail(*, run: CheckRun, error: str) -> str:
    """End an attempt as failed; an attempt a re-run superseded is recorded as such instead."""
    if _finish(run=run, state=CheckRun.State.FAILED, error=error):
        return "failed"
    return _attempt_superseded_record(run=run, outcome=f"failed: {error[:200]}", findings=0)


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
    if spec.depends_on:
        # Belt and braces: a staff re-run or a stray delivery must not run a check on a file
        # intake has not accepted.
        status, reason, blocking = check_run_inputs_status(run=run)
        if status == WAITS:
            CheckRun.objects.filter(pk=run.pk, attempts=run.attempts, state=CheckRun.State.RUNNING).update(
                state=CheckRun.State.WAITING, lease_expires_at=None, step="waiting for intake to accept the file")
            return "waiting"
        if status == BLOCKS:
            _finish(run=run, state=CheckRun.State.BLOCKED, error=reason,
                    findings=[_blocked_finding(run=run, reason=reason, blocking=blocking)])
            return "blocked"
    ctx = CheckContext(artifact=run.artifact,
                       progress=lambda fraction, step: check_run_progress(run=run, fraction=fraction, step=step))
    try:
        with _LeaseKeeper(run):
            key_before = check_reuse_key(spec=spec, artifact=run.artifact)
            outcome: CheckOutcome = spec.run(ctx)
            _test_hold()
            # What the check read, taken on both sides of it: an input changed while it ran (a policy
            # edited mid-scan) leaves the result unreusable rather than filed under the wrong inputs.
            key_after = check_reuse_key(spec=spec, artifact=run.artifact)
    except SoftTimeLimitExceeded:
        return _fail(run=run, error=f"the check took longer than its limit of {spec.soft_time_limit} s and was stopped")
    except CheckFailed as exc:
        return _fail(run=run, error=str(exc))
    except (OperationalError, ConnectionError, TimeoutError) as exc:
        # Put the run back so the retry (or the reconciler) can claim it.
        CheckRun.objects.filter(pk=run.pk, attempts=run.attempts, state=CheckRun.State.RUNNING).update(
            state=CheckRun.State.QUEUED, step=f"retrying after a transient error: {exc}"[:200],
            queued_at=timezone.now(), lease_expires_at=None)
        raise TransientCheckError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - any other error fails the run with its reason, never silently
        logger.exception("check %s on artifact %s failed", run.check_name, run.artifact_id)
        return _fail(run=run, error=f"{type(exc).__name__}: {exc}"[:2000] or "the check crashed without a message")
    state = CheckRun.State.INCONCLUSIVE if outcome.state == "inconclusive" else CheckRun.State.SUCCEEDED
    if not _finish(run=run, state=state, verdict=outcome.verdict, summary=outcome.summary,
                   findings=outcome.findings, engine_version=outcome.engine_version, inputs=outcome.inputs,
                   incomplete=outcome.incomplete, reuse_key=key_before if key_before == key_after else ""):
        return _attempt_superseded_record(run=run, outcome=f"{state}: {outcome.verdict}",
                                          findings=len(outcome.findings))
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
            if CHECK_RUN_JOB.exhausted(row=run):
                if _finish(run=run, state=CheckRun.State.FAILED,
                           error=f"the check was interrupted {run.attempts - run.attempt_base} times "
                                 "(worker killed or out of memory?)"):
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

"""Celery tasks: take ids, call one service, record the outcome. Safe to deliver twice."""

from __future__ import annotations

from celery import shared_task

from compliance.services.runs import TransientCheckError


@shared_task(name="compliance.run_check", bind=True, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(TransientCheckError,), retry_backoff=5, retry_backoff_max=300, retry_jitter=True,
             max_retries=5)
def run_check_task(self, run_id: int) -> str:
    from compliance.services.runs import check_run_execute

    return check_run_execute(run_id=run_id, worker=self.request.hostname or None)


@shared_task(name="compliance.reconcile_check_runs", acks_late=True, ignore_result=True)
def reconcile_check_runs_task() -> dict:
    from compliance.dossiers import dossiers_reconcile
    from compliance.services.runs import check_runs_reconcile

    # Dossiers are leased like check runs; one beat entry reconciles both (issue #11).
    return {**check_runs_reconcile(), "dossiers": dossiers_reconcile()}


# Rendering is bounded inside (120 s); the hard limit stops a renderer that hangs anyway.
@shared_task(name="compliance.render_dossier", bind=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=180, time_limit=210)
def render_dossier_task(self, dossier_id: int) -> str:
    from compliance.dossiers import dossier_render_execute

    return dossier_render_execute(dossier_id=dossier_id, worker=self.request.hostname or None)


# Lineage reads sampled rows of the submitted weights: the heavy queue, like the lineage check.
@shared_task(name="compliance.challenge_retest", acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=1800, time_limit=1900)
def challenge_retest_task(challenge_id: int) -> str:
    from compliance.services.challenge_retest import challenge_retest_execute

    return challenge_retest_execute(challenge_id=challenge_id)


@shared_task(name="compliance.challenge_file_intake", acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=600, time_limit=660)
def challenge_file_intake_task(file_id: int) -> str:
    from compliance.services.challenges import challenge_file_intake

    return challenge_file_intake(file_id=file_id)


@shared_task(name="compliance.challenge_reply_reminders", acks_late=True, ignore_result=True)
def challenge_reply_reminders_task() -> dict:
    """Beat, daily, on the control queue: vendors reminded before a challenge's reply is due,
    officers told once it is overdue (each once per challenge)."""
    from compliance.services.challenges import challenge_reply_reminders

    return challenge_reply_reminders()

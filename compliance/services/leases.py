"""Leases for jobs a worker may lose: one mechanism for check runs and dossiers.

A leased job is a row with ``state``, ``attempts``, ``attempt_base``, ``worker``,
``started_at``, ``queued_at`` and ``lease_expires_at``. Its rules:

- Claim: one conditional UPDATE takes a queued row, or a running one whose lease
  lapsed (its worker was killed), and increments ``attempts``. A second delivery of
  the same task finds nothing to claim.
- Fence: every later write of the attempt filters on ``attempts`` and the running
  state, so an attempt that lost its claim (lease lapsed and retaken, or superseded by
  a staff re-run) writes nothing. Attempt numbers only grow; nothing resets them.
- Lease: renewed from a side thread while the worker process lives; a killed worker
  stops renewing, and the reconciler requeues the row once the lease lapses.
- Budget: after ``max_attempts`` interrupted attempts since the last staff request
  (``attempt_base`` holds the attempts made before it) the row fails with the reason.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


@dataclass(frozen=True)
class LeasedJob:
    """How one kind of job is claimed, fenced, renewed and reconciled."""

    model: type[models.Model]
    queued: str
    running: str
    # Names of settings, read at call time so tests and operators can change them.
    lease_setting: str
    stale_setting: str
    max_attempts: int = 5

    def lease_s(self) -> float:
        return float(getattr(settings, self.lease_setting))

    def claim(self, *, pk: int, worker: str, **fields) -> bool:
        """Take a queued row, or a running one whose lease lapsed; True when this attempt owns it."""
        now = timezone.now()
        claimable = Q(state=self.queued) | Q(state=self.running, lease_expires_at__lt=now)
        updated = self.model.objects.filter(claimable, pk=pk).update(
            state=self.running, attempts=F("attempts") + 1, worker=worker[:200], started_at=now,
            lease_expires_at=now + timedelta(seconds=self.lease_s()), **fields)
        return updated == 1

    def owned(self, *, row) -> models.QuerySet:
        """The row, only while the attempt ``row.attempts`` still owns it (the fence)."""
        return self.model.objects.filter(pk=row.pk, attempts=row.attempts, state=self.running)

    def renew(self, *, row, **fields) -> bool:
        """Extend the lease (and write ``fields``) if the attempt still owns the row."""
        return self.owned(row=row).update(
            lease_expires_at=timezone.now() + timedelta(seconds=self.lease_s()), **fields) == 1

    def keeper(self, *, row) -> LeaseKeeper:
        return LeaseKeeper(job=self, row=row)

    def lapsed(self, *, now: datetime) -> models.QuerySet:
        return self.model.objects.filter(state=self.running, lease_expires_at__lt=now)

    def exhausted(self, *, row) -> bool:
        """Interrupted too often since the last staff request: fail it rather than loop for ever."""
        return row.attempts - row.attempt_base >= self.max_attempts

    def requeue_lapsed(self, *, row, now: datetime, **fields) -> bool:
        """Put a lapsed attempt back in the queue; False if it renewed or was retaken meanwhile."""
        return self.owned(row=row).filter(lease_expires_at__lt=now).update(
            state=self.queued, queued_at=now, lease_expires_at=None, **fields) == 1

    def stale_queued(self, *, now: datetime) -> models.QuerySet:
        """Queued rows no worker picked up in time: the broker may have lost their message."""
        before = now - timedelta(seconds=float(getattr(settings, self.stale_setting)))
        return self.model.objects.filter(Q(queued_at__lt=before) | Q(queued_at__isnull=True), state=self.queued)

    def mark_resent(self, *, row, now: datetime, **fields) -> bool:
        """Restart a queued row's stale clock before re-sending it; False if a worker took it meanwhile."""
        return self.model.objects.filter(pk=row.pk, state=self.queued, queued_at=row.queued_at).update(
            queued_at=now, **fields) == 1


class LeaseKeeper:
    """Renews an attempt's lease from a side thread while the worker process lives, so a job
    that works for minutes between progress reports is not taken for dead. A killed worker
    stops renewing, and the reconciler requeues the job."""

    def __init__(self, *, job: LeasedJob, row):
        self.job = job
        self.row = row
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"lease-{job.model.__name__}-{row.pk}",
                                       daemon=True)

    def _loop(self) -> None:
        from django.db import connection

        # A third of the lease: two renewals may fail before the job looks abandoned.
        interval = max(0.5, self.job.lease_s() / 3)
        try:
            while not self.stopped.wait(interval):
                self.job.renew(row=self.row)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=10)

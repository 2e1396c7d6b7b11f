"""The compliance room's answers to the registry's signals."""

import gc
import logging
import os

from celery.signals import task_postrun, worker_init
from django.conf import settings
from django.dispatch import receiver

from projects.signals import submission_submitted


@receiver(submission_submitted, dispatch_uid="compliance.enqueue_checks")
def enqueue_checks_on_submit(sender, submission, user, **kwargs) -> None:
    """Create the submission's check runs; their tasks are sent after the transaction commits."""
    from compliance.services.runs import check_runs_create_for_submission

    check_runs_create_for_submission(submission=submission)


@worker_init.connect(dispatch_uid="compliance.licence_index_preload")
def licence_index_preload(sender=None, **kwargs) -> None:
    """Load ScanCode's licence index in a worker's main process, before its pool forks, when the
    worker consumes the queue licence checks run on: the children then share the index's pages
    copy-on-write (``gc.freeze`` keeps the collector from touching, and so copying, them), instead
    of each loading its own 1.2 GB. Other workers (control, a dossier-only host) load nothing."""
    from compliance.checks import LIGHT

    if not getattr(settings, "PORTAL_PRELOAD_LICENCE_INDEX", True) or sender is None:
        return
    consumed = getattr(getattr(sender.app.amqp, "queues", None), "consume_from", None)
    if consumed and LIGHT not in consumed:
        return
    from compliance.engine.licenses.detect import detection_warm
    from compliance.engine.licenses.scancode_index import scancode_state_get

    state = scancode_state_get()
    # Every tier of the detector run once here, so what each builds on first use is built once
    # and shared, not once per scanner and pool child (compliance.engine.licenses.detect).
    tiers = detection_warm()
    gc.collect()
    gc.freeze()
    logging.getLogger(__name__).info("licence index preloaded for the pool in %.1f s, detector warmed (%s)",
                                     state.load_seconds, tiers)


@worker_init.connect(dispatch_uid="compliance.pool_recycle_by_private_memory")
def pool_recycle_by_private_memory(sender=None, **kwargs) -> None:
    """Replace a pool process, after the task it ran, once its own private memory passes
    ``PORTAL_POOL_RECYCLE_MB`` (issue #16).

    What a pool process keeps between tasks (Python's heap after a 50,000-file inventory, numpy
    buffers of a lineage check, the licence index pages it copied by touching their reference
    counts) adds to the worker's memory whenever the next check runs: after a version 2 the two
    pool processes of the benchmark held 288 and 328 MB each, which took the checks worker to
    1,966 MB of a 2 GB aim. Celery has the mechanism (``worker_max_memory_per_child``: billiard's
    pool process leaves after a task when ``billiard.pool.mem_rss()`` passes the limit) but not the
    measure: RSS, or the peak RSS without psutil, counts the ~900 MB licence index every pool
    process shares with the worker's main process, so any useful limit would replace every process
    after every task. The measure is swapped here for the pages only this process holds
    (``Private_Dirty``, what its exit gives back), in the main process before the pool forks;
    billiard looks the function up in its module at each call, so the children use it.

    An operator's own ``--max-memory-per-child`` keeps Celery's meaning (RSS) and wins; so does a
    platform without ``/proc/self/smaps_rollup`` (nothing is swapped, no limit is set)."""
    if sender is None:
        return
    # Every worker, preloaded index or not: what the main process holds now is moved out of the
    # collector's reach, so a pool process's first collection does not write (and so copy) every
    # page of the heap it was forked with. Without it a fresh pool process of a worker that
    # preloads nothing held 87 MB of private memory before its first task; see the test.
    gc.collect()
    gc.freeze()
    limit_mb = float(getattr(settings, "PORTAL_POOL_RECYCLE_MB", 0) or 0)
    if limit_mb <= 0 or getattr(sender, "max_memory_per_child", None):
        return
    from compliance.engine.parallel import private_bytes

    if private_bytes() is None:
        return
    import billiard.pool

    if not callable(getattr(billiard.pool, "mem_rss", None)):  # billiard changed: say so, change nothing
        logging.getLogger(__name__).warning("billiard.pool.mem_rss is gone: pool processes are not "
                                            "recycled by private memory")
        return

    limit_kib = int(limit_mb * 1024)

    def private_kib() -> int:
        used_kib = (private_bytes() or 0) // 1024
        if used_kib > limit_kib:
            logging.getLogger(__name__).info(
                "pool process %d holds %.0f MB of private memory, more than PORTAL_POOL_RECYCLE_MB=%g: "
                "replaced by a fresh fork after this task", os.getpid(), used_kib / 1024, limit_mb)
        return used_kib

    billiard.pool.mem_rss = private_kib
    sender.max_memory_per_child = limit_kib


@task_postrun.connect(dispatch_uid="compliance.heap_return")
def heap_return(sender=None, **kwargs) -> None:
    """Hand the heap a finished task freed back to the system (glibc's ``malloc_trim``), in the pool
    child that ran it. Freed memory otherwise stays in the child: after a lineage check (numpy
    arrays of sampled tensors and reference bundles, glibc raising its mmap threshold after the
    first large free) the child kept 254 MB of private pages while idle (issue #16, measured at
    5,000 files), the largest share of the checks worker's memory after the licence index."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass

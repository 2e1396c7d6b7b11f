"""The compliance room's answers to the registry's signals."""

import gc
import logging

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

"""Handing tasks to the broker without letting the broker's outage reach the caller (issue #11).

Tasks are sent after commit, so by the time a send fails the work is already recorded: a
``CheckRun`` (or ``Dossier``) row in state queued. The send is therefore a best effort: a
broker that is down, hung or unwritable is logged, the caller is told ``False``, and the row
stays queued for the reconciler, which sends it once the broker answers again. A web request
never answers 500 for a submission it has in fact accepted.
"""

from __future__ import annotations

import logging
import time

import kombu.exceptions
import redis.exceptions

logger = logging.getLogger(__name__)

# What a broker that is down, hung or unwritable raises through Celery: kombu wraps the
# transports' connection errors in its OperationalError (Redis refused or timed out, the
# SQLAlchemy broker's file unopenable or locked); the rest can escape unwrapped on some paths.
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError,
                 redis.exceptions.TimeoutError, ConnectionError, TimeoutError)

# After one failed send, the next sends of this process skip the broker for this long: a
# submission of 4 artifacts x 4 checks would otherwise pay the publish timeout (up to ~5 s
# against a hung Redis, see CELERY_BROKER_TRANSPORT_OPTIONS) sixteen times in one request.
BROKER_BACKOFF_S = 5.0
_broker_down_until = 0.0


def task_send(*, task, args: list, label: str, **options) -> bool:
    """Publish ``task`` now. Returns False, having logged why, when the broker cannot take it."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning("broker unreachable a moment ago; %s stays queued for the reconciler", label)
        return False
    try:
        task.apply_async(args=args, **options)
    except BROKER_ERRORS as exc:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_S
        logger.warning("could not send %s to the broker (%s: %s); it stays queued for the reconciler",
                       label, type(exc).__name__, exc)
        return False
    return True


def broker_backoff_reset() -> None:
    """Forget a past failure (tests that bring the broker back, and nothing else, need this)."""
    global _broker_down_until
    _broker_down_until = 0.0

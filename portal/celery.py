"""The Celery application shared by every worker host.

Queues are split by weight (``light``: intake and metadata, ``heavy``: lineage
and code matching, ``dossier``: PDF rendering) so a 100B-parameter model never
holds up a licence scan; ``control`` carries only the reconciler, on a worker of
its own. Routing lives in ``compliance/checks.py`` and ``CELERY_TASK_ROUTES``.
"""

import os
import sys
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# `celery -A portal worker|beat` (or `python -m celery ...`) is a worker: its database
# timeouts are sized for checks, not pages (portal/settings.py). Set before the settings
# load, which they do lazily, after this module. An explicit PORTAL_PROCESS wins.
_argv0 = Path(sys.argv[0] if sys.argv else "")
if (_argv0.name == "celery" or _argv0.parent.name == "celery") and {"worker", "beat"} & set(sys.argv[1:]):
    os.environ.setdefault("PORTAL_PROCESS", "worker")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""The Celery application shared by every worker host.

Queues are split by weight (``light``: intake and metadata, ``heavy``: lineage
and code matching, ``dossier``: PDF rendering) so a 100B-parameter model never
holds up a licence scan. Routing lives in ``compliance/checks.py``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

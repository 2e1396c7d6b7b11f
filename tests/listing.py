"""Rows for the list tests: submissions waiting a known time, with findings of known severities.

Built with the ORM like tests/compliance/test_query_counts.py (the services would run the checks);
the world's people, projects and permissions come from the real services (tests/factories.py).
"""

from __future__ import annotations

import datetime
import itertools

from django.utils import timezone

from compliance.models import CheckRun, Finding
from projects.models import Artifact, Submission

_numbers = itertools.count(1)


def waiting_submission(*, project, vendor_user, days_ago: float, status: str = "checked",
                       findings: tuple[tuple[str, str], ...] = (), note: str = "") -> Submission:
    """A submission of ``project`` submitted ``days_ago`` days ago, with ``findings`` as
    (severity, status) pairs on one intake run."""
    number = (Submission.objects.filter(project=project).order_by("-number").values_list("number", flat=True)
              .first() or 0) + 1
    submitted = timezone.now() - datetime.timedelta(days=days_ago)
    submission = Submission.objects.create(project=project, number=number, status=status, created_by=vendor_user,
                                           submitted_at=submitted, note=note)
    if findings:
        artifact = Artifact.objects.create(submission=submission, kind="other", original_name="notes.txt", file="x",
                                           size=1, sha256=f"{next(_numbers):064x}", uploaded_by=vendor_user)
        run = CheckRun.objects.create(artifact=artifact, submission=submission, check_name="intake",
                                      state="succeeded", queued_at=submitted)
        for severity, finding_status in findings:
            Finding.objects.create(check_run=run, submission=submission, severity=severity, category="test",
                                   code=f"test_{severity}", title=f"{severity} finding", status=finding_status)
    return submission

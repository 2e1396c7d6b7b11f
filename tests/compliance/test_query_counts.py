"""Query counts of the dashboard, list pages and list endpoints stay fixed as data grows (200 projects)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from compliance.models import CheckRun, Finding
from projects.models import Artifact, Milestone, Project, Submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_world(world):
    """200 projects, each with a submission, an artifact, a check run and findings."""
    projects = Project.objects.bulk_create([
        Project(programme=world.programme, code=f"p{i:03d}", title=f"Project {i}", vendor=world.vendor_a,
                funding_krw=Decimal(i * 1000), phase=1 + i % 3) for i in range(200)])
    Milestone.objects.bulk_create([Milestone(project=p, title="m", due_on=datetime.date(2026, 1, 1))
                                   for p in projects])
    submissions = Submission.objects.bulk_create([
        Submission(project=p, number=1, status="checked", created_by=world.vendor_user) for p in projects])
    artifacts = Artifact.objects.bulk_create([
        Artifact(submission=s, kind="weights", original_name="m.safetensors", file="x", size=1,
                 sha256=f"{s.pk:064x}", uploaded_by=world.vendor_user) for s in submissions])
    now = datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc)
    runs = CheckRun.objects.bulk_create([
        CheckRun(artifact=a, submission_id=a.submission_id, check_name="intake", state="running", queued_at=now)
        for a in artifacts])
    Finding.objects.bulk_create([
        Finding(check_run=r, submission_id=r.submission_id, severity=sev, category="t", code="c", title="t")
        for r in runs for sev in ("critical", "low")])
    for project in projects[:50]:
        assign_perm("view_project", world.reviewer, project)
    return world


def _count(client, url) -> int:
    # Warm per-process caches (content types, guardian's permission lookups) first, so the
    # count is the steady cost of a request whatever ran before.
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


# List pages pay two fixed queries for their filters (issue #13): the user's saved filters and the
# reviewer choices; the queue also lists the programmes for its programme filter. Pages count one
# query more for the header's unread notifications (portal.context_processors.notification_badge).
@pytest.mark.parametrize("role,url,pinned", [
    ("admin", "/dashboard/", 16),
    ("reviewer", "/dashboard/", 16),
    ("admin", "/dashboard/?severity=critical&sort=-severity", 16),
    ("admin", "/projects/", 9),
    ("admin", "/projects/?sort=-funding&phase=1", 9),
    ("admin", "/queue/", 10),
    ("admin", "/queue/?sort=-severity&severity=critical", 10),
    ("admin", "/findings/?sort=-severity", 9),
    ("admin", "/audit/?action=project.create", 7),
    ("admin", "/api/queue/", 5),
    ("admin", "/api/projects/", 6),
    ("admin", "/api/findings/", 6),
    ("admin", "/api/check-runs/", 5),
    ("admin", "/api/submissions/", 5),
    ("vendor", "/api/projects/", 6),
])
def test_query_count_is_pinned(big_world, role, url, pinned):
    client = APIClient()
    client.force_login(big_world.users()[role])
    first = _count(client, url)
    assert first == pinned, f"{url} as {role}: {first} queries (pinned {pinned})"

"""Permission matrix of the lists added for issue #13: the findings page and its export, the review
queue endpoint and the exports, for every role of the matrix."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from tests.listing import waiting_submission

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "other_vendor", "vendor", "reviewer", "reviewer_unassigned", "auditor", "admin", "officer"]


@pytest.fixture
def matrix_world(world):
    waiting_submission(project=world.project, vendor_user=world.vendor_user, days_ago=3, findings=(("high", "open"),))
    waiting_submission(project=world.other_project, vendor_user=world.other_vendor_user, days_ago=3,
                       findings=(("low", "open"),))
    return world


def _client(world, role):
    client = APIClient()
    if role != "anonymous":
        client.force_login(world.users()[role])
    return client


def _csv_projects(response) -> list[str]:
    """The project codes of an exported CSV, sorted."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    index = rows[0].index("Project") if "Project" in rows[0] else rows[0].index("Code")
    return sorted(row[index] for row in rows[1:])


# Which projects' findings each role sees on /findings/ (None: the page answers 404; "login": 302).
FINDINGS_PAGE = {"anonymous": "login", "other_vendor": None, "vendor": None, "reviewer": ["alpha"],
                 "reviewer_unassigned": [], "auditor": ["alpha", "beta"], "admin": ["alpha", "beta"],
                 "officer": ["alpha", "beta"]}
# The findings each role exports through the API (vendors: their own submissions' findings).
FINDINGS_API = {"other_vendor": ["beta"], "vendor": ["alpha"], "reviewer": ["alpha"], "reviewer_unassigned": [],
                "auditor": ["alpha", "beta"], "admin": ["alpha", "beta"], "officer": ["alpha", "beta"]}
# The review queue: who decides what (auditors read, they do not decide; vendors have none).
QUEUE = {"other_vendor": [], "vendor": [], "reviewer": ["alpha"], "reviewer_unassigned": [], "auditor": [],
         "admin": ["alpha", "beta"], "officer": ["alpha", "beta"]}


@pytest.mark.parametrize("role", ROLES)
def test_findings_page_and_export(matrix_world, role):
    client = _client(matrix_world, role)
    page = client.get("/findings/?export=csv")
    expected = FINDINGS_PAGE[role]
    if expected == "login":
        assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")
    elif expected is None:
        assert page.status_code == 404
    else:
        assert page.status_code == 200
        assert _csv_projects(page) == expected
    api = client.get("/api/findings/export/?format=csv")
    if role == "anonymous":
        assert api.status_code in (401, 403)
    else:
        assert api.status_code == 200 and _csv_projects(api) == FINDINGS_API[role]


@pytest.mark.parametrize("role", ROLES)
def test_queue_endpoint_and_export(matrix_world, role):
    client = _client(matrix_world, role)
    listed = client.get("/api/queue/")
    exported = client.get("/api/queue/export/?format=csv")
    if role == "anonymous":
        assert listed.status_code in (401, 403) and exported.status_code in (401, 403)
        return
    assert sorted(row["project_code"] for row in listed.json()["results"]) == QUEUE[role]
    assert _csv_projects(exported) == QUEUE[role]
    for row in listed.json()["results"]:
        assert client.get(f"/api/queue/{row['id']}/").status_code == 200
    if role in ("vendor", "reviewer_unassigned"):
        alpha_id = matrix_world.project.submissions.get().pk
        assert client.get(f"/api/queue/{alpha_id}/").status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_project_export_matches_the_list(matrix_world, role):
    client = _client(matrix_world, role)
    exported = client.get("/api/projects/export/?format=csv")
    listed = client.get("/api/projects/")
    if role == "anonymous":
        assert exported.status_code in (401, 403)
        return
    assert _csv_projects(exported) == sorted(row["code"] for row in listed.json()["results"])

"""Who may see and do what, for every page and endpoint (NetBox-style matrix).

Rows are users of the matrix: anonymous, vendor of another organisation (404, never
403, never data), own vendor, assigned reviewer, unassigned reviewer, auditor
(reads only) and administrator.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "other_vendor", "vendor", "reviewer", "reviewer_unassigned", "auditor", "admin", "officer"]


def _client(world, role):
    client = APIClient()
    if role != "anonymous":
        client.force_login(world.users()[role])
    return client


def _status(response) -> int:
    return response.status_code


# Expected status per role for GET pages about the world's project (vendor A's).
# 302 = sent to the login page.
PROJECT_PAGE = {"anonymous": 302, "other_vendor": 404, "vendor": 200, "reviewer": 200,
                "reviewer_unassigned": 404, "auditor": 200, "admin": 200, "officer": 200}


@pytest.mark.parametrize("role", ROLES)
def test_project_page(world, role):
    response = _client(world, role).get(reverse("project-detail", args=[world.project.pk]))
    assert _status(response) == PROJECT_PAGE[role]
    if PROJECT_PAGE[role] == 404:
        assert world.project.title not in response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_submission_page_and_api(world, role):
    submission = signed_submission(world=world)
    page = _client(world, role).get(reverse("submission-detail", args=[submission.pk]))
    api = _client(world, role).get(f"/api/submissions/{submission.pk}/")
    expected_page = PROJECT_PAGE[role]
    assert _status(page) == expected_page
    expected_api = {302: 401, 404: 404, 200: 200}[expected_page]
    # DRF answers 403 to anonymous session clients without WWW-Authenticate; token auth gives 401.
    assert _status(api) in ({401, 403} if expected_api == 401 else {expected_api})


@pytest.mark.parametrize("role", ROLES)
def test_project_list_api_shows_only_visible_projects(world, role):
    response = _client(world, role).get("/api/projects/")
    if role == "anonymous":
        assert response.status_code in {401, 403}
        return
    codes = {p["code"] for p in response.json()["results"]}
    expected = {
        "other_vendor": {"beta"}, "vendor": {"alpha"}, "reviewer": {"alpha"}, "reviewer_unassigned": set(),
        "auditor": {"alpha", "beta"}, "admin": {"alpha", "beta"}, "officer": {"alpha", "beta"},
    }[role]
    assert codes == expected


@pytest.mark.parametrize("role", ROLES)
def test_artifact_api_of_vendor_a(world, role):
    submission = signed_submission(world=world)
    artifact = submission.artifacts.first()
    response = _client(world, role).get(f"/api/artifacts/{artifact.pk}/")
    expected = {"anonymous": {401, 403}, "other_vendor": {404}, "vendor": {200}, "reviewer": {200},
                "reviewer_unassigned": {404}, "auditor": {200}, "admin": {200}, "officer": {200}}[role]
    assert response.status_code in expected
    if response.status_code == 200:
        assert response.json()["sha256"] == artifact.sha256


@pytest.mark.parametrize("role", ROLES)
def test_opening_a_submission(world, role):
    """Only the project's own vendor members open submissions; others learn nothing."""
    response = _client(world, role).post("/api/submissions/", {"project": world.project.pk}, format="json")
    expected = {"anonymous": {401, 403}, "other_vendor": {404}, "vendor": {201}, "reviewer": {403},
                "reviewer_unassigned": {404}, "auditor": {403}, "admin": {403}, "officer": {403}}[role]
    assert response.status_code in expected, response.content


@pytest.mark.parametrize("role", ROLES)
def test_uploading_into_a_submission(world, role):
    submission = signed_submission(world=world)
    response = _client(world, role).post("/api/uploads/", {"submission": submission.pk, "kind": "other",
                                                          "filename": "x.txt", "size": 10}, format="json")
    expected = {"anonymous": {401, 403}, "other_vendor": {404}, "vendor": {201}, "reviewer": {403},
                "reviewer_unassigned": {404}, "auditor": {403}, "admin": {403}, "officer": {403}}[role]
    assert response.status_code in expected, response.content


@pytest.mark.parametrize("role", ROLES)
def test_registering_a_programme(world, role):
    response = _client(world, role).post("/api/programmes/", {
        "code": f"p-{role}", "name": "New", "ministry": world.ministry.name, "budget_krw": "100",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31"}, format="json")
    expected = {"anonymous": {401, 403}, "other_vendor": {403}, "vendor": {403}, "reviewer": {403},
                "reviewer_unassigned": {403}, "auditor": {403}, "admin": {201}, "officer": {201}}[role]
    assert response.status_code in expected, response.content


@pytest.mark.parametrize("role", ROLES)
def test_staff_pages(world, role):
    client = _client(world, role)
    expected_dashboard = {"anonymous": 302, "other_vendor": 404, "vendor": 404, "reviewer": 200,
                          "reviewer_unassigned": 200, "auditor": 200, "admin": 200, "officer": 200}[role]
    assert client.get(reverse("dashboard")).status_code == expected_dashboard
    expected_audit = {"anonymous": 302, "other_vendor": 404, "vendor": 404, "reviewer": 404,
                      "reviewer_unassigned": 404, "auditor": 200, "admin": 200, "officer": 200}[role]
    assert client.get(reverse("audit-log")).status_code == expected_audit
    expected_create = {"anonymous": 302, "other_vendor": 404, "vendor": 404, "reviewer": 403,
                       "reviewer_unassigned": 403, "auditor": 403, "admin": 200, "officer": 200}[role]
    assert client.get(reverse("programme-create")).status_code == expected_create


def test_malformed_and_missing_ids_answer_404_like_forbidden_ones(world):
    client = _client(world, "other_vendor")
    submission = signed_submission(world=world)
    forbidden = client.get(f"/api/submissions/{submission.pk}/")
    missing = client.get("/api/submissions/999999/")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json() == missing.json()


def test_auditor_cannot_decide_or_rerun(world):
    from compliance.models import CheckRun, Finding

    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="t",
                                     code="t", title="t")
    client = _client(world, "auditor")
    assert client.post(f"/api/findings/{finding.pk}/decide/", {"decision": "confirmed"}, format="json"
                       ).status_code == 403
    assert client.post(f"/api/check-runs/{run.pk}/rerun/").status_code == 403
    assert client.post("/api/submission-decisions/", {"submission": submission.pk, "decision": "approved"},
                       format="json").status_code == 403

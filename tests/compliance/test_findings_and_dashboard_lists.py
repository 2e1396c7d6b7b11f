"""The findings list (/findings/, ministry staff) and the dashboard's project list: filters and sort,
page and API, and the dashboard's live fragment under the same filters."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from compliance.models import CheckRun, Finding
from compliance.services import threads
from tests.listing import waiting_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def findings_world(world):
    """alpha v1: high (open, vendor replied), low (open, a reviewer asked the vendor), medium (waived);
    beta v1: critical (open), and a licences-check finding on beta."""
    alpha = waiting_submission(project=world.project, vendor_user=world.vendor_user, days_ago=5,
                               findings=(("high", "open"), ("low", "open"), ("medium", "waived")))
    beta = waiting_submission(project=world.other_project, vendor_user=world.other_vendor_user, days_ago=2,
                              findings=(("critical", "open"),))
    run = CheckRun.objects.create(artifact=beta.artifacts.get(), submission=beta, check_name="licenses",
                                  state="succeeded", queued_at=beta.submitted_at)
    Finding.objects.create(check_run=run, submission=beta, severity="info", category="licence", code="licence_ok",
                           title="Apache-2.0 found")
    threads.message_post(user=world.vendor_user, finding=alpha.findings.get(severity="high"), body="Explained")
    threads.message_post(user=world.reviewer, finding=alpha.findings.get(severity="low"), body="Which file?",
                         kind="question")
    world.alpha, world.beta = alpha, beta
    return world


def _titles(client, query: str = "") -> list[str]:
    response = client.get(f"/findings/{query}")
    assert response.status_code == 200
    return re.findall(r"<td[^>]*>([a-z]+ finding|Apache-2.0 found)</td>", response.content.decode())


@pytest.mark.parametrize("query,expected", [
    ("", ["Apache-2.0 found", "critical finding", "medium finding", "low finding", "high finding"]),
    ("?severity=high", ["high finding"]),
    ("?status=waived", ["medium finding"]),
    ("?check=licenses", ["Apache-2.0 found"]),
    # Finding.waiting_on: the vendor after a reviewer's question, a reviewer otherwise while open.
    ("?waiting_on=reviewer", ["Apache-2.0 found", "critical finding", "high finding"]),
    ("?waiting_on=vendor&sort=-severity", ["low finding"]),
    ("?sort=-severity", ["critical finding", "high finding", "medium finding", "low finding", "Apache-2.0 found"]),
    ("?sort=severity&status=open", ["Apache-2.0 found", "low finding", "high finding", "critical finding"]),
])
def test_findings_list_filters_and_sort(client, findings_world, query, expected):
    client.force_login(findings_world.officer)
    assert _titles(client, query) == expected


def test_findings_list_programme_and_reviewer(client, findings_world):
    client.force_login(findings_world.officer)
    assert len(_titles(client, f"?programme={findings_world.programme.pk}")) == 5
    assert len(_titles(client, f"?programme={findings_world.programme.pk + 999}")) == 0
    assert _titles(client, f"?reviewer={findings_world.reviewer.pk}&sort=id") == [
        "high finding", "low finding", "medium finding"]


def test_findings_list_is_scoped(client, findings_world):
    client.force_login(findings_world.reviewer)  # assigned to alpha only
    assert sorted(_titles(client)) == ["high finding", "low finding", "medium finding"]
    client.force_login(findings_world.vendor_user)
    assert client.get("/findings/").status_code == 404


def test_findings_api_shares_the_filters(findings_world):
    api = APIClient()
    api.force_login(findings_world.vendor_user)
    rows = api.get("/api/findings/?waiting_on=vendor&sort=-severity").json()["results"]
    assert [r["severity"] for r in rows] == ["low"], "the vendor's own findings a reviewer asked about"
    api.force_login(findings_world.officer)
    rows = api.get("/api/findings/?check=licenses").json()["results"]
    assert [r["code"] for r in rows] == ["licence_ok"]
    rows = api.get(f"/api/findings/?submission={findings_world.alpha.pk}&sort=id").json()["results"]
    assert [r["severity"] for r in rows] == ["high", "low", "medium"], "the earlier exact filters still work"


def _dashboard_projects(client, query: str = "") -> list[str]:
    response = client.get(f"/dashboard/{query}")
    assert response.status_code == 200
    html = response.content.decode()
    table = html[html.index('<caption class="visually-hidden">Projects with open findings'):]
    return re.findall(r'<td[^>]*><a href="/projects/\d+/">([a-z]+)</a></td>', table)


def test_dashboard_filters_by_highest_open_severity_and_sorts(client, findings_world):
    client.force_login(findings_world.officer)
    assert _dashboard_projects(client) == ["alpha", "beta"]
    assert _dashboard_projects(client, "?severity=critical") == ["beta"]
    assert _dashboard_projects(client, "?severity=high") == ["alpha"]
    assert _dashboard_projects(client, "?severity=medium") == [], "alpha's medium finding is waived"
    assert _dashboard_projects(client, "?sort=-severity") == ["beta", "alpha"]
    assert _dashboard_projects(client, f"?reviewer={findings_world.reviewer.pk}") == ["alpha"]


def test_dashboard_charts_and_live_fragment_follow_the_filters(client, findings_world):
    client.force_login(findings_world.officer)
    response = client.get("/dashboard/?severity=critical")
    assert response.context["data"]["project_total"] == 1, "the charts count the filtered projects"
    assert response.context["data"]["severity_counts"]["critical"] == 1
    assert response.context["data"]["severity_counts"]["high"] == 0
    page = response.content.decode()
    assert 'data-live-url="/dashboard/?severity=critical&amp;fragment=live"' in page
    live = client.get("/dashboard/?severity=critical&fragment=live")
    assert live.status_code == 200
    html = live.content.decode()
    assert "<h1>" not in html and "Recent activity" in html
    assert "Vendor replied to a finding" not in html, "alpha's activity is filtered out with alpha"
    html = client.get("/dashboard/?fragment=live").content.decode()
    assert "Message posted on a finding" in html, "recent activity reads as words, not codes"

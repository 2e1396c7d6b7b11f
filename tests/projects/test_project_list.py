"""The project list: filters and sort, the same on the page and the API, within what the user may see."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from projects import services
from projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def list_world(world):
    """alpha (vendor A, phase 1, 500M, reviewer assigned), beta (vendor B, phase 1, 400M) in prog;
    gamma (vendor A, phase 2, 900M, suspended) and delta (vendor B, phase 3, 100M) in prog2."""
    programme2 = services.programme_create(
        user=world.admin, name="Second", code="prog2", ministry=world.ministry, budget_krw=Decimal("1000"),
        starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 1, 1))
    gamma = services.project_create(user=world.admin, programme=programme2, code="gamma", title="Gamma vision",
                                    vendor=world.vendor_a, funding_krw=Decimal("900000000"), phase=2)
    Project.objects.filter(pk=gamma.pk).update(status=Project.Status.SUSPENDED)
    services.project_create(user=world.admin, programme=programme2, code="delta", title="Delta speech",
                            vendor=world.vendor_b, funding_krw=Decimal("100000000"), phase=3)
    world.programme2 = programme2
    return world


def _page_rows(client, query: str = "") -> list[str]:
    response = client.get(f"/projects/{query}")
    assert response.status_code == 200
    return re.findall(r'<td[^>]*><a href="/projects/\d+/">([a-z]+)</a></td>', response.content.decode())


def _api_rows(user, query: str = "") -> list[str]:
    api = APIClient()
    api.force_login(user)
    response = api.get(f"/api/projects/{query}")
    assert response.status_code == 200, response.content
    return [row["code"] for row in response.json()["results"]]


def test_default_order_is_programme_then_code(client, list_world):
    client.force_login(list_world.officer)
    assert _page_rows(client) == ["alpha", "beta", "delta", "gamma"]
    assert _api_rows(list_world.officer) == ["alpha", "beta", "delta", "gamma"]


@pytest.mark.parametrize("query,expected", [
    ("?phase=1", ["alpha", "beta"]),
    ("?phase=3", ["delta"]),
    ("?status=suspended", ["gamma"]),
    ("?status=active&phase=1", ["alpha", "beta"]),
    ("?q=vision", ["gamma"]),
    ("?sort=code", ["alpha", "beta", "delta", "gamma"]),
    ("?sort=-code", ["gamma", "delta", "beta", "alpha"]),
    ("?sort=-funding", ["gamma", "alpha", "beta", "delta"]),
    ("?sort=funding&phase=1", ["beta", "alpha"]),
    ("?sort=phase", ["alpha", "beta", "gamma", "delta"]),
    ("?sort=vendor", ["alpha", "gamma", "beta", "delta"]),
])
def test_filters_and_sort_page_and_api(client, list_world, query, expected):
    client.force_login(list_world.officer)
    assert _page_rows(client, query) == expected
    assert _api_rows(list_world.officer, query) == expected


def test_programme_and_reviewer_filters(client, list_world):
    client.force_login(list_world.officer)
    query = f"?programme={list_world.programme2.pk}"
    assert _page_rows(client, query) == ["delta", "gamma"]
    assert _api_rows(list_world.officer, query) == ["delta", "gamma"]
    query = f"?reviewer={list_world.reviewer.pk}"
    assert _page_rows(client, query) == ["alpha"]
    assert _api_rows(list_world.officer, query) == ["alpha"]
    services.reviewer_assign(user=list_world.admin, project=Project.objects.get(code="delta"),
                             reviewer=list_world.reviewer)
    assert _page_rows(client, query) == ["alpha", "delta"]


def test_a_vendor_filters_only_their_own_projects_and_has_no_reviewer_filter(client, list_world):
    client.force_login(list_world.vendor_user)
    assert _page_rows(client) == ["alpha", "gamma"]
    assert _page_rows(client, "?sort=-funding") == ["gamma", "alpha"]
    assert _page_rows(client, "?phase=3") == []  # delta is another vendor's
    page = client.get("/projects/").content.decode()
    assert 'name="reviewer"' not in page, "vendors are not shown who reviews them"
    # ?reviewer= is no filter of theirs: it narrows nothing (and reveals nothing).
    assert _page_rows(client, f"?reviewer={list_world.reviewer.pk}") == ["alpha", "gamma"]
    assert _api_rows(list_world.vendor_user, f"?reviewer={list_world.reviewer.pk}") == ["alpha", "gamma"]


def test_sorted_column_header_says_so(client, list_world):
    client.force_login(list_world.officer)
    page = client.get("/projects/?phase=1&sort=-funding").content.decode()
    assert re.search(r'<th scope="col" aria-sort="descending"><a class="sort" href="\?phase=1&amp;sort=funding">'
                     r'Funding \(KRW\)', page)
    assert page.count('aria-sort="none"') == 6
    assert '<option value="1" selected>' in page  # the phase filter shows what it filters by


def test_the_api_refuses_an_unknown_sort_column(list_world):
    api = APIClient()
    api.force_login(list_world.officer)
    response = api.get("/api/projects/?sort=vendor__profile__user__password")
    assert response.status_code == 400
    assert "sort" in response.json() or "sort" in str(response.json())


def test_the_programme_api_carries_the_service_level(list_world):
    api = APIClient()
    api.force_login(list_world.admin)
    rows = {row["code"]: row for row in api.get("/api/programmes/").json()["results"]}
    assert rows["prog2"]["review_sla_days"] == 14
    created = api.post("/api/programmes/", {
        "code": "quick", "name": "Quick", "ministry": list_world.ministry.name, "budget_krw": "1",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "review_sla_days": 7}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["review_sla_days"] == 7
    assert api.post("/api/programmes/", {
        "code": "never", "name": "Never", "ministry": list_world.ministry.name, "budget_krw": "1",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "review_sla_days": 0}, format="json").status_code == 400

"""The review queue: filters, sorting, ageing against the programme's service level, page and API alike."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.services import threads
from projects import services
from projects.models import Project
from tests.listing import waiting_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue_world(world):
    """Four waiting submissions over two programmes (service levels 14 and 30 days):

    alpha v1: 20 days, a high and a low open finding (overdue: 20 > 14)
    alpha v2: 9 days, a critical finding that was waived, a medium open one
    beta v1: 3 days, a critical open finding (beta is not assigned to the world's reviewer)
    gamma v1 (programme 2, 30 days): 25 days, no findings (within its service level)
    and one decided submission that is not in the queue."""
    world.programme.review_sla_days = 14
    world.programme.save()
    programme2 = services.programme_create(
        user=world.admin, name="Second", code="prog2", ministry=world.ministry, budget_krw=Decimal("1000"),
        starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 1, 1), review_sla_days=30)
    gamma = services.project_create(user=world.admin, programme=programme2, code="gamma", title="Gamma",
                                    vendor=world.vendor_a, funding_krw=Decimal("1"), phase=2)
    world.gamma = gamma
    world.programme2 = programme2
    world.s_alpha1 = waiting_submission(project=world.project, vendor_user=world.vendor_user, days_ago=20.2,
                                        findings=(("high", "open"), ("low", "open")))
    world.s_alpha2 = waiting_submission(project=world.project, vendor_user=world.vendor_user, days_ago=9.5,
                                        status="checking", findings=(("critical", "waived"), ("medium", "open")))
    world.s_beta = waiting_submission(project=world.other_project, vendor_user=world.other_vendor_user, days_ago=3.1,
                                      findings=(("critical", "open"),))
    world.s_gamma = waiting_submission(project=gamma, vendor_user=world.vendor_user, days_ago=25.3)
    waiting_submission(project=world.other_project, vendor_user=world.other_vendor_user, days_ago=40,
                       status="approved")
    return world


def _rows(response) -> list[str]:
    """The submissions the queue page lists, in order ("alpha v1", ...)."""
    assert response.status_code == 200
    return re.findall(r'<a href="/submissions/\d+/">([a-z]+ v\d+)</a>', response.content.decode())


def _api_rows(client, query: str = "") -> list[str]:
    response = client.get(f"/api/queue/{query}")
    assert response.status_code == 200, response.content
    return [f"{row['project_code']} v{row['number']}" for row in response.json()["results"]]


@pytest.fixture
def officer(client, queue_world):
    client.force_login(queue_world.officer)
    return client


@pytest.fixture
def officer_api(queue_world):
    api = APIClient()
    api.force_login(queue_world.officer)
    return api


def test_the_queue_shows_how_long_each_waited_against_its_service_level(officer, queue_world):
    page = officer.get("/queue/").content.decode()
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r'>([a-z]+ v\d+)</a>.*?<td [^>]*class="waiting[^"]*">(.*?)</td>', page, re.S)}
    assert re.sub(r"\s+", " ", rows["alpha v1"]).startswith("waiting 20 days of 14")
    assert "Overdue" in rows["alpha v1"], "waited 20 days against 14: overdue, said in words"
    assert rows["alpha v2"].startswith("waiting 9 days of 14") and "Overdue" not in rows["alpha v2"]
    assert rows["gamma v1"].startswith("waiting 25 days of 30") and "Overdue" not in rows["gamma v1"]
    assert "waiting-overdue" in page  # and the overdue cell is marked for styling too


def test_a_vendor_reply_restarts_the_wait(officer, queue_world):
    finding = queue_world.s_alpha1.findings.get(severity="high")
    threads.message_post(user=queue_world.vendor_user, finding=finding, body="Fixed in v1.1")
    page = officer.get("/queue/").content.decode()
    cell = re.search(r">alpha v1</a>.*?<td [^>]*class=\"waiting[^\"]*\">(.*?)</td>", page, re.S).group(1)
    assert cell.startswith("waiting 0 days of 14") and "Overdue" not in cell


def test_default_order_is_longest_waiting_first(officer):
    assert _rows(officer.get("/queue/")) == ["gamma v1", "alpha v1", "alpha v2", "beta v1"]


@pytest.mark.parametrize("query,expected", [
    ("?sort=waiting", ["beta v1", "alpha v2", "alpha v1", "gamma v1"]),
    ("?sort=-waiting", ["gamma v1", "alpha v1", "alpha v2", "beta v1"]),
    ("?sort=-severity", ["beta v1", "alpha v1", "alpha v2", "gamma v1"]),
    ("?sort=submission", ["alpha v1", "alpha v2", "beta v1", "gamma v1"]),
    ("?sort=-submission", ["gamma v1", "beta v1", "alpha v2", "alpha v1"]),
    ("?sort=programme", ["alpha v1", "alpha v2", "beta v1", "gamma v1"]),
])
def test_sorting_page_and_api(officer, officer_api, query, expected):
    assert _rows(officer.get(f"/queue/{query}")) == expected
    assert _api_rows(officer_api, query) == expected


@pytest.mark.parametrize("query,expected", [
    ("?severity=high", ["alpha v1"]),  # its most severe open finding; the low one does not count
    ("?severity=medium", ["alpha v2"]),  # the waived critical one is not open
    ("?severity=critical", ["beta v1"]),
    ("?status=checking", ["alpha v2"]),
    ("?phase=2", ["gamma v1"]),
    ("?overdue=true", ["alpha v1"]),
    ("?overdue=false", ["gamma v1", "alpha v2", "beta v1"]),
    ("?waited=10", ["gamma v1", "alpha v1"]),
    ("?waited=10&severity=high", ["alpha v1"]),
])
def test_filters_page_and_api(officer, officer_api, query, expected):
    assert _rows(officer.get(f"/queue/{query}")) == expected
    assert _api_rows(officer_api, query) == expected


def test_programme_and_reviewer_filters(officer, officer_api, queue_world):
    query = f"?programme={queue_world.programme2.pk}"
    assert _rows(officer.get(f"/queue/{query}")) == ["gamma v1"]
    assert _api_rows(officer_api, query) == ["gamma v1"]
    query = f"?reviewer={queue_world.reviewer.pk}"  # assigned to alpha only
    assert _rows(officer.get(f"/queue/{query}")) == ["alpha v1", "alpha v2"]
    assert _api_rows(officer_api, query) == ["alpha v1", "alpha v2"]


def test_the_api_says_waiting_time_and_severity(officer_api, queue_world):
    rows = {f"{r['project_code']} v{r['number']}": r for r in officer_api.get("/api/queue/").json()["results"]}
    assert rows["alpha v1"]["waiting_days"] == 20 and rows["alpha v1"]["sla_days"] == 14
    assert rows["alpha v1"]["overdue"] is True and rows["alpha v1"]["highest_open_severity"] == "high"
    assert rows["gamma v1"]["overdue"] is False and rows["gamma v1"]["highest_open_severity"] is None


def test_unknown_sort_or_filter_value_is_refused_by_the_api_and_ignored_by_the_page(officer, officer_api):
    assert officer_api.get("/api/queue/?sort=password").status_code == 400
    assert officer_api.get("/api/queue/?severity=catastrophic").status_code == 400
    assert _rows(officer.get("/queue/?sort=password")) == ["gamma v1", "alpha v1", "alpha v2", "beta v1"]


def test_a_reviewer_queue_holds_only_assigned_projects_and_vendors_have_none(client, queue_world):
    client.force_login(queue_world.reviewer)
    assert _rows(client.get("/queue/")) == ["alpha v1", "alpha v2"]
    api = APIClient()
    api.force_login(queue_world.vendor_user)
    assert api.get("/api/queue/").json()["results"] == []
    client.force_login(queue_world.vendor_user)
    assert client.get("/queue/").status_code == 404


def test_sortable_headers_say_their_order_and_links_keep_the_filters(officer):
    page = officer.get("/queue/?severity=high&sort=-waiting").content.decode()
    assert re.search(r'<th scope="col" aria-sort="descending"><a class="sort" href="\?severity=high&amp;sort=waiting">'
                     r'Waiting', page)
    assert re.search(r'<th scope="col" aria-sort="none"><a class="sort" href="\?severity=high&amp;sort=submission">',
                     page)
    assert 'href="?severity=high&amp;sort=-waiting&amp;export=csv"' in page


def test_pagination_keeps_the_filters(officer, queue_world):
    for _ in range(55):
        waiting_submission(project=queue_world.gamma, vendor_user=queue_world.vendor_user, days_ago=1)
    page = officer.get(f"/queue/?programme={queue_world.programme2.pk}&sort=submission").content.decode()
    assert f'href="?programme={queue_world.programme2.pk}&amp;sort=submission&amp;page=2" rel="next"' in page
    second = officer.get(f"/queue/?programme={queue_world.programme2.pk}&sort=submission&page=2")
    assert len(_rows(second)) == 6 and all(row.startswith("gamma") for row in _rows(second))


def test_the_service_level_is_part_of_the_programme_form(client, world):
    client.force_login(world.admin)
    page = client.get("/programmes/new/").content.decode()
    assert 'name="review_sla_days"' in page and 'value="14"' in page
    response = client.post("/programmes/new/", {
        "name": "Fast", "code": "fast", "ministry": world.ministry.pk, "budget_krw": "1", "starts_on": "2026-01-01",
        "ends_on": "2026-12-31", "max_artifact_bytes": "1000", "review_sla_days": "5"})
    assert response.status_code == 302
    from projects.models import Programme

    assert Programme.objects.get(code="fast").review_sla_days == 5
    assert Project.objects.count() == 2  # nothing else changed


def test_waiting_is_measured_now_not_when_the_page_was_cached(officer, queue_world):
    queue_world.s_alpha2.__class__.objects.filter(pk=queue_world.s_alpha2.pk).update(
        submitted_at=timezone.now() - datetime.timedelta(days=15))
    assert "alpha v2" in _rows(officer.get("/queue/?overdue=true"))


def test_the_wait_reads_in_korean(officer):
    page = officer.get("/queue/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "14일 중 20일째 대기" in page and "기한 초과" in page
    assert "30일 중 25일째 대기" in page

"""API list filters reveal nothing and never fail with a 500: another vendor's id and a missing id
answer the same; malformed and out-of-range values answer 400."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from projects import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def vendor_api(world):
    client = APIClient()
    client.force_authenticate(world.vendor_user)
    return client


def test_another_vendors_id_answers_like_a_missing_one(world, vendor_api):
    theirs = services.submission_open(user=world.other_vendor_user, project=world.other_project)
    mine = services.submission_open(user=world.vendor_user, project=world.project)
    for path, other_id, missing_id in [
        ("/api/submissions/?project={}", world.other_project.pk, 999_999),
        ("/api/artifacts/?submission={}", theirs.pk, 999_999),
        ("/api/findings/?submission={}", theirs.pk, 999_999),
        ("/api/check-runs/?submission={}", theirs.pk, 999_999),
        ("/api/projects/?programme={}", world.programme.pk + 1000, 999_999),
    ]:
        other = vendor_api.get(path.format(other_id))
        missing = vendor_api.get(path.format(missing_id))
        assert (other.status_code, other.json()) == (missing.status_code, missing.json()) == (200, other.json())
        assert other.json()["results"] == []
    # A filter on one's own id still finds one's own rows.
    own = vendor_api.get(f"/api/submissions/?project={world.project.pk}").json()["results"]
    assert [s["id"] for s in own] == [mine.pk]


@pytest.mark.parametrize("value", ["abc", "-1", "0", str(2**64), "1e5", "9" * 40])
def test_malformed_ids_answer_400_not_500(world, vendor_api, value):
    for path in ("/api/projects/?programme=", "/api/submissions/?project=", "/api/findings/?submission="):
        answer = vendor_api.get(path + value)
        assert answer.status_code == 400, (path, value, answer.status_code)


def test_bad_choice_answers_400(world, vendor_api):
    assert vendor_api.get("/api/projects/?phase=abc").status_code == 400
    assert vendor_api.get("/api/findings/?severity=catastrophic").status_code == 400


def test_bad_page_format_and_search_answer_400_naming_the_parameter(world, vendor_api):
    for query, name in [("page=abc", "page"), ("page=0", "page"), ("page=" + "9" * 5000, "page"),
                        ("search=%00", "detail")]:
        answer = vendor_api.get(f"/api/projects/?{query}")
        assert answer.status_code == 400 and name in answer.json(), (query, answer.status_code, answer.content[:200])
    assert vendor_api.get("/api/projects/?page=999").status_code == 404  # past the last page: DRF's "Invalid page"
    answer = vendor_api.get("/api/projects/export/?format=pdf")
    assert answer.status_code == 400 and answer.json() == {"format": ["One of: csv, xlsx."]}


def test_api_urls_matching_no_route_answer_json(world, vendor_api):
    for path in ("/api/projects/1.5/", "/api/nothing-here/", "/api/uploads/not-a-uuid/"):
        answer = vendor_api.get(path)
        assert (answer.status_code, answer["Content-Type"], list(answer.json())) == (
            404, "application/json", ["detail"]), path

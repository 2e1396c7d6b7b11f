"""Every list page answers a bad query parameter with the page and a message, never a 500
(issue #12: ``/projects/?phase=abc`` and ``?programme=<huge number>`` answered 500).

The API's side is tests/portal/test_api_schemathesis.py (a 400 for the same parameters)."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

# Each list page with the roles that may open it (others get their 403 or 404, tested by the route matrix).
LIST_PAGES = {
    "/projects/": ("admin", "vendor"),
    "/programmes/": ("vendor",),
    "/dashboard/": ("auditor",),
    "/queue/": ("reviewer",),
    "/findings/": ("admin",),
    "/audit/": ("admin",),
    "/notifications/": ("vendor",),
    "/account/tokens/": ("vendor",),
    "/references/": ("admin",),
}

HUGE = "9" * 40
NUL = "\x00"
BAD_PARAMETERS = [
    ("programme", "abc"), ("programme", HUGE), ("programme", str(2**63)), ("phase", "abc"), ("phase", HUGE),
    ("status", "nonsense"), ("severity", "catastrophic"), ("reviewer", HUGE), ("vendor", "-1"),
    ("submission", HUGE), ("waited", "-5"), ("waited", HUGE), ("overdue", "maybe"), ("waiting_on", "everyone"),
    ("page", "abc"), ("page", "-1"), ("page", HUGE), ("sort", "password"), ("sort", "-" * 300),
    ("date_from", "2026-13-45"), ("date_to", "99999-01-01"), ("object_type", "nonsense"), ("action", HUGE),
    ("q", NUL), ("q", "x" * 5000), ("check", NUL), ("person", NUL), ("unread", NUL), ("export", "pdf"),
    ("fragment", "nonsense"),
]

# Parameters that are filters of a page's list: a bad value must be named on the page (the others,
# page and sort, fall back to the first page and the default order, as a link would).
# ``overdue`` is a yes/no whose unknown values read as "either" (Django's NullBooleanSelect).
FILTERS_SHOWN = {"programme", "phase", "status", "severity", "reviewer", "vendor", "submission", "waited",
                 "waiting_on", "date_from", "date_to", "object_type", "action"}


@pytest.fixture
def data_set(world):
    signed_submission(world=world, submit=True)
    return world


@pytest.mark.parametrize("name,value", BAD_PARAMETERS, ids=[f"{n}={v[:12]!r}" for n, v in BAD_PARAMETERS])
def test_bad_query_parameters_answer_the_page_with_a_message(client, data_set, name, value):
    for path, roles in LIST_PAGES.items():
        for role in roles:
            client.force_login(data_set.users()[role])
            answer = client.get(path, {name: value})
            assert answer.status_code == 200, (path, role, name, value, answer.status_code)
            page = BeautifulSoup(answer.content, "html.parser")
            if name in FILTERS_SHOWN:
                form = page.find(attrs={"data-filter-errors": True})
                filters = set(answer.context.get("form").fields) if answer.context.get("form") else set()
                if name in filters:
                    assert form is not None and form.get_text(strip=True), (path, role, name, value)

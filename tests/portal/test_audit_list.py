"""The audit trail page: filters by person, object, dates and action, sorting, and readable action
names in English and Korean for every action code the services record."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from django.utils import translation

from compliance.models import CheckRun
from portal.audit_actions import AUDIT_ACTION_LABELS, AUDIT_OBJECT_TYPE_LABELS, audit_action_label
from portal.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]

# Codes written with an f-string, and every value the variable part takes.
_FSTRING_CODES = {
    "check": sorted(str(state) for state in CheckRun.FINISHED_STATES),  # compliance.services.runs._finish
    "artifact": ["rejected", "released"],  # compliance.services.decisions.artifact_quarantine_follow
}


def recorded_action_codes() -> set[str]:
    """Every action code the rooms pass to audit_record, read from their source."""
    codes: set[str] = set()
    for room in ("portal", "projects", "compliance"):
        for path in (ROOT / room).rglob("*.py"):
            if "migrations" in path.parts or "engine" in path.parts:
                continue
            text = path.read_text()
            for call in re.finditer(r"audit_record\(\s*(actor=.*?)\)\n", text, re.S):
                args = call.group(1)
                literal = re.search(r'action="([a-z_]+\.[a-z_]+)"', args)
                formatted = re.search(r'action=f"([a-z_]+)\.\{', args)
                if literal:
                    codes.add(literal.group(1))
                elif formatted:
                    prefix = formatted.group(1)
                    assert prefix in _FSTRING_CODES, f"{path}: action f\"{prefix}.{{...}}\": list its values here"
                    codes.update(f"{prefix}.{value}" for value in _FSTRING_CODES[prefix])
                elif "action=action" not in args:
                    raise AssertionError(f"{path}: an audit_record call whose action this test cannot read: {args}")
    return codes


def test_the_scan_finds_the_codes_it_should():
    codes = recorded_action_codes()
    assert {"programme.create", "submission.submit", "finding.decide", "dossier.download", "check.succeeded",
            "check.blocked", "artifact.released"} <= codes
    assert len(codes) >= 25


def test_every_recorded_action_code_has_a_label_in_english_and_korean():
    codes = recorded_action_codes()
    missing = sorted(codes - set(AUDIT_ACTION_LABELS))
    assert not missing, f"action codes without a readable label in portal/audit_actions.py: {missing}"
    for code in sorted(codes):
        with translation.override("en"):
            english = audit_action_label(code)
        with translation.override("ko"):
            korean = audit_action_label(code)
        assert english != code and english[0].isupper(), code
        assert korean != english, f"{code}: no Korean translation of {english!r}"
        assert re.search(r"[\uac00-\ud7a3]", korean), f"{code}: {korean!r} is not Korean"


def test_every_object_type_has_a_label_in_both_languages():
    for object_type, label in AUDIT_OBJECT_TYPE_LABELS.items():
        with translation.override("ko"):
            assert re.search(r"[\uac00-\ud7a3]", str(label)), object_type


@pytest.fixture
def trail(world):
    """The world's own events (programme and projects registered, a reviewer assigned) and three
    older ones at known times."""
    utc = datetime.timezone.utc
    for when, who, action, object_type, object_id in [
        (datetime.datetime(2026, 3, 1, 10, tzinfo=utc), "archivist", "dossier.download", "dossier", "7"),
        (datetime.datetime(2026, 3, 5, 10, tzinfo=utc), "archivist", "dossier.request", "dossier", "8"),
        (datetime.datetime(2026, 3, 9, 10, tzinfo=utc), "reviewer9", "finding.decide", "finding", "7"),
    ]:
        AuditEvent(created_at=when, actor_label=who, action=action, object_type=object_type, object_id=object_id,
                   object_label=f"{object_type} {object_id}").save()
    return world


def _events(client, query: str = "") -> list[str]:
    response = client.get(f"/audit/{query}")
    assert response.status_code == 200
    return re.findall(r'<code class="action-code">([a-z_.]+)</code>', response.content.decode())


@pytest.fixture
def auditor(client, trail):
    client.force_login(trail.auditor)
    return client


@pytest.mark.parametrize("query,expected", [
    ("?person=archivist", ["dossier.request", "dossier.download"]),
    ("?person=ARCHIVIST", ["dossier.request", "dossier.download"]),
    ("?object_type=dossier&object_id=7", ["dossier.download"]),
    ("?object_id=7", ["finding.decide", "dossier.download"]),
    ("?date_from=2026-03-02&date_to=2026-03-09", ["finding.decide", "dossier.request"]),
    ("?date_to=2026-03-01", ["dossier.download"]),
    ("?action=finding.decide", ["finding.decide"]),
    ("?person=archivist&sort=id", ["dossier.download", "dossier.request"]),
    ("?date_to=2026-03-31&sort=-action", ["finding.decide", "dossier.request", "dossier.download"]),
])
def test_audit_filters(auditor, query, expected):
    assert _events(auditor, query) == expected


def test_world_events_show_readable_names(auditor, trail):
    page = auditor.get(f"/audit/?object_type=project&object_id={trail.project.pk}").content.decode()
    assert "Reviewer assigned" in page and "Project registered" in page
    assert _events(auditor, f"?object_type=project&object_id={trail.project.pk}") == [
        "project.reviewer_assign", "project.create"]
    assert _events(auditor, f"?person={trail.admin.username}&action=programme.create") == ["programme.create"]


def test_audit_page_in_korean(auditor):
    page = auditor.get("/audit/?action=dossier.download", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    with translation.override("ko"):
        assert audit_action_label("dossier.download") in page


def test_a_malformed_date_is_ignored_and_said(auditor):
    response = auditor.get("/audit/?date_from=yesterday&person=archivist")
    assert _events(auditor, "?date_from=yesterday&person=archivist") == ["dossier.request", "dossier.download"]
    assert 'role="alert"' in response.content.decode()


def test_only_ministry_wide_roles_read_the_trail(client, trail):
    for user in (trail.reviewer, trail.vendor_user):
        client.force_login(user)
        assert client.get("/audit/?person=archivist").status_code == 404

"""What a check run reused is shown to people: on the submission page, in the API and in the
dossier, in English and Korean (issue #16). Runs get their ``summary["cache"]`` as the licence,
code and lineage checks write it (the shared contract), whatever the scans' own progress."""

from __future__ import annotations

from html import unescape

import pytest
from django.test import Client

from compliance.dossier.context import dossier_context_build
from compliance.dossier.render import dossier_html_render
from compliance.models import CheckRun
from compliance.services.runs import check_run_execute
from projects import services
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

MODEL_CARD = b"---\nlicense: apache-2.0\n---\n# Our model\nTrained by us.\n"
FILES_CACHE = {"files": 50000, "reused": 48950, "computed": 1050, "engine_version": "licenses/3+scancode-32"}
LINEAGE_OTHER = {"reused": True, "key": "a" * 64, "from": "another submission"}

FILES_EN = "48,950 of 50,000 files' results reused (same content, same engine version)"
FILES_KO = "파일 50,000개 중 48,950개의 결과를 재사용했습니다(같은 내용, 같은 엔진 버전)"
LINEAGE_EN = "Lineage report reused from another submission"
LINEAGE_KO = "계보 보고서를 다른 제출에서 재사용했습니다"


def _submission_with_cached_runs(world):
    """A submitted version whose licence run reused most files' results and whose second run
    (standing in for lineage) reused another submission's lineage report."""
    submission = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    runs = {r.check_name: r for r in CheckRun.objects.filter(submission=submission)}
    CheckRun.objects.filter(pk=runs["licenses"].pk).update(
        state=CheckRun.State.SUCCEEDED, verdict="pass", progress=1.0, step="done", summary={"cache": FILES_CACHE})
    CheckRun.objects.filter(pk=runs["intake"].pk).update(
        state=CheckRun.State.SUCCEEDED, verdict="pass", progress=1.0, step="done",
        summary={"detected_kind": "model_card", "findings": 0, "cache": LINEAGE_OTHER})
    return submission


def test_the_submission_page_says_how_many_files_results_and_which_report_were_reused(world):
    submission = _submission_with_cached_runs(world)
    client = Client()
    client.force_login(world.reviewer)
    english = unescape(client.get(f"/submissions/{submission.pk}/").content.decode())
    assert FILES_EN in english and LINEAGE_EN in english
    korean = unescape(client.get(f"/submissions/{submission.pk}/", HTTP_ACCEPT_LANGUAGE="ko").content.decode())
    assert FILES_KO in korean and LINEAGE_KO in korean
    # The caches are shared across projects: a vendor is not told that another submission held the same bytes.
    client.force_login(world.vendor_user)
    page = unescape(client.get(f"/submissions/{submission.pk}/").content.decode())
    assert FILES_EN not in page and "Lineage report reused" not in page and "another submission" not in page
    # A run that computed everything itself says nothing of reuse.
    CheckRun.objects.filter(submission=submission).update(summary={"cache": {"reused": False, "key": "b" * 64}})
    client = Client()
    client.force_login(world.reviewer)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "results reused" not in page and "Lineage report reused" not in page


def test_the_api_gives_the_reuse_as_figures_and_words(world):
    submission = _submission_with_cached_runs(world)
    client = Client()
    client.force_login(world.vendor_user)
    rows = client.get(f"/api/check-runs/?submission={submission.pk}").json()
    for row in rows.get("results", rows):  # vendors: no cache figures, in the reuse field or the summary
        assert row["reuse"] == {"reused_from_version": None, "cache": {}, "notes": []}
        assert "cache" not in row["summary"]
    client.force_login(world.reviewer)
    rows = client.get(f"/api/check-runs/?submission={submission.pk}").json()
    rows = rows.get("results", rows)
    by_check = {row["check_name"]: row for row in rows if row["submission"] == submission.pk}
    licences = by_check["licenses"]["reuse"]
    assert licences["cache"]["reused"] == 48950 and licences["cache"]["files"] == 50000
    assert licences["notes"] == [FILES_EN] and licences["reused_from_version"] is None
    assert by_check["intake"]["reuse"]["notes"][0].startswith(LINEAGE_EN)
    korean = client.get(f"/api/check-runs/?submission={submission.pk}", HTTP_ACCEPT_LANGUAGE="ko").json()
    korean = {row["check_name"]: row for row in korean.get("results", korean)}
    assert korean["licenses"]["reuse"]["notes"] == [FILES_KO]


def test_the_dossier_checks_section_says_what_was_reused_in_both_languages(world):
    submission = _submission_with_cached_runs(world)
    english = unescape(dossier_html_render(context=dossier_context_build(submission=submission, lang="en")))
    assert FILES_EN in english and LINEAGE_EN in english
    korean = dossier_html_render(context=dossier_context_build(submission=submission, lang="ko"))
    assert FILES_KO in korean and LINEAGE_KO in korean


def _run_all(submission) -> None:
    for _ in range(3):
        for run in CheckRun.objects.filter(submission=submission, state=CheckRun.State.QUEUED).order_by("pk"):
            check_run_execute(run_id=run.pk, worker="in-process")


def _next_version(world):
    v2 = services.submission_open(user=world.vendor_user, project=world.project)  # carried over
    services.declaration_sign(user=world.vendor_user, submission=v2, signatory_name="Vendor A Signer", attest=True)
    services.submission_submit(user=world.vendor_user, submission=v2)
    return v2


def test_a_whole_result_reused_from_v1_is_shown_as_such_and_not_with_v1s_cache_figures(world):
    v1 = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    _run_all(v1)
    CheckRun.objects.filter(submission=v1, check_name="licenses").update(summary={"cache": FILES_CACHE})
    v2 = _next_version(world)
    run = CheckRun.objects.get(submission=v2, check_name="licenses")
    assert run.reused_from_id is not None
    client = Client()
    client.force_login(world.reviewer)
    page = unescape(client.get(f"/submissions/{v2.pk}/").content.decode())
    assert "reused from v1" in page and FILES_EN not in page
    row = client.get(f"/api/check-runs/{run.pk}/").json()
    assert row["reuse"] == {"reused_from_version": 1, "cache": {}, "notes": []}
    html = unescape(dossier_html_render(context=dossier_context_build(submission=v2, lang="en")))
    assert "Not run again in this version" in html and "results reused" not in html


def test_result_cache_off_runs_every_check_of_an_unchanged_version_again(world, settings):
    v1 = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    _run_all(v1)
    settings.PORTAL_RESULT_CACHE = False
    v2 = _next_version(world)
    runs = CheckRun.objects.filter(submission=v2)
    assert runs.exists() and not runs.filter(reused_from__isnull=False).exists()
    assert not runs.filter(state=CheckRun.State.SUCCEEDED).exists()  # all still to run
    _run_all(v2)
    assert set(runs.values_list("state", flat=True)) == {CheckRun.State.SUCCEEDED}

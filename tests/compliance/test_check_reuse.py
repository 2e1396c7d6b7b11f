"""Checks whose file, engine and inputs did not change reuse the earlier version's result; any
changed input they read, or another project, means running them again."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import license_expression
import pytest
from django.core.management import call_command
from django.urls import reverse

from compliance.models import CheckRun, Finding
from compliance.services.decisions import finding_decide
from compliance.services.policy import programme_policy_update
from compliance.services.runs import check_run_execute
from portal.models import AuditEvent
from projects import services, uploads
from projects.models import Submission
from tests.factories import signed_submission, upload_bytes

pytestmark = pytest.mark.django_db

MODEL_CARD = b"---\nlicense: apache-2.0\n---\n# Our model\nTrained by us.\n"
NOTES = b"meeting notes\n"


def _run_all(submission) -> None:
    """Run every queued check in-process, intake first (the others wait for it)."""
    for _ in range(3):
        for run in CheckRun.objects.filter(submission=submission, state=CheckRun.State.QUEUED).order_by("pk"):
            check_run_execute(run_id=run.pk, worker="in-process")
    assert not CheckRun.objects.filter(submission=submission).exclude(state__in=CheckRun.FINISHED_STATES).exists()


def _sign_and_submit(world, submission) -> Submission:
    services.declaration_sign(user=world.vendor_user, submission=submission, signatory_name="Vendor A Signer",
                              attest=True)
    services.submission_submit(user=world.vendor_user, submission=submission)
    submission.refresh_from_db()
    return submission


def _runs(submission) -> dict[tuple[str, str], CheckRun]:
    return {(r.artifact.original_name, r.check_name): r
            for r in CheckRun.objects.filter(submission=submission).select_related("artifact", "reused_from")}


def test_replacing_a_file_runs_checks_on_it_alone_and_reuses_the_rest(world, client):
    v1 = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD), "notes.txt": ("other", NOTES)},
                           submit=True)
    _run_all(v1)
    before = _runs(v1)
    assert before[("README.md", "licenses")].state == CheckRun.State.SUCCEEDED
    decided = Finding.objects.filter(check_run__submission=v1).first()
    finding_decide(user=world.reviewer, finding=decided, decision="false_positive", justification="checked by hand")

    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    uploads.artifact_delete(user=world.vendor_user, artifact=v2.artifacts.get(original_name="notes.txt"))
    upload_bytes(user=world.vendor_user, submission=v2, name="notes.txt", data=b"new meeting notes\n")
    v2 = _sign_and_submit(world, v2)

    after = _runs(v2)
    assert set(after) == set(before)
    for key in [("README.md", "intake"), ("README.md", "licenses")]:
        run, earlier = after[key], before[key]
        assert run.state == CheckRun.State.SUCCEEDED and run.reused_from_id == earlier.pk, key
        assert (run.verdict, run.summary, run.engine_version) == (earlier.verdict, earlier.summary,
                                                                  earlier.engine_version)
        assert run.started_at is None and run.worker == "" and run.attempts == 0, "never ran on a worker"
        copies = list(Finding.objects.filter(check_run=run))
        originals = list(Finding.objects.filter(check_run=earlier))
        assert sorted((f.code, f.title) for f in copies) == sorted((f.code, f.title) for f in originals)
        assert all(f.status == Finding.Status.OPEN and f.carried_from_id for f in copies)
        assert {f.carried_from_id for f in copies} == {f.pk for f in originals}
    fresh = after[("notes.txt", "intake")]
    assert fresh.reused_from_id is None and fresh.state == CheckRun.State.QUEUED
    assert v2.status == Submission.Status.CHECKING
    assert AuditEvent.objects.filter(action="check.reused", submission_id=v2.pk).count() == 2

    _run_all(v2)
    v2.refresh_from_db()
    assert v2.status == Submission.Status.CHECKED

    # What the vendor sees: carried files and reused results, each naming the version.
    client.force_login(world.vendor_user)
    page = client.get(reverse("submission-detail", args=[v2.pk])).content.decode()
    assert page.count("carried over from v1") == 1  # README.md; notes.txt was uploaded again
    assert page.count("reused from v1") == 2
    assert f'href="{reverse("submission-detail", args=[v1.pk])}"' in page
    # The reopened finding shows the earlier version's decision as context.
    assert "Decided there: False positive by" in page and "checked by hand" in page
    assert page.count("Also found in v1") == Finding.objects.filter(submission=v2, carried_from__isnull=False).count()


def test_a_changed_declaration_input_the_check_reads_prevents_reuse(world, settings, tmp_path, capsys):
    """The code check reads the declared third-party code: declaring the copied project in v2
    changes its verdict, so v2 runs it again; v3, declaring the same, reuses v2's."""
    settings.CODE_INDEX_DIR = tmp_path / "code-index"
    package_dir = Path(license_expression.__file__).parent
    call_command("index_reference", str(package_dir), "--name", "license-expression", "--version", "30.4.4",
                 "--license", "Apache-2.0")
    capsys.readouterr()
    copied = "\n".join((package_dir / "__init__.py").read_text().splitlines()[680:800])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = ("# our own parser\n" + copied + "\n").encode()
        info = tarfile.TarInfo("vendor/infer/expr.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    v1 = signed_submission(world=world, files={"src.tar.gz": ("source_archive", buffer.getvalue())}, submit=True)
    _run_all(v1)
    code_v1 = _runs(v1)[("src.tar.gz", "code")]
    assert code_v1.state == CheckRun.State.SUCCEEDED
    assert Finding.objects.filter(check_run=code_v1, code="undeclared_third_party_code").exists()

    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    declared = [{"name": "license-expression", "version": "30.4.4", "license": "Apache-2.0", "use": "inference"}]
    services.declaration_update(user=world.vendor_user, submission=v2, from_scratch=True, base_models=[],
                                gpu_hours="10", training_flops=1e20, data_summary="test data",
                                third_party_code=declared)
    v2 = _sign_and_submit(world, v2)
    runs_v2 = _runs(v2)
    assert runs_v2[("src.tar.gz", "intake")].reused_from_id == _runs(v1)[("src.tar.gz", "intake")].pk
    code_v2 = runs_v2[("src.tar.gz", "code")]
    assert code_v2.reused_from_id is None and code_v2.state == CheckRun.State.QUEUED, "the declaration changed"
    _run_all(v2)
    codes = set(Finding.objects.filter(check_run=code_v2).values_list("code", flat=True))
    assert "declared_third_party_code" in codes and "undeclared_third_party_code" not in codes

    v3 = services.submission_open(user=world.vendor_user, project=world.project)
    v3 = _sign_and_submit(world, v3)
    code_v3 = _runs(v3)[("src.tar.gz", "code")]
    assert code_v3.reused_from_id == code_v2.pk and code_v3.state == CheckRun.State.SUCCEEDED
    assert v3.status == Submission.Status.CHECKED, "every result reused: nothing left to run"


def test_a_changed_policy_reruns_the_licence_check(world):
    v1 = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    _run_all(v1)
    licence_v1 = _runs(v1)[("README.md", "licenses")]
    assert licence_v1.verdict != "denied"
    programme_policy_update(user=world.officer, programme=world.programme, allowed="", denied="Apache-2.0",
                            review="", from_scratch_required=True)

    v2 = _sign_and_submit(world, services.submission_open(user=world.vendor_user, project=world.project))
    runs = _runs(v2)
    assert runs[("README.md", "intake")].reused_from_id is not None, "intake reads no policy"
    assert runs[("README.md", "licenses")].reused_from_id is None
    _run_all(v2)
    licence_v2 = CheckRun.objects.get(pk=runs[("README.md", "licenses")].pk)
    assert licence_v2.verdict == "denied"


def test_another_projects_identical_file_is_never_reused(world):
    v1 = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    _run_all(v1)
    other = services.submission_open(user=world.other_vendor_user, project=world.other_project)
    upload_bytes(user=world.other_vendor_user, submission=other, name="README.md", data=MODEL_CARD,
                 kind="model_card")
    services.declaration_sign(user=world.other_vendor_user, submission=other, signatory_name="Vendor B Signer",
                              attest=True)
    services.submission_submit(user=world.other_vendor_user, submission=other)
    run = CheckRun.objects.get(submission=other, check_name="intake")
    assert run.reused_from_id is None and run.state == CheckRun.State.QUEUED
    assert not CheckRun.objects.filter(submission=other, reused_from__isnull=False).exists()


def test_a_staff_rerun_of_a_reused_check_runs_it_for_real(world):
    v1 = signed_submission(world=world, files={"notes.txt": ("other", NOTES)}, submit=True)
    _run_all(v1)
    v2 = _sign_and_submit(world, services.submission_open(user=world.vendor_user, project=world.project))
    run = CheckRun.objects.get(submission=v2, check_name="intake")
    assert run.reused_from_id is not None
    from compliance.services.runs import check_run_rerun

    check_run_rerun(user=world.officer, run=run)
    run.refresh_from_db()
    assert run.reused_from_id is None and run.state == CheckRun.State.QUEUED
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    run.refresh_from_db()
    assert run.reused_from_id is None and run.reuse_key and run.attempts == 1


def test_the_dossier_says_which_results_were_reused_and_why(world):
    from compliance.dossier.context import dossier_context_build
    from compliance.dossier.render import dossier_html_render

    v1 = signed_submission(world=world, files={"notes.txt": ("other", NOTES)}, submit=True)
    _run_all(v1)
    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    upload_bytes(user=world.vendor_user, submission=v2, name="more.txt", data=b"more notes\n")
    v2 = _sign_and_submit(world, v2)
    _run_all(v2)
    reused = CheckRun.objects.get(submission=v2, artifact__original_name="notes.txt")
    earlier = CheckRun.objects.get(submission=v1, artifact__original_name="notes.txt")
    assert reused.reused_from_id == earlier.pk

    context = dossier_context_build(submission=v2, lang="en")
    by_name = {c.name: c for c in context.checks}
    assert [(c.reused_from_version, c.reused_from_run) for c in context.checks if c.reused_from_version] == [(1, earlier.pk)]
    assert any(c.reused_from_version is None and "more.txt" in c.name for c in context.checks), by_name
    html = dossier_html_render(context=context)
    sha = reused.artifact.sha256
    assert f"the result of check run {earlier.pk} of v1 is reused" in html and sha in html
    assert html.count("Not run again in this version") == 1, "the check that ran is not said to be reused"
    korean = dossier_html_render(context=dossier_context_build(submission=v2, lang="ko"))
    assert "v1의 검증 실행" in korean and "재사용합니다" in korean

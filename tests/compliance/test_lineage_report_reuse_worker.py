"""With a real worker: the lineage engine's report for a set of weights is reused by any later
check of the same weights against the same references, whoever submits them (issue #16); the
findings still follow each submission's own declaration, and nothing of the first vendor's
project is shown to the second."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from compliance.checks.lineage import _references, report_key, report_reusable
from compliance.engine.lineage import ENGINE_VERSION
from compliance.models import CheckRun, Finding, ReferenceModel
from compliance.services.policy import programme_policy_update
from compliance.services.runs import check_run_rerun
from projects import services
from tests.compliance.engine.lineage import tinymodels
from tests.factories import build_world, check_runs_wait, upload_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BASE = "open-lab/base"
KINDS = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}


def _submit(*, user, project, folder: str, model: Path, signatory: str, base_models: list[dict]):
    submission = services.submission_open(user=user, project=project, carry_over=False)
    for path in sorted(model.iterdir()):
        if path.is_file():
            upload_bytes(user=user, submission=submission, name=f"{folder}/{path.name}", data=path.read_bytes(),
                         kind=KINDS.get(path.name, "other"))
    services.declaration_update(user=user, submission=submission, from_scratch=not base_models,
                                base_models=base_models, gpu_hours=Decimal("10"), training_flops=1e20,
                                data_summary=f"data of {signatory}")
    services.declaration_sign(user=user, submission=submission, signatory_name=signatory, attest=True)
    services.submission_submit(user=user, submission=submission)
    submission.refresh_from_db()
    return submission


def _lineage(submission) -> CheckRun:
    run = CheckRun.objects.select_related("artifact").get(submission=submission, check_name="lineage")
    assert run.state == CheckRun.State.SUCCEEDED, (run.state, run.error)
    return run


def test_vendor_b_submitting_vendor_as_weights_reuses_the_report_with_its_own_declaration(
        celery_worker, tmp_path, capsys, settings):
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    base = tinymodels.llama_make(seed=41)
    call_command("add_reference_model", str(tinymodels.model_write(base, tmp_path / "base")), "--name", BASE,
                 "--publisher", "Lab")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=False, reference_models=ReferenceModel.objects.all())
    weights = tinymodels.model_write(tinymodels.finetune(base, seed=42), tmp_path / "vendor")

    # Vendor A claims training from scratch: the engine runs, and finds the derivation.
    a = _submit(user=world.vendor_user, project=world.project, folder="alpha-secret-release", model=weights,
                signatory="Alpha Signer", base_models=[])
    check_runs_wait(a.pk, 300)
    run_a = _lineage(a)
    assert run_a.verdict == "derived" and run_a.summary["cache"]["reused"] is False
    assert run_a.summary["bytes_read"] > 0 and run_a.report and run_a.report_key
    assert Finding.objects.filter(check_run=run_a, code="undeclared_derivation", severity="critical").exists()

    # Vendor B, another project, the same weights in a folder of its own, declaring the base model.
    b = _submit(user=world.other_vendor_user, project=world.other_project, folder="weights", model=weights,
                signatory="Beta Signer", base_models=[{"component": "backbone", "name": BASE}])
    check_runs_wait(b.pk, 300)
    run_b = _lineage(b)
    # The engine did not run for B: the report came from elsewhere, not one byte of weights was read.
    assert run_b.summary["cache"] == {"reused": True, "key": run_a.report_key, "from": "another submission"}
    assert run_b.summary["bytes_read"] == 0 and run_b.report is None and run_b.reused_from_id is None
    assert run_b.summary["references"][0]["p_value"] == run_a.summary["references"][0]["p_value"]
    # B's findings follow B's declaration: the declared base confirmed, no undeclared derivation.
    codes_b = set(Finding.objects.filter(check_run=run_b).values_list("code", flat=True))
    assert "declared_base_confirmed" in codes_b and "undeclared_derivation" not in codes_b
    # Nothing of A's project reaches B: not in the run, its findings, the API or the page.
    client = Client()
    client.force_login(world.other_vendor_user)
    api = client.get(f"/api/check-runs/{run_b.pk}/").json()
    # Nor that another submission held the same weights: the cache is not named to vendors.
    assert api["reuse"] == {"reused_from_version": None, "cache": {}, "notes": []} and "cache" not in api["summary"]
    shown = json.dumps([run_b.summary, run_b.step, api, list(Finding.objects.filter(check_run=run_b).values(
        "title", "explanation", "evidence", "params"))], ensure_ascii=False)
    shown += client.get(f"/submissions/{b.pk}/").content.decode()
    for secret in ("alpha-secret-release", "Alpha model", "Alpha Signer", "Vendor A", world.project.code + "/",
                   f"/submissions/{a.pk}/", "data of Alpha"):
        assert secret not in shown, secret
    assert "another submission" not in json.dumps(api) + client.get(f"/submissions/{b.pk}/").content.decode()
    assert client.get(f"/api/check-runs/{run_a.pk}/").status_code == 404

    # A's next version, now declaring the base: its declaration changed, so the whole run is not
    # taken over, but the report is (from A's own v1, which the page may name).
    a2 = _submit(user=world.vendor_user, project=world.project, folder="alpha-secret-release", model=weights,
                 signatory="Alpha Signer", base_models=[{"component": "backbone", "name": BASE}])
    check_runs_wait(a2.pk, 300)
    run_a2 = _lineage(a2)
    assert run_a2.reused_from_id is None
    assert run_a2.summary["cache"] == {"reused": True, "key": run_a.report_key, "from": "v1", "from_version": 1}
    assert Finding.objects.filter(check_run=run_a2, code="declared_base_confirmed").exists()

    # PORTAL_RESULT_CACHE=0: no report is reused (the engine would run).
    references = _references(run_b.artifact)[0]
    key = report_key(artifact=run_b.artifact, references=references, engine=ENGINE_VERSION)
    assert key == run_a.report_key
    assert report_reusable(artifact=run_b.artifact, key=key, references=references) is not None
    settings.PORTAL_RESULT_CACHE = False
    assert report_reusable(artifact=run_b.artifact, key=key, references=references) is None
    settings.PORTAL_RESULT_CACHE = True

    # A staff re-run of B's check runs the engine itself: B's weights are read this time.
    check_run_rerun(user=world.admin, run=run_b)
    check_runs_wait(b.pk, 300)
    run_b = _lineage(b)
    assert run_b.summary["cache"] == {"reused": False, "key": run_a.report_key}
    assert run_b.summary["bytes_read"] > 0 and run_b.report is not None
    assert "declared_base_confirmed" in set(Finding.objects.filter(check_run=run_b).values_list("code", flat=True))

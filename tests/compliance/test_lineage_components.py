"""The lineage check on a multimodal model: which component derives from which reference component,
and the declaration's components checked one by one (issue #14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import translation

from compliance.models import CheckRun, Finding, ReferenceModel
from compliance.services.policy import programme_policy_update
from compliance.services.runs import check_run_execute
from tests.compliance.engine.lineage import tinymodels as tm
from tests.factories import signed_submission

REFERENCE = "vision-lab/vlm-7b"


def _model_files(directory: Path) -> dict:
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    return {f"model/{p.name}": (kinds.get(p.name, "other"), p.read_bytes()) for p in sorted(directory.iterdir())
            if p.is_file()}


@pytest.fixture
def vlm_submission(world, tmp_path, capsys):
    """A registered VLM (LLaVA-OneVision layout); `submit(declared)` files a VLM that reuses its
    vision encoder (fine-tuned) under a language model of its own, and runs the checks in-process."""
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    reference = tm.vlm_make(layout="llava_ov", lm=tm.llama_make(seed=301), vision_seed=302, projector_seed=303)
    tm.model_write(reference, tmp_path / "reference")
    call_command("add_reference_model", str(tmp_path / "reference"), "--name", REFERENCE, "--publisher", "Lab")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=False, reference_models=ReferenceModel.objects.all())
    tower = tm.tensors_finetune(tm.vision_make(seed=302), seed=304)
    vendor = tm.vlm_make(layout="llava_ov", lm=tm.llama_make(seed=305), vision_seed=0, projector_seed=306,
                         vision=tower)
    tm.model_write(vendor, tmp_path / "vendor")

    def submit(declared: list[dict]) -> CheckRun:
        submission = signed_submission(world=world, files=_model_files(tmp_path / "vendor"), submit=True,
                                       base_models=declared)
        for name in ("intake", "lineage"):
            for run in CheckRun.objects.filter(submission=submission, check_name=name):
                check_run_execute(run_id=run.pk, worker="test-worker")
        return CheckRun.objects.get(submission=submission, check_name="lineage")

    return submit


def test_an_undeclared_reused_vision_encoder_is_a_finding_that_names_the_component(vlm_submission):
    run = vlm_submission([])  # from scratch claimed
    assert (run.state, run.verdict) == (CheckRun.State.SUCCEEDED, "derived"), run.error
    finding = Finding.objects.get(check_run=run, code="component_derivation_undeclared")
    # The programme's severity for an undeclared derivation: critical, since from-scratch was claimed.
    assert finding.severity == "critical"
    assert finding.params["component"] == "vision" and finding.params["reference_component"] == "vision"
    assert finding.evidence["component"]["verdict"] == "derived" and finding.evidence["p_value"] < 1e-6
    # Only the vision encoder derives: no finding accuses the language model or the projector.
    assert list(Finding.objects.filter(check_run=run, category="lineage").values_list("code", flat=True)) == [
        "component_derivation_undeclared"]
    (row,) = run.summary["references"]
    verdicts = {c["candidate"]: c["verdict"] for c in row["components"]}
    assert verdicts["vision"] == "derived" and verdicts["language"] == "independent"
    assert row["component"] == "vision"  # the dossier's component column
    with translation.override("en"):
        text = finding.text("vendor")
    assert text.title == f"Undeclared vision encoder derived from the vision encoder of {REFERENCE}"
    assert "training from scratch was declared" in text.text
    with translation.override("ko"):
        korean = finding.text("reviewer")
    assert "비전 인코더" in korean.title and REFERENCE in korean.title
    assert "레이어 대응표" in korean.text


def test_a_declared_reused_vision_encoder_that_is_confirmed_is_information(vlm_submission):
    run = vlm_submission([{"component": "vision_encoder", "name": REFERENCE, "license": "Apache-2.0"},
                          {"component": "tokenizer", "name": REFERENCE}])
    assert run.verdict == "derived", run.error
    findings = {f.code: f for f in Finding.objects.filter(check_run=run, category="lineage")}
    assert {code: (f.severity, f.params.get("component")) for code, f in findings.items()} == {
        "component_derivation_confirmed": ("info", "vision"),
        # The generator gives every seed the same vocabulary: the declared tokenizer is confirmed.
        "declared_tokenizer_confirmed": ("info", None)}
    assert findings["declared_tokenizer_confirmed"].params["same_id"] == "100%"
    with translation.override("ko"):
        assert "신고한 비전 인코더 확인됨" in findings["component_derivation_confirmed"].text("vendor").title
        assert "토크나이저" in findings["declared_tokenizer_confirmed"].text("vendor").title


def test_a_vision_encoder_declared_as_the_backbone_is_still_undeclared_and_the_backbone_unconfirmed(vlm_submission):
    run = vlm_submission([{"component": "backbone", "name": REFERENCE}])
    codes = {(f.code, f.params.get("component")): f.severity
             for f in Finding.objects.filter(check_run=run, category="lineage")}
    # from_scratch is False and the policy does not require it: the programme's severity is high.
    assert codes == {("component_derivation_undeclared", "vision"): "high",
                     ("component_declared_not_confirmed", "language"): "medium"}
    assert json.dumps(run.summary)  # the summary stays JSON

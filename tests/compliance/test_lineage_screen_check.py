"""The lineage check against a registry large enough to be screened, run by a real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from compliance.engine.lineage.screen import KEEP_TOP, SCREEN_MIN_REFERENCES
from compliance.models import CheckRun, Finding, ReferenceModel
from compliance.services.policy import programme_policy_update
from tests.compliance.engine.lineage import tinymodels
from tests.factories import build_world, check_runs_wait, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait(submission_id: int, timeout: float = 240.0) -> None:
    check_runs_wait(submission_id, timeout)


def test_a_screened_registry_finds_the_parent_and_lists_every_screened_out_reference(celery_worker, tmp_path,
                                                                                     capsys):
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    base = tinymodels.llama_make(seed=31)
    models = {"open-lab/base": base, **{f"decoy/{s}": tinymodels.llama_make(seed=s) for s in range(700, 706)}}
    assert len(models) > max(SCREEN_MIN_REFERENCES, KEEP_TOP)
    for name, model in models.items():
        folder = tinymodels.model_write(model, tmp_path / name.replace("/", "_"))
        call_command("add_reference_model", str(folder), "--name", name, "--publisher", "Lab")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=False, reference_models=ReferenceModel.objects.all())
    vendor = tinymodels.model_write(tinymodels.mlp_permute(tinymodels.finetune(base, seed=32), seed=33),
                                    tmp_path / "vendor")
    files = {f"model/{p.name}": ({"config.json": "config", "tokenizer.json": "tokenizer",
                                  "model.safetensors": "weights"}.get(p.name, "other"), p.read_bytes())
             for p in sorted(Path(vendor).iterdir()) if p.is_file()}
    submission = signed_submission(world=world, files=files, submit=True)
    _wait(submission.pk)
    run = CheckRun.objects.get(submission=submission, check_name="lineage")
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "derived", run.error
    finding = Finding.objects.get(check_run=run, code="undeclared_derivation")
    assert "open-lab/base" in finding.title
    assert finding.evidence["screen"]["kept"] and finding.evidence["screen"]["rank"] == 1
    screen = run.summary["screen"]
    assert screen["references"] == len(models)
    out = screen["screened_out"]
    assert len(out) + len(screen["kept"]) == len(models) and len(out) >= len(models) - KEEP_TOP
    # Every reference left out is named with its score, rank and channels: nothing is hidden.
    assert {e["reference"] for e in out} <= {n for n in models if n.startswith("decoy/")}
    for entry in out:
        assert isinstance(entry["score"], float) and entry["rank"] > 1 and entry["channels"] and entry["why"]
    # Screened-out references produce no finding of their own; the tested ones do.
    titles = json.dumps([f.title for f in Finding.objects.filter(check_run=run)])
    assert all(e["reference"] not in titles for e in out)
    # Holm counted every reference, tested or not.
    assert f"over {len(models)}" in finding.explanation

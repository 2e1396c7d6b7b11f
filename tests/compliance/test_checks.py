"""The lineage, licence and code checks inside the portal, run by a real worker on real files."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.management import call_command

from compliance.models import CheckRun, Finding, ReferenceModel
from compliance.services.policy import programme_policy_update
from tests.compliance.engine.lineage import tinymodels
from tests.factories import build_world, check_runs_wait, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait(submission_id: int, timeout: float = 180.0) -> None:
    check_runs_wait(submission_id, timeout)


def _model_files(directory: Path) -> dict:
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    return {f"model/{p.name}": (kinds.get(p.name, "other"), p.read_bytes()) for p in sorted(directory.iterdir())
            if p.is_file()}


def test_an_undeclared_fine_tune_of_a_reference_is_critical_when_from_scratch_is_claimed(celery_worker, tmp_path,
                                                                                          capsys):
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    base = tinymodels.llama_make(seed=11)
    tinymodels.model_write(base, tmp_path / "base")
    call_command("add_reference_model", str(tmp_path / "base"), "--name", "open-lab/base-7b", "--publisher",
                 "Open Lab", "--license", "Apache-2.0")
    reference = json.loads(capsys.readouterr().out)
    assert len(reference["bundle_sha256"]) == 64
    programme_policy_update(user=world.admin, programme=world.programme, allowed="Apache-2.0", denied="",
                            review="", from_scratch_required=True,
                            reference_models=ReferenceModel.objects.filter(name="open-lab/base-7b"))
    derived = tinymodels.architecture_rename(tinymodels.tensors_rename(tinymodels.finetune(base, seed=3)))
    tinymodels.model_write(derived, tmp_path / "vendor")
    submission = signed_submission(world=world, files=_model_files(tmp_path / "vendor"), submit=True)
    _wait(submission.pk)
    run = CheckRun.objects.get(submission=submission, check_name="lineage")
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "derived", run.error
    finding = Finding.objects.get(check_run=run, code="undeclared_derivation")
    assert finding.severity == "critical"
    assert "open-lab/base-7b" in finding.title
    assert finding.evidence["p_value"] < 1e-6 and finding.evidence["layers"]
    assert run.summary["bytes_read"] > 0


def test_independent_model_is_not_called_derived(celery_worker, tmp_path, capsys):
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    tinymodels.model_write(tinymodels.llama_make(seed=21), tmp_path / "base")
    call_command("add_reference_model", str(tmp_path / "base"), "--name", "open-lab/other", "--publisher", "Lab")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=True, reference_models=ReferenceModel.objects.all())
    tinymodels.model_write(tinymodels.llama_make(seed=22), tmp_path / "vendor")
    submission = signed_submission(world=world, files=_model_files(tmp_path / "vendor"), submit=True)
    _wait(submission.pk)
    run = CheckRun.objects.get(submission=submission, check_name="lineage")
    assert run.verdict in {"independent", "inconclusive"}
    assert not Finding.objects.filter(check_run=run, code="undeclared_derivation").exists()


def _archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_denied_licence_in_a_source_archive_and_a_policy_change_without_rescanning(celery_worker):
    world = build_world()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="Apache-2.0\nMIT",
                            denied="GPL-3.0-only\nGPL-3.0-or-later", review="", from_scratch_required=True)
    archive = _archive({
        "vendor/train.py": "# Copyright 2023 Google LLC\n# SPDX-License-Identifier: GPL-3.0-or-later\nimport math\n"
                           "print(math.pi)\n",
        "vendor/serve.py": "# Copyright (c) 2026 Vendor A Co., Ltd.\n# SPDX-License-Identifier: MIT\ndef serve():\n"
                           "    return 1\n",
    })
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True)
    _wait(submission.pk)
    run = CheckRun.objects.get(submission=submission, check_name="licenses")
    assert run.state == CheckRun.State.SUCCEEDED, run.error
    denied = Finding.objects.filter(check_run=run, code="license-denied")
    assert denied.exists() and denied.first().severity == "critical"
    assert "GPL-3.0" in json.dumps(denied.first().evidence)
    # Another holder's notice is reported; the vendor's own is not.
    holders = Finding.objects.filter(check_run=run, code="copyright-other-holder")
    assert [f.evidence["holder"] for f in holders] == ["Google LLC"], [f.title for f in holders]
    assert holders[0].evidence["files"] == ["vendor/train.py"]
    # The dossier lists the inventory with the policy's outcome per licence.
    from compliance.dossier.context import dossier_context_build

    (licence_check,) = [c for c in dossier_context_build(submission=submission, lang="en").checks
                        if c.kind == "licenses"]
    outcomes = {r.expression: (r.outcome, r.subject) for r in licence_check.licences}
    assert outcomes["GPL-3.0-or-later"] == ("denied", "vendor/train.py") and outcomes["MIT"][0] == "allowed"
    # The reviewer sees the inventory on the submission page, filterable.
    from django.test import Client

    client = Client()
    client.force_login(world.reviewer)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "Licence inventory" in page and "<code>GPL-3.0-or-later</code>" in page and "<code>MIT</code>" in page
    filtered = client.get(f"/submissions/{submission.pk}/?licence=mit").content.decode()
    assert "<code>MIT</code>" in filtered and "<code>GPL-3.0-or-later</code>" not in filtered
    # The ministry relaxes its policy: the stored inventory is re-evaluated, nothing is rescanned.
    programme_policy_update(user=world.admin, programme=world.programme, allowed="Apache-2.0\nMIT\nGPL-3.0-or-later",
                            denied="", review="", from_scratch_required=True)
    assert not Finding.objects.filter(check_run=run, code="license-denied").exists()
    run.refresh_from_db()
    assert "GPL-3.0-or-later" in run.inputs["policy"]["allowed"]

"""A sharded model must arrive whole: a vendor who forgot a shard hears it when submitting (page,
API, in Korean too), not after the lineage check fails; a shard index that contradicts its shards
fails the lineage check with a reason that names what the vendor uploaded (never the worker's
temporary folder), in the reader's language."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from compliance import finding_texts
from compliance.models import CheckRun, Finding, ReferenceModel
from compliance.services.policy import programme_policy_update
from compliance.services.runs import check_run_execute
from projects import selectors as project_selectors, services
from projects.models import Submission
from projects.uploads import artifact_delete
from tests.compliance.engine.lineage import tinymodels as tm
from tests.factories import signed_submission, upload_bytes

pytestmark = pytest.mark.django_db

KINDS = {"config.json": "config", "tokenizer.json": "tokenizer"}


def _files(folder: Path, *, leave_out: str = "") -> dict:
    return {f"model/{p.name}": ("weights" if p.suffix == ".safetensors" else KINDS.get(p.name, "other"), p.read_bytes())
            for p in sorted(folder.iterdir()) if p.is_file() and not (leave_out and p.name.startswith(leave_out))}


@pytest.fixture
def sharded(world, tmp_path) -> Path:
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    tm.model_write(tm.llama_make(seed=5), tmp_path / "model", shards=2)
    assert {p.name for p in (tmp_path / "model").glob("*.safetensors")} == {
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    return tmp_path / "model"


def test_a_missing_shard_stops_the_submission_and_names_it_until_it_is_uploaded(world, sharded):
    submission = signed_submission(world=world, files=_files(sharded, leave_out="model-00002"))
    with pytest.raises(ValidationError) as refused:
        services.submission_submit(user=world.vendor_user, submission=submission)
    (message,) = refused.value.messages
    assert message.startswith("model/model.safetensors.index.json lists 1 shard(s) that were not uploaded")
    assert "model-00002-of-00002.safetensors" in message and "model-00001" not in message
    submission.refresh_from_db()
    assert submission.status == Submission.Status.DRAFT and not CheckRun.objects.filter(submission=submission).exists()
    # The same answer through the API, as a 400 with the reason.
    api = APIClient()
    api.force_login(world.vendor_user)
    answer = api.post(f"/api/submissions/{submission.pk}/submit/")
    assert answer.status_code == 400 and "model-00002-of-00002.safetensors" in str(answer.json())
    # On the page, in Korean: the vendor is sent back to the draft with the reason.
    page = Client()
    page.force_login(world.vendor_user)
    # The draft says so before the vendor tries: the next step is the shard, not "submit".
    draft = page.get(f"/submissions/{submission.pk}/edit/").content.decode()
    assert 'data-action="shards"' in draft and 'data-action="submit"' not in draft
    from projects.templatetags.submission_steps import submission_step_index

    assert submission_step_index(submission) == 0  # the stepper stays on "Artifacts"
    assert "model-00002-of-00002.safetensors" in draft
    shown = page.post(f"/submissions/{submission.pk}/submit/", follow=True, HTTP_ACCEPT_LANGUAGE="ko")
    text = shown.content.decode()
    assert "샤드 1개가 같은 폴더에 업로드되지 않았습니다" in text and "model-00002-of-00002.safetensors" in text
    # A shard of the same name in another folder is not the missing one.
    misplaced = upload_bytes(user=world.vendor_user, submission=submission,
                             name="other/model-00002-of-00002.safetensors",
                             data=(sharded / "model-00002-of-00002.safetensors").read_bytes(), kind="weights")
    services.declaration_sign(user=world.vendor_user, submission=submission, signatory_name="Vendor A Signer",
                              attest=True)
    with pytest.raises(ValidationError):
        services.submission_submit(user=world.vendor_user, submission=submission)
    # Removed from the wrong folder and uploaded where the index expects it, the submission goes in.
    artifact_delete(user=world.vendor_user, artifact=misplaced)
    upload_bytes(user=world.vendor_user, submission=submission, name="model/model-00002-of-00002.safetensors",
                 data=(sharded / "model-00002-of-00002.safetensors").read_bytes(), kind="weights")
    services.declaration_sign(user=world.vendor_user, submission=submission, signatory_name="Vendor A Signer",
                              attest=True)
    services.submission_submit(user=world.vendor_user, submission=submission)
    submission.refresh_from_db()
    assert submission.status != Submission.Status.DRAFT and submission.submitted_at is not None


def test_an_index_that_cannot_be_read_is_left_to_intake(world, sharded):
    files = _files(sharded)
    files["model/model.safetensors.index.json"] = ("other", b'{"weight_map": ')  # cut short
    submission = signed_submission(world=world, files=files, submit=True)
    assert submission.status != Submission.Status.DRAFT and submission.submitted_at is not None


def test_an_index_that_contradicts_its_shards_fails_lineage_naming_the_upload_not_a_temporary_folder(
        world, sharded, tmp_path, capsys):
    tm.model_write(tm.llama_make(seed=9), tmp_path / "reference")
    call_command("add_reference_model", str(tmp_path / "reference"), "--name", "lab/ref", "--publisher", "Lab")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=False, reference_models=ReferenceModel.objects.all())
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    moved = next(name for name, shard in sorted(index["weight_map"].items()) if shard.startswith("model-00002"))
    index["weight_map"][moved] = "model-00001-of-00002.safetensors"  # every shard uploaded, the index wrong
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    submission = signed_submission(world=world, files=_files(sharded), submit=True)
    for name in ("intake", "lineage"):
        for run in CheckRun.objects.filter(submission=submission, check_name=name):
            check_run_execute(run_id=run.pk, worker="test-inline")
    run = CheckRun.objects.get(submission=submission, check_name="lineage")
    assert run.state == CheckRun.State.FAILED
    assert run.error == (f"model/model.safetensors.index.json: index says {moved!r} is in "
                         "model-00001-of-00002.safetensors but that shard does not hold it"), run.error
    assert "model-view" not in run.error
    incomplete = Finding.objects.get(check_run=run, code="check_incomplete")
    with translation.override("ko"):
        korean = finding_texts.error_label(run.error)
        assert korean == (f"model/model.safetensors.index.json: 색인에는 {moved!r} 텐서가 "
                          "model-00001-of-00002.safetensors에 있다고 적혀 있으나 그 샤드에는 없습니다"), korean
        assert korean in incomplete.text("vendor").text


@pytest.mark.parametrize(("error", "korean"), [
    ("model/model.safetensors.index.json: index lists shards that are missing: a.safetensors, b.safetensors",
     "model/model.safetensors.index.json: 색인에 적힌 샤드 파일이 제출되지 않았습니다: a.safetensors, b.safetensors"),
    ("weights/model.safetensors: no .safetensors or .gguf weight files found",
     "weights/model.safetensors: .safetensors 또는 .gguf 가중치 파일을 찾지 못했습니다"),
    ("m/model.safetensors: model.safetensors: non-finite values (NaN/inf) in model.layers.0.mlp",
     "m/model.safetensors: model.safetensors: model.layers.0.mlp에 유한하지 않은 값(NaN/inf)이 있습니다"),
])
def test_model_folder_errors_read_in_korean(error, korean):
    with translation.override("ko"):
        assert finding_texts.error_label(error) == korean
        assert not re.search(r"lists shards|files found|non-finite values", finding_texts.error_label(error))
    with translation.override("en"):
        assert finding_texts.error_label(error) == error


def test_a_split_gguf_is_one_model_checked_once_and_must_arrive_whole(world, tmp_path, capsys):
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    reference = tm.llama_make(seed=9)
    tm.model_write(reference, tmp_path / "reference")
    call_command("add_reference_model", str(tmp_path / "reference"), "--name", "lab/ref", "--publisher", "Lab")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=False, reference_models=ReferenceModel.objects.all())
    (tmp_path / "gguf").mkdir()
    first = tm.gguf_write(tm.finetune(reference, seed=3), tmp_path / "gguf" / "vendor.gguf", split_max_tensors=20)
    names = sorted(p.name for p in (tmp_path / "gguf").iterdir())
    assert first.name == "vendor-00001-of-00003.gguf" and len(names) == 3
    files = {f"gguf/{n}": ("weights", (tmp_path / "gguf" / n).read_bytes()) for n in names}
    late = files.pop("gguf/vendor-00002-of-00003.gguf")
    submission = signed_submission(world=world, files=files)
    with pytest.raises(ValidationError) as refused:
        services.submission_submit(user=world.vendor_user, submission=submission)
    (message,) = refused.value.messages
    assert message.startswith("gguf/vendor-NNNNN-of-00003.gguf is a GGUF model split into 3 files; 1 of them")
    assert message.count("vendor-00002-of-00003.gguf") == 1
    with translation.override("ko"):
        assert "3개 파일로 나뉜 GGUF 모델" in project_selectors.shards_missing_sentences(submission=submission)[0]
    upload_bytes(user=world.vendor_user, submission=submission, name="gguf/vendor-00002-of-00003.gguf", data=late[1],
                 kind="weights")
    services.declaration_sign(user=world.vendor_user, submission=submission, signatory_name="Vendor A Signer",
                              attest=True)
    services.submission_submit(user=world.vendor_user, submission=submission)
    # One lineage run, on the first file, waiting for intake of all three.
    (lineage,) = CheckRun.objects.filter(submission=submission, check_name="lineage")
    assert lineage.artifact.original_name == "gguf/vendor-00001-of-00003.gguf"
    assert lineage.state == CheckRun.State.WAITING
    intakes = list(CheckRun.objects.filter(submission=submission, check_name="intake").order_by("artifact__original_name"))
    for run in intakes[:2]:
        check_run_execute(run_id=run.pk, worker="test-inline")
    lineage.refresh_from_db()
    assert lineage.state == CheckRun.State.WAITING  # the third file is not yet accepted
    check_run_execute(run_id=intakes[2].pk, worker="test-inline")
    lineage.refresh_from_db()
    assert lineage.state == CheckRun.State.QUEUED
    check_run_execute(run_id=lineage.pk, worker="test-inline")
    lineage.refresh_from_db()
    assert (lineage.state, lineage.verdict) == (CheckRun.State.SUCCEEDED, "derived"), lineage.error
    (finding,) = Finding.objects.filter(submission=submission, code="undeclared_derivation")
    assert finding.check_run_id == lineage.pk


@pytest.mark.parametrize(("error", "korean"), [
    ("gguf/m-00001-of-00003.gguf: m-00001-of-00003.gguf: split GGUF model of 3 files; missing: m-00002-of-00003.gguf",
     "gguf/m-00001-of-00003.gguf: m-00001-of-00003.gguf: 3개 파일로 나뉜 GGUF 모델인데 다음 파일이 없습니다: "
     "m-00002-of-00003.gguf"),
    ("gguf/renamed.gguf: renamed.gguf: file 1 of 4 of a split GGUF model; its files must be named "
     "STEM-00001-of-00004.gguf to STEM-00004-of-00004.gguf and read from the first",
     "gguf/renamed.gguf: renamed.gguf: 나뉜 GGUF 모델의 4개 파일 중 1번째 파일입니다. 파일 이름은 "
     "STEM-00001-of-00004.gguf부터 STEM-00004-of-00004.gguf까지여야 하며 첫 파일부터 읽습니다"),
])
def test_split_gguf_errors_read_in_korean(error, korean):
    with translation.override("ko"):
        assert finding_texts.error_label(error) == korean

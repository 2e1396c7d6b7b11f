"""Weights on object storage are never downloaded whole: intake and lineage read them by range.

Judged from outside the portal: the endpoint's request log (every GET, its ``Range`` and the
bytes it sent) and the bucket itself (an object replaced behind the portal's back through the
S3 API). The models are real files: sharded safetensors written by the tests' model writer, a
GGUF written by the ``gguf`` package.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from compliance.models import CheckRun
from compliance.services.runs import check_run_execute
from projects.models import Artifact
from tests.compliance.engine.lineage import tinymodels
from tests.compliance.test_pipeline import _all_runs_finished, wait_for
from tests.factories import signed_submission
from tests.s3.conftest import world_with_reference

MiB = 1024 * 1024


def _served(endpoint, bucket: str, key: str) -> int:
    return sum(r.bytes_sent for r in endpoint.gets(bucket, key))


def _weights_kind(name: str) -> str:
    return "weights" if name.endswith((".safetensors", ".gguf")) else "config" if name == "config.json" else "other"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sharded_safetensors_and_gguf_in_the_bucket_pass_intake_and_lineage_read_by_range(
        s3_worker, s3_storage, s3_endpoint, tmp_path, capsys):
    world, base = world_with_reference(tmp_path, capsys)
    derived = tinymodels.finetune(base, seed=3)
    tinymodels.model_write(derived, tmp_path / "vendor", shards=2)
    files = {f"model/{p.name}": (_weights_kind(p.name), p.read_bytes())
             for p in sorted((tmp_path / "vendor").iterdir()) if p.is_file()}
    gguf_path = tinymodels.gguf_write(derived, tmp_path / "derived.gguf")
    files["gguf/derived.gguf"] = ("weights", gguf_path.read_bytes())
    submission = signed_submission(world=world, files=files, submit=True)
    wait_for(lambda: _all_runs_finished(submission.pk), timeout=300, what="the checks to finish")

    weights = list(Artifact.objects.filter(submission=submission, kind="weights").order_by("original_name"))
    assert [w.original_name for w in weights] == ["gguf/derived.gguf", "model/model-00001-of-00002.safetensors",
                                                  "model/model-00002-of-00002.safetensors"]
    for artifact in weights:
        assert artifact.size > 20 * MiB
        intake = CheckRun.objects.get(artifact=artifact, check_name="intake")
        assert intake.state == CheckRun.State.SUCCEEDED, intake.error
        assert intake.verdict == "accepted", intake.summary
        verified = intake.summary["verified"]
        assert verified["method"] == "object storage identity", verified
        assert "SHA-256 checksum" in verified["compared"] and verified["checksum_sha256"]
        # Intake read the head, the tail and the header (GGUF: a first 1 MiB prefix): a few % at most.
        assert 0 < verified["bytes_read"] < min(2 * MiB, artifact.size / 10), verified
        gets = s3_endpoint.gets(s3_storage, artifact.file.name)
        assert gets and all(g.range and g.range.startswith("bytes=") for g in gets), [g.range for g in gets]

    # Lineage of each model adds only the rows it samples; a download would serve 100 % of every file.
    lineage = {r.artifact.original_name: r for r in CheckRun.objects.filter(submission=submission,
                                                                             check_name="lineage")}
    assert set(lineage) == {"gguf/derived.gguf", "model/model.safetensors.index.json"}
    for run in lineage.values():
        assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "derived", (run.error, run.summary)
    shards = [w for w in weights if w.original_name.endswith(".safetensors")]
    shard_bytes = sum(w.size for w in shards)
    shard_served = sum(_served(s3_endpoint, s3_storage, w.file.name) for w in shards)
    assert shard_served < shard_bytes / 4, (shard_served, shard_bytes)
    gguf = weights[0]
    gguf_served = _served(s3_endpoint, s3_storage, gguf.file.name)
    assert gguf_served < gguf.size / 4, (gguf_served, gguf.size)
    assert lineage["gguf/derived.gguf"].summary["bytes_read"] <= gguf_served


@pytest.mark.django_db
def test_a_weights_object_replaced_in_the_bucket_after_upload_fails_intake_without_a_download(
        world, s3_storage, s3_endpoint, tmp_path):
    model = tinymodels.llama_make(seed=5, d=256, f=1024, layers=2)
    tinymodels.model_write(model, tmp_path / "m")
    data = (tmp_path / "m" / "model.safetensors").read_bytes()
    submission = signed_submission(world=world, files={"model.safetensors": ("weights", data)}, submit=True)
    artifact = Artifact.objects.get(submission=submission)
    identity = artifact.stored_identity
    # What the store checked on receipt: one part, so its checksum is the file's own SHA-256.
    assert base64.b64decode(identity["checksum_sha256"]) == hashlib.sha256(data).digest()
    assert identity["checksum_is_file_sha256"] is True and identity["sent_sha256"] == artifact.sha256

    # Someone with write access to the bucket swaps in other weights, valid ones, of the same size.
    other = tinymodels.llama_make(seed=6, d=256, f=1024, layers=2)
    tinymodels.model_write(other, tmp_path / "other")
    forged = (tmp_path / "other" / "model.safetensors").read_bytes()
    assert len(forged) == len(data) and forged != data
    s3_endpoint.client().put_object(Bucket=s3_storage, Key=artifact.file.name, Body=forged)
    with s3_endpoint.lock:
        s3_endpoint.requests.clear()

    run = CheckRun.objects.get(artifact=artifact, check_name="intake")
    assert check_run_execute(run_id=run.pk, worker="test") == CheckRun.State.FAILED
    run.refresh_from_db()
    assert "the stored copy was altered or damaged" in run.error and "SHA-256 checksum" in run.error, run.error
    assert _served(s3_endpoint, s3_storage, artifact.file.name) == 0, "decided by a HEAD, nothing downloaded"
    artifact.refresh_from_db()
    assert artifact.status != Artifact.Status.ACCEPTED


@pytest.mark.django_db
def test_the_same_weights_unchanged_pass_intake_and_say_how_they_were_verified(world, s3_storage, s3_endpoint,
                                                                              tmp_path):
    """The control of the test above: the same upload, untouched, is accepted by a HEAD and ranges."""
    model = tinymodels.llama_make(seed=5, d=256, f=1024, layers=2)
    tinymodels.model_write(model, tmp_path / "m")
    data = (tmp_path / "m" / "model.safetensors").read_bytes()
    submission = signed_submission(world=world, files={"model.safetensors": ("weights", data)}, submit=True)
    artifact = Artifact.objects.get(submission=submission)
    with s3_endpoint.lock:
        s3_endpoint.requests.clear()
    run = CheckRun.objects.get(artifact=artifact, check_name="intake")
    assert check_run_execute(run_id=run.pk, worker="test") == CheckRun.State.SUCCEEDED
    run.refresh_from_db()
    assert run.summary["sha256"] == artifact.sha256 and run.summary["detected_kind"] == "safetensors"
    verified = run.summary["verified"]
    assert verified["checksum_is_file_sha256"] is True
    assert "x-amz-checksum-sha256" in verified["text"] and "not downloaded" in verified["text"]
    served = _served(s3_endpoint, s3_storage, artifact.file.name)
    assert 0 < served == verified["bytes_read"] < len(data) / 10, (served, len(data))
    with s3_endpoint.lock:
        heads = [r for r in s3_endpoint.requests if r.method == "HEAD"]
    assert heads, "the identity was asked of the store"

"""The production storage path, for real: django-storages against an S3 endpoint over HTTP.

Every claim is checked from outside the portal: what the bucket holds (listed and hashed
through the S3 API), and what the endpoint served (its request log: every GET, its
``Range`` header and the bytes it sent). Runs on both CI passes (SQLite and PostgreSQL).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tarfile

import pytest
from rest_framework.test import APIClient

from compliance.models import CheckRun, Dossier, Finding, ReferenceModel
from projects import services
from projects.models import Artifact, Submission
from tests.compliance.engine.lineage import tinymodels
from tests.compliance.test_pipeline import _all_runs_finished, wait_for
from tests.factories import build_world, signed_submission
from tests.s3.conftest import bucket_keys, world_with_reference


def _object_sha256(endpoint, bucket: str, key: str) -> str:
    body = endpoint.client().get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1024 * 1024), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _served(endpoint, bucket: str, key: str) -> int:
    return sum(r.bytes_sent for r in endpoint.gets(bucket, key))


@pytest.mark.django_db
def test_a_chunked_upload_lands_in_the_bucket_with_the_hash_the_portal_recorded(world, s3_storage, s3_endpoint,
                                                                                 settings):
    client = APIClient()
    client.force_login(world.vendor_user)
    draft = services.submission_open(user=world.vendor_user, project=world.project)
    data = os.urandom(3 * 1024 * 1024 + 17)
    session = client.post("/api/uploads/", {"submission": draft.pk, "kind": "weights",
                                            "filename": "model/weights.safetensors", "size": len(data)},
                          format="json").json()
    step = 1024 * 1024
    for offset in range(0, len(data), step):
        response = client.generic("PATCH", f"/api/uploads/{session['id']}/chunk/", data[offset:offset + step],
                                  content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET=str(offset))
        assert response.status_code == 200, response.content
    artifact = Artifact.objects.get(pk=response.json()["artifact"]["id"])
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    # The bucket holds exactly this one object, under the artifact's name, with the same bytes.
    assert bucket_keys(s3_endpoint, s3_storage) == [artifact.file.name]
    assert _object_sha256(s3_endpoint, s3_storage, artifact.file.name) == artifact.sha256
    # Nothing stayed on local disk: the partial file was moved into the bucket, not kept.
    assert not any(p.is_file() for p in settings.UPLOAD_PARTIAL_DIR.rglob("*"))
    assert not settings.MEDIA_ROOT.exists() or not any(p.is_file() for p in settings.MEDIA_ROOT.rglob("*"))


def _archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _model_files(directory) -> dict:
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    return {f"model/{p.name}": (kinds.get(p.name, "other"), p.read_bytes()) for p in sorted(directory.iterdir())
            if p.is_file()}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_checks_weights_in_the_bucket_reading_only_the_ranges_it_needs(s3_worker, s3_storage, s3_endpoint,
                                                                               tmp_path, capsys):
    # 59 MB of BF16 weights. Lineage reads a fixed budget per layer (512 MLP + 384 attention rows,
    # 128 down-projection rows, 1,024 embedding rows): ~15 % of this small model, 0.13 % of a
    # 93 GB one (compliance/engine/lineage/fingerprint.py); a download would be 100 %.
    world, base = world_with_reference(tmp_path, capsys)
    derived = tinymodels.architecture_rename(tinymodels.tensors_rename(tinymodels.finetune(base, seed=3)))
    tinymodels.model_write(derived, tmp_path / "vendor")
    files = _model_files(tmp_path / "vendor")
    # A source archive too: the licence check reads its members from a copy streamed out of the bucket.
    files["src.tar.gz"] = ("source_archive", _archive({
        "vendor/train.py": "# SPDX-License-Identifier: GPL-3.0-or-later\nimport math\nprint(math.pi)\n"}))
    submission = signed_submission(world=world, files=files, submit=True)
    wait_for(lambda: _all_runs_finished(submission.pk), timeout=300, what="the checks to finish")

    weights = Artifact.objects.get(submission=submission, original_name="model/model.safetensors")
    assert weights.size > 40 * 1024 * 1024
    # What the worker fetched, taken before this test reads the object itself.
    gets = s3_endpoint.gets(s3_storage, weights.file.name)
    served = _served(s3_endpoint, s3_storage, weights.file.name)
    # The reference's fingerprint bundle and every upload are objects in the bucket.
    keys = bucket_keys(s3_endpoint, s3_storage)
    assert weights.file.name in keys and ReferenceModel.objects.get().bundle.name in keys
    assert _object_sha256(s3_endpoint, s3_storage, weights.file.name) == weights.sha256

    intake = CheckRun.objects.get(artifact=weights, check_name="intake")
    assert intake.state == CheckRun.State.SUCCEEDED, intake.error
    assert intake.summary["sha256"] == weights.sha256
    assert intake.summary["verified"]["method"] == "object storage identity", intake.summary
    lineage = CheckRun.objects.get(artifact=weights, check_name="lineage")
    assert lineage.state == CheckRun.State.SUCCEEDED and lineage.verdict == "derived", lineage.error
    assert Finding.objects.filter(check_run=lineage, code="undeclared_derivation", severity="critical").exists()
    licences = CheckRun.objects.get(submission=submission, check_name="licenses",
                                    artifact__original_name="src.tar.gz")
    assert licences.state == CheckRun.State.SUCCEEDED, licences.error
    assert "GPL-3.0-or-later" in json.dumps(licences.summary), licences.summary

    assert gets and all(g.range and g.range.startswith("bytes=") for g in gets), \
        [g.range for g in gets if not g.range]
    # Intake reads the head, tail and header (the bytes are vouched for by the store's checksum,
    # tests/s3/test_weights_by_range.py); lineage adds only its sampled rows. Either downloading
    # the file would serve more than all of it.
    intake_bytes = intake.summary["verified"]["bytes_read"]
    lineage_bytes = served - intake_bytes
    assert 0 < intake_bytes < 1024 * 1024 and 0 < lineage_bytes < weights.size / 5, (served, weights.size)
    assert lineage.summary["bytes_read"] == lineage_bytes, "the check reports what it fetched"


@pytest.mark.django_db
def test_a_dossier_is_stored_in_the_bucket_and_downloaded_unchanged(world, s3_storage, s3_endpoint, settings,
                                                                   tmp_path):
    from compliance.dossiers import dossier_render_execute
    from portal.models import AuditEvent

    settings.DOSSIER_SIGNING_KEY = str(tmp_path / "sign" / "key.pem")
    settings.DOSSIER_SIGNING_CERT = str(tmp_path / "sign" / "cert.pem")
    settings.DOSSIER_SIGNING_GENERATE = True
    submission = signed_submission(world=world, submit=True)
    reviewer = APIClient()
    reviewer.force_login(world.reviewer)
    response = reviewer.post("/api/dossiers/", {"submission": submission.pk, "lang": "ko"}, format="json")
    assert response.status_code == 201, response.content
    dossier = Dossier.objects.get(pk=response.json()["id"])
    assert dossier_render_execute(dossier_id=dossier.pk) == "ready"
    dossier.refresh_from_db()
    assert dossier.file.name in bucket_keys(s3_endpoint, s3_storage)
    assert _object_sha256(s3_endpoint, s3_storage, dossier.file.name) == dossier.sha256
    download = reviewer.get(f"/dossiers/{dossier.pk}/download/")
    assert download.status_code == 200
    pdf = b"".join(download.streaming_content)
    assert hashlib.sha256(pdf).hexdigest() == dossier.sha256 and pdf.startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="dossier.download", object_id=str(dossier.pk)).count() == 1
    verdict = reviewer.post("/api/dossiers/verify/", {"sha256": dossier.sha256}, format="json").json()
    assert verdict["issued"] is True and verdict["submission"] == submission.pk


@pytest.mark.fault
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_read_from_the_bucket_costs_a_delay_not_the_check(s3_worker, s3_storage, s3_endpoint):
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    data = os.urandom(24 * 1024 * 1024)
    submission = signed_submission(world=world, files={"blob.bin": ("other", data)})
    artifact = Artifact.objects.get(submission=submission)
    # A congested store: 2 MiB/s makes intake's read of 24 MiB last ~12 s, longer than the 8 s
    # lease, so the worker can be killed mid-read and the lease keeper must renew meanwhile.
    s3_endpoint.slow_bytes_per_s = 2 * 1024 * 1024
    services.submission_submit(user=world.vendor_user, submission=submission)
    run = wait_for(lambda: CheckRun.objects.filter(submission=submission, state="running").first(),
                   what="the run to start")
    wait_for(lambda: _served(s3_endpoint, s3_storage, artifact.file.name) > 0, what="the read to begin")
    s3_worker.stop(sig=signal.SIGKILL)
    run.refresh_from_db()
    assert run.state == CheckRun.State.RUNNING and run.attempts == 1
    assert _served(s3_endpoint, s3_storage, artifact.file.name) < len(data), "killed before the read ended"
    s3_endpoint.slow_bytes_per_s = None
    s3_worker.start()
    wait_for(lambda: _all_runs_finished(submission.pk), timeout=180, what="the run to finish after restart")
    run.refresh_from_db()
    assert run.state == CheckRun.State.SUCCEEDED, run.error
    assert run.attempts >= 2
    assert run.summary["sha256"] == hashlib.sha256(data).hexdigest()
    codes = list(Finding.objects.filter(check_run=run).values_list("code", flat=True))
    assert len(codes) == len(set(codes)), "exactly one set of findings"
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED


@pytest.mark.fault
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_dossiers_whose_worker_is_killed_mid_render_land_once_in_the_bucket(s3_storage, s3_endpoint, settings,
                                                                            tmp_path, monkeypatch):
    """The dossier fault test of tests/compliance/test_lease_faults.py, on object storage: one
    object per number in the bucket, holding the bytes whose hash was recorded."""
    from compliance.dossiers import dossier_request
    from portal.models import AuditEvent
    from tests.compliance.test_lease_faults import _signing_pair, _worker

    _signing_pair(settings, tmp_path, monkeypatch)
    world = build_world()
    submissions = [signed_submission(world=world, submit=True) for _ in range(6)]
    numbers = {d.pk: d.number for d in (dossier_request(user=world.officer, submission=s) for s in submissions)}
    worker = _worker(settings, tmp_path, monkeypatch, PORTAL_TEST_DOSSIER_RENDER_DELAY_S="2")
    worker.start()
    try:
        wait_for(lambda: Dossier.objects.filter(state=Dossier.State.RENDERING).exists(), timeout=120,
                 what="a dossier to start rendering")
        worker.stop(sig=signal.SIGKILL)
        killed = set(Dossier.objects.filter(state=Dossier.State.RENDERING).values_list("pk", flat=True))
        assert killed, "the worker was killed while dossiers were rendering"
        worker.start()
        wait_for(lambda: not Dossier.objects.exclude(state__in=[Dossier.State.READY, Dossier.State.FAILED]).exists(),
                 timeout=300, what="every dossier to end")
    finally:
        worker.stop()
    dossiers = {d.pk: d for d in Dossier.objects.all()}
    assert {pk: d.state for pk, d in dossiers.items()} == {pk: Dossier.State.READY for pk in numbers}, \
        {d.number: d.error for d in dossiers.values() if d.error}
    assert all(dossiers[pk].attempts >= 2 for pk in killed)
    pdf_keys = [k for k in bucket_keys(s3_endpoint, s3_storage) if k.endswith(".pdf")]
    assert sorted(k.rsplit("/", 1)[-1] for k in pdf_keys) == sorted(f"{n}.pdf" for n in numbers.values())
    for dossier in dossiers.values():
        assert dossier.file.name in pdf_keys
        assert _object_sha256(s3_endpoint, s3_storage, dossier.file.name) == dossier.sha256
    issued = sorted(AuditEvent.objects.filter(action="dossier.issue").values_list("object_id", flat=True))
    assert issued == sorted(str(pk) for pk in numbers)




@pytest.mark.django_db
def test_the_range_reader_reads_exact_ranges_from_the_bucket(s3_storage, s3_endpoint, tmp_path):
    from projects.storage import stored_file_is_local
    from tests.projects.test_storage import range_reader_contract

    range_reader_contract(tmp_path)
    (key,) = bucket_keys(s3_endpoint, s3_storage)
    assert not stored_file_is_local(stored_name=key)
    ranges = [g.range for g in s3_endpoint.gets(s3_storage, key)]
    # Two reads of the contract, then the copy's 8 MiB ranges (one, for 3 MiB); the refused read sent nothing.
    assert ranges[:2] == ["bytes=0-7", "bytes=3145728-3145732"] and ranges[2:] == ["bytes=0-3145732"]


@pytest.mark.django_db
def test_a_carried_over_file_is_one_object_and_outlives_its_removal_from_the_new_version(
        world, s3_storage, s3_endpoint, django_capture_on_commit_callbacks):
    """Carry-over writes nothing to the bucket; removing the carried file from v2 leaves v1's
    object; removing a file only v2 uses deletes its object."""
    from projects import uploads
    from tests.factories import upload_bytes

    v1 = signed_submission(world=world, files={"a.txt": ("other", b"first\n"), "b.txt": ("other", b"second\n")},
                           submit=True)
    keys = bucket_keys(s3_endpoint, s3_storage)
    assert len(keys) == 2
    with s3_endpoint.lock:
        s3_endpoint.requests.clear()

    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    with s3_endpoint.lock:
        assert not [r for r in s3_endpoint.requests if r.method in ("PUT", "POST", "DELETE")], "nothing written"
    assert bucket_keys(s3_endpoint, s3_storage) == keys
    with django_capture_on_commit_callbacks(execute=True):
        uploads.artifact_delete(user=world.vendor_user, artifact=v2.artifacts.get(original_name="a.txt"))
    assert bucket_keys(s3_endpoint, s3_storage) == keys, "v1 still uses it"
    kept = v1.artifacts.get(original_name="a.txt")
    assert _object_sha256(s3_endpoint, s3_storage, kept.file.name) == kept.sha256

    fresh = upload_bytes(user=world.vendor_user, submission=v2, name="c.txt", data=b"only v2\n")
    assert len(bucket_keys(s3_endpoint, s3_storage)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        uploads.artifact_delete(user=world.vendor_user, artifact=fresh)
    assert bucket_keys(s3_endpoint, s3_storage) == keys


@pytest.mark.django_db
def test_weights_ranges_go_to_the_bucket_several_at_a_time_and_come_back_in_order(s3_storage, s3_endpoint, settings):
    """A store answers each ranged GET after a first-byte latency: the lineage check's 1,600 small
    ranges of a 100B checkpoint are sent PORTAL_S3_READ_THREADS at a time, and give exactly the
    bytes, order, counts and refusals of reading them one by one."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from projects.storage import StoredFileReadError, stored_range_reader

    data = os.urandom(2 * 1024 * 1024)
    name = default_storage.save("artifacts/shard.safetensors", ContentFile(data))
    reader = stored_range_reader(stored_name=name, name="shard.safetensors")
    ranges = [(i * 65_536 + 7, 3_000 + i) for i in range(24)][::-1] + [(10, 0)]
    s3_endpoint.latency_s = 0.05
    with s3_endpoint.lock:
        s3_endpoint.requests.clear()
    assert reader.read_many(ranges) == [data[o:o + n] for o, n in ranges]
    assert (reader.bytes_read, reader.reads) == (sum(n for _, n in ranges), 24)
    sent = [g.range for g in s3_endpoint.gets(s3_storage, name)]
    assert sorted(sent) == sorted(f"bytes={o}-{o + n - 1}" for o, n in ranges if n)
    assert 2 <= s3_endpoint.most_in_flight <= settings.PORTAL_S3_READ_THREADS == 8

    with s3_endpoint.lock:
        s3_endpoint.requests.clear()
    with pytest.raises(StoredFileReadError, match="holds 2097152 bytes"):
        reader.read_many([(0, 10), (len(data) - 4, 5)])
    assert s3_endpoint.gets(s3_storage, name) == []  # refused before anything was sent

    settings.PORTAL_S3_READ_THREADS = 1
    s3_endpoint.most_in_flight = 0
    assert reader.read_many(ranges[:6]) == [data[o:o + n] for o, n in ranges[:6]]
    assert s3_endpoint.most_in_flight == 1


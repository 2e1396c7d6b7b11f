"""A new version builds on the last: files carried over by reference, the declaration as an unsigned
draft, and stored files deleted only when no version uses them any more."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.urls import reverse

from portal.models import AuditEvent
from projects import services, uploads
from projects.models import Artifact, Declaration
from tests.factories import signed_submission, upload_bytes

pytestmark = pytest.mark.django_db

FILES = {"config.json": ("config", b'{"model_type": "llama", "hidden_size": 64}'),
         "README.md": ("model_card", b"---\nlicense: apache-2.0\n---\n# Our model\n"),
         "notes.txt": ("other", b"plain notes\n" * 1000)}


def _stored_files() -> list[Path]:
    """Every object under MEDIA_ROOT: what storage actually holds."""
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def test_a_new_version_carries_every_file_by_reference_with_no_byte_written(world):
    v1 = signed_submission(world=world, files=FILES, submit=True)
    Artifact.objects.filter(submission=v1, original_name="config.json").update(
        status=Artifact.Status.ACCEPTED, detected_kind="json")
    before = {p: p.stat().st_mtime_ns for p in _stored_files()}
    assert len(before) == 3

    v2 = services.submission_open(user=world.vendor_user, project=world.project)

    assert {p: p.stat().st_mtime_ns for p in _stored_files()} == before, "nothing written, nothing touched"
    old = {a.original_name: a for a in v1.artifacts.all()}
    new = list(v2.artifacts.all())
    assert len(new) == 3
    for artifact in new:
        source = old[artifact.original_name]
        assert artifact.carried_from_id == source.pk
        assert (artifact.file.name, artifact.sha256, artifact.size, artifact.detected_kind, artifact.status, artifact.kind) \
            == (source.file.name, source.sha256, source.size, source.detected_kind, source.status, source.kind)
        with default_storage.open(artifact.file.name, "rb") as fh:
            assert fh.read() == FILES[artifact.original_name][1]
    assert v2.artifacts.get(original_name="config.json").status == Artifact.Status.ACCEPTED
    carried_events = AuditEvent.objects.filter(action="artifact.carry_over", submission_id=v2.pk)
    assert carried_events.count() == 3


def test_the_declaration_is_copied_as_an_unsigned_draft(world):
    v1 = signed_submission(world=world, submit=True,
                           third_party_code=[{"name": "vllm", "version": "0.6", "license": "Apache-2.0",
                                              "use": "inference"}])
    signed = Declaration.objects.get(submission=v1)
    assert signed.is_signed

    v2 = services.submission_open(user=world.vendor_user, project=world.project)

    draft = Declaration.objects.get(submission=v2)
    assert (draft.from_scratch, draft.base_models, draft.third_party_code, draft.gpu_hours, draft.training_flops,
            draft.data_summary) == (signed.from_scratch, signed.base_models, signed.third_party_code,
                                    signed.gpu_hours, signed.training_flops, signed.data_summary)
    assert not draft.is_signed
    assert (draft.signed_by, draft.signatory_name, draft.signed_sha256) == (None, "", "")
    # The earlier signature still stands on the earlier version.
    signed.refresh_from_db()
    assert signed.is_signed
    with pytest.raises(ValidationError, match="Sign the declaration"):
        services.submission_submit(user=world.vendor_user, submission=v2)


def test_start_empty_carries_nothing(world):
    signed_submission(world=world, files=FILES, submit=True)
    v2 = services.submission_open(user=world.vendor_user, project=world.project, carry_over=False)
    assert not v2.artifacts.exists()
    declaration = Declaration.objects.get(submission=v2)
    assert declaration.data_summary == "" and not declaration.is_signed


def test_removing_a_carried_file_keeps_the_earlier_versions_copy(world, django_capture_on_commit_callbacks):
    v1 = signed_submission(world=world, files=FILES, submit=True)
    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    carried = v2.artifacts.get(original_name="notes.txt")
    stored = carried.file.name

    with pytest.raises(ValidationError, match="already in the submission as notes.txt"):
        upload_bytes(user=world.vendor_user, submission=v2, name="notes-again.txt", data=FILES["notes.txt"][1])
    with django_capture_on_commit_callbacks(execute=True):  # storage is touched after commit
        uploads.artifact_delete(user=world.vendor_user, artifact=carried)

    assert not v2.artifacts.filter(original_name="notes.txt").exists()
    assert default_storage.exists(stored), "v1 still refers to the stored file"
    with default_storage.open(v1.artifacts.get(original_name="notes.txt").file.name, "rb") as fh:
        assert fh.read() == FILES["notes.txt"][1]
    assert len(_stored_files()) == 3


def test_removing_a_file_only_this_version_uses_deletes_it(world, django_capture_on_commit_callbacks):
    signed_submission(world=world, files=FILES, submit=True)
    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    fresh = upload_bytes(user=world.vendor_user, submission=v2, name="new.txt", data=b"only in v2\n")
    assert default_storage.exists(fresh.file.name) and len(_stored_files()) == 4

    with django_capture_on_commit_callbacks(execute=True):
        uploads.artifact_delete(user=world.vendor_user, artifact=fresh)

    assert not default_storage.exists(fresh.file.name)
    assert len(_stored_files()) == 3


def test_a_third_version_carries_from_the_second_whatever_its_status(world):
    v1 = signed_submission(world=world, files=FILES, submit=True)
    v2 = services.submission_open(user=world.vendor_user, project=world.project)
    uploads.artifact_delete(user=world.vendor_user, artifact=v2.artifacts.get(original_name="notes.txt"))
    upload_bytes(user=world.vendor_user, submission=v2, name="notes.txt", data=b"new notes\n")
    services.declaration_sign(user=world.vendor_user, submission=v2, signatory_name="Vendor A Signer", attest=True)
    services.submission_submit(user=world.vendor_user, submission=v2)

    v3 = services.submission_open(user=world.vendor_user, project=world.project)

    by_name = {a.original_name: a for a in v3.artifacts.select_related("carried_from__submission")}
    assert {a.carried_from.submission.number for a in by_name.values()} == {2}
    with default_storage.open(by_name["notes.txt"].file.name, "rb") as fh:
        assert fh.read() == b"new notes\n"
    assert by_name["README.md"].file.name == v1.artifacts.get(original_name="README.md").file.name


def test_the_page_offers_both_starts_and_shows_carried_files(world, client):
    signed_submission(world=world, files=FILES, submit=True)
    client.force_login(world.vendor_user)
    page = client.get(reverse("project-detail", args=[world.project.pk])).content.decode()
    assert 'name="start" value="carry_over" checked' in page and 'name="start" value="empty"' in page

    response = client.post(reverse("submission-open", args=[world.project.pk]), {"note": "v2"})
    assert response.status_code == 302
    v2 = world.project.submissions.get(number=2)
    edit = client.get(reverse("submission-edit", args=[v2.pk])).content.decode()
    assert edit.count("carried over from v1") == 3

    client.post(reverse("submission-open", args=[world.other_project.pk]), {})  # not theirs: refused
    assert not world.other_project.submissions.exists()


def test_the_page_can_start_empty(world, client):
    signed_submission(world=world, files=FILES, submit=True)
    client.force_login(world.vendor_user)
    client.post(reverse("submission-open", args=[world.project.pk]), {"start": "empty"})
    assert not world.project.submissions.get(number=2).artifacts.exists()


def test_the_api_carries_over_by_default_and_can_start_empty(world):
    from rest_framework.test import APIClient

    v1 = signed_submission(world=world, files=FILES, submit=True)
    api = APIClient()
    api.force_authenticate(world.vendor_user)
    opened = api.post("/api/submissions/", {"project": world.project.pk}, format="json")
    assert opened.status_code == 201, opened.content
    listed = api.get("/api/artifacts/", {"submission": opened.json()["id"]}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    sources = {a.original_name: a.pk for a in v1.artifacts.all()}
    assert {r["original_name"]: r["carried_from"] for r in rows} == sources

    draft = world.project.submissions.get(pk=opened.json()["id"])
    services.declaration_sign(user=world.vendor_user, submission=draft, signatory_name="Vendor A Signer",
                              attest=True)
    services.submission_submit(user=world.vendor_user, submission=draft)
    empty = api.post("/api/submissions/", {"project": world.project.pk, "carry_over": False}, format="json")
    assert empty.status_code == 201, empty.content
    assert not world.project.submissions.get(pk=empty.json()["id"]).artifacts.exists()

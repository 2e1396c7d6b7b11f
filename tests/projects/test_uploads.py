"""Chunked, resumable uploads and the bad input every endpoint must refuse without leftovers."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from projects import services
from projects.models import Artifact, Declaration, Submission, UploadSession
from tests.factories import upload_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def vendor_client(world):
    client = APIClient()
    client.force_login(world.vendor_user)
    return client


@pytest.fixture
def draft(world):
    return services.submission_open(user=world.vendor_user, project=world.project)


def _session(client, draft, size, name="weights.safetensors", kind="weights"):
    response = client.post("/api/uploads/", {"submission": draft.pk, "kind": kind, "filename": name, "size": size},
                           format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _chunk(client, session_id, offset, data):
    return client.generic("PATCH", f"/api/uploads/{session_id}/chunk/", data,
                          content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET=str(offset))


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_chunked_upload_hashes_while_streaming(vendor_client, draft, settings):
    data = os.urandom(3 * 1024 * 1024 + 17)
    session = _session(vendor_client, draft, len(data))
    step = 1024 * 1024
    for offset in range(0, len(data), step):
        response = _chunk(vendor_client, session["id"], offset, data[offset:offset + step])
        assert response.status_code == 200, response.content
    body = response.json()
    assert body["received"] == len(data)
    assert body["artifact"]["sha256"] == hashlib.sha256(data).hexdigest()
    artifact = Artifact.objects.get(pk=body["artifact"]["id"])
    assert artifact.status == Artifact.Status.QUARANTINED, "nothing is trusted before intake"
    assert Path(artifact.file.path).read_bytes() == data
    assert _files_under(settings.UPLOAD_PARTIAL_DIR) == [], "no partial file left behind"


def test_resume_after_a_dropped_connection(vendor_client, draft, world):
    data = os.urandom(2 * 1024 * 1024)
    session = _session(vendor_client, draft, len(data))
    assert _chunk(vendor_client, session["id"], 0, data[:1_000_000]).status_code == 200
    # The connection drops half-way through the second chunk: the server got 300 kB of a 1 MB chunk.
    from projects import uploads

    class Dropped:
        def __init__(self, payload):
            self.payload, self.sent = payload, False

        def read(self, n):
            if self.sent:
                raise ConnectionResetError("client went away")
            self.sent = True
            return self.payload[:300_000]

    upload = UploadSession.objects.get(pk=session["id"])
    with pytest.raises(ConnectionResetError):
        uploads.upload_chunk_write(user=world.vendor_user, session=upload, offset=1_000_000,
                                   stream=Dropped(data[1_000_000:2_000_000]), length=1_000_000)
    # The client asks where to resume, and carries on from there.
    status = vendor_client.get(f"/api/uploads/{session['id']}/").json()
    assert status["received"] == 1_000_000
    # A stale offset is refused with the right one to use.
    stale = _chunk(vendor_client, session["id"], 1_300_000, data[1_300_000:])
    assert stale.status_code == 409 and stale.json()["received"] == 1_000_000
    final = _chunk(vendor_client, session["id"], 1_000_000, data[1_000_000:])
    assert final.status_code == 200
    assert final.json()["artifact"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_choosing_the_same_file_again_resumes_the_same_session(vendor_client, draft):
    first = _session(vendor_client, draft, 5000, name="model/config.json", kind="config")
    again = _session(vendor_client, draft, 5000, name="model/config.json", kind="config")
    assert first["id"] == again["id"]


def test_more_bytes_than_declared_are_refused_and_nothing_is_kept(vendor_client, draft, settings):
    session = _session(vendor_client, draft, 100)
    response = _chunk(vendor_client, session["id"], 0, b"x" * 150)
    assert response.status_code == 400
    assert "declared size" in str(response.json())
    assert UploadSession.objects.get(pk=session["id"]).received == 0
    assert not Artifact.objects.exists()


def test_a_file_over_the_programme_limit_is_refused_before_any_byte(vendor_client, draft, world):
    response = vendor_client.post("/api/uploads/", {"submission": draft.pk, "kind": "weights",
                                                    "filename": "huge.safetensors", "size": 11 * 1024 * 1024},
                                  format="json")
    assert response.status_code == 400
    assert "at most" in str(response.json())
    assert not UploadSession.objects.exists()


def test_unknown_kind_and_bad_names(vendor_client, draft):
    bad_kind = vendor_client.post("/api/uploads/", {"submission": draft.pk, "kind": "virus", "filename": "a",
                                                    "size": 10}, format="json")
    assert bad_kind.status_code == 400
    traversal = _session(vendor_client, draft, 10, name="../../etc/passwd", kind="other")
    assert traversal["filename"] == "etc/passwd"


def test_the_same_file_twice_is_refused_with_its_name(world, draft, settings):
    upload_bytes(user=world.vendor_user, submission=draft, name="a.txt", data=b"same bytes")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="already in the submission as a.txt"):
        upload_bytes(user=world.vendor_user, submission=draft, name="b.txt", data=b"same bytes")
    assert Artifact.objects.count() == 1
    assert len(_files_under(Path(settings.MEDIA_ROOT))) == 1, "the duplicate's file was removed"


def test_another_vendors_submission_answers_404(world, draft):
    other = APIClient()
    other.force_login(world.other_vendor_user)
    response = other.post("/api/uploads/", {"submission": draft.pk, "kind": "other", "filename": "x", "size": 1},
                          format="json")
    assert response.status_code == 404


def test_another_vendors_upload_session_answers_404(vendor_client, draft, world):
    session = _session(vendor_client, draft, 10)
    other = APIClient()
    other.force_login(world.other_vendor_user)
    assert _chunk(other, session["id"], 0, b"0123456789").status_code == 404
    assert other.get(f"/api/uploads/{session['id']}/").status_code == 404


def test_a_second_open_draft_is_refused(vendor_client, draft, world):
    response = vendor_client.post("/api/submissions/", {"project": world.project.pk}, format="json")
    assert response.status_code == 400
    assert "open draft" in str(response.json())
    assert Submission.objects.filter(project=world.project).count() == 1


def test_submit_needs_artifacts_and_a_signature(vendor_client, draft, world):
    response = vendor_client.post(f"/api/submissions/{draft.pk}/submit/")
    assert response.status_code == 400 and "at least one artifact" in str(response.json())
    upload_bytes(user=world.vendor_user, submission=draft, name="a.txt", data=b"x")
    response = vendor_client.post(f"/api/submissions/{draft.pk}/submit/")
    assert response.status_code == 400 and "Sign the declaration" in str(response.json())
    draft.refresh_from_db()
    assert draft.status == Submission.Status.DRAFT


def test_declaration_rules(vendor_client, draft):
    url = f"/api/submissions/{draft.pk}/declaration/"
    contradiction = vendor_client.put(url, {"from_scratch": True, "base_models": [
        {"component": "backbone", "name": "meta-llama/Llama-3.1-8B"}]}, format="json")
    assert contradiction.status_code == 400 and "from scratch" in str(contradiction.json())
    bad_component = vendor_client.put(url, {"from_scratch": False, "base_models": [
        {"component": "engine", "name": "x"}]}, format="json")
    assert bad_component.status_code == 400
    ok = vendor_client.put(url, {"from_scratch": False, "gpu_hours": "1200.5", "base_models": [
        {"component": "vision_encoder", "name": "openai/clip-vit-large-patch14", "license": "MIT"}]},
        format="json")
    assert ok.status_code == 200
    unsigned = vendor_client.post(f"/api/submissions/{draft.pk}/sign/", {"signatory_name": "Kim"}, format="json")
    assert unsigned.status_code == 400 and "Confirm" in str(unsigned.json())
    signed = vendor_client.post(f"/api/submissions/{draft.pk}/sign/", {"signatory_name": "Kim", "attest": True},
                                format="json")
    assert signed.status_code == 200 and len(signed.json()["signed_sha256"]) == 64
    # Changing the declaration removes the signature: what was signed is what is filed.
    vendor_client.put(url, {"from_scratch": False, "base_models": []}, format="json")
    assert vendor_client.get(url).json()["signed_at"] is None


def test_declared_third_party_code_is_validated_signed_and_shown(vendor_client, draft, world, client):
    url = f"/api/submissions/{draft.pk}/declaration/"
    nameless = vendor_client.put(url, {"third_party_code": [{"name": " ", "use": "inference"}]}, format="json")
    assert nameless.status_code == 400 and "name the project" in str(nameless.json())
    bad_use = vendor_client.put(url, {"third_party_code": [{"name": "vllm", "use": "serving"}]}, format="json")
    assert bad_use.status_code == 400 and "training, inference, other" in str(bad_use.json())
    entry = {"name": "vllm", "version": "0.33.0", "license": "Apache-2.0", "use": "Inference",
             "source": "https://github.com/vllm-project/vllm"}
    ok = vendor_client.put(url, {"from_scratch": True, "third_party_code": [entry]}, format="json")
    assert ok.status_code == 200
    assert ok.json()["third_party_code"] == [{**entry, "use": "inference"}]
    signed = vendor_client.post(f"/api/submissions/{draft.pk}/sign/", {"signatory_name": "Kim", "attest": True},
                                format="json").json()
    # The signature covers the declared code: the canonical JSON holds it.
    draft.declaration.refresh_from_db()
    canonical = json.loads(services.declaration_canonical_json(draft.declaration))
    assert canonical["third_party_code"][0]["name"] == "vllm"
    assert hashlib.sha256(services.declaration_canonical_json(draft.declaration)).hexdigest() == \
        signed["signed_sha256"]
    # The web form reads the same list back, one line per entry, and parses it again.
    client.force_login(world.vendor_user)
    page = client.get(f"/submissions/{draft.pk}/edit/").content.decode()
    assert "vllm | 0.33.0 | Apache-2.0 | inference | https://github.com/vllm-project/vllm" in page
    bad_line = client.post(f"/submissions/{draft.pk}/declaration/", {"third_party_code": "| 1.0 | MIT | training"},
                           follow=True)
    assert "name the project" in bad_line.content.decode()
    draft.declaration.refresh_from_db()
    assert draft.declaration.third_party_code[0]["name"] == "vllm", "a rejected form changes nothing"


def test_declaration_signed_before_third_party_code_existed_still_verifies(draft, world):
    """Declarations signed before the field existed hash the same: the key is left out when empty."""
    services.declaration_update(user=world.vendor_user, submission=draft, from_scratch=True, base_models=[])
    payload = json.loads(services.declaration_canonical_json(Declaration.objects.get(submission=draft)))
    assert "third_party_code" not in payload
    assert set(payload) == {"submission", "from_scratch", "base_models", "gpu_hours", "training_flops",
                            "data_summary", "signatory_name"}


def test_submitted_submissions_are_frozen(world, draft, vendor_client):
    upload_bytes(user=world.vendor_user, submission=draft, name="a.txt", data=b"x")
    services.declaration_sign(user=world.vendor_user, submission=draft, signatory_name="Kim", attest=True)
    services.submission_submit(user=world.vendor_user, submission=draft)
    response = vendor_client.post("/api/uploads/", {"submission": draft.pk, "kind": "other", "filename": "late",
                                                    "size": 3}, format="json")
    assert response.status_code == 400 and "already submitted" in str(response.json())
    artifact = draft.artifacts.first()
    assert vendor_client.delete(f"/api/artifacts/{artifact.pk}/").status_code == 400

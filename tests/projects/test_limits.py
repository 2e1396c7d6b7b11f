"""Every vendor-controlled field has a limit, enforced alike by the form, the API and the service
(issue #10): over the limit, a clear error naming the field and the limit; at the limit, accepted.
The numbers come from projects.limits, the one place that sets them."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from compliance.forms import FindingDecisionForm, FindingMessageForm, SubmissionDecisionForm
from compliance.models import CheckRun, Finding
from compliance.services import decisions, threads
from projects import limits, services, uploads
from projects.forms import ArtifactUploadForm, DeclarationForm, DeclarationSignForm, SubmissionOpenForm
from projects.models import Artifact, Declaration, Submission, UploadSession
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def draft(world):
    return services.submission_open(user=world.vendor_user, project=world.project)


def _rows(n: int, **extra) -> list[dict]:
    return [{"component": "other", "name": f"model-{i}", **extra} for i in range(n)]


def _code_rows(n: int, **extra) -> list[dict]:
    return [{"name": f"lib-{i}", "use": "inference", **extra} for i in range(n)]


def _update(world, draft, **fields):
    return services.declaration_update(user=world.vendor_user, submission=draft,
                                       from_scratch=fields.pop("from_scratch", False),
                                       base_models=fields.pop("base_models", []), **fields)


# ------------------------------------------------------------------ declaration texts and rows

# field, the value at the limit, the value over it, what the error must say
DECLARATION_CASES = {
    "data_summary": ("x" * limits.DATA_SUMMARY_CHARS, "x" * (limits.DATA_SUMMARY_CHARS + 1),
                     ["Training data summary", "20,000 characters"]),
    "base_models": (_rows(limits.BASE_MODEL_ROWS), _rows(limits.BASE_MODEL_ROWS + 1),
                    ["Base models", "100 entries"]),
    "third_party_code": (_code_rows(limits.THIRD_PARTY_CODE_ROWS), _code_rows(limits.THIRD_PARTY_CODE_ROWS + 1),
                         ["Third-party code", "100 entries"]),
}
ROW_TEXT_CASES = {
    "base_models": (_rows(1, source="s" * limits.ROW_TEXT_CHARS), _rows(1, source="s" * (limits.ROW_TEXT_CHARS + 1))),
    "third_party_code": (_code_rows(1, license="l" * limits.ROW_TEXT_CHARS),
                         _code_rows(1, license="l" * (limits.ROW_TEXT_CHARS + 1))),
}


@pytest.mark.parametrize("field", sorted(DECLARATION_CASES))
def test_declaration_limits_in_the_service(world, draft, field):
    at_limit, over, words = DECLARATION_CASES[field]
    with pytest.raises(ValidationError) as error:
        _update(world, draft, **{field: over})
    message = " ".join(error.value.message_dict[field])
    assert all(word in message for word in words), message
    assert Declaration.objects.get(submission=draft).data_summary == "", "a refused update changes nothing"
    declaration = _update(world, draft, **{field: at_limit})
    assert len(getattr(declaration, field)) == len(at_limit)


@pytest.mark.parametrize("field", sorted(DECLARATION_CASES))
def test_declaration_limits_in_the_api(world, draft, field):
    at_limit, over, words = DECLARATION_CASES[field]
    client = _api(world.vendor_user)
    url = f"/api/submissions/{draft.pk}/declaration/"
    refused = client.put(url, {"from_scratch": False, field: over}, format="json")
    assert refused.status_code == 400
    message = str(refused.json()[field])
    assert all(word in message for word in words), message
    accepted = client.put(url, {"from_scratch": False, field: at_limit}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert len(accepted.json()[field]) == len(at_limit)


def _as_form_text(field: str, value) -> str:
    if field == "base_models":
        return "\n".join(f"{r['component']} | {r['name']} | {r.get('source', '')} | " for r in value)
    if field == "third_party_code":
        return "\n".join(f"{r['name']} | | {r.get('license', '')} | {r['use']} |" for r in value)
    return value


@pytest.mark.parametrize("field", sorted(DECLARATION_CASES))
def test_declaration_limits_in_the_form(field):
    at_limit, over, words = DECLARATION_CASES[field]
    refused = DeclarationForm({field: _as_form_text(field, over)})
    assert not refused.is_valid()
    message = " ".join(refused.errors[field])
    assert all(word in message for word in words), message
    accepted = DeclarationForm({field: _as_form_text(field, at_limit)})
    assert accepted.is_valid(), accepted.errors
    assert len(accepted.cleaned_data[field]) == len(at_limit)


@pytest.mark.parametrize("field", sorted(ROW_TEXT_CASES))
def test_each_text_of_a_row_is_bounded_in_service_api_and_form(world, draft, field):
    at_limit, over = ROW_TEXT_CASES[field]
    with pytest.raises(ValidationError, match="entry 1, .*at most 500 characters"):
        _update(world, draft, **{field: over})
    client = _api(world.vendor_user)
    url = f"/api/submissions/{draft.pk}/declaration/"
    refused = client.put(url, {field: over}, format="json")
    assert refused.status_code == 400 and "at most 500 characters" in str(refused.json()[field])
    form = DeclarationForm({field: _as_form_text(field, over)})
    assert not form.is_valid() and "at most 500 characters" in str(form.errors[field])
    assert client.put(url, {field: at_limit}, format="json").status_code == 200
    assert DeclarationForm({field: _as_form_text(field, at_limit)}).is_valid()
    assert _update(world, draft, **{field: at_limit})


def test_the_declaration_page_shows_the_limit_and_saves_nothing(world, draft, client):
    client.force_login(world.vendor_user)
    page = client.post(f"/submissions/{draft.pk}/declaration/",
                       {"data_summary": "x" * (limits.DATA_SUMMARY_CHARS + 1)}, follow=True).content.decode()
    assert "Training data summary: at most 20,000 characters." in page
    assert Declaration.objects.get(submission=draft).data_summary == ""
    # The browser is told too: the text area stops at the limit.
    assert f'maxlength="{limits.DATA_SUMMARY_CHARS}"' in client.get(f"/submissions/{draft.pk}/edit/").content.decode()


def test_the_issue_10_declaration_is_refused(world, draft):
    """The declaration of the issue: a 1 MB data summary and 1,000 base-model rows."""
    client = _api(world.vendor_user)
    response = client.put(f"/api/submissions/{draft.pk}/declaration/",
                          {"data_summary": "x" * 1_000_000, "base_models": _rows(1000)}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"data_summary", "base_models"}


def test_declared_compute_is_bounded(world, draft):
    with pytest.raises(ValidationError, match="GPU-hours"):
        _update(world, draft, gpu_hours=Decimal("99999999999999"))
    with pytest.raises(ValidationError, match="FLOPs"):
        _update(world, draft, training_flops=float("inf"))
    with pytest.raises(ValidationError, match="FLOPs"):
        _update(world, draft, training_flops=1e33)
    assert _update(world, draft, gpu_hours=limits.GPU_HOURS_MAX, training_flops=limits.TRAINING_FLOPS_MAX)


# ------------------------------------------------------------------ the note, the signature

def test_the_note_to_reviewers_is_bounded(world):
    over, at_limit = "n" * (limits.NOTE_CHARS + 1), "n" * limits.NOTE_CHARS
    with pytest.raises(ValidationError) as error:
        services.submission_open(user=world.vendor_user, project=world.project, note=over)
    assert "Note to reviewers: at most 5,000 characters" in str(error.value)
    form = SubmissionOpenForm({"note": over})
    assert not form.is_valid() and "Note to reviewers: at most 5,000 characters." in form.errors["note"]
    client = _api(world.vendor_user)
    refused = client.post("/api/submissions/", {"project": world.project.pk, "note": over}, format="json")
    assert refused.status_code == 400 and "5,000" in str(refused.json()["note"])
    assert not Submission.objects.exists()
    accepted = client.post("/api/submissions/", {"project": world.project.pk, "note": at_limit}, format="json")
    assert accepted.status_code == 201 and len(Submission.objects.get().note) == limits.NOTE_CHARS
    assert SubmissionOpenForm({"note": at_limit}).is_valid()


def test_the_signatory_name_is_bounded(world, draft):
    over, at_limit = "K" * (limits.SIGNATORY_NAME_CHARS + 1), "K" * limits.SIGNATORY_NAME_CHARS
    with pytest.raises(ValidationError, match="Your full name: at most 200 characters"):
        services.declaration_sign(user=world.vendor_user, submission=draft, signatory_name=over, attest=True)
    form = DeclarationSignForm({"signatory_name": over, "attest": "on"})
    assert not form.is_valid() and "Your full name: at most 200 characters." in form.errors["signatory_name"]
    client = _api(world.vendor_user)
    url = f"/api/submissions/{draft.pk}/sign/"
    refused = client.post(url, {"signatory_name": over, "attest": True}, format="json")
    assert refused.status_code == 400 and "200" in str(refused.json()["signatory_name"])
    assert not Declaration.objects.get(submission=draft).is_signed
    assert DeclarationSignForm({"signatory_name": at_limit, "attest": "on"}).is_valid()
    signed = client.post(url, {"signatory_name": at_limit, "attest": True}, format="json")
    assert signed.status_code == 200 and Declaration.objects.get(submission=draft).signatory_name == at_limit


# ------------------------------------------------------------------ replies and justifications

@pytest.fixture
def finding(world):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    return Finding.objects.create(check_run=run, submission=submission, severity="high", category="t", code="t",
                                  title="t")


def test_a_message_on_a_finding_is_bounded(world, finding):
    over, at_limit = "r" * (limits.MESSAGE_CHARS + 1), "r" * limits.MESSAGE_CHARS
    with pytest.raises(ValidationError, match="Message: at most 10,000 characters"):
        threads.message_post(user=world.vendor_user, finding=finding, body=over)
    form = FindingMessageForm({"body": over})
    assert not form.is_valid() and "Message: at most 10,000 characters." in form.errors["body"]
    client = _api(world.vendor_user)
    refused = client.post(f"/api/findings/{finding.pk}/messages/", {"body": over}, format="json")
    assert refused.status_code == 400 and "10,000" in str(refused.json()["body"])
    assert not finding.messages.exists(), "never stored cut short"
    assert FindingMessageForm({"body": at_limit}).is_valid()
    assert client.post(f"/api/findings/{finding.pk}/messages/", {"body": at_limit}, format="json").status_code == 201
    assert finding.messages.get().body == at_limit


def test_a_justification_is_bounded(world, finding):
    over, at_limit = "j" * (limits.JUSTIFICATION_CHARS + 1), "j" * limits.JUSTIFICATION_CHARS
    with pytest.raises(ValidationError, match="Justification: at most 10,000 characters"):
        decisions.finding_decide(user=world.reviewer, finding=finding, decision="waived", justification=over)
    for form_class in (FindingDecisionForm, SubmissionDecisionForm):
        form = form_class({"decision": "confirmed" if form_class is FindingDecisionForm else "rejected",
                           "justification": over})
        assert not form.is_valid() and "Justification: at most 10,000 characters." in form.errors["justification"]
    client = _api(world.reviewer)
    refused = client.post(f"/api/findings/{finding.pk}/decide/", {"decision": "waived", "justification": over},
                          format="json")
    assert refused.status_code == 400 and "10,000" in str(refused.json()["justification"])
    accepted = client.post(f"/api/findings/{finding.pk}/decide/", {"decision": "waived", "justification": at_limit},
                           format="json")
    assert accepted.status_code == 200
    assert accepted.json()["decisions"][0]["justification"] == at_limit


# ------------------------------------------------------------------ file names and chunks

# 85 Korean characters are 255 bytes in UTF-8; one more is 258.
NAME_AT_LIMIT = "가" * 85
NAME_OVER = "가" * 86


def test_a_file_name_is_bounded_in_bytes(world, draft):
    with pytest.raises(ValidationError, match="at most 255 bytes in UTF-8 \\(this one has 258\\)"):
        uploads.upload_session_create(user=world.vendor_user, submission=draft, kind="other", filename=NAME_OVER,
                                      size=10)
    with pytest.raises(ValidationError, match="255 bytes"):
        uploads.artifact_upload_file(user=world.vendor_user, submission=draft, kind="other", filename=NAME_OVER,
                                     fileobj=io.BytesIO(b"data"))
    client = _api(world.vendor_user)
    refused = client.post("/api/uploads/", {"submission": draft.pk, "kind": "other", "filename": NAME_OVER,
                                            "size": 10}, format="json")
    assert refused.status_code == 400 and "255 bytes" in str(refused.json()["filename"])
    form = ArtifactUploadForm({"kind": "other"}, {"file": SimpleUploadedFile(NAME_OVER, b"data")})
    assert not form.is_valid() and "255 bytes" in str(form.errors["file"])
    assert not UploadSession.objects.exists() and not Artifact.objects.exists()
    accepted = client.post("/api/uploads/", {"submission": draft.pk, "kind": "other", "filename": NAME_AT_LIMIT,
                                             "size": 10}, format="json")
    assert accepted.status_code == 201 and accepted.json()["filename"] == NAME_AT_LIMIT
    assert ArtifactUploadForm({"kind": "other"}, {"file": SimpleUploadedFile(NAME_AT_LIMIT, b"data")}).is_valid()
    artifact = uploads.artifact_upload_file(user=world.vendor_user, submission=draft, kind="other",
                                            filename=NAME_AT_LIMIT, fileobj=io.BytesIO(b"data"))
    assert artifact.original_name == NAME_AT_LIMIT


def test_a_chunk_over_the_limit_is_refused_before_it_is_read(world, draft):
    world.programme.max_artifact_bytes = limits.UPLOAD_CHUNK_BYTES * 2
    world.programme.save()
    session = uploads.upload_session_create(user=world.vendor_user, submission=draft, kind="other",
                                            filename="big.bin", size=limits.UPLOAD_CHUNK_BYTES * 2)

    class Unread(io.RawIOBase):
        def read(self, n=-1):
            raise AssertionError("the body of a refused chunk is not read")

    with pytest.raises(ValidationError, match="A chunk is at most 67,108,864 bytes"):
        uploads.upload_chunk_write(user=world.vendor_user, session=session, offset=0, stream=Unread(),
                                   length=limits.UPLOAD_CHUNK_BYTES + 1)
    session.refresh_from_db()
    assert session.received == 0


def test_the_limit_is_told_in_korean_too(world, draft):
    client = _api(world.vendor_user)
    response = client.put(f"/api/submissions/{draft.pk}/declaration/",
                          {"data_summary": "x" * (limits.DATA_SUMMARY_CHARS + 1)}, format="json",
                          HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 400
    assert response.json()["data_summary"] == ["학습 데이터 요약: 최대 20,000자까지 입력할 수 있습니다."]
    with pytest.raises(ValidationError) as error:
        from django.utils import translation

        with translation.override("ko"):
            _update(world, draft, base_models=_rows(limits.BASE_MODEL_ROWS + 1))
    assert error.value.message_dict["base_models"] == ["기반 모델: 최대 100개 항목까지 입력할 수 있습니다(입력한 항목은 101개)."]


def test_the_admin_keeps_the_limits_too(world, draft, client):
    """The admin saves through ModelForms, not services: the model fields carry the same limits."""
    client.force_login(world.admin)
    declaration = Declaration.objects.get(submission=draft)
    url = f"/admin/projects/declaration/{declaration.pk}/change/"
    form = {"submission": draft.pk, "base_models": "[]", "third_party_code": "[]", "gpu_hours": "", "training_flops": "",
            "signatory_name": ""}
    refused = client.post(url, {**form, "data_summary": "x" * (limits.DATA_SUMMARY_CHARS + 1)})
    assert refused.status_code == 200, "the change form is shown again with the error"
    assert "Training data summary: at most 20,000 characters (this one has 20,001)." in refused.content.decode()
    rows = client.post(url, {**form, "data_summary": "", "base_models": __import__("json").dumps(_rows(101))})
    assert "Base models: at most 100 entries (this one has 101)." in rows.content.decode()
    assert Declaration.objects.get(pk=declaration.pk).data_summary == ""
    accepted = client.post(url, {**form, "data_summary": "x" * limits.DATA_SUMMARY_CHARS})
    assert accepted.status_code == 302, accepted.content.decode()[:2000]
    assert len(Declaration.objects.get(pk=declaration.pk).data_summary) == limits.DATA_SUMMARY_CHARS

"""Conversations on findings: appended never overwritten, who is waited on, who may write,
attachments through intake, the page form, the API and the audit trail."""

from __future__ import annotations

import hashlib
import importlib
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from rest_framework.test import APIClient

from compliance.models import CheckRun, Finding, FindingMessage
from compliance.selectors import findings_with_waiting_on
from compliance.services.decisions import finding_decide
from compliance.services.runs import check_run_execute
from compliance.services.threads import message_post
from portal.models import AuditEvent
from portal.services import audit_record
from projects import limits
from projects.models import Artifact
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

WAITING_FOR_VENDOR, WAITING_FOR_REVIEWER, NOBODY = "vendor", "reviewer", "nobody"


@pytest.fixture
def finding(world):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    return Finding.objects.create(check_run=run, submission=submission, severity="high", category="lineage",
                                  code="derived", title="Layers match a known model")


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _waiting(finding: Finding) -> tuple[str, str]:
    """Who is waited on, by the model property and by the SQL annotation lists use: they must agree."""
    fresh = Finding.objects.get(pk=finding.pk)
    annotated = findings_with_waiting_on(Finding.objects.filter(pk=finding.pk)).get()
    return fresh.waiting_on, annotated.waiting_on_value


# ------------------------------------------------------------------ the service

def test_a_second_reply_is_appended_and_the_first_is_kept(world, finding):
    message_post(user=world.vendor_user, finding=finding, body="We re-initialised the encoder.")
    message_post(user=world.vendor_user, finding=finding, body="Training logs are now attached to v2.")
    thread = list(finding.messages.order_by("created_at", "id"))
    assert [m.body for m in thread] == ["We re-initialised the encoder.", "Training logs are now attached to v2."]
    assert {(m.side, m.kind, m.author_id) for m in thread} == {("vendor", "reply", world.vendor_user.pk)}
    finding.refresh_from_db()
    assert finding.vendor_reply == "", "the legacy column is no longer written"


def test_who_is_waited_on_follows_the_thread_and_the_status(world, finding):
    assert _waiting(finding) == (WAITING_FOR_REVIEWER, WAITING_FOR_REVIEWER), "open, nobody wrote: decide it"
    message_post(user=world.reviewer, finding=finding, body="Which checkpoint did you start from?")
    assert _waiting(finding) == (WAITING_FOR_VENDOR, WAITING_FOR_VENDOR)
    message_post(user=world.reviewer, finding=finding, body="Internal: compare with v1.", kind="note")
    assert _waiting(finding) == (WAITING_FOR_VENDOR, WAITING_FOR_VENDOR), "a note does not answer the question"
    message_post(user=world.vendor_user, finding=finding, body="From random initialisation; seed 1234.")
    assert _waiting(finding) == (WAITING_FOR_REVIEWER, WAITING_FOR_REVIEWER)
    message_post(user=world.admin, finding=finding, body="Noted.", kind="note")
    assert _waiting(finding) == (WAITING_FOR_REVIEWER, WAITING_FOR_REVIEWER)
    message_post(user=world.reviewer, finding=finding, body="Please send the seed log.")
    assert _waiting(finding) == (WAITING_FOR_VENDOR, WAITING_FOR_VENDOR)
    finding_decide(user=world.reviewer, finding=finding, decision="confirmed")
    assert _waiting(finding) == (NOBODY, NOBODY), "decided: nobody waits, whatever the thread says"


def test_the_vendor_always_replies_and_a_reviewer_asks_by_default(world, finding):
    vendor = message_post(user=world.vendor_user, finding=finding, body="Answer", kind="note")
    reviewer = message_post(user=world.reviewer, finding=finding, body="Question")
    assert (vendor.side, vendor.kind) == ("vendor", "reply")
    assert (reviewer.side, reviewer.kind) == ("ministry", "question")
    with pytest.raises(ValidationError):
        message_post(user=world.reviewer, finding=finding, body="x", kind="reply")


def test_only_the_vendor_and_the_reviewers_who_may_decide_write(world, finding):
    for user in (world.auditor, world.reviewer_unassigned, world.other_vendor_user):
        with pytest.raises(PermissionDenied):
            message_post(user=user, finding=finding, body="hello")
    message_post(user=world.officer, finding=finding, body="Officers may ask too.")
    assert finding.messages.count() == 1


def test_a_message_is_bounded_and_never_stored_cut_short(world, finding):
    over, at_limit = "m" * (limits.MESSAGE_CHARS + 1), "m" * limits.MESSAGE_CHARS
    with pytest.raises(ValidationError, match="Message: at most 10,000 characters"):
        message_post(user=world.vendor_user, finding=finding, body=over)
    with pytest.raises(ValidationError, match="Write a message"):
        message_post(user=world.vendor_user, finding=finding, body="   ")
    assert not finding.messages.exists()
    assert message_post(user=world.vendor_user, finding=finding, body=at_limit).body == at_limit


def test_each_message_is_an_audit_event(world, finding):
    message = message_post(user=world.reviewer, finding=finding, body="Which checkpoint?")
    event = AuditEvent.objects.get(action="finding.message", object_id=str(finding.pk))
    assert event.actor == world.reviewer and event.submission_id == finding.submission_id
    assert event.data["message"] == message.pk and event.data["body"] == "Which checkpoint?"
    assert event.data["side"] == "ministry" and event.data["kind"] == "question"
    long_text = "x" * 5_000
    message_post(user=world.vendor_user, finding=finding, body=long_text)
    event = AuditEvent.objects.filter(action="finding.message").order_by("-id").first()
    assert event.data["body"] == long_text[:2000]
    assert event.data["body_sha256"] == hashlib.sha256(long_text.encode()).hexdigest()


# ------------------------------------------------------------------ attachments

def test_an_attachment_is_stored_hashed_and_checked_by_intake_alone(world, finding):
    data = b"training log line\n" * 100
    message = message_post(user=world.vendor_user, finding=finding, body="Log attached.",
                           attachment_name="seed.log", attachment_file=io.BytesIO(data))
    artifact = message.attachment
    assert artifact.kind == Artifact.Kind.CORRESPONDENCE and artifact.submission_id == finding.submission_id
    assert artifact.sha256 == hashlib.sha256(data).hexdigest() and artifact.size == len(data)
    assert artifact.status == Artifact.Status.QUARANTINED, "not trusted before intake"
    runs = list(CheckRun.objects.filter(artifact=artifact))
    assert [r.check_name for r in runs] == ["intake"]
    client = _client(world.reviewer)
    url = reverse("finding-message-attachment", args=[message.pk])
    assert client.get(url).status_code == 404, "a quarantined file is never served"
    assert check_run_execute(run_id=runs[0].pk, worker="test") == "succeeded"
    artifact.refresh_from_db()
    assert artifact.status == Artifact.Status.ACCEPTED
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert response["X-Content-SHA256"] == artifact.sha256
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert _client(world.other_vendor_user).get(url).status_code == 404


def test_the_same_file_attached_twice_is_linked_not_stored_again(world, finding):
    first = message_post(user=world.vendor_user, finding=finding, body="one", attachment_name="a.txt",
                         attachment_file=io.BytesIO(b"same bytes"))
    second = message_post(user=world.reviewer, finding=finding, body="two", attachment_name="b.txt",
                          attachment_file=io.BytesIO(b"same bytes"))
    assert first.attachment_id == second.attachment_id
    assert CheckRun.objects.filter(artifact=first.attachment).count() == 1


def test_an_attachment_over_the_limit_is_refused_and_nothing_is_written(world, finding, settings):
    big = io.BytesIO(b"x" * (limits.MESSAGE_ATTACHMENT_BYTES + 1))
    with pytest.raises(ValidationError, match="at most 100 MiB"):
        message_post(user=world.vendor_user, finding=finding, body="big", attachment_name="big.bin",
                     attachment_file=big)
    assert not finding.messages.exists()
    assert not Artifact.objects.filter(kind=Artifact.Kind.CORRESPONDENCE).exists()


def test_correspondence_is_not_a_kind_vendors_upload_as_a_deliverable(world):
    from projects.uploads import artifact_upload_file
    from projects.services import submission_open

    draft = submission_open(user=world.vendor_user, project=world.project)
    with pytest.raises(ValidationError):
        artifact_upload_file(user=world.vendor_user, submission=draft, kind="correspondence", filename="x.txt",
                             fileobj=io.BytesIO(b"x"))


# ------------------------------------------------------------------ the page

def test_the_page_shows_the_thread_and_who_is_waited_on(world, finding, client):
    message_post(user=world.reviewer, finding=finding, body="Which checkpoint did you start from?")
    client.force_login(world.vendor_user)
    page = client.get(reverse("submission-detail", args=[finding.submission_id])).content.decode()
    assert "Which checkpoint did you start from?" in page and "Waiting for you" in page
    assert reverse("finding-message", args=[finding.pk]) in page
    client.force_login(world.reviewer)
    page = client.get(reverse("submission-detail", args=[finding.submission_id])).content.decode()
    assert "Waiting for the vendor" in page and "Ask the vendor" in page and "Add a note" in page
    client.force_login(world.auditor)
    page = client.get(reverse("submission-detail", args=[finding.submission_id])).content.decode()
    assert "Which checkpoint did you start from?" in page
    assert reverse("finding-message", args=[finding.pk]) not in page, "auditors read only"


def test_a_refused_message_keeps_its_text_and_shows_the_error_beside_the_field(world, finding, client):
    client.force_login(world.vendor_user)
    typed = "My long answer " * 700  # 10,500 characters
    response = client.post(reverse("finding-message", args=[finding.pk]), {"body": typed})
    assert response.status_code == 400
    page = response.content.decode()
    assert typed.strip() in page, "the input is kept"
    assert f'id="fm-{finding.pk}-body-error"' in page and "Message: at most 10,000 characters." in page
    assert not finding.messages.exists()


def test_a_reviewer_posts_a_note_from_the_page_with_an_attachment(world, finding, client):
    client.force_login(world.reviewer)
    upload = SimpleUploadedFile("minutes.txt", b"meeting minutes\n")
    response = client.post(reverse("finding-message", args=[finding.pk]),
                           {"body": "Minutes of our call.", "kind": "note", "attachment": upload})
    assert response.status_code == 302
    message = finding.messages.get()
    assert (message.side, message.kind, message.attachment.original_name) == ("ministry", "note", "minutes.txt")


@pytest.mark.parametrize("role,expected", [("anonymous", 302), ("other_vendor", 404), ("reviewer_unassigned", 404),
                                           ("auditor", 403), ("vendor", 302), ("reviewer", 302), ("admin", 302),
                                           ("officer", 302)])
def test_who_may_post_on_the_page(world, finding, client, role, expected):
    if role != "anonymous":
        client.force_login(world.users()[role])
    response = client.post(reverse("finding-message", args=[finding.pk]), {"body": "hello"})
    assert response.status_code == expected
    written = role in {"vendor", "reviewer", "admin", "officer"}
    assert finding.messages.exists() == written
    if role == "anonymous":
        assert response["Location"].startswith("/accounts/login/")


def test_the_page_reads_the_threads_in_a_fixed_number_of_queries(world, finding, client,
                                                                django_assert_max_num_queries):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    client.force_login(world.reviewer)
    url = reverse("submission-detail", args=[finding.submission_id])
    message_post(user=world.vendor_user, finding=finding, body="one")
    with CaptureQueriesContext(conn) as one:
        client.get(url)
    for n in range(6):
        message_post(user=world.vendor_user if n % 2 else world.reviewer, finding=finding, body=f"m{n}",
                     attachment_name=f"f{n}.txt", attachment_file=io.BytesIO(f"file {n}".encode()))
    with CaptureQueriesContext(conn) as seven:
        client.get(url)
    # The attachments add artifacts and intake runs the page lists; the thread itself adds nothing.
    assert len(seven.captured_queries) == len(one.captured_queries)


# ------------------------------------------------------------------ the API

def test_the_api_lists_and_posts_messages(world, finding):
    vendor = _client(world.vendor_user)
    url = f"/api/findings/{finding.pk}/messages/"
    posted = vendor.post(url, {"body": "Our answer."}, format="json")
    assert posted.status_code == 201 and posted.json()["side"] == "vendor" and posted.json()["kind"] == "reply"
    reviewer = _client(world.reviewer)
    asked = reviewer.post(url, {"body": "And the seed?", "kind": "question"}, format="json")
    assert asked.status_code == 201
    upload = SimpleUploadedFile("seed.txt", b"seed 1234\n")
    with_file = vendor.post(url, {"body": "Seed log.", "attachment": upload}, format="multipart")
    assert with_file.status_code == 201
    assert with_file.json()["attachment"]["sha256"] == hashlib.sha256(b"seed 1234\n").hexdigest()
    assert with_file.json()["attachment"]["status"] == "quarantined"
    listed = _client(world.auditor).get(url).json()
    assert [m["body"] for m in listed] == ["Our answer.", "And the seed?", "Seed log."]
    detail = reviewer.get(f"/api/findings/{finding.pk}/").json()
    assert detail["waiting_on"] == "reviewer" and "vendor_reply" not in detail
    reviewer.post(url, {"body": "One more question.", "kind": "question"}, format="json")
    listed_findings = reviewer.get(f"/api/findings/?submission={finding.submission_id}").json()
    rows = listed_findings["results"] if isinstance(listed_findings, dict) else listed_findings
    assert [row["waiting_on"] for row in rows if row["id"] == finding.pk] == ["vendor"]
    assert reviewer.get(f"/api/findings/{finding.pk}/").json()["waiting_on"] == "vendor"
    refused = vendor.post(url, {"body": "x" * (limits.MESSAGE_CHARS + 1)}, format="json")
    assert refused.status_code == 400 and "10,000" in str(refused.json()["body"])


@pytest.mark.parametrize("role,get_status,post_status", [
    ("anonymous", 403, 403), ("other_vendor", 404, 404), ("reviewer_unassigned", 404, 404), ("auditor", 200, 403),
    ("vendor", 200, 201), ("reviewer", 200, 201), ("admin", 200, 201)])
def test_the_api_answers_404_for_another_vendors_finding(world, finding, role, get_status, post_status):
    client = APIClient() if role == "anonymous" else _client(world.users()[role])
    url = f"/api/findings/{finding.pk}/messages/"
    got = client.get(url)
    assert got.status_code in ({401, 403} if role == "anonymous" else {get_status})
    posted = client.post(url, {"body": "probe"}, format="json")
    assert posted.status_code in ({401, 403} if role == "anonymous" else {post_status})
    assert finding.messages.exists() == (post_status == 201)
    if get_status == 404:
        assert "probe" not in got.content.decode() and "Layers match" not in got.content.decode()


def test_the_message_list_endpoint_reads_in_a_fixed_number_of_queries(world, finding):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    client = _client(world.reviewer)
    url = f"/api/findings/{finding.pk}/messages/"
    message_post(user=world.vendor_user, finding=finding, body="one")
    with CaptureQueriesContext(conn) as one:
        assert client.get(url).status_code == 200
    for n in range(8):
        message_post(user=world.reviewer, finding=finding, body=f"m{n}", attachment_name=f"f{n}.txt",
                     attachment_file=io.BytesIO(f"file {n}".encode()))
    with CaptureQueriesContext(conn) as nine:
        assert len(client.get(url).json()) == 9
    assert len(nine.captured_queries) == len(one.captured_queries)


def test_the_admin_shows_messages_and_changes_none(world, finding, client):
    message = message_post(user=world.vendor_user, finding=finding, body="kept as written")
    world.admin.is_staff = world.admin.is_superuser = True
    world.admin.save()
    client.force_login(world.admin)
    change = reverse("admin:compliance_findingmessage_change", args=[message.pk])
    assert client.get(change).status_code == 200, "readable"
    client.post(change, {"body": "rewritten"})
    client.post(reverse("admin:compliance_findingmessage_delete", args=[message.pk]), {"post": "yes"})
    message.refresh_from_db()
    assert message.body == "kept as written"


def test_the_deprecated_reply_endpoint_appends_a_message(world, finding):
    client = _client(world.vendor_user)
    for text in ("first", "second"):
        assert client.post(f"/api/findings/{finding.pk}/reply/", {"reply": text}, format="json").status_code == 200
    assert list(finding.messages.values_list("body", flat=True)) == ["first", "second"]


# ------------------------------------------------------------------ the data migration

def _migrate_vendor_replies() -> None:
    module = importlib.import_module("compliance.migrations.0011_vendor_replies_to_messages")
    state_apps = MigrationExecutor(connection).loader.project_state(
        ("compliance", "0011_vendor_replies_to_messages")).apps
    module.vendor_replies_to_messages(state_apps, None)


def test_the_migration_moves_each_vendor_reply_into_a_first_message(world, finding):
    run, submission = finding.check_run, finding.submission
    # The reply as the portal wrote it before threads: an overwritten column, an audit event per reply.
    second_member = __import__("tests.factories", fromlist=["make_user"]).make_user(
        "vendor-a2", "vendor", world.vendor_a)
    audit_record(actor=world.vendor_user, action="finding.reply", object_type="finding", object_id=finding.pk,
                 data={"reply": "first answer"})
    replied = audit_record(actor=second_member, action="finding.reply", object_type="finding",
                           object_id=finding.pk, data={"reply": "final answer"})
    Finding.objects.filter(pk=finding.pk).update(vendor_reply="final answer")
    without_event = Finding.objects.create(check_run=run, submission=submission, severity="low", category="t",
                                           code="t", title="imported", vendor_reply="imported answer")
    silent = Finding.objects.create(check_run=run, submission=submission, severity="low", category="t", code="t",
                                    title="no reply")
    _migrate_vendor_replies()
    moved = FindingMessage.objects.get(finding=finding)
    assert (moved.body, moved.author_id, moved.side, moved.kind) == ("final answer", second_member.pk, "vendor",
                                                                     "reply")
    assert moved.created_at == replied.created_at
    fallback = FindingMessage.objects.get(finding=without_event)
    assert fallback.author_id == submission.created_by_id and fallback.created_at == without_event.created_at
    assert not FindingMessage.objects.filter(finding=silent).exists()
    _migrate_vendor_replies()
    assert FindingMessage.objects.count() == 2, "running it again moves nothing twice"


def test_a_refused_attachment_is_reported_beside_the_file_field(world, finding, client, settings):
    client.force_login(world.vendor_user)
    empty = SimpleUploadedFile("empty.log", b"")
    response = client.post(reverse("finding-message", args=[finding.pk]),
                           {"body": "See the log.", "attachment": empty})
    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="fm-{finding.pk}-attachment-error"' in page and "See the log." in page
    assert not finding.messages.exists()


def test_a_file_name_past_the_limit_is_refused_by_the_service_beside_the_file_field(world, finding, client):
    client.force_login(world.vendor_user)
    named = SimpleUploadedFile("가" * 90 + ".log", b"log line\n")  # 274 bytes of UTF-8
    response = client.post(reverse("finding-message", args=[finding.pk]),
                           {"body": "See the log.", "attachment": named})
    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="fm-{finding.pk}-attachment-error"' in page and "at most 255 bytes" in page
    assert not finding.messages.exists()


def test_an_attachment_under_intake_holds_an_undecided_submission_in_checking_only(world, finding):
    from projects.models import Submission
    from projects.services import submission_status_set

    submission = finding.submission
    submission_status_set(submission=submission, status=Submission.Status.CHECKED)
    CheckRun.objects.filter(submission=submission).update(state=CheckRun.State.SUCCEEDED)
    message = message_post(user=world.vendor_user, finding=finding, body="log", attachment_name="a.log",
                           attachment_file=io.BytesIO(b"a log\n"))
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKING, "not 'checked' while a file is still being checked"
    run = CheckRun.objects.get(artifact=message.attachment)
    check_run_execute(run_id=run.pk, worker="test")
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CHECKED
    # A decided submission keeps its decision while a later attachment is checked.
    submission_status_set(submission=submission, status=Submission.Status.APPROVED)
    message_post(user=world.reviewer, finding=finding, body="minutes", attachment_name="m.txt",
                 attachment_file=io.BytesIO(b"minutes\n"))
    submission.refresh_from_db()
    assert submission.status == Submission.Status.APPROVED

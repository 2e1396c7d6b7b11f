"""With a real Celery worker: a vendor submits, and the assigned reviewer finds the notification
on the portal and the e-mail in the mailbox, sent by the worker after the submission committed.

The worker is another process, so Django's in-memory mailbox would be the worker's: here the
worker writes each message to a file (Django's file-based backend, in a folder this test
passes through the worker's environment) and the test reads it.
"""

from __future__ import annotations

import email
import time
from email import policy

import pytest

from portal.models import Notification, NotificationPreference, Profile
from projects import services as project_services
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mail_dir(tmp_path, monkeypatch):
    """Read by the worker's settings at start (tests/conftest.py copies this environment)."""
    folder = tmp_path / "mail"
    folder.mkdir()
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(folder))
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.go.kr")
    return folder


@pytest.fixture
def worker_with_mail(mail_dir, celery_worker):
    return celery_worker


def messages_in(folder) -> list[email.message.EmailMessage]:
    """The file backend writes one file per connection, messages separated by a line of dashes."""
    found = []
    for path in sorted(folder.glob("*.log")):
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                found.append(email.message_from_string(chunk.strip() + "\n", policy=policy.default))
    return found


def test_submitting_emails_the_assigned_reviewer_through_the_worker(mail_dir, worker_with_mail):
    world = build_world()
    NotificationPreference.objects.create(user=world.reviewer, kind=Notification.Kind.SUBMISSION_RECEIVED,
                                          email="immediately")
    Profile.objects.filter(user=world.reviewer).update(language="ko")
    submission = signed_submission(world=world)
    project_services.submission_submit(user=world.vendor_user, submission=submission)

    row = Notification.objects.get(recipient=world.reviewer, kind=Notification.Kind.SUBMISSION_RECEIVED)
    assert row.url == f"/submissions/{submission.pk}/"
    deadline = time.monotonic() + 90
    mine = []
    while time.monotonic() < deadline and not mine:
        mine = [m for m in messages_in(mail_dir) if m["To"] == "reviewer@example.org"]
        time.sleep(0.3)
    assert mine, f"no e-mail for the reviewer; worker log: {worker_with_mail.log_path.read_text()[-3000:]}"
    [message] = mine
    assert message["Subject"].strip() == "Vendor A이(가) alpha v1을(를) 제출했습니다"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"https://portal.example.go.kr/submissions/{submission.pk}/" in body
    row.refresh_from_db()
    assert row.emailed_at is not None
    # The officer's default for this kind is the daily digest: nothing yet, but the row is there.
    assert not [m for m in messages_in(mail_dir) if m["To"] == "officer@example.org"]
    assert Notification.objects.filter(recipient=world.officer, emailed_at__isnull=True).exists()

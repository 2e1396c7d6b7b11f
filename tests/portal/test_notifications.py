"""Notifications as their recipients meet them: who is told of each event (never the person who
acted), in which language the e-mail arrives and where its link points, and how each person's
e-mail choice (immediately, daily digest, never) is kept.

E-mails go through Django's in-memory backend (pytest-django sets it); the Celery task that
sends an immediate e-mail runs in this process (Celery's eager mode, the real task), after the
action's transaction commits.
"""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from compliance.models import CheckRun, Finding
from compliance.services import decisions
from compliance.services.runs import check_run_execute
from portal.models import Notification, NotificationPreference, Profile
from portal.notifications import notification_digest_send, notify
from projects import services as project_services
from projects.models import Milestone
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

Kind = Notification.Kind


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in this process when sent (the real task body, no broker)."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def base_url(settings):
    settings.PORTAL_BASE_URL = "https://portal.example.go.kr"
    return settings.PORTAL_BASE_URL


def to(user) -> list:
    """The e-mails sent to ``user``."""
    return [m for m in mail.outbox if m.to == [user.email]]


def rows(kind, **filters):
    return Notification.objects.filter(kind=kind, **filters)


def recipients(kind) -> set[str]:
    return set(rows(kind).values_list("recipient__username", flat=True))


def checked_submission_with_finding(world, *, severity="high"):
    """A submitted submission whose checks ended with one finding (rows written as the pipeline would)."""
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.get(submission=submission, check_name="intake")
    CheckRun.objects.filter(submission=submission).update(state=CheckRun.State.SUCCEEDED,
                                                          finished_at=timezone.now())
    finding = Finding.objects.create(check_run=run, submission=submission, severity=severity, category="intake",
                                     code="test_finding", title="Pickle opcodes in notes.txt")
    submission.status = "checked"
    submission.save(update_fields=["status"])
    return submission, finding


# --- who is told ----------------------------------------------------------------------------------

def test_submitting_tells_officers_and_assigned_reviewers_not_the_vendor(world):
    submission = signed_submission(world=world, submit=True)
    assert recipients(Kind.SUBMISSION_RECEIVED) == {"officer", "reviewer"}
    row = rows(Kind.SUBMISSION_RECEIVED, recipient=world.reviewer).get()
    assert row.url == f"/submissions/{submission.pk}/"
    assert row.actor == world.vendor_user
    assert row.read_at is None


def test_notify_never_tells_the_actor_and_tells_each_person_once(world):
    created = notify(kind=Kind.SUBMISSION_DECIDED, recipients=[world.vendor_user, world.vendor_user.pk,
                                                                world.reviewer, world.vendor_user],
                     url="/submissions/1/", params={"submission": "alpha v1", "decision_label": "Approved"},
                     actor=world.reviewer)
    assert [n.recipient for n in created] == [world.vendor_user]
    assert rows(Kind.SUBMISSION_DECIDED).count() == 1


def test_unknown_kind_is_refused(world):
    with pytest.raises(ValueError):
        notify(kind="something_else", recipients=[world.vendor_user], url="/", params={})


def test_checks_ending_tells_vendor_and_reviewers_once_and_findings_tell_reviewers(world, settings):
    """Through the real pipeline: intake on a pickle-looking file raises findings; the last run's
    end moves the submission to checked, which tells the vendor and the reviewers exactly once."""
    settings.CHECK_LEASE_S = 30
    submission = signed_submission(world=world, files={"model.pkl": ("other", b"\x80\x04\x95cos\nsystem\n.")},
                                   submit=True)
    for run in CheckRun.objects.filter(submission=submission, state=CheckRun.State.QUEUED):
        check_run_execute(run_id=run.pk, worker="test")
    # Dependent checks (if any) were blocked or released by intake; finish whatever was released.
    for run in CheckRun.objects.filter(submission=submission, state=CheckRun.State.QUEUED):
        check_run_execute(run_id=run.pk, worker="test")
    submission.refresh_from_db()
    assert submission.status == "checked"
    assert recipients(Kind.CHECKS_FINISHED) == {"vendor-a", "reviewer"}
    assert rows(Kind.CHECKS_FINISHED).count() == 2
    open_risks = sum(1 for f in submission.findings.all() if f.is_open_risk)
    assert rows(Kind.CHECKS_FINISHED).first().params["open_risks"] == open_risks
    assert open_risks > 0
    assert recipients(Kind.FINDING_RAISED) == {"reviewer"}  # never the vendor, never an unassigned reviewer


def test_finding_decision_tells_the_vendor_immediately_with_an_absolute_link(world, eager_tasks, base_url,
                                                                            django_capture_on_commit_callbacks):
    submission, finding = checked_submission_with_finding(world)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.finding_decide(user=world.reviewer, finding=finding, decision="confirmed")
    assert recipients(Kind.FINDING_DECIDED) == {"vendor-a"}
    [message] = [m for m in mail.outbox if m.to == ["vendor-a@example.org"]]
    assert message.subject == ("A reviewer decided a finding on alpha v1 (Pickle opcodes in notes.txt): Confirmed")
    link = f"{base_url}/submissions/{submission.pk}/#finding-{finding.pk}"
    assert link in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f'href="{link}"' in html
    assert rows(Kind.FINDING_DECIDED).get().emailed_at is not None
    assert not [m for m in mail.outbox if m.to == ["reviewer@example.org"]]  # the actor hears nothing


def test_korean_recipient_gets_a_korean_email(world, eager_tasks, base_url, django_capture_on_commit_callbacks):
    Profile.objects.filter(user=world.vendor_user).update(language="ko")
    submission, _finding = checked_submission_with_finding(world, severity="low")
    with django_capture_on_commit_callbacks(execute=True):
        decisions.submission_decide(user=world.reviewer, submission=submission, decision="changes_requested",
                                    justification="Declare the base model.")
    [message] = mail.outbox
    assert message.to == ["vendor-a@example.org"]
    assert message.subject == "alpha v1에 대한 결정: 보완 요청"
    assert f"{base_url}/submissions/{submission.pk}/#h-decision" in message.body
    assert "내 알림 전체" in message.body
    # The same row reads in English on an English page.
    from portal.notifications import notification_text

    row = rows(Kind.SUBMISSION_DECIDED).get()
    assert notification_text(kind=row.kind, params=row.params) == "alpha v1 was decided: Changes requested"


def test_dossier_issue_tells_the_requester_and_reviewers(world):
    from compliance.dossiers import DOSSIER_JOB, _allocate, _store

    submission, _finding = checked_submission_with_finding(world)
    dossier = _allocate(submission=submission, lang="en", requested_by=world.officer)
    assert DOSSIER_JOB.claim(pk=dossier.pk, worker="test")
    dossier.refresh_from_db()
    assert _store(dossier, b"%PDF-1.7 test", actor="worker")
    assert recipients(Kind.DOSSIER_ISSUED) == {"officer", "reviewer"}
    assert rows(Kind.DOSSIER_ISSUED).first().params["dossier"] == dossier.number


def test_reply_notification_tells_reviewers_not_the_vendor(world):
    from compliance.notifications import finding_reply_notify

    _submission, finding = checked_submission_with_finding(world)
    finding_reply_notify(user=world.vendor_user, finding=finding)
    assert recipients(Kind.REPLY_RECEIVED) == {"reviewer"}


# --- preferences ----------------------------------------------------------------------------------

def _decide(world, finding, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        decisions.finding_decide(user=world.reviewer, finding=finding, decision="confirmed")


def test_never_keeps_the_notification_but_sends_no_email(world, eager_tasks, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=world.vendor_user, kind=Kind.FINDING_DECIDED, email="never")
    _submission, finding = checked_submission_with_finding(world)
    _decide(world, finding, django_capture_on_commit_callbacks)
    assert rows(Kind.FINDING_DECIDED, recipient=world.vendor_user).count() == 1
    assert mail.outbox == []
    notification_digest_send()  # the reviewer and the officer get theirs (submission received)
    assert not to(world.vendor_user)


def test_digest_preference_waits_for_the_digest(world, eager_tasks, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=world.vendor_user, kind=Kind.FINDING_DECIDED, email="digest")
    _submission, finding = checked_submission_with_finding(world)
    _decide(world, finding, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    notification_digest_send()
    [message] = to(world.vendor_user)
    assert message.subject == "1 notification from the governance portal"
    assert "Pickle opcodes in notes.txt): Confirmed" in message.body


def test_immediately_preference_overrides_a_digest_default(world, eager_tasks, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=world.reviewer, kind=Kind.SUBMISSION_RECEIVED, email="immediately")
    submission = signed_submission(world=world, submit=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        project_services.submission_submit(user=world.vendor_user, submission=submission)
    # Run only our dispatch (the check runs' sends would run the checks eagerly too).
    from portal.notifications import notification_emails_dispatch

    ids = list(rows(Kind.SUBMISSION_RECEIVED, email_mode="immediately").values_list("pk", flat=True))
    assert len(callbacks) >= 1 and len(ids) == 1
    notification_emails_dispatch(notification_ids=ids)
    assert [m.to for m in mail.outbox] == [["reviewer@example.org"]]  # the officer's default is the digest
    assert rows(Kind.SUBMISSION_RECEIVED, recipient=world.officer).get().email_mode == "digest"


def test_digest_sends_one_email_with_every_pending_item_and_only_once(world, base_url):
    for n in range(3):
        notify(kind=Kind.CHECKS_FINISHED, recipients=[world.reviewer], url=f"/submissions/{n + 1}/",
               params={"submission": f"alpha v{n + 1}", "open_risks": n})
    read = notify(kind=Kind.CHECKS_FINISHED, recipients=[world.reviewer], url="/submissions/9/",
                  params={"submission": "alpha v9", "open_risks": 0})[0]
    Notification.objects.filter(pk=read.pk).update(read_at=timezone.now())  # already seen: not in the digest
    counts = notification_digest_send()
    assert counts["digests"] == 1 and counts["items"] == 3
    [message] = mail.outbox
    assert message.to == ["reviewer@example.org"]
    assert message.subject == "3 notifications from the governance portal"
    for n in range(3):
        assert f"{base_url}/submissions/{n + 1}/" in message.body
    assert "alpha v9" not in message.body
    assert notification_digest_send()["digests"] == 0  # nothing twice
    assert len(mail.outbox) == 1


def test_failing_mail_server_never_undoes_the_decision_and_the_email_waits(world, eager_tasks, settings, caplog,
                                                                          django_capture_on_commit_callbacks):
    """SMTP to a port nobody listens on: the decision stands, the row stays unsent (logged), and
    the digest run sends it once the server is back."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    _submission, finding = checked_submission_with_finding(world)
    with django_capture_on_commit_callbacks(execute=True):
        record = decisions.finding_decide(user=world.reviewer, finding=finding, decision="confirmed")
    assert record.pk and Finding.objects.get(pk=finding.pk).status == "confirmed"
    row = rows(Kind.FINDING_DECIDED).get()
    assert row.emailed_at is None
    assert "failed; it will be retried" in caplog.text
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Notification.objects.filter(pk=row.pk).update(created_at=timezone.now() - datetime.timedelta(hours=1))
    assert notification_digest_send()["late_immediate"] == 1
    [message] = to(world.vendor_user)
    assert "Confirmed" in message.subject


def test_preferences_update_refuses_unknown_choices(world):
    from django.core.exceptions import ValidationError

    from portal.notifications import notification_preferences_update

    with pytest.raises(ValidationError):
        notification_preferences_update(user=world.vendor_user, email_modes={Kind.FINDING_DECIDED: "hourly"})
    with pytest.raises(ValidationError):
        notification_preferences_update(user=world.vendor_user, email_modes={}, language="fr")
    notification_preferences_update(user=world.vendor_user, email_modes={Kind.FINDING_DECIDED: "never"},
                                    language="ko")
    assert Profile.objects.get(user=world.vendor_user).language == "ko"
    assert NotificationPreference.objects.get(user=world.vendor_user).email == "never"


# --- milestones -----------------------------------------------------------------------------------

def test_milestones_due_and_overdue_are_announced_once_per_state(world, settings):
    from projects.services import milestone_reminders_send

    settings.NOTIFY_MILESTONE_DAYS = 7
    today = datetime.date(2026, 6, 1)
    Milestone.objects.filter(project=world.project).delete()
    soon = Milestone.objects.create(project=world.project, title="Phase 1 report", due_on=today + datetime.timedelta(days=5))
    Milestone.objects.create(project=world.project, title="Far away", due_on=today + datetime.timedelta(days=30))
    Milestone.objects.create(project=world.project, title="Done", due_on=today, completed_on=today)

    milestone_reminders_send(today=today)
    assert recipients(Kind.MILESTONE_DUE) == {"officer", "vendor-a"}
    assert set(rows(Kind.MILESTONE_DUE).values_list("params__title", flat=True)) == {"Phase 1 report"}
    milestone_reminders_send(today=today + datetime.timedelta(days=1))  # the next day: nothing new
    assert rows(Kind.MILESTONE_DUE).count() == 2
    assert not rows(Kind.MILESTONE_OVERDUE).exists()

    milestone_reminders_send(today=today + datetime.timedelta(days=6))  # past its date: overdue, once
    milestone_reminders_send(today=today + datetime.timedelta(days=7))
    assert recipients(Kind.MILESTONE_OVERDUE) == {"officer", "vendor-a"}
    assert rows(Kind.MILESTONE_OVERDUE).count() == 2
    assert rows(Kind.MILESTONE_OVERDUE).first().url == f"/projects/{world.project.pk}/"

    soon.refresh_from_db()
    soon.completed_on = today + datetime.timedelta(days=8)
    soon.save()
    milestone_reminders_send(today=today + datetime.timedelta(days=9))
    assert rows(Kind.MILESTONE_OVERDUE).count() == 2


def test_digest_is_written_in_each_recipients_language(world):
    Profile.objects.filter(user=world.reviewer).update(language="ko")
    for person in (world.reviewer, world.officer):
        notify(kind=Kind.DOSSIER_ISSUED, recipients=[person], url="/submissions/1/#h-dossiers",
               params={"dossier": "D-2026-000001", "submission": "alpha v1"})
    notification_digest_send()
    [korean] = to(world.reviewer)
    [english] = to(world.officer)
    assert korean.subject == "거버넌스 포털 알림 1건"
    assert "alpha v1의 보고서 D-2026-000001이(가) 발급되어 내려받을 수 있습니다" in korean.body
    assert english.subject == "1 notification from the governance portal"
    assert "Dossier D-2026-000001 of alpha v1 is issued and ready to download" in english.body

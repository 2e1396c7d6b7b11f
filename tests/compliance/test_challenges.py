"""Public challenges (issue #15): anonymous filing, e-mail confirmation, triage, the vendor's
reply, the decision and the public register; who sees what."""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail, signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from compliance.models import Challenge, ReferenceModel
from compliance.services import challenges as services
from compliance.services.challenge_retest import challenge_retest_execute
from portal.models import AuditEvent, Notification
from projects.limits import CHALLENGE_STATEMENT_CHARS
from tests.factories import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def _file(world, **extra) -> Challenge:
    kwargs = {"project": world.project, "model_named": "Alpha 7B", "claim": "derived_from_model",
              "claimed_source": "Open Base 7B", "statement": "Its norm gains match Open Base 7B.",
              "figures": "raw cosine of LayerNorm gains 0.989", "contact_email": "critic@example.net",
              "client_address": "203.0.113.9"}
    kwargs.update(extra)
    return services.challenge_file(**kwargs)


def _link(outbox) -> str:
    return re.search(r"(/challenges/confirm/[^\s]+/)", outbox[-1].body).group(1)


def _confirmed(world, **extra) -> Challenge:
    challenge = _file(world, **extra)
    return services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))


def test_anonymous_filing_is_unconfirmed_until_the_mailed_link_is_followed(world, django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("challenge-new"), {
            "project": world.project.pk, "model_named": "Alpha 7B", "claim": "derived_from_model",
            "claimed_source": "Open Base 7B", "statement": "Copied.", "contact_email": "critic@example.net",
            "files": ContentFile(b"layer,cosine\n0,0.989\n", name="figures.csv")})
    assert response.status_code == 200
    challenge = Challenge.objects.get()
    assert challenge.status == Challenge.Status.UNCONFIRMED
    assert challenge.files.get().original_name == "figures.csv"
    assert mail.outbox[-1].to == ["critic@example.net"]
    link = _link(mail.outbox)
    assert client.get(link).status_code == 200  # a mail scanner's GET confirms nothing
    challenge.refresh_from_db()
    assert challenge.status == Challenge.Status.UNCONFIRMED
    assert client.post(link).status_code == 200
    challenge.refresh_from_db()
    assert challenge.status == Challenge.Status.FILED and challenge.confirmed_at
    assert set(AuditEvent.objects.filter(object_type="challenge").values_list("action", flat=True)) == {
        "challenge.filed", "challenge.confirmed"}


def test_a_forged_or_expired_link_confirms_nothing(world, settings):
    challenge = _file(world)
    forged = signing.dumps({"c": challenge.pk, "e": challenge.contact_email}, salt="another")
    with pytest.raises(ValidationError):
        services.challenge_confirm(token=forged)
    settings.PORTAL_CHALLENGE_CONFIRM_SECONDS = -1
    with pytest.raises(ValidationError):
        services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))
    challenge.refresh_from_db()
    assert challenge.status == Challenge.Status.UNCONFIRMED


def test_filing_is_rate_limited_per_client_address(world, settings):
    from django.core.cache import cache

    cache.clear()
    settings.PORTAL_CHALLENGE_RATE = "2/hour"
    body = {"project": world.project.pk, "model_named": "Alpha", "claim": "other", "statement": "x",
            "contact_email": "a@example.net"}
    client = Client(REMOTE_ADDR="198.51.100.7")
    assert [client.post(reverse("challenge-new"), body).status_code for _ in range(3)] == [200, 200, 429]
    # A forged forwarding header is not a new address.
    assert client.post(reverse("challenge-new"), body, HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.8").post(reverse("challenge-new"), body).status_code == 200
    assert Challenge.objects.count() == 3
    cache.clear()


def test_a_statement_over_the_limit_is_refused_not_cut(world):
    with pytest.raises(ValidationError):
        _file(world, statement="x" * (CHALLENGE_STATEMENT_CHARS + 1))
    assert not Challenge.objects.exists()


def test_only_officers_triage_and_decide(world):
    challenge = _confirmed(world)
    for user in (world.reviewer, world.auditor, world.vendor_user):
        with pytest.raises(PermissionDenied):
            services.challenge_accept(user=user, challenge=challenge)
    services.challenge_accept(user=world.officer, challenge=challenge, reasons="worth testing")
    challenge.refresh_from_db()
    assert challenge.status == Challenge.Status.ACCEPTED and challenge.reply_due_on
    # The vendor is told, with the deadline.
    from portal.notifications import notification_text

    filed = Notification.objects.get(recipient=world.officer, kind="challenge_filed")
    assert "awaiting triage" in notification_text(kind=filed.kind, params=filed.params)
    note = Notification.objects.get(recipient=world.vendor_user, kind="challenge_received")
    assert note.params["due_on"] == challenge.reply_due_on.isoformat()
    with pytest.raises(PermissionDenied):
        services.challenge_reply(user=world.other_vendor_user, challenge=challenge, body="not mine")
    services.challenge_reply(user=world.vendor_user, challenge=challenge, body="Trained from scratch.",
                             files=[("log.jsonl", io.BytesIO(b'{"step": 1, "loss": 10.4}\n'))])
    services.challenge_reply(user=world.vendor_user, challenge=challenge, body="The log is attached.")
    challenge.refresh_from_db()
    assert challenge.vendor_reply.startswith("Trained from scratch.") and "The log is attached." in challenge.vendor_reply
    with pytest.raises(PermissionDenied):
        services.challenge_decide(user=world.vendor_user, challenge=challenge, outcome="not_upheld",
                                  reasons="r", summary="s")
    services.challenge_decide(user=world.officer, challenge=challenge, outcome="not_upheld",
                              reasons="Centred statistics show no correspondence.", summary="Not upheld.")
    challenge.refresh_from_db()
    assert challenge.status == Challenge.Status.NOT_UPHELD and challenge.decided_at


def test_merge_and_reject(world):
    first = _confirmed(world)
    second = _confirmed(world)
    services.challenge_merge(user=world.officer, challenge=second, into=first)
    with pytest.raises(ValidationError):
        services.challenge_reject(user=world.officer, challenge=first, reasons="")
    services.challenge_reject(user=world.officer, challenge=first, reasons="No evidence offered.")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status, second.merged_into_id) == ("rejected", "merged", first.pk)


def test_who_sees_a_challenge(world):
    unconfirmed = _file(world)
    filed = _confirmed(world)
    accepted = _confirmed(world)
    services.challenge_accept(user=world.officer, challenge=accepted)

    def status(user, challenge):
        client = Client()
        if user is not None:
            client.force_login(user)
        return client.get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).status_code

    assert status(world.officer, unconfirmed) == 404
    assert status(world.officer, filed) == 200 and status(world.auditor, filed) == 200
    assert status(world.vendor_user, filed) == 404  # not yet put to the vendor
    assert status(world.vendor_user, accepted) == 200
    assert status(world.other_vendor_user, accepted) == 404
    # The project's assigned reviewer reads the case once it is put to the vendor, as through the
    # API and for its evidence files; never while under triage, never to act on it.
    assert status(world.reviewer, accepted) == 200 and status(world.reviewer, filed) == 404
    assert status(world.reviewer_unassigned, accepted) == 404
    reviewer = Client()
    reviewer.force_login(world.reviewer)
    assert reviewer.post(reverse("challenge-act", kwargs={"pk": accepted.pk}),
                         {"action": "reply", "body": "x"}).status_code == 404
    page = reviewer.get(reverse("challenge-detail", kwargs={"pk": accepted.pk})).content.decode()
    assert 'name="action"' not in page  # no officer's step, no vendor's reply form
    assert status(None, accepted) == 302
    other = Client()
    other.force_login(world.other_vendor_user)
    response = other.post(reverse("challenge-act", kwargs={"pk": accepted.pk}), {"action": "reply", "body": "x"})
    assert response.status_code == 404
    # The public register shows only decided challenges.
    register = Client().get(reverse("challenge-register")).content.decode()
    assert f"#{accepted.pk}" not in register
    services.challenge_decide(user=world.officer, challenge=accepted, outcome="upheld", reasons="r",
                              summary="The model derives from Open Base 7B.")
    register = Client().get(reverse("challenge-register")).content.decode()
    assert "The model derives from Open Base 7B." in register
    assert "critic@example.net" not in register


def test_an_unregistered_model_leaves_the_retest_inconclusive_with_the_reason(world):
    challenge = _confirmed(world)
    services.challenge_accept(user=world.officer, challenge=challenge)
    assert challenge_retest_execute(challenge_id=challenge.pk) == "not_registered"
    challenge.refresh_from_db()
    assert challenge.retest["verdict"] == "inconclusive"
    assert "not a registered reference" in challenge.retest["reason"]
    assert challenge_retest_execute(challenge_id=challenge.pk) == "skipped"  # delivered twice
    assert not ReferenceModel.objects.exists()
    with pytest.raises(PermissionDenied):
        services.challenge_retest_request(user=world.vendor_user, challenge=challenge)
    services.challenge_retest_request(user=world.officer, challenge=challenge)  # e.g. after registering it
    challenge.refresh_from_db()
    assert challenge.retest == {"state": "queued"}
    assert AuditEvent.objects.filter(action="challenge.retest_requested", object_id=str(challenge.pk)).exists()


def test_the_dossier_lists_the_projects_challenges_and_their_outcome(world):
    from compliance.dossier.context import dossier_context_build
    from tests.factories import signed_submission

    _file(world)  # unconfirmed: not in the dossier
    decided = _confirmed(world)
    services.challenge_accept(user=world.officer, challenge=decided)
    services.challenge_decide(user=world.officer, challenge=decided, outcome="not_upheld", reasons="r",
                              summary="Centred statistics show nothing.")
    submission = signed_submission(world=world)
    context = dossier_context_build(submission=submission, lang="en")
    assert [(c.number, c.status, c.summary) for c in context.challenges] == [
        (decided.pk, "Not upheld", "Centred statistics show nothing.")]
    korean = dossier_context_build(submission=submission, lang="ko")
    assert korean.challenges[0].status != "Not upheld"  # the models' word, in Korean


def test_evidence_is_judged_by_the_artifact_intake(world):
    from compliance.services.challenges import challenge_file_intake

    challenge = _file(world, files=[("figures.csv", io.BytesIO(b"layer,cosine\n0,0.989\n")),
                                    ("model.safetensors", io.BytesIO(b"\xff" * 64))])
    csv, fake = challenge.files.order_by("pk")
    assert csv.intake_status == fake.intake_status == "quarantined"
    assert challenge_file_intake(file_id=csv.pk) == "accepted"
    assert challenge_file_intake(file_id=csv.pk) == "skipped"  # delivered twice
    assert challenge_file_intake(file_id=fake.pk) != "accepted"  # not the safetensors its name says


def test_an_oversized_filing_is_refused_before_it_is_read(world):
    response = Client().post(reverse("challenge-new"), {"project": world.project.pk},
                             CONTENT_LENGTH=str(services.CHALLENGE_BODY_MAX_BYTES + 1))
    assert response.status_code == 413
    assert not Challenge.objects.exists()


def test_an_unanswered_challenge_past_its_date_is_shown_overdue(world):
    challenge = _confirmed(world)
    services.challenge_accept(user=world.officer, challenge=challenge)
    Challenge.objects.filter(pk=challenge.pk).update(reply_due_on="2020-01-01")
    client = Client()
    client.force_login(world.officer)
    page = client.get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "overdue" in page
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("challenge-list")).status_code == 200
    for _ in range(5):
        _confirmed(world)
    with CaptureQueriesContext(connection) as six:
        assert client.get(reverse("challenge-list")).status_code == 200
    assert len(six) == len(one)  # the rows and their projects in one query, whatever their number

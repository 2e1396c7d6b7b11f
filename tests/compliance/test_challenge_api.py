"""The challenges API (issue #15): filing without an account, the public register, and the case
per role (officers act, auditors and assigned reviewers read, the project's vendor reads and
replies, everyone else meets 404)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from compliance.models import Challenge
from compliance.services import challenges as services
from portal.models import AuditEvent
from tests.factories import build_world

pytestmark = pytest.mark.django_db

PUBLIC_URL = "/api/public-challenges/"
CASE_URL = "/api/challenges/"


@pytest.fixture
def world():
    cache.clear()  # the throttle's counters live in the shared cache
    yield build_world()
    cache.clear()


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _confirmed(world, **extra) -> Challenge:
    kwargs = {"project": world.project, "model_named": "Alpha 7B", "claim": "other", "claimed_source": "Open Base",
              "statement": "Its tokenizer is Open Base's.", "figures": "raw cosine 0.989",
              "contact_email": "critic@example.net", "client_address": "203.0.113.9"}
    kwargs.update(extra)
    challenge = services.challenge_file(**kwargs)
    return services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))


def _form(world, **extra) -> dict:
    body = {"project": world.project.pk, "model_named": "Alpha 7B", "claim": "derived_from_model",
            "claimed_source": "Open Base 7B", "statement": "Its norm gains match Open Base 7B.",
            "figures": "raw cosine of LayerNorm gains 0.989", "contact_email": "critic@example.net"}
    body.update(extra)
    return body


def test_anyone_files_a_challenge_with_files_and_confirms_it_by_the_mailed_link(world,
                                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = _client().post(PUBLIC_URL, _form(world, files=[
            SimpleUploadedFile("figures.csv", b"layer,cosine\n0,0.989\n"),
            SimpleUploadedFile("notes.txt", b"centred statistics not computed\n")]), format="multipart")
    assert answer.status_code == 201, answer.content
    challenge = Challenge.objects.get(pk=answer.json()["id"])
    assert answer.json()["status"] == "unconfirmed" and challenge.status == Challenge.Status.UNCONFIRMED
    assert sorted(challenge.files.values_list("original_name", flat=True)) == ["figures.csv", "notes.txt"]
    assert challenge.client_address  # the API records the caller's address like the form
    # Officers do not see it until the challenger follows the link.
    assert _client(world.officer).get(f"{CASE_URL}{challenge.pk}/").status_code == 404
    link = re.search(r"(/challenges/confirm/[^\s]+/)", mail.outbox[-1].body).group(1)
    assert mail.outbox[-1].to == ["critic@example.net"]
    assert Client().post(link).status_code == 200
    case = _client(world.officer).get(f"{CASE_URL}{challenge.pk}/").json()
    assert case["status"] == "filed" and len(case["files"]) == 2 and case["contact_email"] == "critic@example.net"
    assert AuditEvent.objects.filter(action="challenge.filed", object_id=str(challenge.pk)).exists()


def test_filing_refuses_what_the_form_refuses(world):
    client = _client()
    # an eliminated project cannot be challenged
    world.other_project.status = "eliminated"
    world.other_project.save(update_fields=["status"])
    answer = client.post(PUBLIC_URL, _form(world, project=world.other_project.pk), format="multipart")
    assert answer.status_code == 400 and "project" in answer.json()
    answer = client.post(PUBLIC_URL, _form(world, statement="x" * 20001, contact_email="not-an-address"),
                         format="multipart")
    assert answer.status_code == 400 and {"statement", "contact_email"} <= set(answer.json())
    answer = client.post(PUBLIC_URL, _form(world, files=[SimpleUploadedFile("empty.txt", b"")]), format="multipart")
    assert answer.status_code == 400
    answer = client.post(PUBLIC_URL, _form(world), format="multipart",
                         CONTENT_LENGTH=str(services.CHALLENGE_BODY_MAX_BYTES + 1))
    assert answer.status_code == 413
    assert not Challenge.objects.exists()


def test_the_api_and_the_web_form_share_one_rate_limit_per_address(world, settings):
    settings.PORTAL_CHALLENGE_RATE = "2/hour"
    assert _client().post(PUBLIC_URL, _form(world), format="multipart").status_code == 201
    assert Client().post("/challenges/new/", _form(world)).status_code == 200
    refused = _client().post(PUBLIC_URL, _form(world), format="multipart")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert Challenge.objects.count() == 2


def test_the_public_register_lists_decided_outcomes_and_nothing_private(world):
    open_one = _confirmed(world)
    decided = _confirmed(world, claim="derived_from_model", contact_email="secret-critic@example.net")
    services.challenge_accept(user=world.officer, challenge=decided, reasons="worth a look")
    Challenge.objects.filter(pk=decided.pk).update(retest={
        "state": "done", "reference": "Open Base 7B", "verdict": "independent", "p_value": 0.61,
        "norms": {"mean_raw_cosine": 0.989, "mean_raw_cosine_shuffled": 0.987, "mean_pearson": 0.01},
        "worker": "heavy@host-7", "artifact": 12})
    services.challenge_reply(user=world.vendor_user, challenge=decided, body="Trained from scratch, see logs.")
    services.challenge_decide(user=world.officer, challenge=decided, outcome="not_upheld",
                              reasons="The centred statistics show no relation.",
                              summary="Not upheld: raw cosine of norm gains is high for unrelated models.")
    answer = _client().get(PUBLIC_URL)
    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [row["id"] for row in rows] == [decided.pk]
    row = rows[0]
    assert row["status"] == "not_upheld" and row["published_summary"].startswith("Not upheld")
    assert row["retest"] == {"state": "done", "reference": "Open Base 7B", "verdict": "independent",
                             "p_value": 0.61, "norms": {"mean_raw_cosine": 0.989, "mean_raw_cosine_shuffled": 0.987,
                                                        "mean_pearson": 0.01}}
    body = answer.content.decode()
    for private in ("secret-critic@example.net", "Trained from scratch", "norm gains match", "heavy@host-7",
                    "statement", "officer_reasons", "files"):
        assert private not in body
    assert _client().get(f"{PUBLIC_URL}{decided.pk}/").status_code == 200
    assert _client().get(f"{PUBLIC_URL}{open_one.pk}/").status_code == 404


def test_who_reads_the_case(world):
    filed = _confirmed(world)
    accepted = _confirmed(world, model_named="Alpha 7B v2")
    services.challenge_accept(user=world.officer, challenge=accepted)
    services.challenge_file(project=world.project, model_named="unconfirmed", claim="other", claimed_source="",
                            statement="s", figures="", contact_email="c@example.net")
    elsewhere = _confirmed(world, project=world.other_project)

    def seen(user) -> set[int]:
        answer = _client(user).get(CASE_URL)
        assert answer.status_code == 200
        return {row["id"] for row in answer.json()["results"]}

    everything = {filed.pk, accepted.pk, elsewhere.pk}
    assert seen(world.officer) == seen(world.admin) == seen(world.auditor) == everything
    # Assigned to the project, and only once an officer put the challenge to the vendor: a filed
    # challenge under triage is the officers' alone (as on the case page and for the evidence files).
    assert seen(world.reviewer) == {accepted.pk}
    assert _client(world.reviewer).get(f"{CASE_URL}{filed.pk}/").status_code == 404
    assert seen(world.reviewer_unassigned) == set()
    assert seen(world.vendor_user) == {accepted.pk}  # once accepted, never under triage
    assert seen(world.other_vendor_user) == set()  # their own project's challenge is not accepted yet
    assert _client(world.other_vendor_user).get(f"{CASE_URL}{accepted.pk}/").status_code == 404
    assert _client(world.vendor_user).get(f"{CASE_URL}{filed.pk}/").status_code == 404
    assert _client(world.reviewer_unassigned).get(f"{CASE_URL}{filed.pk}/").status_code == 404
    assert _client().get(CASE_URL).status_code == 401
    vendor_view = _client(world.vendor_user).get(f"{CASE_URL}{accepted.pk}/").json()
    assert "contact_email" not in vendor_view and vendor_view["statement"]
    assert "critic@example.net" not in _client(world.auditor).get(CASE_URL).content.decode()
    # Officers filter by programme, project, status and claim.
    officer = _client(world.officer)
    assert {r["id"] for r in officer.get(CASE_URL, {"status": "filed"}).json()["results"]} == {filed.pk,
                                                                                             elsewhere.pk}
    assert {r["id"] for r in officer.get(CASE_URL, {"project": world.other_project.pk}).json()["results"]} == {
        elsewhere.pk}
    assert len(officer.get(CASE_URL, {"programme": world.programme.pk}).json()["results"]) == 3
    assert officer.get(CASE_URL, {"status": "nonsense"}).status_code == 400


def test_officers_triage_and_decide_through_the_api_and_others_are_refused(world):
    officer = _client(world.officer)
    first, second, unfounded = (_confirmed(world, claim="derived_from_model"), _confirmed(world),
                                _confirmed(world))
    for user in (world.auditor, world.reviewer, world.vendor_user):
        before = AuditEvent.objects.count()
        assert _client(user).post(f"{CASE_URL}{first.pk}/accept/", {}, format="json").status_code in {403, 404}
        assert AuditEvent.objects.count() == before
    assert _client(world.other_vendor_user).post(f"{CASE_URL}{first.pk}/accept/", {},
                                                 format="json").status_code == 404

    answer = officer.post(f"{CASE_URL}{first.pk}/accept/", {"reasons": "A concrete claim."}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "accepted" and answer.json()["reply_due_on"]
    assert answer.json()["retest"] == {"state": "queued"}
    merged = officer.post(f"{CASE_URL}{second.pk}/merge/", {"into": first.pk, "reasons": "Same claim."},
                          format="json")
    assert merged.status_code == 200 and merged.json()["merged_into"] == first.pk
    assert officer.post(f"{CASE_URL}{unfounded.pk}/reject/", {}, format="json").status_code == 400  # reasons owed
    rejected = officer.post(f"{CASE_URL}{unfounded.pk}/reject/", {"reasons": "No evidence given."}, format="json")
    assert rejected.json()["status"] == "rejected"
    assert officer.post(f"{CASE_URL}{first.pk}/retest/", format="json").json()["retest"] == {"state": "queued"}
    assert officer.post(f"{CASE_URL}{first.pk}/decide/", {"outcome": "filed", "reasons": "r", "summary": "s"},
                        format="json").status_code == 400
    decided = officer.post(f"{CASE_URL}{first.pk}/decide/", {"outcome": "upheld", "reasons": "Derived.",
                                                              "summary": "Upheld."}, format="json")
    assert decided.status_code == 200 and decided.json()["status"] == "upheld"
    assert officer.post(f"{CASE_URL}{first.pk}/decide/", {"outcome": "upheld", "reasons": "again",
                                                           "summary": "again"}, format="json").status_code == 400
    assert set(AuditEvent.objects.filter(object_type="challenge").values_list("action", flat=True)) >= {
        "challenge.accepted", "challenge.merged", "challenge.rejected", "challenge.retest_requested",
        "challenge.decided"}


def test_the_vendor_replies_with_files(world, django_capture_on_commit_callbacks):
    challenge = _confirmed(world)
    services.challenge_accept(user=world.officer, challenge=challenge)
    url = f"{CASE_URL}{challenge.pk}/reply/"
    assert _client(world.other_vendor_user).post(url, {"body": "not mine"}, format="multipart").status_code == 404
    assert _client(world.auditor).post(url, {"body": "not mine"}, format="multipart").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        answer = _client(world.vendor_user).post(url, {"body": "We trained from scratch; logs attached.",
                                                       "files": [SimpleUploadedFile("train_log.jsonl",
                                                                                    b'{"step": 0, "loss": 11.9}\n')]},
                                                 format="multipart")
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["vendor_reply"].startswith("We trained from scratch") and data["vendor_replied_at"]
    assert [(f["side"], f["original_name"]) for f in data["files"]] == [("vendor", "train_log.jsonl")]
    assert "contact_email" not in data
    assert _client(world.vendor_user).post(url, {"body": ""}, format="multipart").status_code == 400


def test_the_lists_cost_the_same_queries_for_one_challenge_or_many(world, django_assert_max_num_queries):
    def decided_one():
        challenge = _confirmed(world)
        services.challenge_reject(user=world.officer, challenge=challenge, reasons="No evidence.")

    def counted(client, url) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    decided_one()
    officer = _client(world.officer)
    one = (counted(officer, CASE_URL), counted(_client(), PUBLIC_URL))
    for _ in range(4):
        decided_one()
    assert (counted(officer, CASE_URL), counted(_client(), PUBLIC_URL)) == one
    with django_assert_max_num_queries(8):
        _client().get(PUBLIC_URL)

"""Every API operation, fuzzed from the OpenAPI schema as every role: no 500, and every answer is one
the schema documents (status code, content type, body, headers).

schemathesis reads drf-spectacular's schema (/api/schema/) from the app itself and calls the WSGI
handler in-process, so requests share the test's database transaction. Each role gets one test
over every operation with a fixed, deterministic budget (``derandomize``, ``EXAMPLES`` per mode per
operation, no deadline): positive examples use the ids of a realistic data set (a programme, both
vendors' projects, a submitted version with artifacts, check runs and a finding, a draft, dossiers,
an upload in progress, notifications), so they reach the views' real work rather than their 404;
negative examples send what the schema forbids (wrong types, out-of-range numbers, malformed ids
and dates, unknown enum values) and must be refused with a documented 4xx, never a 500.

Every example runs inside a savepoint that is rolled back, so each starts from the same data: a
vendor's revoked token or a submitted draft does not change the next example. Writes that start
work (submit, re-run, a dossier) only record it: the test's transaction never commits, so
``transaction.on_commit`` never sends a task and no worker is needed; the ``CheckRun`` and
``Dossier`` rows are the outbox a worker or the reconciler would take (compliance.broker).

Not covered: sequences of calls (schemathesis's stateful phase), the HTML pages (see
test_list_query_parameters.py), uploads bigger than a generated body, and timing.
"""

from __future__ import annotations

import datetime
import uuid
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from compliance.models import CheckRun, Dossier, Finding
from compliance.services import challenges as challenge_services
from portal.models import Notification
from portal.tokens import token_create
from projects import services as project_services
from projects import uploads
from tests.factories import build_world, signed_submission, upload_bytes

pytestmark = pytest.mark.django_db

# Examples per operation, per generation mode (positive, negative), per role: 57 operations x 2
# modes x 7 roles x EXAMPLES requests. Hypothesis stops early on operations with few distinct inputs.
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# The upload chunk's body: raw bytes (schemathesis generates bodies only for media types it knows).
schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=64))
ROLES = ("anonymous", "admin", "officer", "reviewer", "auditor", "vendor", "other_vendor")


def _data_set(world) -> dict[str, list]:
    """The objects the positive examples name, by path parameter's resource: each role meets some it
    may see and some it may not (the other vendor's draft, the unassigned project)."""
    submitted = signed_submission(world=world, files={"notes.txt": ("other", b"plain notes\n"),
                                                      "LICENSE": ("other", b"Apache License 2.0\n")}, submit=True)
    run = CheckRun.objects.filter(submission=submitted).first()
    finding = Finding.objects.create(check_run=run, submission=submitted, severity="high", category="lineage",
                                     code="derived", title="Layers match a known model")
    other_draft = project_services.submission_open(user=world.other_vendor_user, project=world.other_project,
                                                   carry_over=False)
    other_artifact = upload_bytes(user=world.other_vendor_user, submission=other_draft, name="b.txt", data=b"b\n")
    draft = project_services.submission_open(user=world.vendor_user, project=world.project, carry_over=True)
    session = uploads.upload_session_create(user=world.vendor_user, submission=draft, kind="other",
                                            filename="big.bin", size=1024)
    ready = Dossier.objects.create(submission=submitted, number="FUZZ-0001", state=Dossier.State.READY,
                                   rendered_at=datetime.datetime.now(datetime.UTC))
    failed = Dossier.objects.create(submission=submitted, number="FUZZ-0002", state=Dossier.State.FAILED,
                                    error="render failed")
    submissions = [submitted.pk, draft.pk, other_draft.pk]
    filed, accepted, decided = (_challenge(world, project=world.project), _challenge(world, project=world.project),
                                _challenge(world, project=world.other_project))
    challenge_services.challenge_accept(user=world.officer, challenge=accepted)
    challenge_services.challenge_accept(user=world.officer, challenge=decided)
    challenge_services.challenge_decide(user=world.officer, challenge=decided, outcome="not_upheld",
                                        reasons="Centred statistics show nothing.", summary="Not upheld.")
    return {
        "programmes": [world.programme.pk],
        "projects": [world.project.pk, world.other_project.pk],
        "submissions": submissions,
        "queue": submissions,
        "artifacts": [*submitted.artifacts.values_list("pk", flat=True), other_artifact.pk],
        "check-runs": list(CheckRun.objects.filter(submission=submitted).values_list("pk", flat=True)),
        "findings": [finding.pk],
        "dossiers": [ready.pk, failed.pk],
        "uploads": [str(session.pk), str(uuid.uuid4())],
        "notifications": list(Notification.objects.values_list("pk", flat=True)) or [1],
        "challenges": [filed.pk, accepted.pk, decided.pk],
        "public-challenges": [decided.pk, accepted.pk],
    }


def _challenge(world, *, project):
    """A confirmed public challenge (issue #15): filed, awaiting triage."""
    challenge = challenge_services.challenge_file(
        project=project, model_named="Alpha 7B", claim="other", claimed_source="", statement="Copied tokenizer.",
        figures="", contact_email="critic@example.net")
    return challenge_services.challenge_confirm(token=challenge_services.challenge_confirm_token(
        challenge=challenge))


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler closes 'old' connections at each request's start and end; inside the
    test's transaction that would end it. Django's test client disconnects the same receiver."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _with_real_ids(strategy, ids_by_resource: dict, path: str):
    """Positive examples name objects of the data set (the generated ids would only ever meet 404)."""
    resource = path.split("/")[2]
    ids = ids_by_resource.get(resource)
    if ids is None or "{" not in path:
        return strategy
    if resource == "tokens":
        return strategy

    def named(case, pk):
        for name in case.path_parameters or {}:
            case.path_parameters[name] = pk
        return case

    return st.builds(named, strategy, st.sampled_from(ids))


def _fuzz_operation(operation, *, mode, ids_by_resource, headers, answers: Counter) -> str | None:
    strategy = operation.as_strategy(generation_mode=mode)
    if mode == GenerationMode.POSITIVE:
        strategy = _with_real_ids(strategy, ids_by_resource, operation.path)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=strategy)
    def run(case):
        with transaction.atomic():
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                answers[(operation.label, response.status_code)] += 1
            finally:
                transaction.set_rollback(True)

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid: an operation without parameters or body (POST read-all) has no
        # negative examples.
        return None
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, then reported together
        return f"{operation.label} [{mode.value}]: {exc}"
    return None


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(role, wsgi_app, settings):
    # As in production: staff sessions owe a second factor, token calls do not (portal.middleware).
    settings.PORTAL_SECOND_FACTOR_ENFORCED = True
    # Public filings reach validation rather than the per-address budget (its 429 is tested in
    # tests/compliance/test_challenge_api.py); the budget's counters live in the shared cache.
    settings.PORTAL_CHALLENGE_RATE = "100000/hour"
    world = build_world()
    ids_by_resource = _data_set(world)
    headers = {}
    if role != "anonymous":
        user = world.users()[role]
        _, secret = token_create(user=user, name="fuzz", expires_in_days=7)
        headers = {"Authorization": f"Token {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    failures, answers = [], Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz_operation(operation, mode=mode, ids_by_resource=ids_by_resource, headers=headers,
                                      answers=answers)
            if failure:
                failures.append(failure)
    assert not failures, f"{len(failures)} operations answered outside the schema as {role}:\n\n" + "\n\n".join(
        failures)

    print(f"{role}: {len(operations)} operations, {sum(answers.values())} requests, answers "  # shown with -s
          f"{sorted(Counter(status for (_, status), n in answers.items() for _ in range(n)).items())}")

    # The fuzz reached the views' work, not only their refusals.
    succeeded = {label for (label, status), n in answers.items() if 200 <= status < 300}
    lists = {op.label for op in operations if op.method == "get" and "{" not in op.path}
    if role == "anonymous":
        # The public doors only: verification, and the challenge register (a generated filing
        # names no funded project, so it is a 400).
        assert succeeded == {"POST /api/dossiers/verify/", "GET /api/public-challenges/",
                             "GET /api/public-challenges/{id}/"}, succeeded
    else:
        assert lists <= succeeded, f"lists never answered 200 as {role}: {sorted(lists - succeeded)}"
    if role == "vendor":  # their own version answers, the other vendor's draft is 404
        assert answers[("GET /api/submissions/{id}/", 200)] and answers[("GET /api/submissions/{id}/", 404)]

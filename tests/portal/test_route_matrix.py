"""Every route × every role × read and write, generated from the URL configuration.

The expected answer is written once per route (``ROUTES``). A route added to the URLconf
without an entry here fails ``test_every_route_has_an_expectation``, so nothing escapes the
matrix. Roles: anonymous, each ministry role (administrator, officer, assigned reviewer,
unassigned reviewer, auditor), a vendor member of the owning organisation, a colleague in the
same organisation, and a vendor member of another organisation.

What each cell asserts:
- read (GET): the exact answer for that role: 200 where the role may see the object, 404 where
  it may not (never 403: another vendor's ids answer like missing ones), the login redirect (pages)
  or 401 (API) for anonymous callers;
- write (the route's POST/PUT/PATCH/DELETE with a plausible body): roles allowed to act get an
  answer that is not a refusal (2xx, a redirect, or a 400 naming the problem); every other role
  is refused (404 when it cannot see the object, 403 or 404 when it can but may not act), and a
  refused write leaves no audit event behind, i.e. it changed nothing.

Each role's requests run inside a savepoint that is rolled back, so one role's write never
changes what the next role sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from portal.models import AuditEvent, Organisation, Role
from tests.factories import make_user, signed_submission

pytestmark = pytest.mark.django_db

MINISTRY = ("admin", "officer", "reviewer", "reviewer_unassigned", "auditor")
VENDORS = ("vendor", "colleague", "other_vendor")
ROLES = ("anonymous",) + MINISTRY + VENDORS
SIGNED_IN = MINISTRY + VENDORS

# Who may read what (roles not listed get 404; anonymous is handled per kind of route).
PROJECT_READERS = {"admin", "officer", "reviewer", "auditor", "vendor", "colleague"}
MINISTRY_READERS = set(MINISTRY)
SEES_ALL = {"admin", "officer", "auditor"}
MANAGERS = {"admin", "officer"}
PROJECT_REVIEWERS = {"admin", "officer", "reviewer"}
VENDOR_MEMBERS = {"vendor", "colleague"}
OWNER = {"vendor"}

REFUSED = {403, 404}
NOT_REFUSED = {200, 201, 202, 204, 301, 302, 400, 409, 413}
# Writes whose body the matrix makes fully valid: an allowed role must succeed, not get a 400.
MUST_SUCCEED = {"api-programme-list", "api-project-list", "api-finding-decide", "api-token-list", "api-tokens",
                "finding-decide"}


@dataclass
class Objects:
    world: object
    colleague: object
    submission: object      # submitted, with an artifact, a check run, a finding
    draft: object           # vendor A's draft
    draft_artifact: object
    finding: object
    run: object
    dossier: object
    failed_dossier: object
    upload: object
    notification: object
    token_key: str
    saved_filter: object
    message: object
    passkey: object         # the vendor's WebAuthn credential
    challenge: object       # a public challenge against the vendor's project, accepted
    challenge_file: object  # the challenger's evidence file on it, accepted by intake, not published


@dataclass
class Route:
    """What a route answers. ``read``: roles that get 200 on GET (None: the route has no GET).
    ``write``: (method, body, roles allowed to act[, roles that see the object]); None when the
    route takes no write. Roles that do not see the object must get exactly 404; roles that see it
    but may not act get 403 or 404 (or, on pages, the redirect back with the refusal as a message,
    302), and in every refused case nothing is recorded."""

    kwargs: Callable[[Objects], dict] = lambda o: {}
    read: set | None = None
    write: tuple | None = None
    api: bool = False
    anonymous_read: int | None = None  # overrides the login redirect / 401
    anonymous_write: set | None = None
    note: str = ""
    read_others: dict = field(default_factory=dict)  # role -> exact status where it is neither 200 nor 404


def page(kwargs=lambda o: {}, read=None, write=None, **extra) -> Route:
    return Route(kwargs=kwargs, read=read, write=write, **extra)


def api(kwargs=lambda o: {}, read=None, write=None, **extra) -> Route:
    return Route(kwargs=kwargs, read=read, write=write, api=True, **extra)


def pk(attr: str) -> Callable[[Objects], dict]:
    def get(o: Objects) -> dict:
        obj = o
        for part in attr.split("."):
            obj = getattr(obj, part)
        return {"pk": obj.pk}
    return get


ALL = set(SIGNED_IN)
DOSSIER_READERS = MINISTRY_READERS - {"reviewer_unassigned"}
CHALLENGE_READERS = SEES_ALL | {"reviewer"} | VENDOR_MEMBERS
PROGRAMME_BODY = {"code": "matrix", "name": "Matrix", "ministry": "{ministry}", "budget_krw": "100",
                  "starts_on": "2026-01-01", "ends_on": "2026-12-31"}
PROJECT_BODY = {"programme": "{programme}", "code": "matrix", "title": "Matrix", "vendor": "{vendor}",
                "funding_krw": "100"}

ROUTES: dict[str, Route] = {
    # --- portal ---
    "home": page(read=set(), read_others={r: 302 for r in SIGNED_IN}, note="a redirect to each role's start page"),
    "login": page(read=ALL, anonymous_read=200, note="signed-in people see the form too"),
    "logout": page(write=("post", {}, ALL), anonymous_write={302}),
    "password_reset_confirm": page(kwargs=lambda o: {"uidb64": "MQ", "token": "bad-token"}, read=ALL,
                                   anonymous_read=200),
    "password_reset": page(read=ALL, anonymous_read=200, write=("post", {"email": "nobody@example.org"}, ALL),
                           anonymous_write={302}, note="the same answer for every address, known or not"),
    "password_reset_done": page(read=ALL, anonymous_read=200),
    "password_reset_complete": page(read=ALL, anonymous_read=200),
    "set_language": page(write=("post", {"language": "ko", "next": "/"}, ALL), anonymous_write={302}),
    "audit-log": page(read=SEES_ALL),
    "api-tokens": page(read=ALL, write=("post", {"name": "matrix", "expires_in_days": "30"}, ALL)),
    "api-token-revoke": page(kwargs=lambda o: {"token_key": o.token_key}, write=("post", {}, OWNER)),
    "two-factor-setup": page(read=ALL, write=("post", {"code": "000000"}, ALL)),
    "two-factor-verify": page(read=OWNER, read_others={r: 302 for r in SIGNED_IN if r not in OWNER},
                              write=("post", {"code": "000000"}, ALL),
                              note="with no second factor set up it sends to the set-up page (the vendor has a passkey)"),
    # Passkeys: the matrix's sessions are signed in by force_login, so none has passed a second
    # factor; registering needs one that has (403 for everyone here, tests/portal/test_passkeys.py
    # covers the verified path). Authentication needs a session (passwordless sign-in is off).
    "otp_webauthn:credential-registration-begin": page(write=("post", {}, set(), ALL), anonymous_write={403}),
    "otp_webauthn:credential-registration-complete": page(write=("post", {}, set(), ALL), anonymous_write={403}),
    "otp_webauthn:credential-authentication-begin": page(write=("post", {}, ALL), anonymous_write={403}),
    "otp_webauthn:credential-authentication-complete": page(write=("post", {}, ALL), anonymous_write={403},
                                                            note="400 without a begun ceremony"),
    "otp_webauthn:js-i18n-catalog": page(read=ALL, anonymous_read=200, note="the library's script texts"),
    "passkeys": page(read=ALL),
    "passkey-rename": page(kwargs=pk("passkey"), write=("post", {"name": "matrix"}, OWNER)),
    "passkey-remove": page(kwargs=pk("passkey"), write=("post", {}, OWNER)),
    "notification-list": page(read=ALL),
    "notification-settings": page(read=ALL, write=("post", {"language": "en"}, ALL)),
    "notification-read-all": page(write=("post", {}, ALL)),
    "notification-open": page(kwargs=pk("notification"), read=set(), read_others={"vendor": 302}),
    "notification-read": page(kwargs=pk("notification"), write=("post", {}, OWNER)),
    # --- projects ---
    "programme-list": page(read=ALL),
    "programme-create": page(read=MANAGERS, read_others={"reviewer": 403, "reviewer_unassigned": 403,
                                                         "auditor": 403},
                             write=("post", {"name": "M", "code": "matrix"}, MANAGERS, MINISTRY_READERS)),
    "programme-detail": page(kwargs=pk("world.programme"), read=ALL - {"reviewer_unassigned"}),
    "policy-edit": page(kwargs=pk("world.programme"), read=MANAGERS,
                        read_others={"reviewer": 403, "auditor": 403},
                        write=("post", {}, MANAGERS, ALL - {"reviewer_unassigned"})),
    "project-list": page(read=ALL),
    "project-create": page(read=MANAGERS, read_others={"reviewer": 403, "reviewer_unassigned": 403,
                                                       "auditor": 403},
                           write=("post", {"code": "matrix"}, MANAGERS, MINISTRY_READERS)),
    "project-detail": page(kwargs=pk("world.project"), read=PROJECT_READERS),
    "project-reviewers": page(kwargs=pk("world.project"), write=("post", {}, MANAGERS, PROJECT_READERS)),
    "project-invite": page(kwargs=pk("world.project"), write=("post", {}, MANAGERS, PROJECT_READERS)),
    "submission-open": page(kwargs=pk("world.project"), write=("post", {"carry_over": "0"}, VENDOR_MEMBERS,
                                                                       PROJECT_READERS)),
    "submission-edit": page(kwargs=pk("draft"), read=VENDOR_MEMBERS,
                            read_others={r: 302 for r in ("admin", "officer", "reviewer", "auditor")},
                            note="staff who can see the project are sent to the read-only submission page"),
    "artifact-upload": page(kwargs=pk("draft"), write=("post", {"kind": "other"}, VENDOR_MEMBERS, PROJECT_READERS)),
    "declaration-save": page(kwargs=pk("draft"), write=("post", {"from_scratch": "on"}, VENDOR_MEMBERS,
                                                             PROJECT_READERS)),
    "declaration-sign": page(kwargs=pk("draft"), write=("post", {}, VENDOR_MEMBERS, PROJECT_READERS)),
    "submission-submit": page(kwargs=pk("draft"), write=("post", {}, VENDOR_MEMBERS, PROJECT_READERS)),
    "artifact-delete": page(kwargs=pk("draft_artifact"), write=("post", {}, VENDOR_MEMBERS, PROJECT_READERS)),
    # --- compliance ---
    "dashboard": page(read=MINISTRY_READERS),
    "review-queue": page(read=MINISTRY_READERS),
    "submission-detail": page(kwargs=pk("submission"), read=PROJECT_READERS),
    "submission-decide": page(kwargs=pk("submission"), write=("post", {"decision": "changes_requested",
                                                                       "justification": "m"},
                                                              PROJECT_REVIEWERS, PROJECT_READERS)),
    "finding-decide": page(kwargs=pk("finding"), write=("post", {"decision": "confirmed", "justification": "m"},
                                                        PROJECT_REVIEWERS, PROJECT_READERS)),
    "finding-message": page(kwargs=pk("finding"), write=("post", {"body": "matrix"},
                                                         VENDOR_MEMBERS | PROJECT_REVIEWERS, PROJECT_READERS)),
    "finding-message-attachment": page(kwargs=pk("message"), read=PROJECT_READERS),
    "check-rerun": page(kwargs=pk("run"), write=("post", {}, MANAGERS, PROJECT_READERS)),
    "dossier-request": page(kwargs=pk("submission"), write=("post", {"lang": "en"}, PROJECT_REVIEWERS,
                                                            PROJECT_READERS)),
    "dossier-download": page(kwargs=pk("dossier"), read=MINISTRY_READERS - {"reviewer_unassigned"}),
    "dossier-retry": page(kwargs=pk("failed_dossier"), write=("post", {}, PROJECT_REVIEWERS, DOSSIER_READERS)),
    "dossier-verify": page(read=ALL, anonymous_read=200, write=("post", {"sha256": "0" * 64}, ALL),
                           anonymous_write={200}),
    "workers": page(read=MANAGERS),
    "reference-list": page(read=MINISTRY_READERS),
    "finding-list": page(read=MINISTRY_READERS),
    "saved-filter-create": page(write=("post", {"page": "projects", "name": "mine", "querystring": "phase=1"}, ALL)),
    "saved-filter-delete": page(kwargs=pk("saved_filter"), write=("post", {}, OWNER)),
    # Public challenges (issue #15): filing, confirming and the register are for anyone; the
    # case is for officers, auditors and administrators and, once accepted, the project's vendor.
    "challenge-new": page(read=ALL, anonymous_read=200, write=("post", {}, ALL), anonymous_write={400},
                          note="an empty form is a 400 naming the missing project"),
    "challenge-confirm": page(kwargs=lambda o: {"token": "not-a-token"}, read=ALL, anonymous_read=200,
                              write=("post", {}, ALL), anonymous_write={400}, note="a bad link is a 400"),
    "challenge-register": page(read=ALL, anonymous_read=200),
    "challenge-list": page(read=SEES_ALL),
    "challenge-detail": page(kwargs=pk("challenge"), read=CHALLENGE_READERS),
    # Evidence once intake accepted it: officers, auditors, the assigned reviewer and the vendor;
    # the public only when the decision published it (not this one).
    "challenge-file": page(kwargs=lambda o: {"pk": o.challenge.pk, "file_pk": o.challenge_file.pk},
                           read=SEES_ALL | VENDOR_MEMBERS | {"reviewer"}, anonymous_read=404),
    "challenge-act": page(kwargs=pk("challenge"), write=("post", {"action": "reply", "body": "m"}, VENDOR_MEMBERS,
                                                         SEES_ALL | VENDOR_MEMBERS)),
    # --- API ---
    "api-root": api(read=ALL),
    "api-schema": api(read=ALL, anonymous_read=200, note="the API's description is public"),
    "api-docs": api(read=ALL, anonymous_read=200),
    "api-redoc": api(read=ALL, anonymous_read=200),
    "api-programme-list": api(read=ALL, write=("post", PROGRAMME_BODY, MANAGERS, ALL)),
    "api-programme-detail": api(kwargs=pk("world.programme"), read=ALL - {"reviewer_unassigned"},
                                note="a programme is seen by whoever sees one of its projects"),
    "api-project-list": api(read=ALL, write=("post", PROJECT_BODY, MANAGERS, ALL)),
    "api-project-detail": api(kwargs=pk("world.project"), read=PROJECT_READERS),
    "api-submission-list": api(read=ALL, write=("post", {"project": "{project}"}, VENDOR_MEMBERS,
                                                PROJECT_READERS)),
    "api-submission-detail": api(kwargs=pk("submission"), read=PROJECT_READERS),
    "api-submission-declaration": api(kwargs=pk("draft"), read=PROJECT_READERS,
                                      write=("put", {"from_scratch": True}, VENDOR_MEMBERS, PROJECT_READERS)),
    "api-submission-sign": api(kwargs=pk("draft"), write=("post", {"signatory_name": "M", "attest": True},
                                                          VENDOR_MEMBERS, PROJECT_READERS)),
    "api-submission-submit": api(kwargs=pk("draft"), write=("post", {}, VENDOR_MEMBERS, PROJECT_READERS)),
    "api-artifact-list": api(read=ALL),
    "api-artifact-detail": api(kwargs=pk("draft_artifact"), read=PROJECT_READERS,
                               write=("delete", None, VENDOR_MEMBERS, PROJECT_READERS)),
    "api-upload-list": api(write=("post", {"submission": "{draft}", "kind": "other", "filename": "m.txt",
                                           "size": 3}, VENDOR_MEMBERS, PROJECT_READERS)),
    "api-upload-detail": api(kwargs=pk("upload"), read=OWNER, write=("delete", None, OWNER)),
    "api-upload-chunk": api(kwargs=pk("upload"), write=("patch", b"abc", OWNER)),
    "api-checkrun-list": api(read=ALL),
    "api-checkrun-detail": api(kwargs=pk("run"), read=PROJECT_READERS),
    "api-checkrun-rerun": api(kwargs=pk("run"), write=("post", {}, MANAGERS, PROJECT_READERS)),
    "api-finding-list": api(read=ALL),
    "api-finding-export": api(read=ALL, note="the caller's own rows; an empty file for roles that see none"),
    "api-project-export": api(read=ALL),
    "api-queue-list": api(read=ALL, note="empty for roles with nothing to decide"),
    "api-queue-detail": api(kwargs=pk("submission"), read={"admin", "officer", "reviewer"}),
    "api-queue-export": api(read=ALL),
    "api-finding-detail": api(kwargs=pk("finding"), read=PROJECT_READERS),
    "api-finding-messages": api(kwargs=pk("finding"), read=PROJECT_READERS,
                                write=("post", {"body": "m"}, VENDOR_MEMBERS | PROJECT_REVIEWERS, PROJECT_READERS)),
    "api-finding-decide": api(kwargs=pk("finding"), write=("post", {"decision": "confirmed", "justification": "m"},
                                                          PROJECT_REVIEWERS, PROJECT_READERS)),
    "api-finding-reply": api(kwargs=pk("finding"), write=("post", {"reply": "m"}, VENDOR_MEMBERS | PROJECT_REVIEWERS,
                                                          PROJECT_READERS), note="deprecated: posts a message"),
    "api-dossier-list": api(read=MINISTRY_READERS, read_others={"vendor": 200, "colleague": 200,
                                                                "other_vendor": 200},
                            write=("post", {"submission": "{submission}"}, PROJECT_REVIEWERS, PROJECT_READERS),
                            note="a vendor's list is empty, not refused"),
    "api-dossier-verify": api(write=("post", {"sha256": "0" * 64}, ALL), anonymous_write={200}),
    "api-dossier-detail": api(kwargs=pk("dossier"), read=MINISTRY_READERS - {"reviewer_unassigned"}),
    "api-dossier-retry": api(kwargs=pk("failed_dossier"), write=("post", {}, PROJECT_REVIEWERS, DOSSIER_READERS)),
    "api-submission-decision-list": api(write=("post", {"submission": "{submission}",
                                                        "decision": "changes_requested", "justification": "m"},
                                               PROJECT_REVIEWERS, PROJECT_READERS)),
    # Public challenges (issue #15): the public door files and reads the register without an
    # account; the case follows the page's readers plus the project's assigned reviewer.
    "api-public-challenge-list": api(read=ALL, anonymous_read=200, write=("post", {}, ALL), anonymous_write={400},
                                     note="an empty filing is a 400 naming the missing fields"),
    "api-public-challenge-detail": api(kwargs=pk("challenge"), read=set(), anonymous_read=404,
                                       note="the matrix's challenge is accepted, not decided: not public yet"),
    "api-challenge-list": api(read=ALL, note="each role's own scope; empty for those who see none"),
    "api-challenge-detail": api(kwargs=pk("challenge"), read=CHALLENGE_READERS),
    "api-challenge-accept": api(kwargs=pk("challenge"), write=("post", {"reasons": "m"}, MANAGERS, CHALLENGE_READERS),
                                note="400 for officers: the matrix's challenge is accepted already"),
    "api-challenge-reject": api(kwargs=pk("challenge"), write=("post", {"reasons": "m"}, MANAGERS, CHALLENGE_READERS)),
    "api-challenge-merge": api(kwargs=pk("challenge"), write=("post", {"into": 0, "reasons": "m"}, MANAGERS,
                                                              CHALLENGE_READERS)),
    "api-challenge-retest": api(kwargs=pk("challenge"), write=("post", {}, MANAGERS, CHALLENGE_READERS)),
    "api-challenge-decide": api(kwargs=pk("challenge"), write=("post", {"outcome": "upheld", "reasons": "m",
                                                                        "summary": "m"}, MANAGERS, CHALLENGE_READERS)),
    "api-challenge-reply": api(kwargs=pk("challenge"), write=("post", {"body": "m"}, VENDOR_MEMBERS,
                                                              CHALLENGE_READERS)),
    "api-token-list": api(read=ALL, write=("post", {"name": "m", "expires_in_days": 7}, ALL)),
    "api-token-detail": api(kwargs=lambda o: {"token_key": o.token_key}, write=("delete", None, OWNER)),
    "api-notification-list": api(read=ALL),
    "api-notification-read-all": api(write=("post", {}, ALL)),
    "api-notification-detail": api(kwargs=pk("notification"), read=OWNER),
    "api-notification-read": api(kwargs=pk("notification"), write=("post", {}, OWNER)),
}


def _route_names() -> set[str]:
    """Every named route of the URLconf but Django's admin (its own staff check; see below)."""
    names: set[str] = set()

    def walk(patterns, namespace=None):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern) and p.name and namespace != "admin":
                names.add(f"{namespace}:{p.name}" if namespace else p.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_route_has_an_expectation():
    missing = sorted(_route_names() - set(ROUTES))
    stale = sorted(set(ROUTES) - _route_names())
    assert not missing, f"routes without an expectation in the matrix: {missing}"
    assert not stale, f"expectations for routes that no longer exist: {stale}"


@pytest.fixture
def objects(world, settings):
    from compliance.models import CheckRun, Dossier, Finding
    from portal.notifications import notify
    from portal.tokens import token_create
    from projects import uploads

    # Nine roles ask for a reset link for one address from one client; the budgets are tested in
    # tests/portal/test_password_reset.py, here they must not turn the ninth into a 429.
    settings.PORTAL_PASSWORD_RESET_RATE_PER_ACCOUNT = settings.PORTAL_PASSWORD_RESET_RATE_PER_CLIENT = "100/hour"
    colleague = make_user("vendor-a-colleague", Role.VENDOR, Organisation.objects.get(pk=world.vendor_a.pk))
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    finding = Finding.objects.create(check_run=run, submission=submission, severity="high", category="matrix",
                                     code="matrix", title="Matrix finding")
    dossier = Dossier.objects.create(submission=submission, number="D-MATRIX-1", state=Dossier.State.READY,
                                     requested_by=world.reviewer)
    dossier.file.save("D-MATRIX-1.pdf", ContentFile(b"%PDF-1.7\n%%EOF\n"), save=False)
    dossier.sha256, dossier.size = "0" * 64, 15
    dossier.save()
    failed_dossier = Dossier.objects.create(submission=submission, number="D-MATRIX-2", state=Dossier.State.FAILED,
                                            requested_by=world.reviewer, error="matrix")
    draft = signed_submission(world=world)
    upload = uploads.upload_session_create(user=world.vendor_user, submission=draft, kind="other",
                                           filename="partial.txt", size=3)
    notify(kind="submission_received", recipients=[world.vendor_user],
           url=f"/submissions/{submission.pk}/", params={"project": world.project.code, "number": 1},
           actor=world.admin)
    from portal.models import Notification

    token, _ = token_create(user=world.vendor_user, name="matrix", expires_in_days=7)
    from portal.services import saved_filter_save

    saved_filter = saved_filter_save(user=world.vendor_user, page="projects", name="mine", querystring="phase=1")
    import io

    from compliance.services.threads import message_post

    message = message_post(user=world.vendor_user, finding=finding, body="See the attached log.",
                           attachment_name="log.txt", attachment_file=io.BytesIO(b"training log\n"))
    message.attachment.status = message.attachment.Status.ACCEPTED
    message.attachment.save(update_fields=["status"])
    from django_otp_webauthn.models import WebAuthnCredential

    passkey = WebAuthnCredential.objects.create(user=world.vendor_user, name="matrix", credential_id=b"m" * 32,
                                                public_key=b"k", aaguid="00000000-0000-0000-0000-000000000000")
    from compliance.services import challenges as challenge_services

    settings.PORTAL_CHALLENGE_RATE = "100/hour"
    challenge = challenge_services.challenge_file(
        project=world.project, model_named="Alpha", claim="other", claimed_source="", statement="matrix",
        figures="", contact_email="critic@example.net", files=[("figures.csv", io.BytesIO(b"layer,cosine\n0,0.9\n"))])
    challenge.files.update(intake_status="accepted")
    challenge = challenge_services.challenge_confirm(token=challenge_services.challenge_confirm_token(
        challenge=challenge))
    challenge_services.challenge_accept(user=world.officer, challenge=challenge)
    return Objects(world=world, passkey=passkey, challenge=challenge, challenge_file=challenge.files.get(),
                   colleague=colleague, submission=submission, draft=draft,
                   draft_artifact=draft.artifacts.first(), finding=finding, run=run, dossier=dossier, failed_dossier=failed_dossier,
                   upload=upload, notification=Notification.objects.get(recipient=world.vendor_user, kind="submission_received"),
                   token_key=token.token_key, saved_filter=saved_filter,
                   message=message)


def _client(objects: Objects, role: str) -> APIClient:
    client = APIClient()
    if role == "colleague":
        client.force_login(objects.colleague)
    elif role != "anonymous":
        client.force_login(objects.world.users()[role])
    return client


def _expected_read(route: Route, role: str) -> set[int]:
    if role == "anonymous":
        if route.anonymous_read is not None:
            return {route.anonymous_read}
        return {401} if route.api else {302}
    if role in route.read_others:
        return {route.read_others[role]}
    return {200} if role in route.read else {404}


def _fill(body, o: Objects):
    if isinstance(body, dict):
        return {k: (v.format(project=o.world.project.pk, draft=o.draft.pk, submission=o.submission.pk,
                             ministry=o.world.ministry.name, programme=o.world.programme.pk,
                             vendor=o.world.vendor_a.name)
                    if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}
    return body


def _send(client: APIClient, route: Route, url: str, method: str, body):
    if method == "patch" and isinstance(body, bytes):
        return client.patch(url, body, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0")
    if route.api:
        return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)
    return getattr(client, method)(url, body or {})


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route(objects, name, settings):
    route = ROUTES[name]
    if name not in _route_names():
        pytest.fail(f"{name} is not a route any more")
    url = reverse(name, kwargs=route.kwargs(objects))
    wrong = []
    for role in ROLES:
        with transaction.atomic():
            client = _client(objects, role)
            if route.read is not None:
                answer = client.get(url)
                expected = _expected_read(route, role)
                if answer.status_code not in expected:
                    wrong.append(f"GET {role}: {answer.status_code}, expected {sorted(expected)}")
                elif answer.status_code == 404 and name.startswith("api-") is False and route.kwargs(objects):
                    body = answer.content.decode(errors="replace")
                    if objects.world.project.title in body:
                        wrong.append(f"GET {role}: a 404 page that names the project")
            if route.write is not None:
                method, body, allowed = route.write[:3]
                visible = route.write[3] if len(route.write) > 3 else allowed
                before = AuditEvent.objects.count()
                answer = _send(client, route, url, method, _fill(body, objects))
                code = answer.status_code
                if role == "anonymous":
                    ok = route.anonymous_write or ({401, 403} if route.api else {302, 403})
                    if code not in ok:
                        wrong.append(f"{method.upper()} anonymous: {code}, expected {sorted(ok)}")
                elif role in allowed:
                    ok = {200, 201, 204, 302} if name in MUST_SUCCEED else NOT_REFUSED
                    if code not in ok:
                        wrong.append(f"{method.upper()} {role}: {code}, expected to be allowed ({sorted(ok)})")
                else:
                    refused = ({404} if role not in visible else
                               REFUSED | ({302} if not route.api else set()))
                    if code not in refused:
                        wrong.append(f"{method.upper()} {role}: {code}, expected {sorted(refused)}")
                    elif AuditEvent.objects.count() != before:
                        wrong.append(f"{method.upper()} {role}: refused but left an audit event")
            transaction.set_rollback(True)
    assert not wrong, f"{name} ({url}):\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_django_admin_is_for_administrators_and_officers_only(objects, role):
    client = _client(objects, role)
    answer = client.get("/admin/", follow=True)
    body = answer.content.decode()
    if role in {"admin", "officer"}:  # Django staff (portal.services.user_create)
        assert answer.status_code == 200 and 'name="password"' not in body
        if role == "admin":
            assert "/admin/projects/" in body
        return
    # Everyone else ends on the admin's own login form, never on its index of models.
    assert answer.status_code == 200 and 'name="password"' in body
    assert "/admin/portal/" not in body and "/admin/projects/" not in body

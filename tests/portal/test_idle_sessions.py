"""Idle sessions end: a staff session with no request for PORTAL_STAFF_IDLE_TIMEOUT_MINUTES is
signed out at its next request, which lands on the sign-in page saying why. Vendors have their
own, longer limit; API tokens are not sessions and are not touched. The clock is moved by hand
(``portal.middleware.session_clock``), never slept on."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from portal.tokens import token_create

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, *, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture
def clock(monkeypatch, settings):
    settings.PORTAL_STAFF_IDLE_TIMEOUT_MINUTES = 30
    settings.PORTAL_VENDOR_IDLE_TIMEOUT_MINUTES = 480
    fake = Clock()
    monkeypatch.setattr("portal.middleware.session_clock", fake)
    return fake


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_staff_session_ends_after_thirty_idle_minutes_and_says_why(world, clock):
    client = _signed_in(world.reviewer)
    assert client.get("/projects/").status_code == 200
    # Activity keeps it alive: a request every 29 minutes for two hours.
    for _ in range(4):
        clock.advance(minutes=29)
        assert client.get("/projects/").status_code == 200
    clock.advance(minutes=31)
    answer = client.get("/projects/?sort=title")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/accounts/login/?next=%2Fprojects%2F%3Fsort%3Dtitle"
    assert "_auth_user_id" not in client.session
    login_page = client.get(answer.headers["Location"]).content.decode()
    assert "You were signed out after 30 minutes without activity" in login_page
    # Signed out for real: the next page asks to sign in again, with no second message.
    again = client.get("/projects/")
    assert again.status_code == 302 and again.headers["Location"].startswith("/accounts/login/")


def test_the_limit_is_configurable(world, clock, settings):
    settings.PORTAL_STAFF_IDLE_TIMEOUT_MINUTES = 5
    client = _signed_in(world.officer)
    client.get("/projects/")
    clock.advance(minutes=6)
    assert client.get("/projects/").status_code == 302 and "_auth_user_id" not in client.session


def test_vendors_have_their_own_longer_limit(world, clock):
    client = _signed_in(world.vendor_user)
    client.get("/projects/")
    clock.advance(minutes=120)  # a long lunch: still signed in
    assert client.get("/projects/").status_code == 200
    clock.advance(minutes=481)
    assert client.get("/projects/").status_code == 302 and "_auth_user_id" not in client.session


def test_an_idle_session_calling_the_api_is_answered_as_anonymous(world, clock):
    client = _signed_in(world.auditor)
    assert client.get("/api/projects/").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/api/projects/").status_code in (401, 403)
    assert "_auth_user_id" not in client.session


def test_api_tokens_are_not_affected(world, clock):
    _, secret = token_create(user=world.reviewer, name="ci", expires_in_days=30)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert api.get("/api/projects/").status_code == 200
    clock.advance(minutes=24 * 60)
    assert api.get("/api/projects/").status_code == 200

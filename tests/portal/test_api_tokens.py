"""API tokens people make for themselves: named, shown once, stored hashed, expiring, revocable,
last use shown, every step audited, another person's token out of reach."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from portal.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_vendor_makes_a_token_on_the_page_sees_it_once_and_uses_it(world):
    page = _session(world.vendor_user)
    made = page.post("/account/tokens/", {"name": "CI uploader", "expires_in_days": "30"})
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="token-secret-value" class="hash" readonly value="([^"]+)"', made.content.decode()).group(1)
    assert secret.startswith("gp_") and len(secret) > 40
    # Shown once: the next visit lists the token by name and prefix, never the secret.
    again = page.get("/account/tokens/").content.decode()
    assert "CI uploader" in again and secret not in again and secret[:8] in again
    # Stored hashed: no column holds the secret.
    token = ApiToken.objects.get(user=world.vendor_user)
    assert secret not in (token.digest, token.token_key) and len(token.digest) == 128
    assert abs((token.expiry - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)
    # It works on the API, as the vendor, and its last use is recorded and shown.
    assert token.last_used_at is None
    answer = _bearer(secret).get("/api/projects/")
    assert answer.status_code == 200
    assert [p["code"] for p in answer.json()["results"]] == [world.project.code]
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert "never" not in page.get("/account/tokens/").content.decode().split("CI uploader", 1)[1].split("</tr>")[0]
    assert AuditEvent.objects.filter(action="token.created", actor=world.vendor_user, object_label="CI uploader").exists()


def test_a_wrong_form_keeps_what_was_typed_and_says_where(world):
    answer = _session(world.officer).post("/account/tokens/", {"name": "nightly export", "expires_in_days": ""})
    assert answer.status_code == 400
    html = answer.content.decode()
    assert 'value="nightly export"' in html
    assert 'id="token-expiry-error"' in html and 'aria-invalid="true"' in html
    assert not ApiToken.objects.exists()


def test_revoked_and_expired_tokens_stop_working(world):
    api = APIClient()
    api.force_authenticate(world.vendor_user)
    made = api.post("/api/tokens/", {"name": "laptop", "expires_in_days": 7}, format="json")
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    secret, key = made.json()["secret"], made.json()["token_key"]
    assert _bearer(secret).get("/api/projects/").status_code == 200
    # Listing never repeats the secret.
    listed = api.get("/api/tokens/").json()
    assert [t["name"] for t in listed["results"]] == ["laptop"] and "secret" not in listed["results"][0]
    assert api.delete(f"/api/tokens/{key}/").status_code == 204
    assert _bearer(secret).get("/api/projects/").status_code == 401
    assert AuditEvent.objects.filter(action="token.revoked", object_id=key).exists()

    from portal.tokens import token_create

    token, old = token_create(user=world.vendor_user, name="old", expires_in_days=7)
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _bearer(old).get("/api/projects/").status_code == 401
    assert AuditEvent.objects.filter(action="token.expired", object_id=world.vendor_user.username).exists()


def test_another_persons_token_answers_404(world):
    from portal.tokens import token_create

    token, secret = token_create(user=world.vendor_user, name="theirs", expires_in_days=30)
    other = APIClient()
    other.force_authenticate(world.other_vendor_user)
    assert other.delete(f"/api/tokens/{token.token_key}/").status_code == 404
    assert other.get("/api/tokens/").json()["results"] == []
    page = _session(world.other_vendor_user)
    assert page.post(f"/account/tokens/{token.token_key}/revoke/").status_code == 404
    assert "theirs" not in page.get("/account/tokens/").content.decode()
    assert _bearer(secret).get("/api/projects/").status_code == 200  # untouched


def test_revoking_on_the_page(world):
    from portal.tokens import token_create

    token, secret = token_create(user=world.reviewer, name="review script", expires_in_days=90)
    page = _session(world.reviewer)
    answer = page.post(f"/account/tokens/{token.token_key}/revoke/", follow=True)
    assert "review script" in answer.content.decode() and "revoked" in answer.content.decode()
    assert not ApiToken.objects.exists()
    assert _bearer(secret).get("/api/projects/").status_code == 401


def test_only_the_offered_expiries_and_a_name(world):
    api = APIClient()
    api.force_authenticate(world.vendor_user)
    assert api.post("/api/tokens/", {"name": "forever", "expires_in_days": 100000}, format="json").status_code == 400
    assert api.post("/api/tokens/", {"name": " ", "expires_in_days": 30}, format="json").status_code == 400
    assert not ApiToken.objects.exists()


def test_api_docs_say_how_to_get_a_token(world):
    schema = _session(world.vendor_user).get("/api/schema/").content.decode()
    assert "/account/tokens/" in schema and "apiToken" in schema and "/api/tokens/" in schema

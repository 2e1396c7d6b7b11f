"""Production defaults: HTTPS only, the browser headers a security review asks for, and a clean
``check --deploy``; anonymous dossier verification bounded before the body is read and rate-limited."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path) -> dict:
    """What an operator sets: a database, a key, a host name; nothing about HTTPS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_CACHE"))}
    env.update({
        "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "portal.example.go.kr",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # The probe renders a page without running collectstatic first.
        "PORTAL_STATIC_MANIFEST": "0",
    })
    return env


def test_check_deploy_is_clean_with_production_defaults(tmp_path):
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=_production_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


PROBE = r"""
import json, django
django.setup()
from django.test import Client
c = Client(HTTP_HOST="portal.example.go.kr")
plain = c.get("/accounts/login/")
tls = c.get("/accounts/login/", secure=True)
print(json.dumps({"plain_status": plain.status_code, "location": plain.headers.get("Location"),
                  "tls_status": tls.status_code, "headers": dict(tls.headers),
                  "cookie_secure": bool(tls.cookies["csrftoken"]["secure"])}))
"""


def test_production_serves_https_only_with_security_headers(tmp_path):
    env = _production_env(tmp_path) | {"DJANGO_SETTINGS_MODULE": "portal.settings"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain_status"] == 301 and seen["location"] == "https://portal.example.go.kr/accounts/login/"
    headers = seen["headers"]
    assert seen["tls_status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"] and "geolocation=()" in headers["Permissions-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "style-src 'self';" in headers["Content-Security-Policy"], "no inline style on the portal's pages"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert seen["cookie_secure"]


def test_operator_can_turn_the_https_redirect_off_behind_a_proxy(tmp_path):
    env = _production_env(tmp_path) | {"DJANGO_SETTINGS_MODULE": "portal.settings",
                                       "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"}
    probe = PROBE.replace('c.get("/accounts/login/", secure=True)',
                          'c.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")')
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # The proxy said the client came over TLS: no redirect loop, and HSTS is sent.
    assert seen["tls_status"] == 200 and "max-age=" in seen["headers"]["Strict-Transport-Security"]


def _pdf_like(size: int) -> bytes:
    return b"%PDF-1.7\n" + b"0" * (size - 16) + b"\n%%EOF\n"


@pytest.mark.django_db
def test_oversized_verification_is_refused_before_the_body_is_read():
    # The announced length is past the cap; the body actually sent is tiny, so a 413 proves the
    # view answered from the header without reading (and without waiting for) the body.
    huge = str(200 * 1024 * 1024)
    page = Client().post("/verify/", {"sha256": "0" * 64}, CONTENT_LENGTH=huge)
    assert page.status_code == 413
    assert "larger than any dossier" in page.content.decode()
    api = Client().post("/api/dossiers/verify/", {"sha256": "0" * 64}, CONTENT_LENGTH=huge)
    assert api.status_code == 413


@pytest.mark.django_db
def test_anonymous_uploads_are_rate_limited_but_hash_checks_are_not(settings):
    settings.PORTAL_VERIFY_UPLOAD_RATE = "3/hour"
    anonymous = Client()
    pdf = _pdf_like(100 * 1024)
    answers = [anonymous.post("/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)}).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    # The fourth, through the API this time: the budget is shared between the page and the API.
    limited = anonymous.post("/api/dossiers/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "sha256" in limited.json()["detail"]
    page = anonymous.post("/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)})
    assert page.status_code == 429 and "SHA-256" in page.content.decode()
    # Verification by hash stays open to honest callers.
    for _ in range(10):
        assert anonymous.post("/api/dossiers/verify/", {"sha256": "0" * 64},
                              content_type="application/json").status_code == 200
    # Another address has its own budget.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert other.post("/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)}).status_code == 200


@pytest.mark.django_db
def test_only_the_admin_and_the_api_docs_may_use_inline_style(client):
    page = client.get("/accounts/login/")
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    for path in ("/api/docs/", "/admin/login/"):
        policy = client.get(path).headers["Content-Security-Policy"]
        assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy, path

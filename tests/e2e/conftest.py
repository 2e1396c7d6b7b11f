"""Headless Chromium against pytest-django's live server (and, where needed, a real Celery worker).

The browser is Debian's /usr/bin/chromium driven by Playwright's sync API; no browser is ever
downloaded. One browser process serves the whole session (launching costs ~1 s on this
machine); every test gets fresh contexts, so cookies and storage never leak between tests.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop. The test thread only reads and writes fixtures, so allow it here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("PORTAL_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# Long enough for a cold worker (~5 s to start) plus intake on a few small files; the flow
# asserts states, never durations.
TIMEOUT_MS = 60_000


def pytest_collection_modifyitems(config, items):
    """Skip (naming the install) when the machine has no Chromium; in CI the skip fails the run
    (tests/conftest.py)."""
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium fonts-nanum "
                                   "(or set PORTAL_E2E_CHROMIUM to its path)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="package")
def browser():
    """Package scope: Playwright's event loop stops when the browser tests end, so no later
    test runs inside a thread with a running loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageErrors(list):
    """Uncaught script errors and Content-Security-Policy violations seen by a page."""


@pytest.fixture
def new_page(browser, live_server):
    """Open a page in a fresh browser context: ``page, errors = new_page()``.

    ``bypass_csp=True`` only for axe (Playwright injects its script inline, which the portal's
    CSP rightly blocks); the flow tests keep the real CSP so they prove portal.js runs under it.
    """
    contexts = []

    def _open(*, bypass_csp: bool = False, locale: str = "en-GB"):
        context = browser.new_context(base_url=live_server.url, bypass_csp=bypass_csp, locale=locale,
                                      viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        errors = PageErrors()
        page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
        # Chromium reports a blocked script or style as "Refused to ... Content Security Policy".
        page.on("console", lambda msg: errors.append(f"console: {msg.text}")
                if msg.type == "error" and re.search(r"Content.Security.Policy|Refused to", msg.text) else None)
        return page, errors

    yield _open
    for context in contexts:
        context.close()


def login(page, *, username: str, password: str) -> None:
    """Log in through the real form, then pass the second factor as a person would: ministry staff
    without one set it up (the key read off the page, the code computed as an authenticator app
    does); anyone with one enters a recovery code. Fields are found by name, not label, so this
    works whatever language the browser asks for."""
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.locator("main input[name=username]").fill(username)
    page.locator("main input[name=password]").fill(password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    if "/account/two-factor/setup/" in page.url:
        from base64 import b32decode

        from django_otp.oath import TOTP

        key = page.locator("#otp-key").inner_text().replace(" ", "")
        page.locator("main input[name=code]").fill(f"{TOTP(b32decode(key)).token():06d}")
        page.locator("main form button[type=submit].primary").click()
        page.locator("main a.button.primary").click()
    elif "/account/two-factor/verify/" in page.url:
        from django_otp.plugins.otp_static.models import StaticToken

        code = StaticToken.objects.filter(device__user__username=username).values_list("token", flat=True).first()
        page.locator("main input[name=code]").fill(code)
        page.locator("main form button[type=submit].primary").click()
    expect(page.locator("header form.logout-form")).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/account/two-factor/"))


@pytest.fixture(autouse=True)
def _second_factor_enforced(settings):
    """Browser tests sign in through the real form, so the second factor is asked as in production."""
    settings.PORTAL_SECOND_FACTOR_ENFORCED = True


@pytest.fixture
def worker_later(transactional_db, settings, tmp_path):
    """A real Celery worker that the test starts when it chooses (``worker_later.start()``).

    The flow test starts it only once the reviewer's page shows queued runs, so the live
    refresh has something to show; the ``celery_worker`` fixture starts it up front.
    """
    from tests.conftest import WorkerProcess, _purge_broker

    _purge_broker()
    worker = WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)
    yield worker
    worker_stop_quickly(worker)


def worker_stop_quickly(worker) -> None:
    """SIGTERM to the worker's main process only: it stops its pool and beat in ~8 s here.
    Signalling the whole process group (WorkerProcess.stop) kills the pool children under the
    main process, which then hangs on a lock until the 30 s SIGKILL fallback."""
    import signal
    import subprocess

    if worker.proc and worker.proc.poll() is None:
        os.kill(worker.proc.pid, signal.SIGTERM)
        try:
            worker.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.stop()  # the shared fallback: group SIGTERM, then SIGKILL after 30 s
    worker.stop()  # the control worker beside it (and anything the above left running)


def wait_for(predicate, *, timeout: float = 60.0, what: str = "condition"):
    """Poll the database (not the page) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

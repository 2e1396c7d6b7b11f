"""Shared fixtures: the permission-matrix world, isolated storage, and a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# --- No skips in CI ------------------------------------------------------------------------
# A skipped test proves nothing, so in CI (CI=true, which the CI runner sets, or
# PORTAL_TESTS_NO_SKIP=1) every skip fails the run with its reason, which names the missing
# piece and how to install it. Locally a skip stays a skip, listed with its reason (-rs).
def _skips_fail() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("PORTAL_TESTS_NO_SKIP", "") == "1"


def _as_failure(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and _skips_fail():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _as_failure(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _as_failure(outcome.get_result())


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Each test writes its files under its own temporary folder; passwords hash fast
    (PBKDF2's 1,000,000 rounds cost ~0.5 s a user, and the matrix makes seven per test)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOAD_PARTIAL_DIR = tmp_path / "partial"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Most tests sign in with force_login, which no second factor can follow; the sign-in tests
    # (tests/portal/test_second_factor.py) and every browser test (tests/e2e/conftest.py) turn it on.
    settings.PORTAL_SECOND_FACTOR_ENFORCED = False
    # Throttle counters start from zero in every test (the suite posts many dossiers anonymously).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": str(tmp_path)}}


@pytest.fixture(autouse=True)
def _default_language():
    """Django's LocaleMiddleware activates the request's language in the test's own thread and
    never deactivates it; a Korean page in one test must not make the next test's words Korean."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture
def world(db):
    from tests.factories import build_world

    return build_world()


def _worker_env() -> dict:
    """The worker must use the test database the test process created."""
    from django.db import connection

    env = dict(os.environ)
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        env["PORTAL_SQLITE_PATH"] = str(settings_dict["NAME"])
    else:
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    env.setdefault("PORTAL_CHECK_LEASE_S", "8")
    # Workers started by tests load ScanCode's index in the child that needs it (6-30 s each start
    # otherwise); tests/compliance/test_file_cache.py starts one that preloads it as production does.
    env.setdefault("PORTAL_PRELOAD_LICENCE_INDEX", "0")
    env.setdefault("PORTAL_RECONCILE_INTERVAL_S", "2")
    env.setdefault("PORTAL_CHECK_QUEUED_STALE_S", "10")
    return env


class WorkerProcess:
    """A real `celery worker` subprocess (prefork pool), and beside it the control worker that
    runs beat and the reconciler and nothing else, as scripts/run.py starts them."""

    def __init__(self, log_path: Path, media_root: Path, partial_dir: Path):
        self.log_path = log_path
        self.control_log_path = log_path.with_name(f"control-{log_path.name}")
        self.media_root = media_root
        self.partial_dir = partial_dir
        self.proc: subprocess.Popen | None = None
        self.control: subprocess.Popen | None = None

    def _popen(self, args: list[str], log_path: Path, env: dict) -> subprocess.Popen:
        log = open(log_path, "ab")
        return subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", *args, "--loglevel", "INFO",
                                 "--without-gossip", "--without-mingle"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 60.0) -> None:
        env = _worker_env()
        env["PORTAL_MEDIA_ROOT"] = str(self.media_root)
        env["PORTAL_UPLOAD_PARTIAL_DIR"] = str(self.partial_dir)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = self._popen(["-Q", "light,heavy,dossier", "--concurrency", "2", "-n", f"test-{os.getpid()}@%h"],
                                self.log_path, env)
        self.control = self._popen(["--beat", "-Q", "control", "--pool", "solo", "-n", f"control-{os.getpid()}@%h",
                                    "--schedule", str(self.log_path.parent / "beat-schedule")],
                                   self.control_log_path, env)
        deadline = time.monotonic() + timeout
        pending = {self.log_path: self.proc, self.control_log_path: self.control}
        while pending and time.monotonic() < deadline:
            for path, proc in list(pending.items()):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {path.read_text()[-3000:]}")
                if b" ready." in path.read_bytes():
                    del pending[path]
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"worker not ready after {timeout} s: {next(iter(pending)).read_text()[-3000:]}")

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self, sig: int | None = None) -> None:
        import signal

        for proc in (self.proc, self.control):
            if proc and proc.poll() is None:
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole worker dies at once, children too
                else:
                    # SIGTERM to the main process only: it stops its pool itself (~5 s); signalling
                    # the whole group kills the children first and leaves the main process hanging.
                    proc.send_signal(signal.SIGTERM)
        for proc in (self.proc, self.control):
            if proc:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _purge_broker() -> None:
    from portal.celery import app

    with app.connection_for_write() as conn:
        for queue in ("light", "heavy", "dossier", "control"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue that does not exist yet has nothing to purge
                pass


@pytest.fixture
def celery_worker(transactional_db, settings, tmp_path):
    """A real worker for one test, sharing this test's storage folders and database."""
    _purge_broker()
    worker = WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def dossier_signing_key(settings, tmp_path):
    """A dossier signing key of the test's own, for tests that issue a dossier in-process: only the
    embedded default makes a demo key at first start, so on PostgreSQL (CI) there is none."""
    settings.DOSSIER_SIGNING_KEY = str(tmp_path / "sign" / "key.pem")
    settings.DOSSIER_SIGNING_CERT = str(tmp_path / "sign" / "cert.pem")
    settings.DOSSIER_SIGNING_GENERATE = True
    settings.DOSSIER_SIGNING_PKCS11_MODULE = None
    settings.DOSSIER_TRUSTED_CERTS = None
    return settings.DOSSIER_SIGNING_KEY


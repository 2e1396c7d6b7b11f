"""Start the portal: a real Celery worker for the checks, a control worker (the reconciler and
its beat) and the web server.

Embedded default: SQLite and the SQLAlchemy broker in var/, local storage. With
DATABASE_URL / CELERY_BROKER_URL set, the same processes use PostgreSQL and Redis.
Ctrl-C stops all three.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main() -> int:
    os.chdir(ROOT)
    env = dict(os.environ)
    bind = env.get("PORTAL_BIND", "127.0.0.1:8000")
    worker = subprocess.Popen([PY, "-m", "celery", "-A", "portal", "worker", "-Q", "light,heavy,dossier",
                               "--concurrency", env.get("PORTAL_WORKER_CONCURRENCY", "2"), "--loglevel", "INFO",
                               "-n", "checks@%h"], env=env)
    # The reconciler's own worker, with beat: one solo process that nothing long ever runs on,
    # so reconciling keeps its interval while every check slot is busy (issue #11).
    control = subprocess.Popen([PY, "-m", "celery", "-A", "portal", "worker", "--beat", "-Q", "control",
                                "--pool", "solo", "--loglevel", "INFO", "-n", "control@%h",
                                "--schedule", str(ROOT / "var" / "celerybeat-schedule")], env=env)
    web = subprocess.Popen([PY, "-m", "gunicorn", "portal.wsgi", "--bind", bind, "--workers", "1", "--threads", "8",
                            "--timeout", "600", "--access-logfile", "-"], env=env)
    # Shown as localhost when bound to loopback: passkeys (WebAuthn) refuse an IP address as the
    # site's identity, and every other page works the same at either name.
    shown = bind.replace("127.0.0.1:", "localhost:", 1) if bind.startswith("127.0.0.1:") else bind
    print(f"\nPortal: http://{shown}/  (API docs: http://{shown}/api/docs/). Ctrl-C stops web and worker.\n",
          flush=True)

    def stop(*_):
        for proc in (web, worker, control):
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while web.poll() is None and worker.poll() is None and control.poll() is None:
            try:
                web.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    finally:
        stop()
        for proc in (web, worker, control):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return web.returncode or worker.returncode or control.returncode or 0


if __name__ == "__main__":
    sys.exit(main())

"""Pipeline throughput: submissions checked per minute with 1, 2 and 4 worker processes.

Builds a fresh portal database, loads N submissions (each a small real model directory:
config, tokenizer, weights, model card, source archive), submits them all at once, starts
one `celery worker` with --concurrency W, and times until every check run has ended.
Reports submissions/min per W and the scaling factor against W=1.

Usage: .venv/bin/python bench/pipeline.py [--submissions 20] [--workers 1,2,4]
       [--database-url postgres://...] [--broker-url redis://...] [--work DIR]
       .venv/bin/python bench/pipeline.py --quick    # 2 submissions, one worker process

The model directories are made with numpy in the run; each measurement's database, broker and
files live in a fresh folder under --work (default var/bench/pipeline, removed after it).
Nothing is downloaded. Prints JSON and writes it to bench/out/pipeline[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402

LOADER = r'''
import os, sys, tempfile, datetime
from decimal import Decimal
from pathlib import Path
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from django.core.files import File
from compliance import demo
from portal.models import Organisation, Role
from portal.services import user_create
from projects import services, uploads
n = int(sys.argv[1])
ministry = Organisation.objects.create(name="Bench ministry", kind="ministry")
vendor = Organisation.objects.create(name="Bench vendor", kind="vendor")
admin = user_create(username="admin", password="bench-password-1", organisation=ministry, role=Role.ADMIN)
user = user_create(username="vendor", password="bench-password-1", organisation=vendor, role=Role.VENDOR)
programme = services.programme_create(user=admin, name="Bench", code="bench", ministry=ministry, budget_krw=Decimal(1),
    starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 1, 1))
with tempfile.TemporaryDirectory() as tmp:
    model = demo.llama_like_write(target=Path(tmp) / "m", seed=1, name="bench")
    archive = demo.source_archive_write(target=Path(tmp) / "src.tar.gz", project_name="bench")
    files = sorted(model.iterdir()) + [archive]
    for i in range(n):
        project = services.project_create(user=admin, programme=programme, code=f"p{i}", title=f"P{i}", vendor=vendor,
                                          funding_krw=Decimal(1))
        submission = services.submission_open(user=user, project=project)
        for path in files:
            kind = {"config.json": "config", "tokenizer.json": "tokenizer", "README.md": "model_card",
                    "model.safetensors": "weights", "src.tar.gz": "source_archive"}[path.name]
            with open(path, "rb") as fh:
                uploads.artifact_upload_file(user=user, submission=submission, kind=kind, filename=f"m/{path.name}",
                                             fileobj=File(fh))
        services.declaration_sign(user=user, submission=submission, signatory_name="Bench", attest=True)
print("loaded", n)
'''

SUBMIT = r'''
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from django.contrib.auth import get_user_model
from projects import services
from projects.models import Submission
user = get_user_model().objects.get(username="vendor")
for s in Submission.objects.filter(status="draft"):
    services.submission_submit(user=user, submission=s)
print("submitted")
'''

STATUS = r'''
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from compliance.models import CheckRun
runs = CheckRun.objects.all()
print(runs.count(), runs.filter(state__in=["succeeded", "failed", "inconclusive"]).count(),
      runs.filter(state="failed").count())
'''


def _run(code: str, env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout


def measure(workers: int, submissions: int, database_url: str | None, broker_url: str | None, *, work_root: Path,
            deadline_seconds: float) -> dict:
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"w{workers}-", dir=work_root))
    env = dict(os.environ, PORTAL_VAR_DIR=str(work))
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
        env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")  # the bench talks plain HTTP on loopback
        env.setdefault("DJANGO_SECRET_KEY", "bench-only")
    env["CELERY_BROKER_URL"] = broker_url or f"sqla+sqlite:///{work / 'broker.sqlite3'}"
    try:
        if database_url:
            subprocess.run([sys.executable, "manage.py", "flush", "--noinput"], cwd=ROOT, env=env, check=False,
                           capture_output=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        if broker_url and broker_url.startswith("redis"):
            subprocess.run(["redis-cli", "-u", broker_url, "flushdb"], capture_output=True)
        _run(LOADER, env, str(submissions))
        _run(SUBMIT, env)
        start = time.perf_counter()
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "light,heavy",
                                   "--concurrency", str(workers), "--loglevel", "WARNING", "--without-gossip",
                                   "--without-mingle"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            while True:
                total, done, failed = (int(x) for x in _run(STATUS, env).split())
                if total and done == total:
                    break
                if time.perf_counter() - start > deadline_seconds:
                    raise SystemExit(f"{done} of {total} check runs ended after {deadline_seconds:.0f} s with "
                                     f"{workers} worker process(es): the worker is stuck or was never reached")
                time.sleep(0.5)
            elapsed = time.perf_counter() - start
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        return {"workers": workers, "submissions": submissions, "check_runs": total, "failed": failed,
                "seconds": round(elapsed, 1), "submissions_per_min": round(submissions / elapsed * 60, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 submissions, one worker: checks the run, not the figures")
    parser.add_argument("--submissions", type=int, default=None, help="submissions per measurement (20; quick 2)")
    parser.add_argument("--workers", default=None, help="worker concurrencies to measure (1,2,4; quick 1)")
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    parser.add_argument("--work", default=str(VAR_BENCH / "pipeline"), help="where each measurement's files go")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/pipeline[-quick].json)")
    args = parser.parse_args()
    args.submissions = args.submissions or (2 if args.quick else 20)
    args.workers = args.workers or ("1" if args.quick else "1,2,4")
    # About 6 check runs a submission at ~1 s each on the embedded broker (60 runs took 62 s with one
    # process, BENCHMARKS.md), ten times that for a loaded box, plus a minute to start: a stuck worker ends the run.
    deadline = 60 + 60 * args.submissions
    rows = [measure(int(w), args.submissions, args.database_url, args.broker_url, work_root=Path(args.work),
                    deadline_seconds=deadline) for w in args.workers.split(",")]
    base = rows[0]["submissions_per_min"]
    for row in rows:
        row["scaling_vs_1"] = round(row["submissions_per_min"] / base, 2)
    result = {"mode": "quick" if args.quick else "full", "cores": os.cpu_count(), "rows": rows}
    out_write(name="pipeline-quick" if args.quick else "pipeline", out=args.out, data=result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

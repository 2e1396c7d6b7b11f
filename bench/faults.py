"""Faults: N submissions with a dossier each, faults injected on a schedule (issue #11).

Builds a fresh portal database, loads N small submissions (a config and a model card:
intake and licence checks), submits them, requests one dossier per submission, then starts
the README's worker layout on one host: a checks worker `-Q light,heavy,dossier` (2
processes) and a control worker with beat `-Q control --pool solo` (the reconciler), with the
test suite's lease of 8 s and reconcile interval of 2 s, and measures until every check run
and every dossier has ended. The same load is drained twice: once untouched (the baseline)
and once with --faults injected in turn, one every --kill-every seconds, each at the first
moment a check or a dossier is in flight, so every fault meets work:

- `kill`: the whole checks worker SIGKILLed (pool children too) and restarted at once;
- `flush`: the broker's queues emptied (Redis `FLUSHDB`; the embedded broker's message table
  deleted), as after a Redis restart without persistence;
- `outage`: Redis made unreachable for --outage-s seconds (`CLIENT PAUSE ... ALL`: every
  client's commands hang, as behind a dead network link); Redis brokers only.

Reported per mode: how the runs and dossiers ended, duplicates (must be 0: a check run with
more than one finishing audit event, a dossier issued twice, a stored dossier file that is
not exactly one per issued number), stuck (must be 0: anything not ended when the mode's time
ran out), attempts beyond the first, and the time to drain; then the slowdown of the faulty
run against the baseline.

Usage: .venv/bin/python bench/faults.py [--submissions 10] [--kill-every 15] [--kills 3]
       [--faults kill,flush,outage] [--outage-s 30] [--timeout 900] [--quick] [--json]
       [--database-url postgres://...] [--broker-url redis://...]
`--quick`: 4 submissions, one fault. Raw JSON also goes to bench/out/faults[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # bench.inputs, when run as a script

LOADER = r'''
import os, sys, tempfile, datetime
from decimal import Decimal
from pathlib import Path
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from django.conf import settings
from django.core.files import File
from compliance.dossier.signing import signing_identity_from_settings
from compliance.dossiers import dossier_request
from portal.models import Organisation, Role
from portal.services import user_create
from projects import services, uploads
n = int(sys.argv[1])
signing_identity_from_settings(settings=settings)  # made once here, not raced by two worker processes
ministry = Organisation.objects.create(name="Bench ministry", kind="ministry")
vendor = Organisation.objects.create(name="Bench vendor", kind="vendor")
admin = user_create(username="admin", password="bench-password-1", organisation=ministry, role=Role.ADMIN)
user = user_create(username="vendor", password="bench-password-1", organisation=vendor, role=Role.VENDOR)
programme = services.programme_create(user=admin, name="Bench", code="bench", ministry=ministry, budget_krw=Decimal(1),
    starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 1, 1))
with tempfile.TemporaryDirectory() as tmp:
    config = Path(tmp) / "config.json"
    config.write_text('{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 4}')
    card = Path(tmp) / "README.md"
    card.write_text("---\nlicense: apache-2.0\n---\n# Bench model\nTrained from scratch for the bench.\n")
    files = [(config, "config"), (card, "model_card")]
    for i in range(n):
        project = services.project_create(user=admin, programme=programme, code=f"p{i}", title=f"P{i}", vendor=vendor,
                                          funding_krw=Decimal(1))
        submission = services.submission_open(user=user, project=project)
        for path, kind in files:
            with open(path, "rb") as fh:
                uploads.artifact_upload_file(user=user, submission=submission, kind=kind, filename=path.name,
                                             fileobj=File(fh))
        services.declaration_sign(user=user, submission=submission, signatory_name="Bench", attest=True)
        services.submission_submit(user=user, submission=submission)
        dossier_request(user=admin, submission=submission)
print("loaded", n)
'''

STATUS = r'''
import json, os, django
from collections import Counter
from pathlib import Path
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from django.conf import settings
from django.db.models import Count
from compliance.models import CheckRun, Dossier
from portal.models import AuditEvent
runs = Counter(CheckRun.objects.values_list("state", flat=True))
dossiers = Counter(Dossier.objects.values_list("state", flat=True))
finishing = ["check.succeeded", "check.failed", "check.inconclusive"]
runs_finished_twice = (AuditEvent.objects.filter(object_type="check_run", action__in=finishing)
                       .values("object_id").annotate(n=Count("id")).filter(n__gt=1).count())
issued_twice = (AuditEvent.objects.filter(action="dossier.issue").values("object_id").annotate(n=Count("id"))
                .filter(n__gt=1).count())
ready_numbers = sorted(f"{n}.pdf" for n in Dossier.objects.filter(state="ready").values_list("number", flat=True))
folder = Path(settings.MEDIA_ROOT) / "dossiers"
files = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
print(json.dumps({
    "runs": dict(runs), "dossiers": dict(dossiers),
    "runs_unfinished": sum(v for k, v in runs.items() if k not in ("succeeded", "failed", "inconclusive")),
    "dossiers_unfinished": sum(v for k, v in dossiers.items() if k not in ("ready", "failed")),
    "runs_finished_twice": runs_finished_twice, "dossiers_issued_twice": issued_twice,
    "dossier_files": len(files), "dossier_files_not_one_per_number": files != ready_numbers,
    "run_attempts_beyond_first": sum(max(0, a - 1) for a in CheckRun.objects.values_list("attempts", flat=True)),
    "dossier_attempts_beyond_first": sum(max(0, a - 1) for a in Dossier.objects.values_list("attempts", flat=True)),
}))
'''


def _run(code: str, env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout


def _worker_start(env: dict, work: Path) -> subprocess.Popen:
    """The checks worker (light, heavy and dossier queues), the one the faults hit."""
    log = open(work / "worker.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "light,heavy,dossier",
         "--concurrency", "2", "--loglevel", "INFO", "-n", f"faults-{os.getpid()}@%h",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _control_start(env: dict, work: Path) -> subprocess.Popen:
    """The control worker with beat: the reconciler on its own queue, as the README lays out."""
    log = open(work / "control.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat", "-Q", "control", "--pool", "solo",
         "--loglevel", "INFO", "-n", f"faults-control-{os.getpid()}@%h", "--schedule", str(work / "beat-schedule"),
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _broker_flush(broker_url: str) -> None:
    """Every queued message gone, as after a broker restart without persistence."""
    if broker_url.startswith("redis"):
        subprocess.run(["redis-cli", "-u", broker_url, "flushdb"], capture_output=True, check=True)
    else:
        import sqlite3

        with sqlite3.connect(broker_url.split("sqlite:///", 1)[1], timeout=30) as db:
            db.execute("DELETE FROM kombu_message")


def _broker_outage(broker_url: str, seconds: float) -> None:
    """Redis stops answering every client for ``seconds`` (their commands hang, then resume)."""
    subprocess.run(["redis-cli", "-u", broker_url, "client", "pause", str(int(seconds * 1000)), "ALL"],
                   capture_output=True, check=True)


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the whole worker at once, pool children and beat too
    proc.wait()


def measure(*, submissions: int, kill_every: float, kills: int, timeout: float, database_url: str | None,
            broker_url: str | None, faults: list[str] = ("kill",), outage_s: float = 30.0) -> dict:
    work = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    env = dict(os.environ, PORTAL_VAR_DIR=str(work), PORTAL_MEDIA_ROOT=str(work / "media"),
               PORTAL_CHECK_LEASE_S="8", PORTAL_RECONCILE_INTERVAL_S="2", PORTAL_CHECK_QUEUED_STALE_S="10",
               DOSSIER_SIGNING_KEY=str(work / "sign" / "key.pem"), DOSSIER_SIGNING_CERT=str(work / "sign" / "cert.pem"),
               DOSSIER_SIGNING_GENERATE="1")
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
        start = time.perf_counter()
        control = _control_start(env, work)
        worker = _worker_start(env, work)
        done_kills = 0
        injected: list[str] = []
        status: dict = {}
        try:
            next_kill = start + kill_every
            while time.perf_counter() - start < timeout:
                status = json.loads(_run(STATUS, env))
                if not status["runs_unfinished"] and not status["dossiers_unfinished"]:
                    break
                in_flight = status["runs"].get("running", 0) + status["dossiers"].get("rendering", 0)
                if done_kills < kills and time.perf_counter() >= next_kill and in_flight:
                    fault = faults[done_kills % len(faults)]
                    if fault == "kill":
                        _kill(worker)
                        worker = _worker_start(env, work)
                    elif fault == "flush":
                        _broker_flush(env["CELERY_BROKER_URL"])
                    elif fault == "outage":
                        _broker_outage(env["CELERY_BROKER_URL"], outage_s)
                    injected.append(fault)
                    done_kills += 1
                    next_kill = time.perf_counter() + kill_every
                time.sleep(0.5)
            elapsed = time.perf_counter() - start
        finally:
            _kill(worker)
            _kill(control)
        status = json.loads(_run(STATUS, env))
        return {"submissions": submissions, "kills": done_kills, "faults": injected,
                "seconds_to_drain": round(elapsed, 1),
                "duplicates": status["runs_finished_twice"] + status["dossiers_issued_twice"]
                + int(status["dossier_files_not_one_per_number"]),
                "stuck": status["runs_unfinished"] + status["dossiers_unfinished"], **status}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=15.0, help="seconds between SIGKILLs of the worker")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up on a mode after this many seconds")
    parser.add_argument("--faults", default="kill", help="comma-separated, injected in turn: kill, flush, outage")
    parser.add_argument("--outage-s", type=float, default=30.0, help="how long an outage keeps Redis unreachable")
    parser.add_argument("--quick", action="store_true", help="4 submissions, one fault")
    parser.add_argument("--json", action="store_true", help="print the JSON only")
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    args = parser.parse_args()
    if args.quick:
        args.submissions, args.kills = 4, 1
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = set(faults) - {"kill", "flush", "outage"}
    if unknown or not faults:
        parser.error(f"--faults takes kill, flush and outage, not {sorted(unknown) or 'nothing'}")
    if "outage" in faults and not (args.broker_url or "").startswith("redis"):
        parser.error("an outage is made with Redis's CLIENT PAUSE: give --broker-url redis://...")
    common = dict(submissions=args.submissions, timeout=args.timeout, database_url=args.database_url,
                  broker_url=args.broker_url, outage_s=args.outage_s)
    baseline = measure(kill_every=args.kill_every, kills=0, **common)
    faulty = measure(kill_every=args.kill_every, kills=args.kills, faults=faults, **common)
    result = {"cores": os.cpu_count(), "kill_every_s": args.kill_every, "fault_kinds": faults,
              "baseline": baseline, "faults": faulty,
              "slowdown": round(faulty["seconds_to_drain"] / baseline["seconds_to_drain"], 2),
              "ok": faulty["duplicates"] == 0 and faulty["stuck"] == 0 and baseline["stuck"] == 0}
    from bench.inputs import out_write

    out_write(name="faults-quick" if args.quick else "faults", data=result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for mode in ("baseline", "faults"):
            row = result[mode]
            print(f"{mode:9} faults={','.join(row['faults']) or '-'} drain={row['seconds_to_drain']} s duplicates={row['duplicates']} "
                  f"stuck={row['stuck']} runs={row['runs']} dossiers={row['dossiers']} "
                  f"retaken attempts: runs {row['run_attempts_beyond_first']}, "
                  f"dossiers {row['dossier_attempts_beyond_first']}")
        print(f"slowdown x{result['slowdown']}; {'ok' if result['ok'] else 'NOT OK'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

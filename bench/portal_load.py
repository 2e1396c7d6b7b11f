"""Portal at size: dashboard and list-page latency, and upload throughput.

Loads 10,000 projects, 100,000 findings and 200 users into a fresh database, starts the
real WSGI server (gunicorn, as `make run` does) and measures, through HTTP:
- median and p95 latency of the dashboard, list pages and list endpoints (N requests each);
- chunked-upload throughput of a large file (MB/s) beside a plain `cp` of the same file
  (the disk's speed, the baseline), and the web process's peak RSS at several file sizes
  (it must stay flat as the file grows).

Usage: .venv/bin/python bench/portal_load.py [--projects 10000] [--findings 100000]
       [--requests 40] [--upload-gb 2] [--database-url postgres://...] [--work DIR]
       .venv/bin/python bench/portal_load.py --quick   # 200 projects, 2,000 findings, 16 and 64 MiB uploads

Everything is generated in the run, in a fresh folder under --work (default var/bench/portal-load,
removed at the end; the upload files need about twice the largest size); the server listens on
a free loopback port unless --port names one. Prints a JSON report and writes it to
bench/out/portal-load[-quick].json; BENCHMARKS.md has the figures and the method.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inputs import VAR_BENCH, out_write  # noqa: E402


def _setup_env(var_dir: Path, database_url: str | None) -> dict:
    env = dict(os.environ)
    env["PORTAL_VAR_DIR"] = str(var_dir)
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
        env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")  # the bench talks plain HTTP on loopback
        env.setdefault("DJANGO_SECRET_KEY", "bench-only")
    env["CELERY_BROKER_URL"] = f"sqla+sqlite:///{var_dir / 'broker.sqlite3'}"
    return env


LOADER = r'''
import datetime, os, sys
from decimal import Decimal
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from guardian.shortcuts import assign_perm
from portal.models import Organisation, Profile, Role
from portal.services import organisation_group, audit_record
from projects.models import Programme, Project, Submission, Artifact, Milestone, ProjectGroupObjectPermission
from compliance.models import CheckRun, Finding
from django.contrib.auth.models import Permission
n_projects, n_findings, n_users = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
User = get_user_model()
ministry = Organisation.objects.create(name="Bench ministry", kind="ministry")
vendors = Organisation.objects.bulk_create([Organisation(name=f"Vendor {i}", kind="vendor") for i in range(100)])
pw = make_password("bench-password-1")
users = User.objects.bulk_create([User(username=f"user{i}", password=pw, is_staff=i == 0, is_superuser=i == 0)
                                  for i in range(n_users)])
roles = [Role.ADMIN, Role.OFFICER, Role.REVIEWER, Role.AUDITOR] + [Role.VENDOR] * 6
Profile.objects.bulk_create([Profile(user=u, organisation=(ministry if roles[i % 10] != Role.VENDOR else vendors[i % 100]),
                                     role=roles[i % 10]) for i, u in enumerate(users)])
programme = Programme.objects.create(name="Bench", code="bench", ministry=ministry, budget_krw=1,
                                     starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 1, 1))
projects = Project.objects.bulk_create([Project(programme=programme, code=f"p{i:05d}", title=f"Project {i}",
    vendor=vendors[i % 100], funding_krw=Decimal(i), phase=1 + i % 3,
    status=["active", "under_review", "suspended"][i % 3]) for i in range(n_projects)], batch_size=2000)
Milestone.objects.bulk_create([Milestone(project=p, title="m", due_on=datetime.date(2026, 1 + i % 12, 1))
                               for i, p in enumerate(projects)], batch_size=2000)
view = Permission.objects.get(codename="view_project")
submit = Permission.objects.get(codename="submit_project")
groups = {v.pk: organisation_group(v) for v in vendors}
for u, prof in zip(users, Profile.objects.order_by("user_id")):
    if prof.role == Role.VENDOR:
        u.groups.add(groups[prof.organisation_id])
ProjectGroupObjectPermission.objects.bulk_create([ProjectGroupObjectPermission(group=groups[p.vendor_id],
    permission=perm, content_object=p) for p in projects for perm in (view, submit)], batch_size=2000)
owner = users[5]
subs = Submission.objects.bulk_create([Submission(project=p, number=1, status="checked", created_by=owner)
                                       for p in projects], batch_size=2000)
arts = Artifact.objects.bulk_create([Artifact(submission=s, kind="weights", original_name="model.safetensors",
    file="x", size=1, sha256=f"{s.pk:064x}", uploaded_by=owner) for s in subs], batch_size=2000)
now = datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc)
runs = CheckRun.objects.bulk_create([CheckRun(artifact=a, submission_id=a.submission_id, check_name="intake",
    state="succeeded", queued_at=now) for a in arts], batch_size=2000)
sev = ["critical", "high", "medium", "low", "info"]
per = max(1, n_findings // len(runs))
Finding.objects.bulk_create([Finding(check_run=r, submission_id=r.submission_id, severity=sev[(i + j) % 5],
    category="bench", code="bench", title=f"finding {j}") for i, r in enumerate(runs) for j in range(per)],
    batch_size=5000)
for i in range(200):
    audit_record(actor="bench", action="bench.event", object_type="project", object_id=projects[i].pk,
                 project_id=projects[i].pk)
print("loaded", n_projects, Finding.objects.count(), n_users)
'''


def _login(base: str, username: str) -> urllib.request.OpenerDirector:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/accounts/login/").read().decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    data = urllib.parse.urlencode({"username": username, "password": "bench-password-1",
                                   "csrfmiddlewaretoken": token}).encode()
    answer = opener.open(urllib.request.Request(f"{base}/accounts/login/", data=data, headers={"Referer": base}))
    answer.read()
    probe = opener.open(f"{base}/projects/")
    if "/account/two-factor/setup/" in probe.geturl():
        # Ministry staff set up a second factor first, as a person would with an authenticator app.
        from base64 import b32decode

        from django_otp.oath import TOTP

        page = probe.read().decode()
        key = page.split('id="otp-key">')[1].split("<")[0].replace(" ", "")
        token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        data = urllib.parse.urlencode({"code": f"{TOTP(b32decode(key)).token():06d}",
                                       "csrfmiddlewaretoken": token}).encode()
        opener.open(urllib.request.Request(probe.geturl(), data=data, headers={"Referer": base})).read()
    return opener


def _latency(opener, url: str, n: int) -> dict:
    opener.open(url).read()  # warm
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        opener.open(url).read()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1), "n": n}


def _rss_kb(pid: int) -> int:
    total = 0
    for p in [pid] + [int(c) for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                     text=True).stdout.split()]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return total


def _upload(base: str, opener, submission_id: int, path: Path, chunk: int = 8 * 1024 * 1024) -> float:
    jar = [h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)][0].cookiejar
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    headers = {"X-CSRFToken": csrf, "Referer": base, "Content-Type": "application/json"}
    size = path.stat().st_size
    body = json.dumps({"submission": submission_id, "kind": "other", "filename": path.name, "size": size}).encode()
    session = json.loads(opener.open(urllib.request.Request(f"{base}/api/uploads/", data=body, headers=headers)).read())
    start = time.perf_counter()
    with open(path, "rb") as fh:
        offset = 0
        while offset < size:
            data = fh.read(chunk)
            request = urllib.request.Request(f"{base}/api/uploads/{session['id']}/chunk/", data=data, method="PATCH",
                                             headers={"X-CSRFToken": csrf, "Referer": base, "Upload-Offset": str(offset),
                                                      "Content-Type": "application/offset+octet-stream"})
            opener.open(request).read()
            offset += len(data)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small portal and small uploads: checks the run, not the figures")
    parser.add_argument("--projects", type=int, default=None, help="10,000 (quick 200; at least 200)")
    parser.add_argument("--findings", type=int, default=None, help="100,000 (quick 2,000)")
    parser.add_argument("--users", type=int, default=None, help="200 (quick 20)")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per page (40; quick 5)")
    parser.add_argument("--upload-gb", type=float, default=2.0, help="largest upload, after 256 MiB and 1 GiB")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--port", type=int, default=0, help="loopback port for the server (default: a free one)")
    parser.add_argument("--work", default=str(VAR_BENCH / "portal-load"), help="where the database and files go")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/portal-load[-quick].json)")
    args = parser.parse_args()
    for name, full_value, quick_value in (("projects", 10_000, 200), ("findings", 100_000, 2_000), ("users", 200, 20),
                                          ("requests", 40, 5)):
        if getattr(args, name) is None:
            setattr(args, name, quick_value if args.quick else full_value)
    if not args.port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work))
    env = _setup_env(work, args.database_url)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([py, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    t0 = time.perf_counter()
    subprocess.run([py, "-c", LOADER, str(args.projects), str(args.findings), str(args.users)], cwd=ROOT, env=env,
                   check=True)
    load_s = time.perf_counter() - t0
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([py, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{args.port}", "--workers",
                               "1", "--threads", "4", "--timeout", "600"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report: dict = {"projects": args.projects, "findings": args.findings, "users": args.users,
                    "load_seconds": round(load_s, 1),
                    "database": "postgresql" if args.database_url else "sqlite (embedded default)"}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/accounts/login/")
                break
            except OSError:
                time.sleep(0.2)
        admin = _login(base, "user0")
        reviewer = _login(base, "user2")
        vendor = _login(base, "user5")
        pages = {
            "dashboard (admin)": (admin, "/dashboard/"),
            "dashboard filtered (admin)": (admin, "/dashboard/?phase=2&q=Project%201"),
            "dashboard (reviewer)": (reviewer, "/dashboard/"),
            "projects list (admin)": (admin, "/projects/"),
            "projects list page 100 (admin)": (admin, "/projects/?page=100"),
            "projects list (vendor)": (vendor, "/projects/"),
            "review queue (admin)": (admin, "/queue/"),
            "audit trail (admin)": (admin, "/audit/"),
            "API projects (admin)": (admin, "/api/projects/"),
            "API findings (admin)": (admin, "/api/findings/"),
            "API findings critical (admin)": (admin, "/api/findings/?severity=critical"),
            "API submissions (vendor)": (vendor, "/api/submissions/"),
        }
        report["latency"] = {name: _latency(op, base + url, args.requests) for name, (op, url) in pages.items()}
        # Upload: a vendor's draft in their own project.
        code = ("import os,django;os.environ.setdefault('DJANGO_SETTINGS_MODULE','portal.settings');django.setup();"
                "from projects.models import *;from django.contrib.auth import get_user_model as g;"
                "u=g().objects.get(username='user5');p=Project.objects.filter(vendor=u.profile.organisation).first();"
                "p.programme.max_artifact_bytes=1<<40;p.programme.save();"
                "s=Submission.objects.create(project=p,number=99,created_by=u);print(s.pk)")
        submission_id = int(subprocess.run([py, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                                           check=True).stdout.split()[-1])
        uploads = []
        sizes = [16 * 1024**2, 64 * 1024**2] if args.quick else [256 * 1024**2, 1024**3, int(args.upload_gb * 1024**3)]
        for size in sizes:
            src = work / f"upload-{size}.bin"
            with open(src, "wb") as fh:
                block = os.urandom(4 * 1024 * 1024)
                for _ in range(size // len(block)):
                    fh.write(block)
            start = time.perf_counter()
            shutil.copyfile(src, work / "copy.bin")
            os.sync()
            cp_s = time.perf_counter() - start
            (work / "copy.bin").unlink()
            seconds = _upload(base, vendor, submission_id, src)
            uploads.append({"bytes": size, "seconds": round(seconds, 2), "MB_per_s": round(size / 1e6 / seconds, 1),
                            "cp_MB_per_s": round(size / 1e6 / cp_s, 1),
                            "web_peak_rss_MB": round(_rss_kb(server.pid) / 1024, 1)})
            src.unlink()
        report["upload"] = uploads
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    report["mode"] = "quick" if args.quick else "full"
    out_write(name="portal-load-quick" if args.quick else "portal-load", out=args.out, data=report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

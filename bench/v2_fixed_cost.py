"""Version 2's fixed cost in the licence and copied-code checks (issue #16), without the workers.

In version 2 of a submission almost every file's licence and copied-code result comes from the
shared per-file result cache (`compliance.FileResult`), yet at 50,000 files the two checks took
29.9 and 41.8 s busy (BENCHMARKS.md, "At the issue's size, 7 Dec 2026"). This script measures that
cost alone: it builds the end-to-end bench's tree of N real files (`bench.submission_e2e.tree_plan`,
the same roots and planted cases), writes version 1's tar.gz and version 2's with 1 % of files
changed (`tree_changed`), and runs the real check functions, `compliance.checks.licenses.run` and
`compliance.checks.code.run` (archive read through `artifact_members`, engine scan through the
database cache `DbFileResultCache`, to_dict, inventory, policy, summary), on a scratch embedded
database under --work:

1. version 1, which fills the cache (slow the first time for a given N: every file is detected;
   the database under --work keeps the results, so later runs of the same N skip that cost);
2. version 2, timed per check (wall and this process's CPU), each check `--repeat` times.

`--side-by-side N` runs version 2's two checks at once, N times, each in a process forked from this
one as the worker's pool children are, with the changed files' cached results deleted first so each
round computes them as a real version 2 does (`tree_cpu_s` counts the check's scanning processes too).
`--profile` runs version 2's checks once more under cProfile and prints each check's top
functions by cumulative and by own time. `--outcome FILE` writes version 2's outcomes (verdict,
summary, findings, per check) as JSON, so two code versions' answers can be compared byte for byte.
To compare two versions of the code, copy this script into a checkout of the older one and run
both with the same `--work`, so they read the same archives and database (the cache filled once),
back to back, alternating:

    .venv/bin/python bench/v2_fixed_cost.py --files 5000 --work /tmp/v2 --outcome /tmp/new.json
    (cd ../old && .venv/bin/python bench/v2_fixed_cost.py --files 5000 --work /tmp/v2 --outcome /tmp/old.json)
    cmp /tmp/new.json /tmp/old.json

The version 2 checks run with the worker's settings (PORTAL_SCAN_PROCESSES, slots): the changed
files' results are computed in forked processes, as on the worker, and the licence index is loaded
and frozen (`gc.freeze`) before the clock starts, as the worker's main process does. The first
timed run of version 2 computes the changed files; later ones reuse every file (the fixed cost).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent.parent


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000, help="files in the source tree (5,000)")
    parser.add_argument("--work", default=None, help="scratch folder: database, code index, archives "
                        "(default var/bench/v2-fixed-cost/N under this checkout)")
    parser.add_argument("--repeat", type=int, default=2, help="times each version 2 check is timed (2)")
    parser.add_argument("--profile", action="store_true", help="profile version 2's checks (cProfile)")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile (25)")
    parser.add_argument("--outcome", default=None, help="write version 2's outcomes (JSON) here")
    parser.add_argument("--checks", default="licenses,code", help="which checks (licenses,code)")
    parser.add_argument("--side-by-side", type=int, default=0, metavar="ROUNDS",
                        help="also run version 2's two checks at once, each in a process forked from this one (as "
                        "the worker's two pool children), ROUNDS times, the changed files' results forgotten "
                        "before each round so they are computed again, as in a real version 2")
    parser.add_argument("--json", action="store_true", help="print the timings as JSON only")
    return parser.parse_args()


sys.path.insert(0, str(HERE))


def _setup(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    os.environ["PORTAL_VAR_DIR"] = str(work)
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def _world():
    """An organisation, programme and project with the e2e bench's policy; made once per database."""
    import datetime
    from decimal import Decimal

    from compliance.services.policy import programme_policy_update
    from portal.models import Organisation, Role
    from portal.services import user_create
    from projects import services
    from projects.models import Project

    project = Project.objects.filter(code="moe").first()
    if project is not None:
        return project
    ministry = Organisation.objects.create(name="Bench ministry", kind="ministry")
    vendor = Organisation.objects.create(name="Bench vendor", kind="vendor")
    admin = user_create(username="admin", password="bench-password-1", organisation=ministry, role=Role.ADMIN)
    programme = services.programme_create(user=admin, name="Bench", code="bench", ministry=ministry,
                                          budget_krw=Decimal(1), starts_on=datetime.date(2026, 1, 1),
                                          ends_on=datetime.date(2027, 1, 1))
    project = services.project_create(user=admin, programme=programme, code="moe", title="MoE 100B", vendor=vendor,
                                      funding_krw=Decimal(1))
    programme_policy_update(user=admin, programme=programme, allowed="Apache-2.0\nMIT\nBSD-3-Clause", denied="",
                            review="GPL-3.0-only\nAGPL-3.0-only", from_scratch_required=False, reference_models=[])
    return project


def _corpora_index(corpora: list[Path]) -> None:
    from django.core.management import call_command

    from compliance.models import CodeCorpus

    if CodeCorpus.objects.exists():
        return
    for folder in corpora:
        call_command("index_reference", str(folder), name=folder.name.split("-")[0], license_expression="Apache-2.0",
                     stdout=io.StringIO())


def _archives(work: Path, files: int, corpora: list[Path]) -> tuple[Path, Path, int]:
    from bench.submission_e2e import archive_write, tree_changed, tree_plan

    v1, v2, meta = work / "source-v1.tar.gz", work / "source-v2.tar.gz", work / "source.json"
    if v1.exists() and v2.exists() and meta.exists():
        return v1, v2, json.loads(meta.read_text())["changed"]
    tree = tree_plan(files=files, corpora=corpora)
    archive_write(tree, v1)
    tree_v2, changed = tree_changed(tree)
    archive_write(tree_v2, v2)
    meta.write_text(json.dumps({"files": len(tree), "changed": changed}))
    return v1, v2, changed


class _Context:
    """What a check's `run` reads of its context: the artifact (here a stand-in with the real
    project), progress (ignored) and the local path of the archive."""

    def __init__(self, *, project, archive: Path):
        self.archive = archive
        self.artifact = SimpleNamespace(original_name="source.tar.gz", sha256=archive.name,
                                        file=SimpleNamespace(name=archive.name),
                                        submission=SimpleNamespace(project=project, declaration=None))

    def progress(self, fraction: float, message: str) -> None:
        pass

    @contextlib.contextmanager
    def local_path(self):
        yield self.archive


def _changed_keys(work: Path, v1: Path, v2: Path) -> list[str]:
    """The cache keys of version 2's changed files (licence and code keys), kept in the work folder."""
    from compliance.engine.filecache import content_key
    from compliance.engine.licenses.scan import license_file_key
    from compliance.engine.licenses.sources import archive_members_iter

    saved = work / "changed-keys.json"
    if saved.exists():
        return json.loads(saved.read_text())
    before = {path: content_key(data=data) for path, data in archive_members_iter(path=str(v1))}
    keys = []
    for path, data in archive_members_iter(path=str(v2)):
        if before.get(path) != content_key(data=data):
            keys += [license_file_key(path, data), content_key(data=data, name=path)]
    saved.write_text(json.dumps(keys))
    return keys


def _side_by_side(*, checks: dict, project, archive: Path, keys: list[str]) -> dict:
    """Both checks at once, each in a forked process (the worker's pool children), after the changed
    files' results are deleted: (wall, CPU) of each, and the whole."""
    from django.db import connections

    from compliance.models import FileResult

    FileResult.objects.filter(key__in=keys).delete()
    connections.close_all()
    started = time.perf_counter()
    children = {}
    for name, run in checks.items():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            code = 0
            try:
                t, c = time.perf_counter(), _cpu()
                outcome = run(_Context(project=project, archive=archive))
                report = {"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(_cpu() - c, 2),
                          "cache": outcome.summary.get("cache")}
                os.write(write, json.dumps(report).encode())
            except BaseException:  # noqa: BLE001 - the parent sees no report
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        children[name] = (pid, read)
    out = {}
    for name, (pid, read) in children.items():
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _pid, _status, usage = os.wait4(pid, 0)
        out[name] = {**(json.loads(data) if data else {"failed": True}),
                     "tree_cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}
    out["both_wall_s"] = round(time.perf_counter() - started, 2)
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _outcome_json(outcome) -> dict:
    return json.loads(json.dumps({"verdict": outcome.verdict, "state": outcome.state, "summary": outcome.summary,
                                  "findings": outcome.findings, "engine_version": outcome.engine_version,
                                  "inputs": outcome.inputs, "incomplete": outcome.incomplete},
                                 sort_keys=True, default=str))


def _comparable(data: dict) -> dict:
    """An outcome without what depends on the run rather than the answer (timings, process counts)."""
    data = json.loads(json.dumps(data))
    summary = data.get("summary", {})
    stats = summary.get("stats")
    if isinstance(stats, dict):
        for key in ("index_load_seconds", "worker_cpu_seconds", "processes", "processes_retired"):
            stats.pop(key, None)
    return data


def main() -> int:
    args = _arguments()
    work = Path(args.work) if args.work else HERE / "var" / "bench" / "v2-fixed-cost" / str(args.files)
    _setup(work)
    from bench.inputs import corpus_folders
    from compliance.checks import code, licenses

    corpora = corpus_folders(corpus=None, quick=True)
    # As the worker's main process does before its pool forks (compliance.receivers): the licence
    # index loaded and frozen, so the collector never walks it while the checks run.
    from compliance.engine.licenses.scancode_index import scancode_state_get

    scancode_state_get()
    gc.collect()
    gc.freeze()
    project = _world()
    _corpora_index(corpora)
    started = time.perf_counter()
    v1, v2, changed = _archives(work, args.files, corpora)
    build_s = time.perf_counter() - started
    checks = {"licenses": licenses.run, "code": code.run}
    chosen = [name for name in args.checks.split(",") if name]
    import compliance

    result: dict = {"files": args.files, "changed": changed, "code": str(Path(compliance.__file__).parent.parent),
                    "build_s": round(build_s, 1),
                    "v1": {}, "v2": {}}
    for name in chosen:
        t, c = time.perf_counter(), _cpu()
        outcome = checks[name](_Context(project=project, archive=v1))
        result["v1"][name] = {"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(_cpu() - c, 2),
                              "cache": outcome.summary.get("cache")}
    outcomes = {}
    for name in chosen:
        runs = []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), _cpu()
            outcome = checks[name](_Context(project=project, archive=v2))
            runs.append({"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(_cpu() - c, 2)})
        outcomes[name] = _comparable(_outcome_json(outcome))
        result["v2"][name] = {"runs": runs, "cache": outcome.summary.get("cache"), "verdict": outcome.verdict,
                              "findings": len(outcome.findings)}
    if args.side_by_side:
        keys = _changed_keys(work, v1, v2)
        result["side_by_side"] = [
            _side_by_side(checks={name: checks[name] for name in chosen}, project=project, archive=v2, keys=keys)
            for _ in range(args.side_by_side)]
    if args.outcome:
        Path(args.outcome).write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps(result, indent=1))
    if args.profile:
        for name in chosen:
            profiler = cProfile.Profile()
            profiler.enable()
            checks[name](_Context(project=project, archive=v2))
            profiler.disable()
            for order in ("cumulative", "tottime"):
                print(f"\n==== {name}: version 2 under cProfile, by {order} ====")
                pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())

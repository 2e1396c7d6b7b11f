"""bench/submission_e2e.py, scaled down: one submission goes through the real workers (intake,
lineage, licences, copied code, the signed dossier), then version 2 with 1 % of its source files
changed, and the figures it prints are the ones the benchmark publishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.worker
@pytest.mark.slow
def test_a_scaled_down_submission_runs_every_stage_for_real_and_reports_both_versions(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    out = tmp_path / "e2e.json"
    proc = subprocess.run(
        [sys.executable, "bench/submission_e2e.py", "--files", "100", "--references", "2", "--model", "small",
         "--no-cache-baseline", "--no-scancode-baseline", "--timeout", "1200", "--work", str(tmp_path / "work"),
         "--out", str(out), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    printed = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert printed == json.loads(out.read_text())
    run = printed["runs"][0]
    assert printed["total_s"] == run["v1"]["total_s"] > 0
    assert printed["version2_total_s"] == run["v2"]["total_s"] > 0
    assert set(printed["stages"]) == {"intake", "lineage", "licenses", "code", "dossier"}

    v1 = run["v1"]["stages"]
    # Every artifact went through intake and was accepted; every later check ran on a worker, none reused.
    assert v1["intake"]["states"] == {"succeeded": run["v1"]["artifacts"]}
    for check in ("lineage", "licenses", "code"):
        assert v1[check]["states"] == {"succeeded": v1[check]["runs"]}, check
        assert v1[check]["reused_runs"] == 0 and v1[check]["busy_s"] > 0, check
    assert v1["lineage"]["verdicts"] and v1["code"]["summary"]["files_with_matches"] >= 1  # the copied corpus files
    # The planted GPL/AGPL files and the copied corpus code are found.
    assert run["v1"]["findings"].get("undeclared_third_party_code", 0) >= 1
    assert v1["dossier"]["state"] == "ready" and v1["dossier"]["bytes"] > 0
    assert 0 < v1["dossier"]["render_and_sign_s"] <= run["v1"]["total_s"]
    assert run["v1"]["workers"]["checks"]["cpu_s"] > 0 and run["v1"]["workers"]["checks"]["peak_rss_tree_mb"] > 0

    # Version 2: the carried-over weights are not checked again; the new source archive is.
    v2 = run["v2"]["stages"]
    assert run["inputs"]["v2_changed_files"] == 1
    assert v2["lineage"]["reused_runs"] == 1
    assert v2["code"]["states"] == {"succeeded": 1} and v2["code"]["reused_runs"] == 0
    assert v2["dossier"]["state"] == "ready"
    # The 1.8 GB checkpoint stayed sparse in storage (moved, not copied).
    assert run["storage"]["allocated_bytes"] < run["storage"]["apparent_bytes"] / 4

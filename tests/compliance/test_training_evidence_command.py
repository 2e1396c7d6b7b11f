"""`manage.py training_evidence`: the operator's judgement of a bundle, against the registry by default.

Checkpoints are given as fingerprint bundles made by `manage.py fingerprint -o`, the form a
vendor uses for checkpoints too large to upload.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.compliance.engine import training_runs as tr
from tests.compliance.engine.lineage import tinymodels as tm

ROOT = Path(__file__).resolve().parents[2]


def _fingerprinted(models: list[tm.TinyModel], tmp_path: Path, name: str) -> list[tuple[int, Path]]:
    out = []
    for i, model in enumerate(models):
        folder = tm.model_write(model, tmp_path / f"{name}-weights-{i}")
        bundle = tmp_path / f"{name}-{i}.npz"
        call_command("fingerprint", str(folder), "-o", str(bundle), stdout=StringIO())
        out.append((100 * i, bundle))
    return out


@pytest.mark.django_db
def test_judges_fingerprint_checkpoints_against_the_registry(tmp_path: Path) -> None:
    registered = tr.registered_make(seed=1)
    call_command("add_reference_model", str(tm.model_write(registered, tmp_path / "registered")),
                 "--name", "open-lab/llama-base", "--publisher", "Open Lab", stdout=StringIO())
    run = tr.run_make(seed=7, steps=3)
    honest = tr.bundle_write(tmp_path / "honest", _fingerprinted(run, tmp_path, "honest"))
    out = StringIO()
    call_command("training_evidence", str(honest), "--model", str(tmp_path / "honest-2.npz"), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["verdict"] == "consistent", report["findings"]
    assert report["references"] == ["open-lab/llama-base"]
    first = report["checkpoints"][0]
    assert first["kind"] == "fingerprint"
    assert [(t["against"], t["verdict"]) for t in first["tests"]] == [("open-lab/llama-base", "independent")]
    assert all(isinstance(t["p_value"], float) for c in report["checkpoints"] for t in c["tests"])

    forged = tr.forged_init(registered, seed=3)
    bundle = tr.bundle_write(tmp_path / "forged", _fingerprinted(
        [forged, tr.train_step(forged, seed=1), tr.train_step(forged, seed=2)], tmp_path, "forged"))
    out = StringIO()
    call_command("training_evidence", str(bundle), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["verdict"] == "inconsistent"
    derived = next(f for f in report["findings"] if f["code"] == "init_derived_from_reference")
    assert derived["severity"] == "critical" and derived["params"]["reference"] == "open-lab/llama-base"
    assert "open-lab/llama-base" in derived["message"]


def test_explicit_references_need_no_registry_and_text_output_names_the_break(tmp_path: Path) -> None:
    first, second = tr.run_make(seed=7, steps=3), tr.run_make(seed=8, steps=3)
    bundle = tr.bundle_write(tmp_path / "splice", [(0, first[0]), (100, first[1]), (200, second[2])])
    other = tm.model_write(tr.registered_make(seed=5), tmp_path / "other")
    out = StringIO()
    call_command("training_evidence", str(bundle), "--reference", str(other), stdout=out)
    text = out.getvalue()
    assert text.startswith("inconsistent:")
    assert "chain_break: Step 200 does not derive from step 100" in text


def test_malformed_bundle_exits_2_with_the_reason(tmp_path: Path) -> None:
    bundle = tr.bundle_write(tmp_path / "bad", [(0, tr.llama_init(seed=1))])
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format"] = "evidence"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError) as caught:
        call_command("training_evidence", str(bundle), "--reference", str(bundle / "checkpoints/step_0"))
    assert caught.value.returncode == 2
    assert "manifest.json: format must be 'training-evidence/1'" in str(caught.value)
    done = subprocess.run([sys.executable, "manage.py", "training_evidence", str(bundle), "--reference",
                           str(bundle / "checkpoints/step_0"), "--json"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ}, timeout=300)
    assert done.returncode == 2
    assert "malformed training evidence: manifest.json: format must be" in done.stderr

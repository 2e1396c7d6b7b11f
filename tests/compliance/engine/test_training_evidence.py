"""Training evidence (#15): bundles in the real Hugging Face Llama layout, judged as the portal does.

Oracles outside the code under test: the initialisation transformers draws (normal(0, 0.02),
gains 1), how each bundle was built (honest chain, spliced runs, a registered model dressed as
step 0 or fine-tuned at the end), and ln(vocab) for the log's start.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from compliance.engine.intake_common import IntakeLimits, MiB
from compliance.engine.lineage import Fingerprint, fingerprint_build
from compliance.engine.training_evidence import (
    TrainingEvidenceError,
    bundle_open,
    bundle_read,
    log_judge,
    training_evidence_judge,
)
from tests.compliance.engine import hostile
from tests.compliance.engine import training_runs as tr
from tests.compliance.engine.lineage import tinymodels as tm


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tm.TinyModel:
    return tr.registered_make(seed=1)


@pytest.fixture(scope="module")
def registry(registered: tm.TinyModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fingerprint]:
    """Two registered models: the one the forgeries start from, and an unrelated one (Holm over two)."""
    root = tmp_path_factory.mktemp("registry")
    return {"Registered-Llama": fingerprint_build(path=tm.model_write(registered, root / "registered")),
            "Other-Llama": fingerprint_build(path=tm.model_write(tr.registered_make(seed=5), root / "other"))}


@pytest.fixture(scope="module")
def honest_run() -> list[tm.TinyModel]:
    return tr.run_make(seed=7, steps=4)


@pytest.fixture(scope="module")
def honest_bundle(honest_run: list[tm.TinyModel], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tr.bundle_write(tmp_path_factory.mktemp("honest") / "bundle",
                           [(100 * i, m) for i, m in enumerate(honest_run)])


def _codes(report) -> set[str]:
    return {f.code for f in report.findings}


def _finding(report, code: str):
    return next(f for f in report.findings if f.code == code)


def test_honest_run_is_consistent(honest_bundle: Path, registry: dict[str, Fingerprint]) -> None:
    report = training_evidence_judge(path=honest_bundle, references=registry,
                                     submitted=honest_bundle / "checkpoints/step_300")
    assert report.verdict == "consistent", [f.to_dict() for f in report.findings]
    assert not [f for f in report.findings if f.severity in ("critical", "high", "medium")]
    data = report.to_dict()
    assert [c["step"] for c in data["checkpoints"]] == [0, 100, 200, 300]
    first = data["checkpoints"][0]
    assert {(t["kind"], t["against"], t["verdict"]) for t in first["tests"]} == {
        ("reference", "Registered-Llama", "independent"), ("reference", "Other-Llama", "independent")}
    init = first["initialisation"]
    assert init["norm_initial_value"] == 1.0 and "initializer_range = 0.02" in init["scheme"]
    assert all(t["scale"] == "initializer_range" for t in init["tensors"] if t["kind"] == "matrix")
    for later in data["checkpoints"][1:]:
        link = next(t for t in later["tests"] if t["kind"] == "previous")
        assert link["verdict"] == "derived" and link["p_value"] < 1e-6
    assert next(t for t in data["checkpoints"][-1]["tests"] if t["kind"] == "submitted")["verdict"] == "derived"
    assert data["log"]["start_ratio"] == pytest.approx(1.0, abs=0.01)
    json.dumps(data)  # the report is plain JSON


def test_registered_model_dressed_as_step_zero_is_inconsistent(registered: tm.TinyModel, registry, tmp_path: Path) -> None:
    forged = tr.forged_init(registered, seed=3)
    run = [forged, tr.train_step(forged, seed=11)]
    run.append(tr.train_step(run[-1], seed=12))
    bundle = tr.bundle_write(tmp_path / "bundle", [(100 * i, m) for i, m in enumerate(run)])
    report = training_evidence_judge(path=bundle, references=registry)
    assert report.verdict == "inconsistent"
    derived = _finding(report, "init_derived_from_reference")
    assert derived.severity == "critical"
    assert derived.params["reference"] == "Registered-Llama" and derived.params["step"] == 0
    assert derived.params["p_value"] < 1e-3
    structure = _finding(report, "init_trained_structure")
    assert structure.params["step"] == 0 and structure.params["excess_kurtosis"] > 0.5
    # The gains were reset, so they alone would not have told; the matrices did.
    assert "init_norms_not_initial" not in _codes(report)
    assert "chain_break" not in _codes(report)  # the forged chain itself holds together


def test_splice_of_two_runs_names_the_break(registry, tmp_path: Path) -> None:
    first, second = tr.run_make(seed=7, steps=3), tr.run_make(seed=8, steps=4)
    bundle = tr.bundle_write(tmp_path / "bundle", [(0, first[0]), (100, first[1]), (200, first[2]),
                                                   (300, second[2]), (400, second[3])])
    report = training_evidence_judge(path=bundle, references=registry)
    assert report.verdict == "inconsistent"
    breaks = [f for f in report.findings if f.code == "chain_break"]
    assert [(f.params["previous_step"], f.params["step"]) for f in breaks] == [(200, 300)]
    assert "200" in breaks[0].message and "300" in breaks[0].message
    link = next(t for t in report.checkpoints[3].tests if t["kind"] == "previous")
    assert link["verdict"] == "independent" and link["against"] == "step 200"


def test_last_checkpoint_fine_tuned_from_a_registered_model(honest_run, registered, registry, tmp_path: Path) -> None:
    tuned = tm.finetune(registered, seed=4, noise=0.1, lowrank=0.1)
    bundle = tr.bundle_write(tmp_path / "bundle", [(0, honest_run[0]), (100, honest_run[1]), (200, honest_run[2]),
                                                   (300, tuned)])
    report = training_evidence_judge(path=bundle, references=registry, submitted=bundle / "checkpoints/step_300")
    assert report.verdict == "inconsistent"
    derived = _finding(report, "checkpoint_derived_from_reference")
    assert derived.params["step"] == 300 and derived.params["reference"] == "Registered-Llama"
    assert _finding(report, "chain_break").params["step"] == 300
    assert "init_derived_from_reference" not in _codes(report)


def test_two_checkpoints_are_insufficient(honest_run, registry, tmp_path: Path) -> None:
    bundle = tr.bundle_write(tmp_path / "bundle", [(0, honest_run[0]), (100, honest_run[1])])
    report = training_evidence_judge(path=bundle, references=registry)
    assert report.verdict == "insufficient"
    assert _finding(report, "too_few_checkpoints").params == {"checkpoints": 2, "minimum": 3}


def test_submitted_model_unrelated_to_the_last_checkpoint(honest_bundle: Path, registry, tmp_path: Path) -> None:
    other = tm.model_write(tr.run_make(seed=9, steps=2)[1], tmp_path / "other")
    report = training_evidence_judge(path=honest_bundle, references=registry, submitted=other,
                                     submitted_label="vendor model")
    assert report.verdict == "inconsistent"
    finding = _finding(report, "submitted_not_derived")
    assert finding.params["step"] == 300 and finding.params["submitted"] == "vendor model"


def test_fingerprint_checkpoints_judged_like_weights(honest_run, registered, registry, tmp_path: Path) -> None:
    """Checkpoints given only as fingerprint bundles: an honest run stays consistent, a forged
    step 0 is still caught from what the fingerprint keeps (raw gains and embedding rows)."""
    from compliance.engine.lineage import fingerprint_save

    def prints(models: list[tm.TinyModel], name: str) -> list[tuple[int, Path]]:
        out = []
        for i, m in enumerate(models):
            folder = tm.model_write(m, tmp_path / f"{name}-w{i}")
            out.append((100 * i, fingerprint_save(fingerprint_build(path=folder), tmp_path / f"{name}-{i}.npz")))
        return out

    honest = training_evidence_judge(path=tr.bundle_write(tmp_path / "honest", prints(honest_run, "h")),
                                     references=registry)
    assert honest.verdict == "consistent", [f.to_dict() for f in honest.findings]
    assert {c.kind for c in honest.checkpoints} == {"fingerprint"}
    forged = tr.forged_init(registered, seed=3)
    forged_report = training_evidence_judge(
        path=tr.bundle_write(tmp_path / "forged", prints([forged, tr.train_step(forged, seed=1),
                                                          tr.train_step(forged, seed=2)], "f")),
        references=registry)
    assert forged_report.verdict == "inconsistent"
    assert {"init_derived_from_reference", "init_trained_structure"} <= _codes(forged_report)


# ------------------------------------------------------------------ the log


def test_log_judgement(honest_bundle: Path, tmp_path: Path) -> None:
    bundle_dir = tmp_path / "b"
    shutil.copytree(honest_bundle, bundle_dir)
    log = bundle_dir / "train_log.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    params = 3_000_000

    summary, findings = log_judge(bundle_read(bundle_dir), vocab_size=1024, parameters=params)
    assert findings == [] and summary["first_loss"] == rows[0]["loss"]

    # Started from a trained model: loss 2.9 where ln(1024) = 6.93.
    log.write_text("".join(json.dumps({**r, "loss": 2.9 - r["step"] * 1e-4}) + "\n" for r in rows))
    _, findings = log_judge(bundle_read(bundle_dir), vocab_size=1024, parameters=params)
    start = next(f for f in findings if f.code == "log_start_not_uniform")
    assert start.params["uniform_loss"] == pytest.approx(6.931, abs=1e-3) and start.params["loss"] == 2.9

    # Steps going back, tokens falling, the last checkpoint's step never logged.
    broken = rows[:5] + [rows[2]] + [{**r, "tokens": 0} for r in rows[6:20]]
    log.write_text("".join(json.dumps(r) + "\n" for r in broken))
    _, findings = log_judge(bundle_read(bundle_dir), vocab_size=1024, parameters=params)
    codes = {f.code for f in findings}
    assert {"log_steps_not_increasing", "log_tokens_not_increasing", "log_ends_before_checkpoint"} <= codes

    # Declared compute: 6 x N x D agrees within a factor of two, 10x does not.
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokens = rows[-1]["tokens"]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    for declared, expected in ((6 * params * tokens * 1.3, set()), (60 * params * tokens, {"compute_mismatch"})):
        (bundle_dir / "manifest.json").write_text(json.dumps({**manifest, "compute_flops": declared}))
        summary, findings = log_judge(bundle_read(bundle_dir), vocab_size=1024, parameters=params)
        assert {f.code for f in findings} == expected
    assert summary["compute_ratio"] == pytest.approx(10.0)


# ------------------------------------------------------------------ malformed and hostile bundles


def _manifest_edit(bundle: Path, **changes) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.update(changes)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "training-evidence/2"}, "format must be 'training-evidence/1'"),
    ({"claim": "fine_tuned"}, "claim must be one of"),
    ({"extra": 1}, "unknown keys ['extra']"),
    ({"checkpoints": []}, "checkpoints must be a non-empty list"),
    ({"checkpoints": [{"step": 100, "path": "checkpoints/step_100"}, {"step": 0, "path": "checkpoints/step_0"}]},
     "increasing step order (step 0 after step 100)"),
    ({"checkpoints": [{"step": "0", "path": "checkpoints/step_0"}]}, "checkpoints[0].step must be an integer"),
    ({"checkpoints": [{"step": 0, "path": "../../etc"}]}, "must be a relative path inside the bundle"),
    ({"checkpoints": [{"step": 0, "path": "/etc"}]}, "must be a relative path inside the bundle"),
    ({"checkpoints": [{"step": 0, "path": "checkpoints/step_9"}]}, "'checkpoints/step_9' is not in the bundle"),
    ({"checkpoints": [{"step": 0, "path": "tokenizer.json"}]}, "tokenizer.json: a file that is not a fingerprint bundle"),
    ({"log": "missing.jsonl"}, "log 'missing.jsonl' is not in the bundle"),
    ({"compute_flops": -1}, "compute_flops must be a positive number"),
])
def test_malformed_manifest_is_refused_with_a_clear_error(honest_bundle: Path, tmp_path: Path, changes, message) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(honest_bundle, bundle)
    _manifest_edit(bundle, **changes)
    with pytest.raises(TrainingEvidenceError) as caught:
        bundle_read(bundle)
    assert message in str(caught.value)


def test_malformed_files_are_refused(honest_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(honest_bundle, bundle)
    (bundle / "train_log.jsonl").write_text('{"step": 0, "loss": 6.9}\n{"step": 10, "loss": NaN}\n')
    with pytest.raises(TrainingEvidenceError, match=r"train_log.jsonl, line 2: 'loss' must be a finite number"):
        bundle_read(bundle)
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(TrainingEvidenceError, match="manifest.json: not valid JSON"):
        bundle_read(bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(TrainingEvidenceError, match="no manifest.json"):
        bundle_read(bundle)
    link = tmp_path / "linked"
    shutil.copytree(honest_bundle, link)
    shutil.rmtree(link / "checkpoints/step_0")
    (link / "checkpoints/step_0").symlink_to(honest_bundle / "checkpoints/step_0")
    with pytest.raises(TrainingEvidenceError, match="leads outside the bundle"):
        bundle_read(link)


def test_archives_zip_and_tar_gz_are_read(honest_bundle: Path, tmp_path: Path) -> None:
    zipped = Path(shutil.make_archive(str(tmp_path / "evidence"), "zip", honest_bundle.parent, honest_bundle.name))
    tarred = tmp_path / "evidence.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(honest_bundle, arcname=".")
    for archive_path in (zipped, tarred):
        with bundle_open(archive_path) as bundle:
            assert [c.step for c in bundle.checkpoints] == [0, 100, 200, 300]
            assert bundle.log[0]["step"] == 0
            root = bundle.root
        assert not root.exists()  # the unpacked copy is removed


def test_hostile_archives_are_refused(tmp_path: Path) -> None:
    token = "evidence-hostile"
    for path in (hostile.zip_slip(tmp_path / "slip.zip", token), hostile.zip_symlink(tmp_path / "link.zip"),
                 hostile.tar_hostile(tmp_path / "hostile.tar", token), hostile.zip_overlapping(tmp_path / "overlap.zip")):
        with pytest.raises(TrainingEvidenceError, match="archive refused"):
            with bundle_open(path):
                pass
    assert not list(Path("/tmp").glob(f"{token}*")) and not list(tmp_path.parent.glob(f"{token}*"))
    bomb = hostile.zip_bomb_real(tmp_path / "bomb.zip", size=16 * MiB)
    with pytest.raises(TrainingEvidenceError, match="archive refused"):
        with bundle_open(bomb, limits=dataclasses.replace(IntakeLimits(), max_expanded_bytes=4 * MiB)):
            pass
    with pytest.raises(TrainingEvidenceError, match="compression bomb"):
        with bundle_open(bomb, limits=dataclasses.replace(IntakeLimits(), bomb_ratio=100)):
            pass
    with pytest.raises(TrainingEvidenceError, match="neither a folder nor a zip or tar archive"):
        with bundle_open(hostile.random_bytes(tmp_path / "noise.bin")):
            pass
    with warnings.catch_warnings(), zipfile.ZipFile(tmp_path / "twice.zip", "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is asked to write
        archive.writestr("manifest.json", "{}")
        archive.writestr("manifest.json", "{}")
    with pytest.raises(TrainingEvidenceError, match="appears more than once"):
        with bundle_open(tmp_path / "twice.zip"):
            pass


def test_writer_script_makes_a_bundle_the_portal_reads(honest_bundle: Path, tmp_path: Path) -> None:
    """scripts/training_evidence_write.py, as the vendor documentation shows it, from a run's folders and log."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    args = [sys.executable, str(root / "scripts/training_evidence_write.py"), str(tmp_path / "evidence"),
            "--log", str(honest_bundle / "train_log.jsonl"), "--tokenizer", str(honest_bundle / "tokenizer.json"),
            "--archive", "--compute-flops", "1e15"]
    for step in (0, 100, 200, 300):
        args += ["--checkpoint", f"{step}={honest_bundle / f'checkpoints/step_{step}'}"]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    for written in (tmp_path / "evidence", tmp_path / "evidence.tar"):
        with bundle_open(written) as bundle:
            assert [c.step for c in bundle.checkpoints] == [0, 100, 200, 300]
            assert {c.kind for c in bundle.checkpoints} == {"weights"}
            assert bundle.manifest["compute_flops"] == 1e15 and len(bundle.log) == 31


def test_init_statistics_of_a_draw_and_of_trained_weights() -> None:
    """The oracle is the draw itself: normal(0, 0.02) with the padding row zeroed, as transformers
    initialises an Embedding with padding_idx, has no structure; trained-like weights do."""
    import numpy as np

    from compliance.engine.training_evidence import matrix_statistics

    rng = np.random.default_rng(0)
    drawn = rng.normal(0, 0.02, (1024, 512)).astype(np.float32)
    drawn[3] = 0.0
    stats = matrix_statistics(drawn)
    assert stats["zero_rows"] == 1 and stats["std"] == pytest.approx(0.02, rel=0.02)
    assert abs(stats["excess_kurtosis"]) < 0.1 and stats["spectrum_ratio"] < 1.05 and stats["row_spread_ratio"] < 1.5
    trained = tr.registered_make(seed=1).tensors["model.layers.0.mlp.up_proj.weight"]
    stats = matrix_statistics(trained)
    assert stats["excess_kurtosis"] > 0.5 or stats["spectrum_ratio"] > 1.25


def test_a_step_zero_with_trained_gains_or_biases_is_not_an_initialisation(tmp_path: Path) -> None:
    """Gains moved off 1 and biases off 0 (as one optimiser step does) are named, with the numbers."""
    import numpy as np

    from compliance.engine.training_evidence import initialisation_judge

    model = tr.llama_init(seed=2)
    model.tensors["model.layers.1.input_layernorm.weight"] += np.float32(0.05)
    model.tensors["model.layers.2.self_attn.q_proj.bias"] = np.full(256, 0.01, np.float32)
    bundle = tr.bundle_write(tmp_path / "b", [(0, model), (100, tr.train_step(model, seed=1))])
    entry = bundle_read(bundle).checkpoints[0]
    summary, findings = initialisation_judge(entry=entry, fp=fingerprint_build(path=entry.path))
    by_code = {f.code: f for f in findings}
    assert set(by_code) == {"init_norms_not_initial", "init_bias_nonzero"}
    assert by_code["init_norms_not_initial"].params["example"] == "model.layers.1.input_layernorm.weight"
    assert by_code["init_norms_not_initial"].params["max_deviation"] == pytest.approx(0.05, abs=0.004)
    assert by_code["init_bias_nonzero"].params["example"] == "model.layers.2.self_attn.q_proj.bias"
    assert summary["scheme"].startswith("config initializer_range = 0.02")


def test_every_submitted_model_is_compared_with_the_last_checkpoint(honest_bundle: Path, honest_run, registry,
                                                                    tmp_path: Path) -> None:
    """A submission with several model entries: each is tested against the last checkpoint, and the
    one that is not derived from it is named (the first one passing does not hide the second)."""
    tuned = tm.model_write(tr.train_step(honest_run[-1], seed=11), tmp_path / "tuned")
    other = tm.model_write(tr.run_make(seed=9, steps=2)[1], tmp_path / "other")
    report = training_evidence_judge(path=honest_bundle, references=registry,
                                     submitted_models=[("chat/model.safetensors", tuned),
                                                       ("base/model.safetensors", other)])
    assert report.verdict == "inconsistent"
    assert report.submitted_models == ["chat/model.safetensors", "base/model.safetensors"]
    rows = [(t["against"], t["verdict"]) for t in report.checkpoints[-1].tests if t["kind"] == "submitted"]
    assert rows == [("chat/model.safetensors", "derived"), ("base/model.safetensors", "independent")]
    (finding,) = [f for f in report.findings if f.code == "submitted_not_derived"]
    assert finding.params["submitted"] == "base/model.safetensors" and finding.params["step"] == 300
    assert report.to_dict()["submitted_models"] == report.submitted_models


def test_a_fingerprint_bundle_loads_only_the_layers_asked_for(honest_run, tmp_path: Path) -> None:
    """Later checkpoints are loaded with the chain's layers alone (the cost of judging a 7B bundle);
    those layers are the very arrays a full load gives, and the others are absent."""
    import numpy as np

    from compliance.engine.lineage import fingerprint_load, fingerprint_save

    path = fingerprint_save(fingerprint_build(path=tm.model_write(honest_run[1], tmp_path / "w")), tmp_path / "fp")
    full = fingerprint_load(path)
    keys = sorted(full.layers)
    part = fingerprint_load(path, layers=lambda ks: ks[-1:])
    assert sorted(part.layers) == [keys[-1]] and len(keys) > 1
    for family, rows in full.layers[keys[-1]].families.items():
        assert np.array_equal(part.layers[keys[-1]].families[family].rows, rows.rows)
    assert np.array_equal(part.embedding_rows, full.embedding_rows) and part.meta["parameters"] == full.meta["parameters"]

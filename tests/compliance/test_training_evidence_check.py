"""The training-evidence check inside the portal: a vendor's bundle uploaded as an artifact of kind
training_evidence, judged by a real worker on the heavy queue against the registry."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import translation

from compliance.dossier.context import dossier_context_build
from compliance.dossier.render import dossier_html_render
from compliance.engine.lineage import fingerprint_build, fingerprint_save
from compliance.finding_texts import REVIEWER, finding_render
from compliance.models import CheckRun, Finding
from tests.compliance.engine import training_runs as tr
from tests.compliance.engine.lineage import tinymodels as tm
from tests.factories import build_world, check_runs_wait, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait(submission_id: int, timeout: float = 300.0) -> None:
    check_runs_wait(submission_id, timeout)


def _tar(folder: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        archive.add(folder, arcname="evidence")
    return raw.getvalue()


def _fingerprinted_bundle(models: list[tm.TinyModel], root: Path) -> Path:
    prints = []
    for i, model in enumerate(models):
        weights = tm.model_write(model, root / f"weights-{i}")
        prints.append((100 * i, fingerprint_save(fingerprint_build(path=weights), root / f"step-{i}.npz")))
    return tr.bundle_write(root / "bundle", prints)


def test_a_forged_step_zero_is_inconsistent_and_a_malformed_bundle_is_said_so(celery_worker, tmp_path: Path) -> None:
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    registered = tr.registered_make(seed=1)
    call_command("add_reference_model", str(tm.model_write(registered, tmp_path / "registered")),
                 "--name", "open-lab/llama-base", "--publisher", "Open Lab", stdout=io.StringIO())
    forged = tr.forged_init(registered, seed=3)
    last = tr.train_step(forged, seed=2)
    bundle = _fingerprinted_bundle([forged, tr.train_step(forged, seed=1), last], tmp_path / "forged")
    model = tm.model_write(tr.train_step(last, seed=9), tmp_path / "submitted")  # tuned after the last step
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    files = {f"model/{p.name}": (kinds[p.name], p.read_bytes()) for p in sorted(model.iterdir())}
    submission = signed_submission(world=world, submit=True,
                                   files={**files, "evidence.tar.gz": ("training_evidence", _tar(bundle))})
    _wait(submission.pk)
    run = CheckRun.objects.get(submission=submission, check_name="training_evidence")
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "inconsistent", (run.state, run.error)
    finding = Finding.objects.get(check_run=run, code="init_derived_from_reference")
    assert finding.severity == "critical" and finding.params["reference"] == "open-lab/llama-base"
    assert Finding.objects.filter(check_run=run, code="init_trained_structure", severity="high").exists()
    assert [c["step"] for c in run.summary["checkpoints"]] == [0, 100, 200]
    submitted = [t for t in run.summary["checkpoints"][-1]["tests"] if t["kind"] == "submitted"]
    assert [(t["against"], t["verdict"]) for t in submitted] == [("model/model.safetensors", "derived")]
    assert not Finding.objects.filter(check_run=run, code__in=["submitted_not_given", "submitted_not_derived"]).exists()
    with translation.override("ko"):
        korean = finding_render(code=finding.code, params=finding.params, evidence=finding.evidence,
                                audience=REVIEWER)
    assert "open-lab/llama-base" in korean.title and "첫 체크포인트" in korean.title
    # The Korean dossier names the check, its method and its verdict in Korean (no English engine sentence).
    (check,) = [c for c in dossier_context_build(submission=submission, lang="ko").checks
                if c.kind == "training_evidence"]
    assert check.name.startswith("학습 증빙") and "체크포인트" in check.method
    assert check.verdict == "inconsistent" and not check.lineage and check.summary == ""
    assert [c["step"] for c in check.chain] == [0, 100, 200]
    html = dossier_html_render(context=dossier_context_build(submission=submission, lang="ko"))
    assert "학습 사슬" in html and "바로 앞 체크포인트에서 파생됨" in html and "단계 100" in html
    # The figure says what its colours and numbers mean, and the method is printed whole.
    assert "체크포인트마다 한 열이며 학습 단계 순입니다" in html and "빨간색" in html
    section = html[html.rindex("<h3", 0, html.index('class="chart" id="chain-')):html.index('class="chart" id="chain-')]
    assert check.method.split()[-1] in section and "전체 내용은 첨부된 JSON" not in section
    # The forged step 0 meets the registered model in a red cell, with its p-value.
    chain_svg = html[html.index('class="chart" id="chain-'):]
    assert "open-lab/llama-base" in chain_svg[:chain_svg.index("</svg>")]
    assert "#8a240f" in chain_svg[:chain_svg.index("</svg>")]

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format": "training-evidence/1", "claim": "from_scratch"}')
    second = signed_submission(world=world, submit=True,
                               files={"evidence.tar.gz": ("training_evidence", _tar(broken))})
    _wait(second.pk)
    run = CheckRun.objects.get(submission=second, check_name="training_evidence")
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "malformed", (run.state, run.error)
    finding = Finding.objects.get(check_run=run, code="training_evidence_malformed")
    assert finding.severity == "high" and "checkpoints must be a non-empty list" in finding.params["reason"]


def test_every_model_of_the_submission_is_compared_with_the_last_checkpoint(celery_worker, tmp_path: Path) -> None:
    """A submission with two models: the one tuned from the last checkpoint passes, the unrelated
    one is a finding naming it (before, only the first model by name was compared)."""
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    run_models = tr.run_make(seed=7, steps=3)
    bundle = _fingerprinted_bundle(run_models, tmp_path / "honest")
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    files = {"evidence.tar.gz": ("training_evidence", _tar(bundle))}
    for folder, model in (("a-chat", tr.train_step(run_models[-1], seed=9)), ("b-other", tr.run_make(seed=9,
                                                                                                   steps=2)[1])):
        written = tm.model_write(model, tmp_path / folder)
        # A submission refuses the same file twice: each folder's config names its model, and the
        # second shares the first's tokenizer (it is read from the first folder only).
        config = json.loads((written / "config.json").read_text())
        (written / "config.json").write_text(json.dumps({**config, "_name_or_path": folder}))
        files.update({f"{folder}/{p.name}": (kinds[p.name], p.read_bytes()) for p in sorted(written.iterdir())
                      if not (folder == "b-other" and p.name == "tokenizer.json")})
    submission = signed_submission(world=world, submit=True, files=files)
    _wait(submission.pk)
    run = CheckRun.objects.get(submission=submission, check_name="training_evidence")
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "inconsistent", (run.state, run.error)
    submitted = [t for t in run.summary["checkpoints"][-1]["tests"] if t["kind"] == "submitted"]
    assert [(t["against"], t["verdict"]) for t in submitted] == [("a-chat/model.safetensors", "derived"),
                                                                 ("b-other/model.safetensors", "independent")]
    (finding,) = Finding.objects.filter(check_run=run, code="submitted_not_derived")
    assert finding.params["submitted"] == "b-other/model.safetensors" and finding.severity == "high"
    # The check reads both models' files: a new version of either is a new judgement, not a reuse.
    from compliance.checks.training_evidence import reuse_inputs

    read = {name for name, _ in reuse_inputs(run.artifact)["reads"]}
    assert {"a-chat/model.safetensors", "b-other/model.safetensors", "evidence.tar.gz"} <= read

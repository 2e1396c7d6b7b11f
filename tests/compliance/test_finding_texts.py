"""Findings in plain words, in the reader's language (issue #13).

A finding is a code and parameters; its sentence comes from compliance.finding_texts through
the translation catalogue on the page, in the API and in the dossier. Every code the code base
can emit must have a Korean text; vendors never see our machinery (engine versions, worker host
names); a model whose shapes no reference shares is "not comparable", not a Medium risk.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation

from compliance import finding_texts
from compliance.checks import check_registry
from compliance.checks.lineage import _report_finding, lineage_verdict
from compliance.engine.lineage import lineage_compare
from compliance.models import CheckRun, Finding, ReferenceModel
from compliance.services.policy import programme_policy_update
from compliance.services.runs import check_run_execute
from tests.compliance.engine.lineage import tinymodels
from tests.factories import signed_submission

ROOT = Path(__file__).resolve().parents[2]
HANGUL = re.compile(r"[\uac00-\ud7a3]")
WORKER = "celery@secret-host-42"

# How the code base writes a finding code: engine Finding("sev", "code", ...) and code="...",
# check dicts {"code": "..."} (f-strings included), lineage's _finding(severity, "code", ...),
# and the weights readers' error codes (intake._weights_error_code's table).
CODE_PATTERNS = [
    # Finding(<severity expression>, "code", ...): the severity may be computed ("high" if x else "medium").
    re.compile(r'Finding\(\s*(?:severity=)?[^,()]+?,\s*(?:code=)?"([a-z0-9_\-]+)"'),
    re.compile(r'\bcode="([a-z0-9_\-]+)"'),
    re.compile(r'"code":\s*f?"([a-z0-9_\-{}]+)"'),
    re.compile(r'_finding\(\s*(?:"[a-z]+"|\w+),\s*"([a-z0-9_\-]+)"'),
    re.compile(r'_pipeline_finding\(\s*code="([a-z0-9_\-]+)"'),
    re.compile(r'\(\s*"[^"]+",\s*"((?:safetensors|gguf)_[a-z_]+)"\s*\)'),
    re.compile(r'return "((?:safetensors|gguf)_[a-z_]+)"'),
]


def _emitted_codes() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "compliance").rglob("*.py"):
        # casework.py's NextAction(code=...) names next steps, not findings.
        if path.name in {"finding_texts.py", "casework.py"}:
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in CODE_PATTERNS:
            codes.update(pattern.findall(text))
    # f-string codes: every value the f-string can take.
    expanded = set()
    for code in codes:
        if "{check}" in code:
            expanded.update(code.replace("{check}", name) for name in check_registry())
        else:
            expanded.add(code)
    return expanded


def _sample_values(entry: finding_texts.FindingText) -> dict[str, str]:
    return {name: f"V{index}" for index, name in enumerate(sorted(finding_texts.finding_placeholders(entry)))}


def test_every_finding_code_the_code_base_can_emit_has_a_korean_text():
    codes = _emitted_codes()
    # The scan itself must keep working: ~100 codes today (intake, lineage, licences, code, pipeline).
    assert len(codes) >= 95, sorted(codes)
    assert {"undeclared_derivation", "license-denied", "archive_path_traversal", "check_blocked",
            "licenses_not_read", "safetensors_truncated", "gguf_invalid", "declared_kind_mismatch"} <= codes
    registry_codes = set(finding_texts.TEXTS)
    missing = sorted(c for c in codes if finding_texts.finding_text_entry(c) is None)
    assert not missing, f"finding codes without a text in compliance/finding_texts.py: {missing}"
    for code in sorted(codes | registry_codes):
        entry, _captured = finding_texts.finding_text_entry(code)
        params = _sample_values(entry)
        for audience in finding_texts.AUDIENCES:
            with translation.override("en"):
                english = finding_texts.finding_render(code=code, params=params, evidence={}, audience=audience)
            with translation.override("ko"):
                korean = finding_texts.finding_render(code=code, params=params, evidence={}, audience=audience)
            for en_text, ko_text in ((english.title, korean.title), (english.text, korean.text)):
                assert ko_text != en_text and HANGUL.search(ko_text), (code, audience, ko_text)
                assert "%(" not in ko_text and "—" not in ko_text, (code, audience, ko_text)
                # Every value reaches the Korean sentence too (no placeholder dropped by the translation).
                for value in params.values():
                    if value in en_text:
                        assert value in ko_text, (code, audience, value, ko_text)


def test_verdicts_and_check_names_are_translated():
    with translation.override("ko"):
        for verdict in finding_texts.VERDICT_LABELS:
            label = finding_texts.verdict_label(verdict)
            assert HANGUL.search(label), (verdict, label)
        for spec in check_registry().values():
            assert HANGUL.search(str(spec.label)), spec.name


def test_run_steps_read_in_korean_and_a_retry_error_only_for_the_ministry():
    with translation.override("ko"):
        assert finding_texts.step_label("testing against 3 reference model(s)") == "참조 모델 3개와 비교하는 중"
        assert finding_texts.step_label("done") == "완료"
        retry = "retrying after a transient error: Error 111 connecting to secret-host-42:6379"
        assert "secret-host" not in finding_texts.step_label(retry)
        assert "secret-host" in finding_texts.step_label(retry, internals=True)


def test_vendors_see_file_names_not_server_paths(settings):
    stored = f"{settings.MEDIA_ROOT}/artifacts/2026/model/weights.bin"
    evidence = {"file": "model/weights.bin", "target": stored, "engine_version": "intake-7",
                "norms": {"mean_raw_cosine": 0.99},
                "nested": [{"resolved": stored, "member": "a/b.txt"}]}
    shown = finding_texts.evidence_for_vendor(evidence)
    assert shown == {"file": "model/weights.bin", "target": "weights.bin", "nested": [{"member": "a/b.txt"}]}
    message = f"model/link: links outside the model folder to '{stored}'"
    assert finding_texts.text_for_vendor(message) == "model/link: links outside the model folder to 'weights.bin'"
    # A path inside the vendor's own upload is theirs to see.
    assert finding_texts.text_for_vendor("/src/train.py: GPL") == "/src/train.py: GPL"


def test_an_unknown_code_falls_back_to_the_stored_english():
    with translation.override("ko"):
        text = finding_texts.finding_render(code="no_such_code", params={}, evidence={}, title="Stored title",
                                            explanation="Stored explanation.")
    assert (text.title, text.text, text.known) == ("Stored title", "Stored explanation.", False)


def test_a_check_that_could_not_complete_gives_its_known_reason_in_korean():
    """The reason a check gives for not completing is stored in English; a Korean reader reads it in Korean."""
    for reason, korean in [("no reference model with a fingerprint is configured for this programme", "참조 모델"),
                           ("no reference code is indexed", "색인된 참조 코드가 없습니다")]:
        params = {"check": "lineage", "artifact": "model.safetensors", "reason": reason}
        with translation.override("ko"):
            text = finding_texts.finding_render(code="check_incomplete", params=params, evidence={})
        assert korean in text.text and reason not in text.text
        with translation.override("en"):
            assert reason in finding_texts.finding_render(code="check_incomplete", params=params, evidence={}).text


# --- lineage: not comparable is not a risk; a real inconclusive stays one ----------------------------


@pytest.fixture
def reference_base(tmp_path):
    return tinymodels.llama_make(seed=11)


def test_a_comparison_that_cannot_apply_is_information_and_a_real_inconclusive_stays_medium(reference_base,
                                                                                          tmp_path):
    reference_dir = tinymodels.model_write(reference_base, tmp_path / "reference")
    narrow = tinymodels.model_write(tinymodels.llama_make(seed=51, d=128, f=256, heads=2, kv_heads=1),
                                    tmp_path / "narrow")
    ref = ReferenceModel(name="open-lab/base-7b")
    report = lineage_compare(candidate=narrow, reference=reference_dir)
    assert report.verdict == "inconclusive" and not report.comparable  # never "independent"
    finding = _report_finding(ref=ref, report=report, data={**report.to_dict(), "reference_name": ref.name},
                              declared_names=set(), from_scratch=True, scratch_required=True, references=1)
    assert (finding["severity"], finding["code"]) == ("info", "lineage_not_comparable")
    assert finding["params"]["difference"] == {"hidden_size": [128, 256]}
    assert lineage_verdict(["not_comparable"]) == "not_comparable"
    assert lineage_verdict(["not_comparable", "independent"]) == "independent"

    # Same shapes, MLP copied into a fresh model: the test ran and cannot decide. Still Medium.
    fresh = tinymodels.llama_make(seed=71, vocab=[t + "_v2" for t in reference_base.vocab])
    for name, weights in reference_base.tensors.items():
        if ".mlp." in name:
            fresh.tensors[name] = weights.copy()
    partial = lineage_compare(candidate=tinymodels.model_write(fresh, tmp_path / "partial"), reference=reference_dir)
    assert partial.comparable and partial.verdict == "inconclusive"
    finding = _report_finding(ref=ref, report=partial, data={**partial.to_dict(), "reference_name": ref.name},
                              declared_names=set(), from_scratch=True, scratch_required=True, references=1)
    assert (finding["severity"], finding["code"]) == ("medium", "lineage_inconclusive")
    assert lineage_verdict(["inconclusive", "not_comparable"]) == "inconclusive"


def _model_files(directory: Path) -> dict:
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    return {f"model/{p.name}": (kinds.get(p.name, "other"), p.read_bytes()) for p in sorted(directory.iterdir())
            if p.is_file()}


def _run_checks(submission) -> None:
    """Intake first (the others wait for it), then the rest, in this process, as a worker would."""
    for run in CheckRun.objects.filter(submission=submission, check_name="intake"):
        check_run_execute(run_id=run.pk, worker=WORKER)
    for run in CheckRun.objects.filter(submission=submission).exclude(check_name="intake"):
        check_run_execute(run_id=run.pk, worker=WORKER)


@pytest.fixture
def narrow_model_submission(world, tmp_path, capsys, reference_base):
    """A new model of width 128 against a reference of width 256, checked for real; plus the licence
    finding a denied GPL file gives (stored as the licence check writes it)."""
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    tinymodels.model_write(reference_base, tmp_path / "base")
    call_command("add_reference_model", str(tmp_path / "base"), "--name", "open-lab/base-7b", "--publisher",
                 "Open Lab", "--license", "Apache-2.0")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="Apache-2.0",
                            denied="GPL-3.0-or-later", review="", from_scratch_required=True,
                            reference_models=ReferenceModel.objects.all())
    tinymodels.model_write(tinymodels.llama_make(seed=51, d=128, f=256, heads=2, kv_heads=1), tmp_path / "vendor")
    submission = signed_submission(world=world, files=_model_files(tmp_path / "vendor"), submit=True)
    _run_checks(submission)
    lineage = CheckRun.objects.get(submission=submission, check_name="lineage")
    Finding.objects.create(
        check_run=lineage, submission=submission, severity="critical", category="license-policy",
        code="license-denied", title="Denied licence: GPL-3.0-or-later",
        explanation="2 file(s) are under GPL-3.0-or-later, which the programme does not allow.",
        evidence={"expression": "GPL-3.0-or-later", "files": ["src/train.py", "src/data.py"], "file_count": 2})
    return submission


def test_intake_findings_name_the_file_in_korean(world):
    submission = signed_submission(world=world, files={"weights.bin": ("weights", b'{"not": "weights"}')},
                                   submit=True)
    run = CheckRun.objects.get(submission=submission, check_name="intake")
    check_run_execute(run_id=run.pk, worker=WORKER)
    finding = Finding.objects.get(check_run=run, code="declared_kind_mismatch")
    with translation.override("ko"):
        text = finding.text("vendor")
    assert text.title == "신고된 종류가 내용과 맞지 않음: weights.bin", text.title
    assert "weights.bin" in text.text and HANGUL.search(text.text)


def test_a_new_model_of_another_width_gets_no_medium_finding(narrow_model_submission):
    run = CheckRun.objects.get(submission=narrow_model_submission, check_name="lineage")
    assert (run.state, run.verdict) == (CheckRun.State.SUCCEEDED, "not_comparable"), run.error
    findings = list(run.findings.exclude(code="license-denied"))
    assert [(f.severity, f.code) for f in findings] == [("info", "lineage_not_comparable")]
    (entry,) = run.summary["not_comparable"]
    assert entry["reference"] == "open-lab/base-7b" and "width" in entry["reason"]
    assert findings[0].params["reference"] == "open-lab/base-7b"
    assert not Finding.objects.filter(submission=narrow_model_submission, severity="medium").exists()


def test_the_submission_page_in_korean_shows_lineage_and_licence_findings_in_korean(narrow_model_submission, world):
    for user in (world.reviewer, world.vendor_user):
        client = Client()
        client.force_login(user)
        client.cookies["django_language"] = "ko"
        page = client.get(f"/submissions/{narrow_model_submission.pk}/").content.decode()
        assert "open-lab/base-7b와 비교할 수 없음" in page
        assert "폭 128 대 256" in page  # why, in words
        assert "금지된 라이선스: GPL-3.0-or-later" in page
        assert "파일 2개가 사업에서 허용하지 않는 GPL-3.0-or-later 라이선스입니다." in page
        assert "Not comparable with open-lab/base-7b" not in page
        assert "어떤 참조 모델과도 비교할 수 없음" in page  # the check's verdict, translated
        assert "가중치 계보" in page  # the check's name
    # The reviewer reads what to check, and has the statistics one click away.
    client = Client()
    client.force_login(world.reviewer)
    client.cookies["django_language"] = "ko"
    page = client.get(f"/submissions/{narrow_model_submission.pk}/").content.decode()
    assert "증거에 나열된 파일과 라이선스를 사업 정책과 대조하십시오." in page
    assert '<details class="finding-details"><summary>통계와 증거</summary>' in page


def test_vendors_never_see_the_worker_host_or_engine_version(narrow_model_submission, world):
    run = CheckRun.objects.get(submission=narrow_model_submission, check_name="lineage")
    assert run.worker == WORKER and run.engine_version
    version = run.engine_version
    vendor, reviewer = Client(), Client()
    vendor.force_login(world.vendor_user)
    reviewer.force_login(world.reviewer)
    urls = [f"/submissions/{narrow_model_submission.pk}/", f"/submissions/{narrow_model_submission.pk}/?fragment=runs",
            f"/api/check-runs/?submission={narrow_model_submission.pk}", f"/api/check-runs/{run.pk}/",
            f"/api/findings/?submission={narrow_model_submission.pk}"]
    for url in urls:
        response = vendor.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert WORKER not in body and "secret-host" not in body, url
        assert version not in body, url
    # Ministry users still see them.
    page = reviewer.get(f"/submissions/{narrow_model_submission.pk}/").content.decode()
    assert WORKER in page and version in page
    api = reviewer.get(f"/api/check-runs/{run.pk}/").json()
    assert api["worker"] == WORKER and api["engine_version"] == version
    findings = vendor.get(f"/api/findings/?submission={narrow_model_submission.pk}",
                          HTTP_ACCEPT_LANGUAGE="ko").json()
    rows = findings["results"] if isinstance(findings, dict) else findings
    titles = {row["code"]: row["display_title"] for row in rows}
    assert titles["lineage_not_comparable"] == "open-lab/base-7b와 비교할 수 없음"


def test_the_korean_dossier_shows_the_korean_finding_text(narrow_model_submission, tmp_path):
    from compliance.dossier.context import dossier_context_build
    from compliance.dossier.render import dossier_render

    context = dossier_context_build(submission=narrow_model_submission, lang="ko", dossier_number="D-2026-000013",
                                    issued_at=timezone.now())
    pdf = dossier_render(context=context).pdf_bytes
    path = tmp_path / "dossier.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True,
                          timeout=120).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", "open-lab/base-7b와 비교할 수 없음") in flat
    assert re.sub(r"\s+", "", "금지된 라이선스: GPL-3.0-or-later") in flat
    assert "Notcomparablewith" not in flat
    summary = next(row for row in context.checks if row.kind == "lineage")
    assert summary.summary == "open-lab/base-7b와 비교할 수 없음"  # no p-value: there was no test
    # English stays the source language: the same dossier in English reads English.
    english = dossier_context_build(submission=narrow_model_submission, lang="en", dossier_number="D-2026-000014")
    assert any(f.title == "Not comparable with open-lab/base-7b" for f in english.findings)

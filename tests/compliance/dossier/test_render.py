"""The rendered dossier: what a reader, an archivist and a machine find in it."""

from __future__ import annotations

import json
import re
from io import BytesIO

import pytest
from pypdf import PdfReader

from compliance.dossier.bom import dossier_bom_validate
from compliance.dossier.render import (
    DossierRenderError,
    DossierRenderTimeout,
    dossier_html_render,
    dossier_render,
)
from compliance.dossier.sample import sample_context_build
from tests.compliance.dossier.conftest import poppler


def _flat(text: str) -> str:
    """Text without whitespace: line wrapping must not hide a fact."""
    return re.sub(r"\s+", "", text)


def test_english_dossier_states_the_key_facts(dossier_en, tmp_path):
    text = poppler("pdftotext", dossier_en.signed, tmp_path)
    flat = _flat(text)
    for fact in [
        "Compliance dossier",
        "SAIF-2026-07-S42-D001",  # dossier number
        "Hanbit AI Consortium",  # vendor
        "Overall status: Rejected",
        "Summary for the minister",
        "Claimed",
        "Found",
        "Decided",
        "Undeclared reuse of vision-encoder weights",
        "Qwen2.5-VL-7B-Instruct",
        "lineage 0.4.1",  # engine version
        "Keep NOTICE file",  # licence obligation
        "vllm-project/vllm@v0.6.0",  # code match origin
        "How to verify this file",
        "https://portal.example.invalid/verify/",
        dossier_en.render.attachments[0].sha256,  # findings.json hash printed
    ]:
        assert _flat(fact) in flat, f"missing from the PDF text: {fact}"


def test_korean_dossier_text_extracts_as_korean(dossier_ko, tmp_path):
    text = poppler("pdftotext", dossier_ko.signed, tmp_path)
    flat = _flat(text)
    for fact in ["검증 결과 보고서", "장관 보고용 요약", "종합 판정: 반려", "한빛AI 컨소시엄", "비전 인코더 가중치의 미신고 재사용", "이 파일을 검증하는 방법"]:
        assert _flat(fact) in flat, f"Korean text missing or garbled: {fact}"
    # No replacement characters or empty boxes where glyphs failed.
    assert "\ufffd" not in text and "\u25a1" not in text
    # pypdf (another extractor) agrees.
    reader = PdfReader(BytesIO(dossier_ko.signed))
    assert "검증 결과 보고서" in reader.pages[0].extract_text()


BUNDLED_FONTS = ["fonts/NanumGothic.ttf", "fonts/NanumGothicBold.ttf",
                 "vendor/krds/fonts/PretendardGOV-Bold.subset.ttf", "vendor/krds/fonts/PretendardGOV-Regular.subset.ttf"]


@pytest.mark.parametrize("which", ["dossier_en", "dossier_ko"])
def test_every_font_is_embedded_and_bundled(which, request, tmp_path):
    issued = request.getfixturevalue(which)
    listing = poppler("pdffonts", issued.signed, tmp_path)
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    assert rows, listing
    for row in rows:
        # columns: name type... encoding emb sub uni object ID; emb is 5th from the end
        assert row[-5] == "yes", f"font not embedded: {row[0]}"
        assert re.fullmatch(r"[A-Z]{6}\+Dossier-(Sans|Display)(-[A-Za-z]+)*", row[0]), f"a system font slipped in: {row[0]}"
    # PretendardGOV (KRDS) on the cover and running headers, NanumGothic for the body.
    assert {re.match(r"[A-Z]{6}\+(Dossier-(Sans|Display))", row[0]).group(1) for row in rows} == {"Dossier-Sans", "Dossier-Display"}
    assert sorted(issued.render.fetched) == BUNDLED_FONTS
    assert issued.render.refused == []
    # No ignored CSS or failed resource: the stylesheet means what it says.
    assert issued.render.warnings == []


def test_pdf_is_pdfa_3b_and_stays_so_after_signing(dossier_en):
    reader = PdfReader(BytesIO(dossier_en.signed))
    xmp = reader.xmp_metadata
    assert xmp is not None
    raw = xmp.stream.get_data().decode()
    assert re.search(r"pdfaid:part(>|=\")3", raw) and re.search(r"pdfaid:conformance(>|=\")B", raw)
    assert "/OutputIntents" in reader.trailer["/Root"]
    # Embedded files carry an AFRelationship, as PDF/A-3 requires.
    assert len(reader.trailer["/Root"]["/AF"]) == 3
    # Info and XMP agree on the producer after pyHanko's incremental update (ISO 19005-3, 6.6.3).
    producer = reader.trailer["/Info"].get_object()["/Producer"]
    assert "pyHanko" in producer
    assert f'pdf:Producer="{producer}"' in raw or f"<pdf:Producer>{producer}</pdf:Producer>" in raw
    # The invisible signature widget is printable and not hidden (PDF/A forbids hidden annotations).
    widget = reader.trailer["/Root"]["/AcroForm"]["/Fields"][0].get_object()
    assert widget["/F"] & 4 and not widget["/F"] & 2


def test_attachments_are_embedded_and_parse(dossier_en):
    reader = PdfReader(BytesIO(dossier_en.signed))
    files = {name: data[0] for name, data in reader.attachments.items()}
    assert set(files) == {"findings.json", "bom.cdx.json", "manifest.json"}
    findings = json.loads(files["findings.json"])
    assert len(findings["findings"]) == 60  # all of them, not just the printed ones
    assert findings["findings"][0]["severity"] == "critical"
    assert {c["engine_version"] for c in findings["checks"]} >= {"lineage 0.4.1"}
    assert dossier_bom_validate(bom_json=files["bom.cdx.json"].decode()) == []
    manifest = json.loads(files["manifest.json"])
    assert manifest["submission_id"] == 42
    assert manifest["attachments"]["findings.json"]["sha256"] == dossier_en.render.attachments[0].sha256
    assert [a["sha256"] for a in manifest["artifacts"]][:1] == [sample_context_build().artifacts[0].sha256]


def test_many_findings_are_capped_per_severity_with_a_pointer_to_the_json(tmp_path):
    context = sample_context_build(findings=400)
    html = dossier_html_render(context=context, findings_per_severity=5)
    # 5 cards per severity present, and a sentence pointing at the attachment.
    assert html.count('class="finding sev-') == 5 * len({f.severity for f in context.findings})
    assert "are in the attached findings.json" in html
    assert "all 400 are in the attached findings.json" in html


def test_toc_page_numbers_and_running_headers(dossier_en, tmp_path):
    text = poppler("pdftotext", dossier_en.signed, tmp_path, "-layout")
    pages = text.split("\f")
    assert len(pages) - 1 == dossier_en.render.pages >= 8
    # Page footer "n / N" on every page after the cover, header with the dossier number.
    total = dossier_en.render.pages
    for number, page in enumerate(pages[1:total], start=2):
        assert f"{number} / {total}" in page
        assert "SAIF-2026-07-S42-D001" in page
    # The contents page gives a page number to each chapter.
    assert re.search(r"4\. Findings\s*\.+\s*\d+", pages[1])


def test_a_table_that_spans_pages_repeats_its_header(tmp_path):
    context = sample_context_build(findings=1)
    context.checks[1].licences = context.checks[1].licences * 25  # 100 rows: several pages
    result = dossier_render(context=context)
    text = poppler("pdftotext", result.pdf_bytes, tmp_path, "-layout")
    pages_with_rows = [p for p in text.split("\f") if "third_party/vision_utils/" in p]
    assert len(pages_with_rows) >= 2
    assert all("Policy outcome" in page for page in pages_with_rows)


def test_charts_are_vectors_not_images(dossier_en):
    reader = PdfReader(BytesIO(dossier_en.signed))
    for page in reader.pages:
        resources = page.get("/Resources") or {}
        xobjects = resources.get("/XObject") or {}
        for ref in xobjects.values():
            assert ref.get_object().get("/Subtype") != "/Image"


def test_unknown_language_is_refused():
    context = sample_context_build()
    context.lang = "fr"
    with pytest.raises(DossierRenderError, match="language 'fr' is not supported"):
        dossier_render(context=context)


def test_timeout_aborts_in_process_render_and_restores_an_outer_alarm():
    import signal

    outer = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 1000)  # a caller's own deadline
    try:
        with pytest.raises(DossierRenderTimeout, match="exceeded its 0.05 s limit"):
            dossier_render(context=sample_context_build(findings=300), timeout_s=0.05, isolation="alarm")
        assert 900 < signal.getitimer(signal.ITIMER_REAL)[0] <= 1000
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer)


def test_a_timeout_caught_inside_the_renderer_still_refuses_the_dossier(monkeypatch):
    """The alarm's exception may land where something catches it (the fetcher's path check
    catches RuntimeError, WeasyPrint logs a failed fetch and goes on): still a timeout."""
    import time

    from compliance.dossier import fetcher as fetcher_module

    original = fetcher_module.StaticOnlyFetcher.fetch

    def slow_fetch(self, url, headers=None):
        try:
            time.sleep(3)  # the 1.5 s alarm fires here, in the renderer's hands
        except RuntimeError:
            pass  # swallowed, as the fetcher's path check would
        return original(self, url, headers)

    monkeypatch.setattr(fetcher_module.StaticOnlyFetcher, "fetch", slow_fetch)
    with pytest.raises(DossierRenderTimeout, match="exceeded its 1.5 s limit"):
        dossier_render(context=sample_context_build(findings=3), timeout_s=1.5, isolation="alarm")


def test_timeout_kills_the_render_subprocess():
    with pytest.raises(DossierRenderTimeout, match="process was killed"):
        dossier_render(context=sample_context_build(), timeout_s=0.3, isolation="subprocess")


def test_subprocess_render_returns_the_same_document():
    result = dossier_render(context=sample_context_build(findings=3), timeout_s=120, isolation="subprocess")
    assert result.pdf_bytes.startswith(b"%PDF-") and result.pages >= 8
    assert [a.name for a in result.attachments] == ["findings.json", "bom.cdx.json", "manifest.json"]


def test_minister_summary_has_one_row_per_kind_of_check_however_many_artifacts():
    import dataclasses

    context = sample_context_build(findings=2)
    intake = [
        dataclasses.replace(context.checks[2], id=500 + i, kind="intake", name=f"Intake safety: file-{i}.bin", verdict="pass", summary="clean")
        for i in range(30)
    ]
    intake[7] = dataclasses.replace(intake[7], verdict="fail", summary="pickle opcodes found in file-7.bin")
    context.checks = context.checks + intake
    html = dossier_html_render(context=context)
    summary = html[html.index('id="sec-summary"') :]
    summary = summary[: summary.index("</table>")]  # the claimed / found / decided table
    assert summary.count("<tr>") == 1 + 4  # header + lineage, licence, code, intake
    # The intake row leads with the worst verdict and tallies the rest.
    assert "Fail: pickle opcodes found in file-7.bin (Pass 29, Fail 1)" in summary or "Fail: pickle opcodes found in file-7.bin (Fail 1, Pass 29)" in summary


def test_timeout_off_the_main_thread_falls_back_to_a_subprocess():
    """signal.alarm only works on the main thread; elsewhere (a threaded
    worker) the render runs in a child process that is killed on expiry."""
    import threading

    outcome = {}

    def run():
        try:
            dossier_render(context=sample_context_build(), timeout_s=0.3)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert isinstance(outcome.get("error"), DossierRenderTimeout)
    assert "process was killed" in str(outcome["error"])


def test_tagged_dossier_has_a_structure_tree_for_screen_readers():
    result = dossier_render(context=sample_context_build(findings=1), tagged=True)
    root = PdfReader(BytesIO(result.pdf_bytes)).trailer["/Root"]
    assert "/StructTreeRoot" in root and root["/MarkInfo"]["/Marked"]
    assert root["/Lang"] == "en"


def test_evidence_json_stays_strict_json_with_odd_values():
    import decimal
    import math as _math

    context = sample_context_build(findings=2)
    context.findings[0].evidence = {"p": _math.nan, "z": _math.inf, "gpu_hours": decimal.Decimal("10.5"), "ids": {3, 1}}
    from compliance.dossier.render import dossier_attachments_build

    findings_json = next(a for a in dossier_attachments_build(context=context) if a.name == "findings.json")
    data = json.loads(findings_json.data)  # would fail on NaN / Infinity tokens
    evidence = next(f["evidence"] for f in data["findings"] if f["id"] == context.findings[0].id)
    assert evidence["p"] is None and evidence["z"] is None and evidence["gpu_hours"] == "10.5"


def test_rendering_is_reproducible_byte_for_byte(dossier_ko, portal_identity):
    """Same context, same unsigned bytes: a dossier can be re-rendered from the
    recorded data and compared with the archived one."""
    context = sample_context_build(lang="ko", findings=12)
    context.signer_subject, context.signer_fingerprint = portal_identity.subject, portal_identity.fingerprint_sha256
    assert dossier_render(context=context).pdf_bytes == dossier_ko.render.pdf_bytes


def test_huge_unbroken_vendor_text_is_clipped_in_print_and_kept_in_json():
    """10,000-character replies without a space once took 95 s and 94 pages to
    lay out; print clips them (the JSON keeps every character)."""
    context = sample_context_build(findings=3)
    for finding in context.findings:
        finding.messages[-1].body = "A" * 10_000
        finding.explanation = "E" * 10_000
    context.project.name = "C" * 5_000
    result = dossier_render(context=context, timeout_s=60)
    assert result.pages < 16
    findings = json.loads(next(a.data for a in result.attachments if a.name == "findings.json"))
    assert all(len(f["messages"][-1]["body"]) == 10_000 for f in findings["findings"])
    # Print clips texts at 400 characters, messages at 100 and names at 150 (zero-width spaces,
    # break opportunities inside long unbroken runs, aside).
    html = dossier_html_render(context=context).replace("\u200b", "")
    assert "E" * 400 + " … (9,600 more characters, full text in the attached JSON)" in html
    assert "A" * 100 + " … (9,900 more characters, full text in the attached JSON)" in html
    assert "C" * 151 not in html and "C" * 150 in html


def test_a_dossier_missing_its_fonts_is_not_issued(tmp_path, portal_identity):
    from compliance.dossier.issue import dossier_issue

    empty_static = tmp_path / "static"
    empty_static.mkdir()
    with pytest.raises(DossierRenderError, match=r"dossier not issued: the renderer was refused 4 resource\(s\)"):
        dossier_issue(context=sample_context_build(findings=1), identity=portal_identity, static_root=empty_static)

"""dossier_context_build: from the database rows to a dossier that says what they say."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from compliance.services import decisions as compliance_services
from compliance.dossier.context import dossier_context_build
from compliance.dossier.render import dossier_html_render
from compliance.models import CheckRun, Finding, FindingMessage
from projects.services import submission_status_set
from tests.compliance.dossier.conftest import poppler
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


def _judged_submission(world, *, findings: int = 3):
    submission = signed_submission(world=world, files={"model.safetensors": ("weights", b"\x00" * 64)})
    artifact = submission.artifacts.get()
    now = timezone.now()
    run = CheckRun.objects.create(
        artifact=artifact, submission=submission, check_name="lineage", state="succeeded", verdict="fail",
        engine_version="lineage 0.4.1", inputs={"sha256": artifact.sha256, "reference_bundle": "ab" * 32},
        queued_at=now, started_at=now, finished_at=now,
        summary={
            "text": "6 of 24 layers match Qwen2.5-VL-7B-Instruct",
            "references": [{
                "reference_model": "Qwen2.5-VL-7B-Instruct", "statistic_name": "Pearson r", "p_value": 1e-30,
                "conclusion": "derived", "component": "vision encoder",
                "layers": [{"candidate_layer": f"v.{i}", "reference_layer": f"b.{i}", "p_value": 1e-20, "statistic": 0.99}
                           for i in range(6)],
            }],
        },
    )
    rows = [
        Finding.objects.create(
            check_run=run, submission=submission, severity=["critical", "high", "low"][i % 3], category="lineage",
            code="lineage.derived", title=f"<b>Finding {i}</b> reused weights", explanation="r > 0.99",
            evidence={"p_value": 1e-30},
        )
        for i in range(findings)
    ]
    FindingMessage.objects.bulk_create([
        FindingMessage(finding=row, author=world.vendor_user, side="vendor", kind="reply",
                       body="We re-initialised <script>x</script>") for row in rows])
    # Layer map carried by a finding's evidence only (no per-reference summary).
    Finding.objects.create(
        check_run=run, submission=submission, severity="info", category="lineage", code="lineage.independent",
        title="Independent of GLM-4.5-Air", evidence={"reference": "GLM-4.5-Air", "p_value": 0.4, "layers": [
            {"candidate_layer": "v.0", "reference_layer": None, "p_value": 0.6, "statistic": 0.01}]},
    )
    compliance_services.finding_decide(user=world.reviewer, finding=rows[0], decision="confirmed", justification="clear reuse")
    submission_status_set(submission=submission, status="checked")
    submission.refresh_from_db()
    compliance_services.submission_decide(user=world.reviewer, submission=submission, decision="rejected",
                                          justification="Undeclared reuse of encoder weights")
    submission.refresh_from_db()
    return submission


def test_context_carries_what_the_rows_say_in_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    submission = _judged_submission(world, findings=40)
    # Building the world once costs ~4 s of password hashing, so one test
    # checks the content, the Korean variant and the query budget.
    with django_assert_max_num_queries(18):  # 16, one for every finding's conversation, one for the challenges
        context = dossier_context_build(submission=submission, lang="en", dossier_number="PROG-ALPHA-S1-D1")
    assert len(context.findings) == 41
    assert context.project.name == "Alpha model" and context.project.vendor == "Vendor A"
    assert context.submission.id == submission.pk and context.submission.version == submission.number
    assert context.declaration.from_scratch and context.declaration.signed_by == "Vendor A Signer"
    assert context.artifacts[0].filename == "model.safetensors" and len(context.artifacts[0].sha256) == 64
    (check,) = context.checks
    assert check.engine_version == "lineage 0.4.1" and check.verdict == "fail"
    assert [i.name for i in check.inputs] == ["model.safetensors", "reference_bundle"]
    assert check.lineage[0].reference_model == "Qwen2.5-VL-7B-Instruct" and len(check.lineage[0].layers) == 6
    assert check.lineage[1].reference_model == "GLM-4.5-Air" and check.lineage[1].layers[0].reference_layer is None
    decided = [f for f in context.findings if f.status == "confirmed"]
    assert len(decided) == 1 and decided[0].decision.justification == "clear reuse"
    assert all(f.decision is None for f in context.findings if f.status == "open")
    assert [(m.side, m.author, m.body) for m in context.findings[0].messages] == [
        ("vendor", "Vendor-A", "We re-initialised <script>x</script>")]
    assert context.overall_status == "rejected" and context.overall_decision == "Undeclared reuse of encoder weights"
    assert context.vocabulary["submission_status"]["rejected"] == "Rejected"
    assert [e.action for e in context.audit_events][-2:] == ["finding.decide", "submission.decide"]
    assert context.sign_offs[0].statement.startswith("Rejected")

    korean = dossier_context_build(submission=submission, lang="ko")
    assert korean.project.vendor == world.vendor_a.name_ko  # "기관 n" from the factory
    assert "가중치" in korean.checks[0].method and korean.checks[0].name.startswith("가중치 계보: ")
    # The portal's own Korean words for the decision, in the sign-off too.
    assert korean.vocabulary["submission_status"]["rejected"] == "반려"
    assert korean.sign_offs[0].statement.startswith("반려")

    # A bare draft (no declaration, artifacts, checks or decisions) still gives a dossier.
    from projects import services as project_services

    draft = project_services.submission_open(user=world.other_vendor_user, project=world.other_project)
    bare = dossier_context_build(submission=draft, lang="en")
    assert bare.overall_status == "draft" and not bare.declaration.from_scratch and bare.checks == []
    assert "Beta model" in dossier_html_render(context=bare)


def test_database_dossier_issues_and_verifies_against_the_dossier_registry(world, tmp_path, portal_identity):
    """End to end with the real models: build, render, sign, record the hash on
    a Dossier row, then verify through a registry lookup on that table."""
    from compliance.dossier.issue import dossier_issue
    from compliance.dossier.verify import dossier_verify
    from compliance.models import Dossier

    submission = _judged_submission(world)
    context = dossier_context_build(submission=submission, lang="en", dossier_number="PROG-ALPHA-S1-D1")
    html = dossier_html_render(context=context)
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    issued = dossier_issue(context=context, identity=portal_identity, timeout_s=120)
    assert issued.render.refused == []
    text = re.sub(r"\s+", "", poppler("pdftotext", issued.pdf_bytes, tmp_path))
    assert "<b>Finding0</b>reusedweights" in text and "Overallstatus:Rejected" in text

    Dossier.objects.create(
        submission=submission, number=context.dossier_number, lang="en", state=Dossier.State.READY,
        sha256=issued.sha256, size=len(issued.pdf_bytes), requested_by=world.reviewer,
    )

    def known_hashes(sha256: str):
        row = Dossier.objects.filter(sha256=sha256, state=Dossier.State.READY).values("submission_id", "number").first()
        return {"submission": row["submission_id"], "dossier_number": row["number"]} if row else None

    result = dossier_verify(pdf_bytes=issued.pdf_bytes, trusted_certs=[portal_identity.cert_pem], known_hashes=known_hashes)
    assert result.ok and result.submission == submission.pk and result.dossier_number == "PROG-ALPHA-S1-D1"
    tampered = bytearray(issued.pdf_bytes)
    tampered[len(tampered) // 3] ^= 0x20
    assert not dossier_verify(pdf_bytes=bytes(tampered), trusted_certs=[portal_identity.cert_pem], known_hashes=known_hashes).issued


def test_intake_row_says_how_the_stored_bytes_were_verified():
    """The dossier's intake row names the method (issue #16): weights on object storage are not
    downloaded, the store's checksum and identity are compared; elsewhere every byte is hashed again."""
    from compliance.dossier.context import _summary_text

    store = {"detected_kind": "safetensors", "findings": 0,
             "verified": {"method": "object storage identity", "compared": ["ChecksumSHA256", "ETag", "size"]}}
    rehashed = {"detected_kind": "archive", "findings": 1,
                "verified": {"method": "SHA-256 recomputed", "text": "every stored byte read and hashed again"}}
    english = _summary_text("intake", store, "en")
    assert english == ("detected as safetensors; 0 finding(s); not downloaded: the store's ChecksumSHA256, ETag, "
                       "size compared with those recorded at upload")
    assert "내려받지 않음" in _summary_text("intake", store, "ko") and "ETag" in _summary_text("intake", store, "ko")
    assert _summary_text("intake", rehashed, "en").endswith("every stored byte hashed again and equal to the upload's SHA-256")
    assert "다시 해시" in _summary_text("intake", rehashed, "ko")
    # A run recorded before the method was kept reads as before.
    assert _summary_text("intake", {"detected_kind": "archive", "findings": 2}, "en") == "detected as archive; 2 finding(s)"

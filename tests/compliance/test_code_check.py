"""The copied-code check inside the portal: a real index, a real archive, the check run in-process,
and the matched regions shown side by side on the submission page."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import license_expression
import pytest
from django.core.management import call_command

from compliance.models import CheckRun, Finding
from compliance.services.runs import check_run_execute
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _index_license_expression(settings, tmp_path, capsys) -> list[str]:
    """Index the installed license-expression as Apache-2.0; its __init__.py's lines."""
    settings.CODE_INDEX_DIR = tmp_path / "code-index"
    package_dir = Path(license_expression.__file__).parent
    call_command("index_reference", str(package_dir), "--name", "license-expression", "--version", "30.4.4",
                 "--license", "Apache-2.0")
    capsys.readouterr()
    return (package_dir / "__init__.py").read_text().splitlines()


def _code_run_after_intake(submission) -> CheckRun:
    """The code check waits for intake to accept the archive: run intake first, as a worker would."""
    intake = CheckRun.objects.get(submission=submission, check_name="intake")
    assert check_run_execute(run_id=intake.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    return CheckRun.objects.get(submission=submission, check_name="code", state=CheckRun.State.QUEUED)


def test_copied_code_is_found_attributed_and_shown_side_by_side(world, settings, tmp_path, capsys, client):
    original = _index_license_expression(settings, tmp_path, capsys)
    copied = "\n".join(original[680:800])  # 120 code-dense lines taken verbatim
    archive = _tar({"vendor/infer/expr.py": "# our own parser\n" + copied + "\n",
                    "vendor/train.py": "def schedule(step):\n    return min(1.0, step / 1000)\n"})
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True)
    run = _code_run_after_intake(submission)
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    run.refresh_from_db()
    assert run.verdict == "copied", (run.summary, list(Finding.objects.filter(check_run=run).values("code", "title")))
    finding = Finding.objects.get(check_run=run, code="undeclared_third_party_code")
    assert "license-expression" in finding.title and "Apache-2.0" in finding.title
    match = finding.evidence["matches"][0]
    assert match["path"].endswith("expr.py") and match["origin"]["path"] == "__init__.py"
    # Both regions are kept, so the reviewer reads them side by side.
    vendor_lines = {line.strip() for line in match["excerpt"].splitlines() if len(line.strip()) > 30}
    origin_lines = {line.strip() for line in match["origin"]["excerpt"].splitlines()}
    shared = vendor_lines & origin_lines
    assert len(shared) >= 5, shared
    assert shared <= {line.strip() for line in original[680:800]}, "the excerpts are the copied lines"
    assert not any(m["path"].endswith("train.py") for m in run.summary["matches"])
    client.force_login(world.reviewer)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "Copied code" in page and '<table class="code-align">' in page
    # Side by side, line by line: a shared line sits on one row, vendor left, origin right.
    rows = re.findall(r'<tr class="align-same">.*?<code>(.*?)</code>.*?<code>(.*?)</code>', page, re.S)
    assert len(rows) >= 5 and all(left.strip() == right.strip() for left, right in rows)
    assert json.loads(json.dumps(run.summary))  # the summary stays plain JSON for the dossier


def _indexed_copy(settings, tmp_path, capsys) -> tuple[bytes, list[str]]:
    """Index license-expression as Apache-2.0 and build a vendor archive holding 95 of its lines."""
    original = _index_license_expression(settings, tmp_path, capsys)
    # Two whole methods (dedup, validate): 95 lines taken verbatim.
    archive = _tar({"vendor/infer/expr.py": "# our own parser\n" + "\n".join(original[705:800]) + "\n"})
    return archive, original


def test_declared_copy_is_information_and_its_licence_meets_the_policy(world, settings, tmp_path, capsys, client):
    """A copy the vendor declared is not 'undeclared'; the licence it carries still meets the
    programme's policy, and a policy change re-judges it without rescanning."""
    from compliance.services.policy import programme_policy_update

    archive, _ = _indexed_copy(settings, tmp_path, capsys)
    programme_policy_update(user=world.officer, programme=world.programme, allowed="MIT", denied="Apache-2.0",
                            review="", from_scratch_required=False)
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True,
                                   third_party_code=[{"name": "License_Expression", "version": "30.4",
                                                      "license": "Apache-2.0", "use": "inference"}])
    run = _code_run_after_intake(submission)
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    run.refresh_from_db()
    codes = dict(Finding.objects.filter(check_run=run).values_list("code", "severity"))
    assert "undeclared_third_party_code" not in codes
    assert codes["declared_third_party_code"] == "info"
    # The copied file carries Apache-2.0 into a licence inventory, which the policy denies.
    inventory = run.summary["inventory"]
    assert inventory["expressions"] == {"Apache-2.0": ["vendor/infer/expr.py"]}
    denied = Finding.objects.get(check_run=run, code="license-denied")
    assert denied.severity == "critical" and denied.title.startswith("Copied code: Denied licence: Apache-2.0")
    assert denied.evidence["files"] == ["vendor/infer/expr.py"]
    assert run.summary["origins"][0]["declared"] is True
    # The dossier carries the same evidence: each region with its origin, and the carried licence judged.
    from compliance.dossier.context import dossier_context_build

    context = dossier_context_build(submission=submission, lang="en")
    (code_check,) = [c for c in context.checks if c.kind == "code"]
    row = code_check.code_matches[0]
    assert row.path.startswith("vendor/infer/expr.py ") and row.origin.startswith("license-expression 30.4.4: __init__.py ")
    assert row.licence == "Apache-2.0" and row.matched_lines >= 60
    assert [(r.expression, r.outcome, r.origin) for r in code_check.licences] == [("Apache-2.0", "denied", "copied code")]
    assert "pass on NOTICE" in code_check.licences[0].obligations
    assert any(c.component == "third-party code (inference)" and c.base_model == "License_Expression 30.4"
               for c in context.declaration.components)
    # The officer allows Apache-2.0: the stored inventory is judged again, nothing is rescanned.
    programme_policy_update(user=world.officer, programme=world.programme, allowed="MIT OR Apache-2.0",
                            denied="", review="", from_scratch_required=False)
    assert not Finding.objects.filter(check_run=run, code="license-denied").exists()
    assert Finding.objects.filter(check_run=run, code="declared_third_party_code").exists()
    # The reviewer's page: carried licences beside the inventory, a summary per origin, and filters.
    client.force_login(world.reviewer)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "licences carried by copied code" in page and "copied from license-expression 30.4.4" in page
    assert "copied code by origin project" in page
    label = run.summary["matches"][0]["label"]
    other = next(k for k in ("training", "inference", "other") if k != label)
    assert "No matched region fits this filter." in client.get(
        f"/submissions/{submission.pk}/?kind={other}").content.decode()
    kept = client.get(f"/submissions/{submission.pk}/?kind={label}&code=EXPR.py").content.decode()
    assert "<code>vendor/infer/expr.py</code>" in kept and "1 shown by the filter" in kept


def test_undeclared_copy_names_the_origin_and_how_much(world, settings, tmp_path, capsys):
    archive, _ = _indexed_copy(settings, tmp_path, capsys)
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True,
                                   third_party_code=[{"name": "vllm", "use": "inference"}])
    run = _code_run_after_intake(submission)
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    finding = Finding.objects.get(check_run=run, code="undeclared_third_party_code")
    assert finding.evidence["origin"] == "license-expression" and finding.evidence["declared"] is None
    assert finding.evidence["lines"] >= 60 and finding.evidence["license_expression"] == "Apache-2.0"
    assert "from scratch" in finding.explanation  # the factory's declaration claims a from-scratch backbone


def test_declared_names_match_across_spelling_but_not_across_projects():
    from compliance.checks.code import declared_entry

    declared = [{"name": "huggingface/Transformers", "use": "other"}, {"name": "megatron", "use": "training"}]
    assert declared_entry(name="transformers", declared=declared)["use"] == "other"
    assert declared_entry(name="megatron-core", declared=declared)["use"] == "training"
    assert declared_entry(name="vllm", declared=declared) is None
    assert declared_entry(name="trl", declared=[{"name": "transformers"}]) is None


def test_training_code_declared_as_inference_is_a_high_finding():
    from compliance.checks.code import origin_finding

    items = [{"path": "a/train.py", "lines": [1, 40], "label": "training"},
             {"path": "a/serve.py", "lines": [1, 20], "label": "inference"}]
    finding = origin_finding(name="trl", version="0.20", licence="Apache-2.0", items=items,
                             declared=[{"name": "trl", "use": "inference"}], from_scratch=True)
    assert finding["code"] == "third_party_code_use_mismatch" and finding["severity"] == "high"
    assert finding["evidence"]["regions_by_label"] == {"inference": 1, "training": 1}
    agreed = origin_finding(name="trl", version="0.20", licence="Apache-2.0", items=items,
                            declared=[{"name": "trl", "use": "training"}], from_scratch=False)
    assert agreed["code"] == "declared_third_party_code" and agreed["severity"] == "info"


def test_the_code_check_scans_only_the_corpora_the_policy_lists(world, settings, tmp_path, capsys):
    """Issue #10: the policy's code-corpora setting was saved but every indexed corpus was scanned."""
    import boolean

    from compliance.models import CodeCorpus
    from compliance.services.policy import programme_policy_update

    archive, _ = _indexed_copy(settings, tmp_path, capsys)  # copied from license-expression
    call_command("index_reference", str(Path(boolean.__file__).parent), "--name", "boolean.py", "--version", "5.0",
                 "--license", "BSD-2-Clause")
    capsys.readouterr()
    expression_corpus = CodeCorpus.objects.get(name="license-expression")
    boolean_corpus = CodeCorpus.objects.get(name="boolean.py")

    def code_run(code_corpora):
        programme_policy_update(user=world.officer, programme=world.programme, allowed="", denied="", review="",
                                from_scratch_required=False, code_corpora=code_corpora)
        submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True)
        run = _code_run_after_intake(submission)
        assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED
        run.refresh_from_db()
        return run

    # The policy compares against boolean.py only: the copy from license-expression is not looked for.
    only_boolean = code_run([boolean_corpus])
    assert only_boolean.verdict == "no_copies_found", only_boolean.summary.get("origins")
    assert only_boolean.summary["corpora"]["scanned"] == ["boolean.py 5.0"]
    assert only_boolean.summary["corpora"]["scope"] == "policy"
    assert only_boolean.inputs["corpora"] == ["boolean.py 5.0"]
    # The policy lists license-expression: the copy is found, and the finding says what was compared.
    listed = code_run([expression_corpus])
    assert listed.verdict == "copied"
    finding = Finding.objects.get(check_run=listed, code="undeclared_third_party_code")
    assert finding.evidence["corpora"]["scanned"] == ["license-expression 30.4.4"]
    # A policy that lists none: every indexed corpus is scanned, and the evidence says why.
    everything = code_run([])
    assert everything.verdict == "copied"
    corpora = Finding.objects.get(check_run=everything, code="undeclared_third_party_code").evidence["corpora"]
    assert corpora["scope"] == "all" and "lists no code corpora" in corpora["note"]
    assert corpora["scanned"] == ["boolean.py 5.0", "license-expression 30.4.4"]


def test_a_policy_listing_only_corpora_not_in_the_index_is_inconclusive(world, settings, tmp_path, capsys):
    from compliance.models import CodeCorpus
    from compliance.services.policy import programme_policy_update

    archive, _ = _indexed_copy(settings, tmp_path, capsys)
    absent = CodeCorpus.objects.create(name="vllm", version="0.33.0", license_expression="Apache-2.0")
    programme_policy_update(user=world.officer, programme=world.programme, allowed="", denied="", review="",
                            from_scratch_required=False, code_corpora=[absent])
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True)
    run = _code_run_after_intake(submission)
    check_run_execute(run_id=run.pk, worker="in-process")
    run.refresh_from_db()
    assert run.verdict == "inconclusive"
    finding = Finding.objects.get(check_run=run, code="code_no_references")
    assert "vllm 0.33.0" in finding.explanation
    assert finding.evidence["corpora"]["listed_not_indexed"] == ["vllm 0.33.0"]
    # Not a verdict: the check could not compare, so approval waits until it can or a reviewer waives it.
    assert Finding.objects.filter(check_run=run, code="check_incomplete", severity="high").exists()

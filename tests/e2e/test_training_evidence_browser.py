"""Training evidence as its users meet it (issue #15): a vendor uploads a `training-evidence/1`
bundle as an artifact of its own kind on the submission page and submits; the real worker judges
it on the heavy queue, and the reviewer's page shows the verdict. Headless Chromium with the
portal's CSP on, the live server and a real Celery worker process."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from compliance.models import CheckRun
from projects.models import Artifact, Submission
from tests.compliance.engine import training_runs as tr
from tests.e2e.conftest import login, wait_for
from tests.e2e.test_browser_flow import open_draft, upload_through_page
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def evidence_archive_write(path: Path) -> Path:
    """An honest run of three checkpoints in the Hugging Face layout, with its log, as a tarball."""
    bundle = tr.bundle_write(path.parent / "bundle", [(100 * i, m) for i, m in enumerate(tr.run_make(seed=7,
                                                                                                      steps=3))])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        archive.add(bundle, arcname="evidence")
    path.write_bytes(raw.getvalue())
    return path


def test_vendor_uploads_training_evidence_and_the_reviewer_sees_the_verdict(new_page, world, worker_later,
                                                                            tmp_path):
    world.programme.max_artifact_bytes = 64 * 1024 * 1024  # three BF16 checkpoints of a tiny Llama
    world.programme.save(update_fields=["max_artifact_bytes"])
    archive = evidence_archive_write(tmp_path / "files" / "training-evidence.tar.gz")

    vendor, vendor_errors = new_page()
    vendor.on("dialog", lambda d: d.accept())  # submitting asks for confirmation
    login(vendor, username=world.vendor_user.username, password=PASSWORD)
    open_draft(vendor, world)
    upload_through_page(vendor, files=[archive], kind="training_evidence", expect_rows=1)
    submission = Submission.objects.get(project=world.project, number=1)
    assert Artifact.objects.get(submission=submission).kind == Artifact.Kind.TRAINING_EVIDENCE
    vendor.get_by_label(re.compile("trained from scratch")).check()
    vendor.get_by_label("Training compute (GPU-hours)").fill("2")
    vendor.get_by_label("Training compute (FLOPs)").fill("1e15")
    vendor.get_by_label("Training data summary").fill("Synthetic test corpus.")
    vendor.get_by_role("button", name="Save declaration").click()
    expect(vendor.get_by_role("status")).to_contain_text("Declaration saved")
    vendor.get_by_label("Your full name").fill("Kim Vendor")
    vendor.get_by_label(re.compile("I declare that this declaration is true")).check()
    vendor.get_by_role("button", name="Sign the declaration").click()
    vendor.get_by_role("button", name="Submit for checking").click()
    wait_for(lambda: Submission.objects.filter(pk=submission.pk).exclude(status=Submission.Status.DRAFT).exists(),
             what="the submission to leave the draft state")
    assert CheckRun.objects.filter(submission=submission, check_name="training_evidence").exists()

    worker_later.start()
    try:
        wait_for(lambda: not CheckRun.objects.filter(submission=submission).exclude(
            state__in=CheckRun.FINISHED_STATES).exists(), timeout=240, what="every check run to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; worker log:\n{worker_later.log_path.read_text()[-3000:]}") from None
    run = CheckRun.objects.get(submission=submission, check_name="training_evidence")
    assert run.state == CheckRun.State.SUCCEEDED and run.verdict == "consistent", (run.state, run.error, run.summary)

    reviewer, reviewer_errors = new_page()
    login(reviewer, username=world.reviewer.username, password=PASSWORD)
    reviewer.goto(f"/submissions/{submission.pk}/")
    row = reviewer.locator(f"#run-{run.pk}")
    expect(row).to_contain_text("training-evidence.tar.gz")
    expect(row).to_contain_text("Consistent with training from scratch")
    expect(row.locator(".state")).to_have_text("Succeeded")
    assert vendor_errors == [] and reviewer_errors == []

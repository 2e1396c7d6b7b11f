"""The portal as its users meet it: a vendor submits a real model through the browser, a reviewer
watches the checks finish live and decides a finding. Headless Chromium, the live server, and a
real Celery worker process; the Content-Security-Policy stays on, so portal.js must work under it."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from compliance.demo import llama_like_write
from compliance.models import CheckRun, Finding, FindingDecision
from projects.models import Artifact, Submission
from tests.e2e.conftest import TIMEOUT_MS, login, wait_for
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHUNK = 8 * 1024 * 1024  # portal.js sends 8 MB chunks


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_archive_write(path: Path) -> Path:
    """A small but real source tarball: a training script and its licence."""
    files = {"train/train.py": b"import math\n\nprint('training from scratch', math.pi)\n",
             "train/LICENSE": b"Apache License 2.0\n",
             "README.md": b"# Training code\n"}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_764_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def artifact_rows(page) -> dict[str, str]:
    """{file name as listed: SHA-256 as listed} from the draft's artifact table."""
    rows = {}
    for row in page.locator("#artifact-table tbody tr").all():
        cells = row.locator("td")
        if cells.count() < 4:
            continue
        rows[cells.nth(0).inner_text().strip()] = cells.nth(3).inner_text().strip()
    return rows


def by_base_name(rows: dict[str, str]) -> dict[str, str]:
    """A directory upload keeps its relative path ("test-model/config.json"); compare base names."""
    return {re.split(r"[/\\]", name)[-1]: sha for name, sha in rows.items()}


def open_draft(page, world) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    page.get_by_role("link", name=world.project.code, exact=True).click()
    page.get_by_role("button", name="Open a new submission").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Submission v1 \(draft\)"))


def upload_through_page(page, *, files: list[Path] = (), directory: Path | None = None, kind: str = "auto",
                        expect_rows: int) -> dict[str, str]:
    """Choose files as a person would and press Upload; portal.js reloads the page when all went well."""
    page.locator("#up-kind").select_option(kind)
    if directory is not None:
        page.locator("#up-dir").set_input_files(str(directory))
    if files:
        page.locator("#up-files").set_input_files([str(f) for f in files])
    page.locator("#up-start").click()
    # A resumed upload waits 1 s per retry and sends 8 MB chunks: on a loaded machine that outlasts
    # expect()'s 5 s default, so wait as long as the pages' own timeout.
    expect(page.locator("#artifact-table tbody tr:not(.empty)")).to_have_count(expect_rows, timeout=TIMEOUT_MS)
    expect(page.locator("#up-progress li.failed")).to_have_count(0)
    return artifact_rows(page)


@pytest.mark.worker
@pytest.mark.slow
def test_vendor_submits_a_model_and_the_reviewer_decides_a_finding_live(new_page, world, worker_later, tmp_path):
    model_dir = llama_like_write(target=tmp_path / "files" / "test-model", seed=1, name="Test")
    archive = source_archive_write(tmp_path / "files" / "training-code.tar.gz")
    # A JSON file declared as weights: intake must flag the mismatch, which gives the reviewer a
    # finding to decide even though the model itself is clean.
    misdeclared = tmp_path / "files" / "optimizer-state.json"
    misdeclared.write_text('{"step": 1000, "lr": 0.0003}\n')
    expected = {p.name: sha256_of(p) for p in sorted(model_dir.iterdir())}
    expected[archive.name] = sha256_of(archive)

    # --- The vendor: log in, open a draft, upload, declare, sign, submit.
    vendor, vendor_errors = new_page()
    # Submitting asks for confirmation first (portal.js, data-confirm): the vendor says yes.
    confirmations = []
    vendor.on("dialog", lambda d: (confirmations.append(d.message), d.accept()))
    chunks_sent = []
    vendor.on("request", lambda r: chunks_sent.append(r.url) if r.method == "PATCH" and "/chunk/" in r.url else None)
    login(vendor, username=world.vendor_user.username, password=PASSWORD)
    open_draft(vendor, world)
    listed = upload_through_page(vendor, directory=model_dir, files=[archive], expect_rows=5)
    assert by_base_name(listed) == expected, "the page must show the SHA-256 of exactly the bytes on disk"
    listed = upload_through_page(vendor, files=[misdeclared], kind="weights", expect_rows=6)
    assert by_base_name(listed)[misdeclared.name] == sha256_of(misdeclared)
    assert len(chunks_sent) == 6, "portal.js sends each file through the chunked upload API"
    submission = Submission.objects.get(project=world.project, number=1)
    stored = {Path(a.original_name).name: a.sha256 for a in Artifact.objects.filter(submission=submission)}
    assert stored == {**expected, misdeclared.name: sha256_of(misdeclared)}
    assert Artifact.objects.get(submission=submission, original_name__endswith="model.safetensors").kind == "weights"
    assert Artifact.objects.get(submission=submission, original_name__endswith=".tar.gz").kind == "source_archive"

    vendor.get_by_label(re.compile("trained from scratch")).check()
    vendor.get_by_label("Training compute (GPU-hours)").fill("120")
    vendor.get_by_label("Training compute (FLOPs)").fill("3.2e20")
    vendor.get_by_label("Training data summary").fill("Korean and English web text, 2 B tokens.")
    vendor.get_by_role("button", name="Save declaration").click()
    expect(vendor.get_by_role("status")).to_contain_text("Declaration saved")
    vendor.get_by_label("Your full name").fill("Kim Vendor")
    vendor.get_by_label(re.compile("I declare that this declaration is true")).check()
    vendor.get_by_role("button", name="Sign the declaration").click()
    expect(vendor.get_by_text(re.compile(r"Signed by Kim Vendor on .*SHA-256 [0-9a-f]{64}"))).to_be_visible()
    vendor.get_by_role("button", name="Submit for checking").click()
    wait_for(lambda: Submission.objects.filter(pk=submission.pk).exclude(status=Submission.Status.DRAFT).exists(),
             what="the submission to leave the draft state")
    assert any("Submit this version" in m for m in confirmations), confirmations
    assert vendor_errors == []

    # --- The reviewer: queue, submission page, runs finish live (no reload), then decide a finding.
    reviewer, reviewer_errors = new_page()
    reviewer.on("dialog", lambda d: d.accept())  # deciding a finding asks first
    login(reviewer, username=world.reviewer.username, password=PASSWORD)
    reviewer.get_by_role("navigation", name="Main").get_by_role("link", name="Review queue").click()
    reviewer.get_by_role("link", name=f"{world.project.code} v1").click()
    runs = reviewer.locator("#runs tbody tr.run")
    expect(runs.first).to_be_visible()
    queued_on_screen = runs.count()
    assert queued_on_screen >= 6, "one intake run per artifact at least"
    expect(reviewer.locator("#runs [data-live-active]")).to_have_count(queued_on_screen)
    # A marker on the window survives only if the document is never reloaded.
    reviewer.evaluate("window.__e2eSameDocument = true")

    worker_later.start()
    try:
        wait_for(lambda: not CheckRun.objects.filter(submission=submission).exclude(
            state__in=CheckRun.FINISHED_STATES).exists(), timeout=90, what="every check run to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; worker log:\n{worker_later.log_path.read_text()[-3000:]}") from None
    expect(reviewer.locator("#runs [data-live-active]")).to_have_count(0)
    assert reviewer.evaluate("window.__e2eSameDocument === true"), "the runs table must refresh in place"
    states_on_screen = reviewer.locator("#runs tbody tr.run .state").all_inner_texts()
    assert states_on_screen and all(s.strip() for s in states_on_screen)
    finished_labels = {str(label) for value, label in CheckRun.State.choices if value in CheckRun.FINISHED_STATES}
    assert set(states_on_screen) <= finished_labels, states_on_screen

    reviewer.reload()
    finding = Finding.objects.get(check_run__submission=submission, code="declared_kind_mismatch")
    article = reviewer.locator(f"#finding-{finding.pk}")
    expect(article).to_contain_text(misdeclared.name)
    article.get_by_label("Decision").select_option(label="Confirmed")
    article.get_by_label("Justification").fill("A JSON file is not a weights file.")
    article.get_by_role("button", name="Decide").click()
    article = reviewer.locator(f"#finding-{finding.pk}")
    expect(article.locator(".decision")).to_contain_text("Confirmed")
    expect(article.locator(".decision")).to_contain_text("A JSON file is not a weights file.")
    decision = FindingDecision.objects.get(finding=finding)
    assert decision.decision == FindingDecision.Decision.CONFIRMED
    assert decision.decided_by == world.reviewer
    assert reviewer_errors == []


def test_a_dropped_connection_mid_upload_resumes_and_the_hash_is_still_right(new_page, world, tmp_path):
    # Two 8 MB chunks: the first PATCH never reaches the portal, and the answer to the last one
    # is lost after the portal stored it, the two ways a flaky link breaks an upload.
    big = tmp_path / "corpus-sample.bin"
    big.write_bytes(hashlib.sha256(b"seed").digest() * ((CHUNK + 1024 * 1024) // 32))
    assert CHUNK < big.stat().st_size < world.programme.max_artifact_bytes
    broken = {"before_server": 0, "answer_lost": 0}

    def flaky_link(route, request):
        offset = request.headers.get("upload-offset")
        if request.method == "PATCH" and offset == "0" and not broken["before_server"]:
            broken["before_server"] += 1
            route.abort("connectionreset")
        elif request.method == "PATCH" and offset == str(CHUNK) and not broken["answer_lost"]:
            broken["answer_lost"] += 1
            route.fetch()  # the portal receives and stores the chunk...
            route.abort("connectionreset")  # ...but the browser never hears back
        else:
            route.continue_()

    page, errors = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    open_draft(page, world)
    page.route(re.compile(r"/api/uploads/[^/]+/chunk/$"), flaky_link)
    listed = upload_through_page(page, files=[big], kind="other", expect_rows=1)
    assert broken == {"before_server": 1, "answer_lost": 1}
    assert listed == {big.name: sha256_of(big)}
    artifact = Artifact.objects.get(submission__project=world.project)
    assert artifact.sha256 == sha256_of(big) and artifact.size == big.stat().st_size
    assert errors == []

"""What the licence and code checks read: archives by their content, single files by the
name the vendor gave them (storage renames files on collision; object storage names none)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from compliance.checks import artifact_members
from compliance.models import CheckRun
from compliance.services.runs import check_run_execute
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

MODEL_CARD = b"---\nlicense: apache-2.0\nbase_model: none\n---\n# Our model\nTrained by us.\n"


def _tar(files: dict[str, bytes], *, zst: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return zstandard.ZstdCompressor().compress(raw) if zst else raw


def _licence_run(submission, name: str) -> CheckRun:
    intake = CheckRun.objects.get(submission=submission, check_name="intake", artifact__original_name=name)
    assert check_run_execute(run_id=intake.pk, worker="in-process") == CheckRun.State.SUCCEEDED  # the licence check waits for it
    run = CheckRun.objects.get(submission=submission, check_name="licenses", artifact__original_name=name)
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    run.refresh_from_db()
    return run


def test_a_second_model_card_named_like_the_first_is_still_read_as_a_model_card(world):
    first = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    first_run = _licence_run(first, "README.md")
    second = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD)}, submit=True)
    stored = second.artifacts.get().file.name
    assert Path(stored).name != "README.md", "storage gave the second file another name"
    second_run = _licence_run(second, "README.md")
    for run in (first_run, second_run):
        inventory = run.summary["inventory"]
        assert inventory["declared_expression"] == "Apache-2.0", inventory
        assert [d["path"] for d in inventory["declared"]] == ["README.md"]


def test_a_tar_zst_source_archive_is_scanned_member_by_member(world):
    ofl = (Path(__file__).resolve().parents[2] / "static" / "fonts" / "OFL.txt").read_bytes()  # a real licence
    archive = _tar({"src/a.py": b"# SPDX-License-Identifier: MIT\nx = 1\n", "LICENSE": ofl}, zst=True)
    submission = signed_submission(world=world, files={"src.tar.zst": ("source_archive", archive)}, submit=True)
    run = _licence_run(submission, "src.tar.zst")
    assert "src/a.py" in run.summary["inventory"]["expressions"].get("MIT", [])
    assert run.summary["files_total"] == 2
    assert "OFL-1.1" in run.summary["inventory"]["expressions"], run.summary["inventory"]["expressions"]


def test_a_package_json_uploaded_as_other_gets_its_declared_licence_checked(world):
    manifest = b'{"name": "vendor-tokenizer", "version": "1.0.0", "license": "GPL-3.0-only"}'
    submission = signed_submission(world=world, files={"package.json": ("other", manifest),
                                                       "notes.txt": ("other", b"meeting notes\n")}, submit=True)
    run = _licence_run(submission, "package.json")
    assert run.summary["inventory"]["declared_expression"] == "GPL-3.0-only"
    assert not CheckRun.objects.filter(submission=submission, check_name="licenses",
                                       artifact__original_name="notes.txt").exists()


def test_an_archive_copied_under_no_name_is_still_read_as_an_archive(tmp_path):
    """Object storage: the worker's local copy is called 'artifact', with no suffix."""
    local = tmp_path / "artifact"
    local.write_bytes(_tar({"pkg/LICENSE": b"MIT License\n", "pkg/x.py": b"y = 2\n"}))
    members = dict(artifact_members(path=local, original_name="vendor-src.tar"))
    assert set(members) == {"pkg/LICENSE", "pkg/x.py"}
    single = tmp_path / "artifact2"
    single.write_bytes(MODEL_CARD)
    assert artifact_members(path=single, original_name="uploads\\model\\README.md") == [("README.md", MODEL_CARD)]


def test_model_licence_rules_set_by_staff_reach_the_findings(world, client):
    """The officer states the programme's reach and the outbound licence in the portal; a vendor
    shipping the real Llama 3.1 licence text and GPL code gets the findings those rules imply."""
    import licensedcode

    llama = (Path(licensedcode.__file__).parent / "data" / "licenses" / "llama-3.1-license-2024.LICENSE").read_text()
    llama_text = llama.split("---", 2)[2].lstrip().encode()  # the licence text after ScanCode's YAML header
    client.force_login(world.officer)
    url = f"/programmes/{world.programme.pk}/policy/"
    bad = client.post(url, {"outbound_license": "Apache-2", "expected_monthly_users": "1000000000"})
    assert "unknown licence identifier" in bad.content.decode()
    saved = client.post(url, {"allowed_licenses": "MIT\nApache-2.0\nLicenseRef-scancode-llama-3.1-license-2024",
                              "outbound_license": "Apache-2.0", "expected_monthly_users": "1000000000",
                              "require_declared_license": "on"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    archive = _tar({"LICENSE": llama_text,
                    "vendor/gpl_part.py": b"# SPDX-License-Identifier: GPL-3.0-only\nx = 1\n"})
    submission = signed_submission(world=world, files={"model.tar": ("model_directory", archive)}, submit=True)
    run = _licence_run(submission, "model.tar")
    codes = {f.code: f for f in run.findings.all()}
    assert codes["model-license-user-threshold"].severity == "high"
    assert codes["model-license-user-threshold"].evidence["expected"] == 1_000_000_000
    # Allowed, but its use restrictions still need a reviewer (the box was left unticked).
    assert codes["license-review"].evidence["expression"] == "LicenseRef-scancode-llama-3.1-license-2024"
    assert codes["license-incompatible"].evidence == {**codes["license-incompatible"].evidence,
                                                      "outbound": "Apache-2.0", "inbound": "GPL-3.0-only"}
    page = client.get(f"/programmes/{world.programme.pk}/").content.decode()
    assert "Apache-2.0" in page and "1,000,000,000" in page


def test_a_single_file_too_large_to_read_is_inconclusive_not_clean(world):
    """A 17 MiB SBOM uploaded alone is not silently 'no licence found': the run says why it stopped."""
    import compliance.checks as checks

    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save(update_fields=["max_artifact_bytes"])
    big = b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [' + b" " * (17 * 1024 * 1024) + b"]}"
    submission = signed_submission(world=world, files={"bom.cdx.json": ("sbom", big)}, submit=True)
    intake = CheckRun.objects.get(submission=submission, check_name="intake")
    assert check_run_execute(run_id=intake.pk, worker="in-process") == CheckRun.State.SUCCEEDED
    run = CheckRun.objects.get(submission=submission, check_name="licenses")
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.INCONCLUSIVE
    run.refresh_from_db()
    assert "more than 16 MiB" in run.summary["reason"] and checks.SINGLE_FILE_MAX_BYTES == 16 * 1024 * 1024
    finding = run.findings.get(code="licenses_not_read")
    assert "inside an archive" in finding.explanation
    # A technical inconclusive: the check could not complete, and approval waits for a reviewer.
    incomplete = run.findings.get(code="check_incomplete")
    assert incomplete.severity == "high" and "more than 16 MiB" in incomplete.evidence["error"]

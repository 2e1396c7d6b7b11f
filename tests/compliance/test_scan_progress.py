"""A licence or copied-code check on a large source tree runs for minutes (issue #16: 333 s for
50,000 files): the run's step says how many of the archive's files it has checked and how many
results came from earlier scans, and its progress bar moves with them, instead of standing at
5 % until the scan ends. The counts are intake's, the steps the real checks', run in-process on
a real archive with the scanners forked as on a worker."""

from __future__ import annotations

import importlib.util
import io
import re
import tarfile
from pathlib import Path

import license_expression
import pytest
from django.core.management import call_command
from django.utils import translation

from compliance import checks
from compliance.finding_texts import step_label
from compliance.models import CheckRun
from compliance.services import runs
from compliance.services.runs import check_run_execute
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

HANGUL = re.compile(r"[\uac00-\ud7a3]")
STEP = re.compile(r"^(?P<step>.+): (?P<done>\d+) of (?P<total>\d+) files checked, (?P<reused>\d+) from earlier results$")


def _tree(*, changed: str | None = None) -> dict[str, bytes]:
    """urllib3's modules and licence (Apache-2.0 headers, MIT licence) and a README: real files."""
    root = Path(importlib.util.find_spec("urllib3").origin).parent
    files = {f"src/urllib3/{p.relative_to(root)}": p.read_bytes() for p in sorted(root.rglob("*.py"))[:36]}
    files["src/urllib3/LICENSE.txt"] = sorted(root.parent.glob("urllib3-*.dist-info/licenses/LICENSE*"))[0].read_bytes()
    files["README.md"] = b"# Our model's training code\n"
    if changed:
        files[changed] += b"\n# changed in version 2\n"
    return files


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo("src")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)  # a directory entry: not a file the checks read
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def reported(monkeypatch) -> dict[int, list[tuple[float, str]]]:
    """Every progress report of every run, in order, as the run's row received it; a report on
    every chunk (no 2-second spacing) so a small archive shows several."""
    seen: dict[int, list[tuple[float, str]]] = {}
    original = runs.check_run_progress

    def record(*, run, fraction, step):
        seen.setdefault(run.pk, []).append((fraction, step))
        original(run=run, fraction=fraction, step=step)

    monkeypatch.setattr(runs, "check_run_progress", record)
    monkeypatch.setattr(checks, "SCAN_PROGRESS_SECONDS", 0.0)
    return seen


def _execute(submission, check: str) -> CheckRun:
    run = CheckRun.objects.get(submission=submission, check_name=check)
    assert check_run_execute(run_id=run.pk, worker="in-process") == CheckRun.State.SUCCEEDED, run.error
    run.refresh_from_db()
    return run


def _counts(reports: list[tuple[float, str]], step: str) -> list[tuple[float, int, int, int]]:
    out = []
    for fraction, text in reports:
        match = STEP.match(text)
        if match and match.group("step") == step:
            out.append((fraction, int(match.group("done")), int(match.group("total")), int(match.group("reused"))))
    return out


def test_the_licence_and_code_checks_say_how_far_they_have_got(world, settings, tmp_path, capsys, reported):
    settings.PORTAL_RESULT_CACHE = True
    settings.CODE_INDEX_DIR = tmp_path / "code-index"
    call_command("index_reference", str(Path(license_expression.__file__).parent), "--name", "license-expression",
                 "--version", "30.4.4", "--license", "Apache-2.0")
    capsys.readouterr()
    files = _tree()
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", _tar_gz(files))},
                                   submit=True)
    intake = _execute(submission, "intake")
    assert intake.summary["archive_files"] == len(files)  # the directory entry is not counted

    licences = _execute(submission, "licenses")
    counts = _counts(reported[licences.pk], "detecting licences file by file")
    assert len(counts) >= 2, reported[licences.pk]
    assert all(total == len(files) for _f, _d, total, _r in counts)
    assert [d for _f, d, _t, _r in counts] == sorted(d for _f, d, _t, _r in counts)
    assert counts[-1][1] == len(files) and counts[-1][3] == 0  # every file checked, none from the cache yet
    fractions = [f for f, _d, _t, _r in counts]
    assert fractions == sorted(fractions) and 0.05 < fractions[0] and fractions[-1] == pytest.approx(0.85)
    assert licences.step == "done" and licences.progress == 1.0

    code = _execute(submission, "code")
    counts = _counts(reported[code.pk], "fingerprinting the vendor's code")
    assert counts and all(total == len(files) for _f, _d, total, _r in counts), reported[code.pk]
    done = [d for _f, d, _t, _r in counts]
    assert done == sorted(done) and 0 < done[-1] <= len(files)
    assert all(0.05 < f <= 0.8 for f, _d, _t, _r in counts)

    # Version 2 with one file changed: the step says how many results came from version 1's scan.
    second = signed_submission(world=world, files={"src.tar.gz": ("source_archive", _tar_gz(
        _tree(changed="src/urllib3/LICENSE.txt")))}, submit=True)
    _execute(second, "intake")
    licences = _execute(second, "licenses")
    counts = _counts(reported[licences.pk], "detecting licences file by file")
    assert counts[-1][1:] == (len(files), len(files), len(files) - 1), counts


def test_without_intakes_count_the_step_still_says_how_many_files_were_checked(world, reported):
    files = _tree()
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", _tar_gz(files))},
                                   submit=True)
    intake = _execute(submission, "intake")
    # A run recorded before intake counted an archive's files.
    CheckRun.objects.filter(pk=intake.pk).update(summary={k: v for k, v in intake.summary.items()
                                                          if k != "archive_files"})
    assert checks.archive_files_expected(intake.artifact) is None
    run = _execute(submission, "licenses")
    steps = [text for _f, text in reported[run.pk] if text.startswith("detecting licences file by file:")]
    assert steps and steps[-1] == f"detecting licences file by file: {len(files)} files checked, 0 from earlier results"
    assert {fraction for fraction, text in reported[run.pk] if text in steps} == {0.05}


def test_the_count_reads_in_english_and_korean():
    step = "detecting licences file by file: 12345 of 50000 files checked, 3037 from earlier results"
    with translation.override("en"):
        assert step_label(step) == ("detecting licences file by file: 12,345 of 50,000 files checked, "
                                    "3,037 from earlier results")
    with translation.override("ko"):
        assert step_label(step) == "파일마다 라이선스를 찾는 중: 파일 50,000개 중 12,345개 확인, 이전 결과 재사용 3,037개"
        assert step_label("fingerprinting the vendor's code: 7 files checked, 0 from earlier results") == (
            f"{step_label('fingerprinting the vendor' + chr(39) + 's code')}: 파일 7개 확인, 이전 결과 재사용 0개")
        # Steps that were shown in English.
        assert step_label("waiting for a worker") == "워커를 기다리는 중"
        assert step_label("reading the sampled tensors of model/model.safetensors") == (
            "model/model.safetensors에서 표본 텐서를 읽는 중")
        assert HANGUL.search(step_label(
            "same weights and references as an earlier check: its lineage report is reused"))
        # A step that is not a scan's keeps its words as stored.
        assert step_label("something else: 3 files checked, 1 from earlier results") == (
            "something else: 3 files checked, 1 from earlier results")


def test_the_dashboard_and_the_workers_page_show_the_count_in_the_officers_language(world, client):
    """The ministry's live views showed the stored English step and check name to a Korean reader."""
    from django.urls import reverse

    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", _tar_gz(_tree()))},
                                   submit=True)
    CheckRun.objects.filter(submission=submission, check_name="licenses").update(
        state=CheckRun.State.RUNNING, progress=0.4, worker="worker-7",
        step="detecting licences file by file: 12345 of 50000 files checked, 3037 from earlier results")
    client.force_login(world.admin)
    english = client.get(reverse("dashboard"), {"fragment": "live"}).content.decode()
    assert "detecting licences file by file: 12,345 of 50,000 files checked, 3,037 from earlier results" in english
    response = client.post(reverse("set_language"), {"language": "ko", "next": "/dashboard/"})
    assert response.status_code == 302
    counted = "파일마다 라이선스를 찾는 중: 파일 50,000개 중 12,345개 확인, 이전 결과 재사용 3,037개"
    from compliance.templatetags.finding_texts import check_label

    with translation.override("ko"):
        licences_ko = check_label("licenses")
    for page in (client.get(reverse("dashboard"), {"fragment": "live"}), client.get(reverse("dashboard")),
                 client.get(reverse("workers"))):
        html = page.content.decode()
        assert page.status_code == 200 and counted in html, html[-3000:]
        assert f" · {licences_ko} · " in html and " · licenses · " not in html

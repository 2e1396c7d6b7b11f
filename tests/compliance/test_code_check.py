"""The copied-code check inside the portal: a real index, a real archive, the check run in-process,
and the matched regions shown side by side on the submission page."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import license_expression
import pytest
from django.core.management import call_command

from compliance.models import CheckRun, Finding
from compliance.services import check_run_execute
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


def test_copied_code_is_found_attributed_and_shown_side_by_side(world, settings, tmp_path, capsys, client):
    settings.CODE_INDEX_DIR = tmp_path / "code-index"
    package_dir = Path(license_expression.__file__).parent
    call_command("index_reference", str(package_dir), "--name", "license-expression", "--version", "30.4.4",
                 "--license", "Apache-2.0")
    capsys.readouterr()
    original = (package_dir / "__init__.py").read_text().splitlines()
    copied = "\n".join(original[680:800])  # 120 code-dense lines taken verbatim
    archive = _tar({"vendor/infer/expr.py": "# our own parser\n" + copied + "\n",
                    "vendor/train.py": "def schedule(step):\n    return min(1.0, step / 1000)\n"})
    submission = signed_submission(world=world, files={"src.tar.gz": ("source_archive", archive)}, submit=True)
    run = CheckRun.objects.get(submission=submission, check_name="code")
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
    assert "Copied code" in page and page.count('<pre class="excerpt">') >= 2
    assert json.loads(json.dumps(run.summary))  # the summary stays plain JSON for the dossier

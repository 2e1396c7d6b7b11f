"""`manage.py scan_licenses PATH --json` prints the stable JSON shape other tools rely on."""

import io
import json

from django.core.management import call_command

from tests.compliance.engine.licenses.conftest import installed_file


def test_scan_licenses_json_shape_and_policy(tmp_path, settings, license_detector):
    settings.LICENSE_CACHE_DIR = str(tmp_path / "cache")
    tree = tmp_path / "vendor"
    tree.mkdir()
    (tree / "LICENSE").write_bytes(open(installed_file("PyYAML", "licenses/LICENSE"), "rb").read())
    (tree / "train.py").write_text("# SPDX-License-Identifier: AGPL-3.0-only\nimport os\n")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"allowed": ["MIT"], "denied": ["AGPL-3.0-only"]}))
    out = io.StringIO()
    call_command("scan_licenses", str(tree), "--json", "--policy", str(policy), stdout=out)
    data = json.loads(out.getvalue())
    files = {f["path"]: f for f in data["files"]}
    assert files["LICENSE"]["license_expression"] == "MIT"
    assert files["train.py"]["license_expression"] == "AGPL-3.0-only"
    match = files["train.py"]["matches"][0]
    assert (match["start_line"], match["end_line"]) == (1, 1) and match["rule"] and match["matcher"]
    assert "copyrights" in files["LICENSE"]
    assert data["inventory"]["expressions"]["AGPL-3.0-only"] == ["train.py"]
    denied = [f for f in data["findings"] if f["code"] == "license-denied"]
    assert denied and denied[0]["severity"] == "critical"

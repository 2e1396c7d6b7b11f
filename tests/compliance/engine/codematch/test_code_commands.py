"""`manage.py index_reference` and `manage.py scan_code --json` round trip."""

import importlib.util
import io
import json
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.django_db
def test_index_reference_then_scan_code(tmp_path, settings):
    settings.CODE_INDEX_DIR = str(tmp_path / "index")
    out = io.StringIO()
    call_command("index_reference", "license_expression", "--name", "license-expression", "--version", "30.4.4",
                 "--license", "Apache-2.0", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["files"] >= 1 and summary["fingerprints"] > 100
    from compliance.models import CodeCorpus

    corpus = CodeCorpus.objects.get(name=summary["name"])  # the staff registry mirrors the index
    assert corpus.fingerprints == summary["fingerprints"] and corpus.license_expression == "Apache-2.0"
    package_dir = list(importlib.util.find_spec("license_expression").submodule_search_locations)[0]
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "expr.py").write_text(open(os.path.join(package_dir, "__init__.py")).read())
    out = io.StringIO()
    call_command("scan_code", str(vendor), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["matches"]
    match = data["matches"][0]
    assert match["path"] == "expr.py" and match["origin"]["path"] == "__init__.py"
    assert match["origin"]["name"] == "license-expression" and match["license_expression"] == "Apache-2.0"
    # The file's own SPDX tag and the package agree here; both are reported.
    assert match["origin"]["license_expression"] == "Apache-2.0"
    assert match["origin"]["package_license_expression"] == "Apache-2.0"
    assert match["origin"]["license_source"] == "file"
    assert match["label"] in ("training", "inference", "other") and match["score"] > 100
    assert match["lines"][0] >= 1 and match["origin"]["lines"][1] > match["origin"]["lines"][0]


@pytest.mark.django_db
def test_index_reference_refuses_a_licence_that_is_not_spdx_before_indexing(tmp_path, settings):
    settings.CODE_INDEX_DIR = tmp_path / "index"
    with pytest.raises(CommandError, match="BSD-3.*SPDX expression"):
        call_command("index_reference", "license_expression", "--name", "le", "--version", "1", "--license", "BSD-3")
    assert not (tmp_path / "index").exists(), "nothing is indexed under a licence we cannot read"

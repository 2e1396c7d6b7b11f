"""Licence detection on real licence texts, headers and sources from installed packages."""

import zipfile

from compliance.engine.licenses import license_file_is_legal, license_scan
from tests.compliance.engine.licenses.conftest import installed_file


def test_django_license_file_is_bsd3_with_line_range(license_detector):
    path = installed_file("Django", "licenses/LICENSE")
    result = license_detector.detect(path="LICENSE", data=open(path, "rb").read())
    assert result.license_expression == "BSD-3-Clause"
    assert result.is_legal_file and result.mode in ("full", "exact")
    main = max(result.matches, key=lambda m: m.matched_length)
    assert main.start_line >= 1 and main.end_line - main.start_line >= 20  # the whole licence body
    assert main.rule and main.score >= 90
    assert "Django Software Foundation and individual contributors" in result.holders


def test_pyyaml_license_is_mit(license_detector):
    path = installed_file("PyYAML", "licenses/LICENSE")
    result = license_detector.detect(path="LICENSE", data=open(path, "rb").read())
    assert result.license_expression == "MIT"


def test_spdx_header_and_copyright_in_real_source(license_detector):
    path = installed_file("commoncode", "commoncode/__init__.py")
    result = license_detector.detect(path="commoncode/__init__.py", data=open(path, "rb").read())
    assert result.license_expression == "Apache-2.0"
    assert result.mode == "exact"  # a header needs no approximate matching
    tag = [m for m in result.matches if m.start_line == 3]
    assert tag and tag[0].license_expression == "Apache-2.0"
    assert "nexB Inc. and others" in result.holders


def test_source_without_legal_words_is_skipped_fast(license_detector):
    data = b"def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
    result = license_detector.detect(path="calc.py", data=data)
    assert result.license_expression is None and result.matches == []
    assert result.mode == "no-legal-text"


def test_repeated_content_comes_from_cache(license_detector):
    data = b"# SPDX-License-Identifier: MIT OR Apache-2.0\nx = 1\n"
    first = license_detector.detect(path="a.py", data=data)
    second = license_detector.detect(path="other/b.py", data=data)
    assert first.license_expression == "MIT OR Apache-2.0"
    assert second.license_expression == first.license_expression
    assert second.mode.startswith("cache:") and second.path == "other/b.py"


def test_legal_file_names():
    assert license_file_is_legal(path="pkg/LICENSE")
    assert license_file_is_legal(path="COPYING.txt")
    assert license_file_is_legal(path="NOTICE")
    assert license_file_is_legal(path="LICENSE-APACHE")
    assert not license_file_is_legal(path="license_utils.py")


def test_archive_scan_gives_relative_paths_and_inventory(license_detector, tmp_path):
    archive = tmp_path / "vendor.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(installed_file("Django", "licenses/LICENSE"), "vendor/LICENSE")
        zf.writestr("vendor/model.py", "# SPDX-License-Identifier: GPL-3.0-or-later\nimport torch\n")
        zf.writestr("vendor/README.md", "---\nlicense: other\nlicense_name: llama3.1\nbase_model: meta-llama/Llama-3.1-8B\n---\n# M\n")
    scan = license_scan(source=str(archive), detector=license_detector)
    by_path = {f.path: f for f in scan.files}
    assert by_path["vendor/LICENSE"].license_expression == "BSD-3-Clause"
    assert by_path["vendor/model.py"].license_expression == "GPL-3.0-or-later"
    inventory = scan.inventory
    keys = {lic.key: lic for lic in inventory.licenses}
    assert keys["GPL-3.0-or-later"].category == "copyleft"
    assert keys["LicenseRef-scancode-llama-3.1-license-2024"].is_model_license
    assert keys["LicenseRef-scancode-llama-3.1-license-2024"].declared_in == ["vendor/README.md"]
    assert inventory.declared[0].base_models == ["meta-llama/Llama-3.1-8B"]
    # The model card declares Llama 3.1, the LICENSE file is BSD-3: a conflict both ways.
    kinds = {c.kind for c in inventory.conflicts}
    assert {"declared-not-detected", "detected-not-declared"} <= kinds
    data = scan.to_dict()
    assert {"files", "inventory"} <= set(data)
    assert data["files"][0]["matches"][0].keys() >= {"license_expression", "rule", "start_line", "end_line", "score", "matcher"}


def test_tar_gz_members_are_read_without_extracting(license_detector, tmp_path):
    import io
    import tarfile

    archive = tmp_path / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in [("pkg/lib.py", b"# SPDX-License-Identifier: BSD-2-Clause\nx = 1\n"), ("pkg/empty.txt", b"")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    scan = license_scan(source=str(archive), detector=license_detector)
    assert [f.path for f in scan.files] == ["pkg/lib.py", "pkg/empty.txt"]
    assert scan.inventory.expressions == {"BSD-2-Clause": ["pkg/lib.py"]}
    assert not list(tmp_path.glob("pkg"))  # nothing extracted next to the archive


def test_results_to_dict_are_dataclasses_asdict_and_expression_keys_are_fresh_lists(license_detector):
    """`to_dict` spells the fields out (no deep copies: version 2 turns 50,000 cached results into
    dicts); a field added to the dataclass and forgotten there would drop out of every result."""
    from dataclasses import asdict

    from compliance.engine.licenses import expression_keys

    path = installed_file("Django", "licenses/LICENSE")
    result = license_detector.detect(path="LICENSE", data=open(path, "rb").read())
    assert result.matches and result.copyrights
    for item in [*result.matches, *result.copyrights]:
        assert item.to_dict() == asdict(item) and list(item.to_dict()) == list(asdict(item))
    keys = expression_keys(expression="MIT OR Apache-2.0 WITH LLVM-exception")
    assert keys == ["MIT", "Apache-2.0 WITH LLVM-exception"]
    keys.append("changed by a caller")
    assert expression_keys(expression="MIT OR Apache-2.0 WITH LLVM-exception") == keys[:2]
    assert expression_keys(expression="(((") == ["((("] and expression_keys(expression="") == []

"""Short copies (10-15 lines) verified token by token, and the licence a match carries.

Real files throughout: Django's paginator as the reference for a short copy
pasted into PyYAML's composer; numpy's `_utils` package, whose `_pep440.py`
carries its own BSD-2-Clause header inside a BSD-3-Clause package; standard
library modules as negatives; rdflib and configparser for one idiom written twice.
"""

import ast
import importlib.util
import os
import sqlite3
import sysconfig

import pytest

from compliance.engine.codematch import CodeMatcher, code_index_add, scan
from compliance.engine.codematch.index import header_license_detect


def _package_dir(name: str) -> str:
    return list(importlib.util.find_spec(name).submodule_search_locations)[0]


DJANGO_CORE = _package_dir("django.core")
PAGINATOR = os.path.join(DJANGO_CORE, "paginator.py")
NUMPY_UTILS = os.path.join(_package_dir("numpy"), "_utils")
STDLIB = sysconfig.get_paths()["stdlib"]


@pytest.fixture(scope="module")
def django_matcher(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("code-index"))
    code_index_add(index_dir=directory, source=DJANGO_CORE, name="django-core", version="5.2",
                   license_expression="BSD-3-Clause")
    instance = CodeMatcher(index_dir=directory)
    yield instance
    instance.close()


def _validate_number_lines() -> tuple[int, int]:
    tree = ast.parse(open(PAGINATOR).read())
    paginator = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Paginator")
    method = next(n for n in paginator.body if isinstance(n, ast.FunctionDef) and n.name == "validate_number")
    return method.lineno, method.end_lineno


def _short_copy_in_unrelated_file() -> tuple[str, int, int]:
    first, last = _validate_number_lines()
    chunk = open(PAGINATOR).read().splitlines()[first - 1 : last]
    assert 10 <= len(chunk) <= 16, "the test needs a 10-15 line method"
    host = open(os.path.join(_package_dir("yaml"), "composer.py")).read().splitlines()
    cut = len(host) // 2
    vendor = host[:cut] + ["class Pager:"] + chunk + host[cut:]
    return "\n".join(vendor), cut + 2, cut + 1 + len(chunk)


def test_short_copy_is_found_with_both_line_ranges(django_matcher):
    text, first, last = _short_copy_in_unrelated_file()
    matches = [m for m in django_matcher.file_match(path="vendor/composer.py", text=text) if m.origin.path == "paginator.py"]
    assert len(matches) == 1
    match = matches[0]
    origin_first, origin_last = _validate_number_lines()
    # The copied method's lines on both sides (the docstring line is not code, so allow one line).
    assert first <= match.lines[0] <= first + 2 and last - 1 <= match.lines[1] <= last
    assert origin_first <= match.origin.lines[0] <= origin_first + 2 and origin_last - 1 <= match.origin.lines[1] <= origin_last
    assert match.matched_tokens >= scan.VERIFY_MIN_TOKENS
    assert match.license_expression == "BSD-3-Clause"


def test_short_copy_needs_the_verification(django_matcher, monkeypatch):
    """The fingerprint thresholds alone miss it: this is what verification adds."""
    monkeypatch.setattr(scan, "VERIFY_MIN_FINGERPRINTS", 10**9)
    monkeypatch.setattr(scan, "VERIFY_CANDIDATES", 0)
    text, _, _ = _short_copy_in_unrelated_file()
    assert not [m for m in django_matcher.file_match(path="vendor/composer.py", text=text) if m.origin.path == "paginator.py"]


def test_standard_library_modules_do_not_match_django_core(django_matcher):
    # wsgiref.simple_server is left out: django.core.servers.basehttp really adapts it.
    names = ["argparse.py", "calendar.py", "configparser.py", "difflib.py", "fractions.py", "ftplib.py",
             "gettext.py", "heapq.py", "imaplib.py", "inspect.py", "ipaddress.py", "locale.py", "mailbox.py",
             "netrc.py", "optparse.py", "pathlib.py", "pickle.py", "pprint.py", "shutil.py", "smtplib.py",
             "string.py", "subprocess.py", "tarfile.py", "textwrap.py", "threading.py", "typing.py",
             "urllib/parse.py", "uuid.py", "zipfile.py", "logging/__init__.py"]
    found = {}
    for name in names:
        path = os.path.join(STDLIB, name)
        if not os.path.exists(path):
            continue
        matches = django_matcher.file_match(path=f"vendor/{name}", text=open(path, encoding="utf-8").read())
        if matches:
            found[name] = [(m.origin.path, m.lines, m.score, m.matched_tokens) for m in matches]
    assert found == {}


@pytest.fixture(scope="module")
def numpy_utils_index(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("numpy-index"))
    summary = code_index_add(index_dir=directory, source=NUMPY_UTILS, name="numpy", version="2",
                             license_expression="BSD-3-Clause")
    assert summary.files_with_own_license >= 1
    return directory


def test_match_carries_the_reference_files_own_licence(numpy_utils_index):
    text = open(os.path.join(NUMPY_UTILS, "_pep440.py")).read()
    matcher = CodeMatcher(index_dir=numpy_utils_index)
    try:
        best = max(matcher.file_match(path="vendor/versions.py", text=text), key=lambda m: m.score)
    finally:
        matcher.close()
    assert best.origin.path == "_pep440.py"
    # Its header is the BSD-2-Clause text of Donald Stufft's packaging, not numpy's BSD-3-Clause.
    assert best.license_expression == "BSD-2-Clause"
    assert best.origin.license_expression == "BSD-2-Clause"
    assert best.origin.package_license_expression == "BSD-3-Clause"
    assert best.origin.license_source == "file"
    data = best.to_dict()
    assert data["license_expression"] == "BSD-2-Clause" and data["origin"]["package_license_expression"] == "BSD-3-Clause"


def test_match_without_a_licence_header_carries_the_packages(numpy_utils_index):
    text = open(os.path.join(NUMPY_UTILS, "_inspect.py")).read()
    matcher = CodeMatcher(index_dir=numpy_utils_index)
    try:
        best = max(matcher.file_match(path="vendor/inspect.py", text=text), key=lambda m: m.score)
    finally:
        matcher.close()
    assert best.origin.path == "_inspect.py"
    assert best.license_expression == "BSD-3-Clause" and best.origin.license_source == "package"


def test_index_stores_each_files_own_licence(numpy_utils_index):
    rows = dict(sqlite3.connect(os.path.join(numpy_utils_index, "code-index.sqlite")).execute(
        "SELECT path, license_expression FROM files"))
    assert rows["_pep440.py"] == "BSD-2-Clause"
    assert rows["_inspect.py"] is None


def test_header_licence_from_real_headers():
    # An SPDX tag alone is taken as written (license_expression's own header).
    text = open(os.path.join(_package_dir("license_expression"), "__init__.py")).read()
    assert header_license_detect(text=text) == "Apache-2.0"
    # A file whose first lines are code and docstrings states no licence.
    assert header_license_detect(text=open(PAGINATOR).read()) is None


def test_same_idiom_in_two_projects_is_not_a_copy(tmp_path, monkeypatch):
    """configparser's deprecated `filename` getter/setter and rdflib's deprecated `default_context`
    getter/setter are the same 58 masked tokens, written independently; their lines differ."""
    reference = tmp_path / "ref"
    reference.mkdir()
    (reference / "graph.py").write_text(open(os.path.join(_package_dir("rdflib"), "graph.py")).read())
    index = str(tmp_path / "index")
    code_index_add(index_dir=index, source=str(reference), name="rdflib", version="7", license_expression="BSD-3-Clause")
    text = open(os.path.join(STDLIB, "configparser.py"), encoding="utf-8").read()
    matcher = CodeMatcher(index_dir=index)
    try:
        assert matcher.file_match(path="vendor/configparser.py", text=text) == []
        # Without the line agreement the masked run alone would be reported.
        monkeypatch.setattr(scan, "VERIFY_MIN_LINE_AGREEMENT", 0.0)
        assert matcher.file_match(path="vendor/configparser.py", text=text)
    finally:
        matcher.close()

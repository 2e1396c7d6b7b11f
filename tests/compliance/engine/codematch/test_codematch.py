"""Copied-code detection against an index of a real installed package (django.core).

Vendor files are real Django files transformed the ways copies get
disguised: renamed identifiers, reformatting with comments stripped,
reordered functions, and a partial copy inside an unrelated real file.
Negatives are real files from packages that were not indexed.
"""

import ast
import importlib.util
import os
import re
import shutil
import zipfile

import pytest

from compliance.engine.codematch import CodeMatcher, code_index_add, code_label, code_scan, code_tokens


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    return list(spec.submodule_search_locations)[0]


DJANGO_CORE = _package_dir("django.core")
PAGINATOR = os.path.join(DJANGO_CORE, "paginator.py")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("code-index"))
    summary = code_index_add(index_dir=directory, source=DJANGO_CORE, name="django-core", version="5.2.19",
                             license_expression="BSD-3-Clause")
    assert summary.files > 80 and summary.fingerprints > 5000
    return directory


@pytest.fixture(scope="module")
def matcher(index_dir):
    instance = CodeMatcher(index_dir=index_dir)
    yield instance
    instance.close()


def _source() -> str:
    return open(PAGINATOR).read()


def _renamed(text: str) -> str:
    for old, new in [("Paginator", "Pager"), ("object_list", "items"), ("per_page", "size"), ("number", "idx"),
                     ("orphans", "leftovers"), ("validate_number", "check_idx"), ("Page", "Leaf"), ("page", "leaf")]:
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def _reformatted(text: str) -> str:
    # ast.unparse drops comments and rewrites every line's layout and quoting.
    return ast.unparse(ast.parse(text))


def _reordered(text: str) -> str:
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            node.body = list(reversed(node.body))
    tree.body = list(reversed(tree.body))
    return ast.unparse(tree)


def _main_match(matches, path):
    mine = [m for m in matches if m.path == path]
    assert mine, f"no match for {path}"
    return max(mine, key=lambda m: m.score)


def test_exact_copy_under_another_name_is_found_with_origin_and_licence(matcher):
    matches = matcher.file_match(path="vendor/pager.py", text=_source())
    best = _main_match(matches, "vendor/pager.py")
    assert best.origin.path == "paginator.py"
    assert best.origin.name == "django-core" and best.origin.version == "5.2.19"
    assert best.license_expression == "BSD-3-Clause"
    assert best.query_coverage > 0.9 and best.origin_coverage > 0.9
    total_lines = _source().count("\n")
    assert best.lines[1] - best.lines[0] > 0.8 * total_lines
    assert best.origin.lines[0] <= 20 and best.origin.lines[1] >= total_lines - 20


@pytest.mark.parametrize("transform", [_renamed, _reformatted], ids=["renamed", "reformatted"])
def test_disguised_copies_still_match(matcher, transform):
    text = transform(_source())
    matches = [m for m in matcher.file_match(path="vendor/x.py", text=text) if m.origin.path == "paginator.py"]
    assert matches
    covered = sum(m.score for m in matches)
    exact = max(m.score for m in matcher.file_match(path="vendor/y.py", text=_source()))
    assert covered >= 0.9 * exact


def test_reordered_functions_match_as_several_regions_in_the_origin_order(matcher):
    matches = [m for m in matcher.file_match(path="vendor/x.py", text=_reordered(_source()))
               if m.origin.path == "paginator.py"]
    # Reversing every class body leaves 58 of the file's 110 fingerprints
    # intact (k-grams across the old method boundaries are gone); most of
    # those must be found, as separate regions.
    assert len(matches) >= 3 and sum(m.score for m in matches) >= 40
    vendor_order = [m.origin.lines[0] for m in sorted(matches, key=lambda m: m.lines[0])]
    assert vendor_order != sorted(vendor_order)  # the regions come from the origin in another order


def test_partial_copy_inside_an_unrelated_file_gives_both_line_ranges(matcher):
    source_lines = _source().splitlines()
    tree = ast.parse(_source())
    paginator = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Paginator")
    methods = [n for n in paginator.body if isinstance(n, ast.FunctionDef)]
    first, last = methods[1].lineno, methods[5].end_lineno  # about 60 lines of methods
    chunk = source_lines[first - 1 : last]
    host = open(os.path.join(_package_dir("yaml"), "composer.py")).read().splitlines()
    vendor = host + ["", "", "class Borrowed:"] + chunk + [""] + host[:10]
    inserted_at = len(host) + 4
    matches = [m for m in matcher.file_match(path="vendor/composer.py", text="\n".join(vendor)) if m.origin.path == "paginator.py"]
    assert matches
    best = max(matches, key=lambda m: m.score)
    assert inserted_at - 1 <= best.lines[0] and best.lines[1] <= inserted_at + len(chunk)
    assert first - 1 <= best.origin.lines[0] and best.origin.lines[1] <= last + 1
    assert best.lines[1] - best.lines[0] >= 0.6 * len(chunk)


@pytest.mark.parametrize("package,module", [("yaml", "constructor.py"), ("yaml", "scanner.py"),
                                            ("license_expression", "__init__.py"), ("celery", "canvas.py")])
def test_unrelated_real_files_do_not_match(matcher, package, module):
    text = open(os.path.join(_package_dir(package), module)).read()
    assert matcher.file_match(path=f"vendor/{module}", text=text) == []


def test_sibling_copies_in_the_reference_are_reported_as_a_cluster(tmp_path):
    reference = tmp_path / "ref"
    (reference / "models" / "alpha").mkdir(parents=True)
    (reference / "models" / "beta").mkdir(parents=True)
    shutil.copy(PAGINATOR, reference / "models" / "alpha" / "paging.py")
    shutil.copy(PAGINATOR, reference / "models" / "beta" / "paging.py")
    index = str(tmp_path / "index")
    code_index_add(index_dir=index, source=str(reference), name="ref", version="1", license_expression="MIT")
    result = code_scan(source=PAGINATOR, index_dir=index)
    best = max(result.matches, key=lambda m: m.score)
    assert {best.origin.path, *best.origin.siblings} == {"models/alpha/paging.py", "models/beta/paging.py"}
    assert best.origin.sibling_count == 1


def test_archive_scan_matches_like_a_directory(index_dir, tmp_path):
    archive = tmp_path / "vendor.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("src/pager.py", _renamed(_source()))
        zf.writestr("src/notes.txt", "not code")
        zf.write(os.path.join(_package_dir("yaml"), "scanner.py"), "src/scanner.py")
    result = code_scan(source=str(archive), index_dir=index_dir)
    assert result.files_scanned == 3 and result.code_files == 2
    assert {m.path for m in result.matches} == {"src/pager.py"}
    data = result.to_dict()
    match = data["matches"][0]
    assert set(match) >= {"path", "lines", "origin", "license_expression", "label", "score"}
    assert set(match["origin"]) >= {"name", "version", "path", "lines", "siblings"}


def test_index_from_importable_package_name(tmp_path):
    summary = code_index_add(index_dir=str(tmp_path), source="license_expression", name="license-expression")
    assert summary.files >= 1 and summary.version == "30.4.4"
    assert summary.root.endswith("license_expression")


def test_tokens_ignore_comments_docstrings_layout_and_names():
    a = 'def f(x, y):\n    """Add."""\n    # sum\n    return x + y  # done\n'
    b = "def g(p,\n      q):\n    return (p +\n            q)\n"
    assert [t.text for t in code_tokens(path="a.py", text=a)] == [t.text for t in code_tokens(path="b.py", text=b.replace("(p +\n            q)", "p + q"))]
    c = "int add(int a, int b) { /* sum */ return a + b; } // end\n"
    assert "sum" not in [t.text for t in code_tokens(path="a.c", text=c)]


def test_labels_training_inference_other():
    assert code_label(path="scripts/train.py", text="loss.backward()\noptimizer.step()\n") == "training"
    assert code_label(path="serving/engine.py", text="out = model.generate(ids, max_new_tokens=8)\n") == "inference"
    assert code_label(path="utils/strings.py", text="def slug(s):\n    return s.lower()\n") == "other"

"""The fast paths of the code matcher give the same answers as the slow ones.

- The Python tokenizer (tokenize's line loop with our consumer folded in) gives
  exactly the tokens the standard `tokenize` generator gave, on real files and
  on generated text, from the start of a file and from a restart line.
- The memory-mapped postings hold exactly the sqlite postings, for the whole
  index and for a chosen package, and are rebuilt when the index changes.
- The screen: a copied file still goes through alignment and is found; a file
  sharing no hash with the index is screened out (and has no match).
"""

import importlib.util
import os
import sqlite3
import sysconfig

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from compliance.engine.codematch import CodeMatcher, code_index_add
from compliance.engine.codematch import tokens as tokens_module
from compliance.engine.codematch.postings import PostingsTable


def _package_dir(name: str) -> str:
    return list(importlib.util.find_spec(name).submodule_search_locations)[0]


DJANGO_CORE = _package_dir("django.core")
STDLIB = sysconfig.get_paths()["stdlib"]


def _lines(text: str) -> list[str]:
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines


def _both(text: str, start: int = 0):
    lines = _lines(text)
    fast, slow = [], []
    fast_restart = tokens_module._python_tokens_from(lines=lines, start=start, out=fast)
    slow_restart = tokens_module._python_tokens_from_stdlib(lines=lines, start=start, out=slow)
    return (fast_restart, fast), (slow_restart, slow)


def test_fast_python_tokenizer_equals_tokenize_on_real_files():
    # Every stdlib module under these folders, from the top and from a third of the way
    # down (a restart after a bad dedent starts mid-file, often inside a string or bracket).
    checked = 0
    for folder in ("json", "email", "asyncio", "unittest", "lib2to3/tests/data"):
        for directory, _, names in os.walk(os.path.join(STDLIB, folder)):
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                text = open(os.path.join(directory, name), encoding="utf-8", errors="replace").read()
                for start in (0, len(_lines(text)) // 3):
                    fast, slow = _both(text, start)
                    assert fast == slow, f"{name} from line {start + 1}"
                    checked += 1
    assert checked > 150


# Fragments that exercise every branch of the tokenizer: strings of every kind (prefixes,
# triple quotes, continued lines, unterminated), brackets, bad dedents, tabs, form feeds,
# comments, backslash continuations, characters tokenize calls errors, CRLF.
_FRAGMENTS = st.sampled_from([
    "def f(a, b):\n", "    return a\n", "  x = 1\n", "\tif x:\n", "        pass\n", "class C:\n", '"""doc"""\n',
    "'''", '"""', "'", '"', "rb'x'", 'f"{a}"', "u'\\\n", "x = 'a' 'b'\n", "(\n", ")\n", "[1,\n", "]\n", "{", "}",
    "# comment\n", "\\\n", "$", "?", "!", "`", "\x0c", "\r\n", "\n", " ", "0x1F", "1e5", ".5", "...", "->", ":=",
    "lambda: 0\n", "if a:\n    'doc'\n    'more'\n", "  \n", "\t\n", "x\\", "'abc\\\ndef'\n", "é = 1\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=60).map("".join), st.integers(min_value=0, max_value=5))
def test_fast_python_tokenizer_equals_tokenize_on_generated_text(text, start):
    lines = _lines(text)
    fast, slow = _both(text, min(start, len(lines) - 1))
    assert fast == slow


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_fast_python_tokenizer_equals_tokenize_on_any_text(text):
    fast, slow = _both(text)
    assert fast == slow


@pytest.fixture(scope="module")
def two_package_index(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("code-index"))
    code_index_add(index_dir=directory, source=os.path.join(DJANGO_CORE, "paginator.py"), name="paginator",
                   version="1", license_expression="BSD-3-Clause", file_licenses=False)
    code_index_add(index_dir=directory, source=os.path.join(DJANGO_CORE, "serializers"), name="serializers",
                   version="1", license_expression="BSD-3-Clause", file_licenses=False)
    return directory


def _sqlite_postings(directory: str, package: str | None = None) -> dict[int, list[int]]:
    connection = sqlite3.connect(os.path.join(directory, "code-index.sqlite"))
    query = "SELECT p.hash, p.file_id FROM postings p JOIN files f ON f.id = p.file_id JOIN packages k ON k.id = f.package_id"
    rows = connection.execute(query + (" WHERE k.name = ?" if package else "") + " ORDER BY 1, 2",
                              (package,) if package else ()).fetchall()
    connection.close()
    found: dict[int, list[int]] = {}
    for h, file_id in rows:
        found.setdefault(h, []).append(file_id)
    return found


def _table_postings(table: PostingsTable) -> dict[int, list[int]]:
    hashes = [int(h) for h in table.hashes]
    return {h: [int(f) for f in table.files[table.offsets[i]:table.offsets[i + 1]]] for i, h in enumerate(hashes)}


def test_memory_mapped_postings_hold_the_sqlite_postings_and_follow_index_changes(two_package_index, tmp_path):
    matcher = CodeMatcher(index_dir=two_package_index)
    assert _table_postings(matcher._table) == _sqlite_postings(two_package_index)
    connection = sqlite3.connect(os.path.join(two_package_index, "code-index.sqlite"))
    for file_id, blob in connection.execute("SELECT id, fingerprints FROM files"):
        assert matcher._table.fingerprints(file_id).tobytes() == blob
    connection.close()
    assert any(name.startswith("code-index.postings-") for name in os.listdir(two_package_index))
    matcher.close()
    only = CodeMatcher(index_dir=two_package_index, packages=[("serializers", "1")])
    assert _table_postings(only._table) == _sqlite_postings(two_package_index, "serializers")
    only.close()
    # A package added later is in the next matcher's postings (a new folder replaces the old).
    directory = str(tmp_path / "index")
    code_index_add(index_dir=directory, source=os.path.join(DJANGO_CORE, "paginator.py"), name="paginator",
                   version="1", file_licenses=False)
    first = CodeMatcher(index_dir=directory)
    before = len(first._table.hashes)
    first.close()
    code_index_add(index_dir=directory, source=os.path.join(DJANGO_CORE, "signing.py"), name="signing",
                   version="1", file_licenses=False)
    second = CodeMatcher(index_dir=directory)
    assert len(second._table.hashes) > before
    assert _table_postings(second._table) == _sqlite_postings(directory)
    second.close()
    assert len([n for n in os.listdir(directory) if n.startswith("code-index.postings-")]) == 1


def test_the_screen_sends_a_copy_on_and_skips_a_file_sharing_no_hash(two_package_index):
    matcher = CodeMatcher(index_dir=two_package_index)
    copy = open(os.path.join(DJANGO_CORE, "paginator.py")).read()
    matches = matcher.file_match(path="vendor/pages.py", text=copy)
    assert matches and matches[0].origin.path == "paginator.py"
    assert matcher.stats["full_path"] == 1 and matcher.stats["screened_out"] == 0
    # Real code from a package that is not indexed, sharing no hash with paginator or serializers.
    unrelated = open(os.path.join(STDLIB, "colorsys.py")).read()
    assert matcher.file_match(path="vendor/colors.py", text=unrelated) == []
    assert matcher.stats["screened_out"] == 1 and matcher.stats["full_path"] == 1
    # Too short to hold one fingerprint: not even tokenised.
    assert matcher.file_match(path="vendor/tiny.py", text="x = 1\n") == []
    assert matcher.stats == {"files": 3, "too_small": 1, "screened_out": 1, "full_path": 1}
    matcher.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=700),
       st.lists(st.integers(min_value=0, max_value=3), max_size=40), st.data())
def test_run_extension_on_bytes_equals_the_numpy_one(common, noise, data):
    # Two token streams sharing a long stretch (runs of equal tokens longer than a chunk
    # included), seeds anywhere: the byte-slice extension finds the same run.
    import numpy as np

    from compliance.engine.codematch.scan import _run_extend, _run_extend_bytes

    q_ids = np.array(noise + common + noise[::-1], dtype=np.uint16)
    r_ids = np.array(noise[::-1] + common + [9] + noise, dtype=np.uint16)
    q = data.draw(st.integers(min_value=0, max_value=len(q_ids) - 1))
    r = data.draw(st.integers(min_value=0, max_value=len(r_ids) - 1))
    assert _run_extend_bytes(q_ids.tobytes(), r_ids.tobytes(), q, r) == _run_extend(q_ids, r_ids, q, r)
    shift = len(noise)
    for seed in (0, len(common) // 2, len(common) - 1):
        assert (_run_extend_bytes(q_ids.tobytes(), r_ids.tobytes(), shift + seed, shift + seed)
                == _run_extend(q_ids, r_ids, shift + seed, shift + seed))

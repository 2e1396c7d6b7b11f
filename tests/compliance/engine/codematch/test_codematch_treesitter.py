"""tree-sitter token streams for non-Python code, on real files from installed packages.

Real C headers and C sources (numpy's include directory), real C++ (numpy's
test data generator), real JavaScript (Django's admin), real TypeScript
declarations (Playwright's driver, a dev requirement) and a real shell script
(tqdm's completion); Go, Rust, Java, TSX, CUDA have no source in the venv,
so they get small hand-written samples. What a user cares about: renaming,
reformatting and comment removal leave the stream unchanged, different code
gives different streams, and a disguised copy is found in the index with the
right lines on both sides. The fuzz test at the bottom feeds every grammar
random text and random bytes.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
import re
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.engine.codematch import CodeMatcher, code_index_add, code_tokens
from compliance.engine.codematch import tokens as tokens_module
from compliance.engine.codematch.tokens import TOKENIZER_VERSION, _other_tokens


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    return list(spec.submodule_search_locations)[0]


NUMPY_INCLUDE = os.path.join(_package_dir("numpy"), "_core", "include", "numpy")
ADMIN_JS = os.path.join(_package_dir("django.contrib.admin"), "static", "admin", "js")
NUMPY_CPP = os.path.join(_package_dir("numpy"), "_core", "tests", "data", "generate_umath_validation_data.cpp")
TQDM_SH = os.path.join(_package_dir("tqdm"), "completion.sh")
PLAYWRIGHT_TYPES = os.path.join(_package_dir("playwright"), "driver", "package", "types")

GO_SAMPLE = """package cache

import (
\t"errors"
\t"sync"
)

// ErrMissing is returned for absent keys.
var ErrMissing = errors.New("cache: missing key")

type Cache struct {
\tmu    sync.Mutex
\titems map[string][]byte
\tlimit int
}

func New(limit int) *Cache {
\treturn &Cache{items: make(map[string][]byte), limit: limit}
}

func (c *Cache) Get(key string) ([]byte, error) {
\tc.mu.Lock()
\tdefer c.mu.Unlock()
\tvalue, ok := c.items[key]
\tif !ok {
\t\treturn nil, ErrMissing
\t}
\treturn value, nil
}

func (c *Cache) Put(key string, value []byte) {
\tc.mu.Lock()
\tdefer c.mu.Unlock()
\tif len(c.items) >= c.limit {
\t\tfor k := range c.items {
\t\t\tdelete(c.items, k)
\t\t\tbreak
\t\t}
\t}
\tc.items[key] = value
}
"""

RUST_SAMPLE = """use std::collections::HashMap;

/// A counter of words.
pub struct Counter {
    counts: HashMap<String, usize>,
}

impl Counter {
    pub fn new() -> Self {
        Counter { counts: HashMap::new() }
    }

    // Count every whitespace-separated word.
    pub fn add(&mut self, text: &str) {
        for word in text.split_whitespace() {
            *self.counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
    }

    pub fn top(&self, n: usize) -> Vec<(&String, &usize)> {
        let mut pairs: Vec<_> = self.counts.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        pairs.truncate(n);
        pairs
    }
}
"""

JAVA_SAMPLE = """package org.example.queue;

import java.util.ArrayDeque;

/** A bounded queue. */
public class BoundedQueue<T> {
    private final ArrayDeque<T> items = new ArrayDeque<>();
    private final int capacity;

    public BoundedQueue(int capacity) {
        this.capacity = capacity;
    }

    // Drop the oldest item when full.
    public void offer(T item) {
        if (items.size() == capacity) {
            items.pollFirst();
        }
        items.addLast(item);
    }

    public T poll() {
        return items.isEmpty() ? null : items.pollFirst();
    }
}
"""

TSX_SAMPLE = """import React, { useState } from "react";

// A counter button.
export function Counter({ start }: { start: number }) {
  const [count, setCount] = useState<number>(start);
  return (
    <button onClick={() => setCount(count + 1)} className="counter">
      Clicked {count} times
    </button>
  );
}
"""

CUDA_SAMPLE = """#include <cuda_runtime.h>

// y = a * x + y
__global__ void saxpy(int n, float a, const float *x, float *y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}

void run(int n, float a, const float *x, float *y) {
    saxpy<<<(n + 255) / 256, 256>>>(n, a, x, y);
    cudaDeviceSynchronize();
}
"""


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


# (id, vendor path, text): every grammar, real files where the venv has them.
REAL_AND_SAMPLES = [
    ("c-header", "vendor/npy_math.h", lambda: _read(os.path.join(NUMPY_INCLUDE, "npy_math.h"))),
    ("c-source", "vendor/ufunc_api.c", lambda: _read(os.path.join(NUMPY_INCLUDE, "__ufunc_api.c"))),
    ("cpp", "vendor/gen.cpp", lambda: _read(NUMPY_CPP)),
    ("javascript", "vendor/calendar.js", lambda: _read(os.path.join(ADMIN_JS, "calendar.js"))),
    ("javascript-2", "vendor/inlines.js", lambda: _read(os.path.join(ADMIN_JS, "inlines.js"))),
    ("typescript", "vendor/structs.d.ts", lambda: _read(os.path.join(PLAYWRIGHT_TYPES, "structs.d.ts"))),
    ("bash", "vendor/completion.sh", lambda: _read(TQDM_SH)),
    ("go", "vendor/cache.go", lambda: GO_SAMPLE),
    ("rust", "vendor/counter.rs", lambda: RUST_SAMPLE),
    ("java", "vendor/BoundedQueue.java", lambda: JAVA_SAMPLE),
    ("tsx", "vendor/Counter.tsx", lambda: TSX_SAMPLE),
    ("cuda", "vendor/saxpy.cu", lambda: CUDA_SAMPLE),
]
CASES = pytest.mark.parametrize("path,load", [(p, f) for _, p, f in REAL_AND_SAMPLES],
                                ids=[name for name, _, _ in REAL_AND_SAMPLES])


def _texts(path: str, text: str) -> list[str]:
    return [t.text for t in code_tokens(path=path, text=text)]


# --- transformations a copier applies ----------------------------------------

def _tree(path: str, text: str):
    grammar = tokens_module._grammar(tokens_module._SUFFIX_GRAMMAR[os.path.splitext(path)[1]])
    return grammar, tokens_module._parser(grammar).parse(text.encode("utf-8"))


def _leaves(path: str, text: str):
    """(kind, is_named, text) of every node, in order, with the parent chain of kinds."""
    _, tree = _tree(path, text)
    stack = [(tree.root_node, ())]
    while stack:
        node, parents = stack.pop()
        yield node, parents
        stack.extend((child, parents + (node.type,)) for child in reversed(node.children))


def _renamed(path: str, text: str) -> str:
    """Every name the parser sees as an identifier, rewritten everywhere as a rotated word."""
    names, other_words = set(), set()
    for node, _ in _leaves(path, text):
        if node.child_count:
            continue
        word = node.text.decode("utf-8", "replace")
        if node.is_named and (node.type.endswith("identifier") or node.type in ("variable_name", "word")):
            names.add(word)
        else:
            other_words.add(word)
    # A word that is a keyword of the language, or a constant somewhere in the file, stays.
    grammar, _ = _tree(path, "")
    names = {n for n in names - other_words - set(grammar.anonymous_text) if re.fullmatch(r"[A-Za-z_]\w*", n)}
    assert len(names) >= 5, names
    return re.sub(r"\b[A-Za-z_]\w*\b",
                  lambda m: "zz" + codecs.encode(m.group(), "rot13") if m.group() in names else m.group(), text)


def _comments_removed(path: str, text: str) -> str:
    """Comments cut out, each replaced by one space as the C preprocessor does (a macro continued over a
    multi-line comment stays one macro)."""
    data = text.encode("utf-8")
    spans = [(n.start_byte, n.end_byte) for n, _ in _leaves(path, text)
             if n.type in ("comment", "line_comment", "block_comment")]
    assert spans, "the sample should have comments"
    out, last = [], 0
    for start, end in spans:
        out.append(data[last:start])
        out.append(b" ")
        last = end
    out.append(data[last:])
    return b"".join(out).decode("utf-8")


def _reformatted(path: str, text: str) -> str:
    """Comments removed, then re-indented, lines joined after , ( { = :, and K&R braces moved to their own line.

    Preprocessor lines (and their continuations) are left alone: a line break
    inside a macro ends it. Shell keeps its layout (a newline ends a command).
    """
    text = _comments_removed(path, text)
    if path.endswith(".sh"):
        return re.sub(r"^[ \t]+", lambda m: "\t" * len(m.group()), text, flags=re.MULTILINE)
    out: list[str] = []
    previous_free = False  # may the next line be joined onto out[-1]?
    in_macro = False
    for line in text.split("\n"):
        stripped = line.strip()
        macro_line = in_macro or stripped.startswith("#")
        in_macro = macro_line and line.rstrip().endswith("\\")
        if macro_line:
            out.append(line)
            previous_free = False
            continue
        if previous_free and out[-1].rstrip().endswith((",", "(", "{", "=", ":")):
            out[-1] = out[-1].rstrip() + " " + stripped
        else:
            out.append("\t" * (len(line) - len(line.lstrip())) + stripped)  # a tab for every space
        if not path.endswith(".go") and out[-1].endswith(") {"):  # Go's grammar, like gofmt, wants `{` there
            out[-1] = out[-1][:-2]
            out.append("{")
        previous_free = True
    return "\n".join(out)


@CASES
def test_renaming_identifiers_leaves_the_stream_and_its_lines_unchanged(path, load):
    text = load()
    original = code_tokens(path=path, text=text)
    renamed = code_tokens(path=path, text=_renamed(path, text))
    assert [t.text for t in renamed] == [t.text for t in original]
    assert [(t.line, t.end_line) for t in renamed] == [(t.line, t.end_line) for t in original]
    assert len(original) > 60


@CASES
def test_removing_comments_and_reformatting_leave_the_stream_unchanged(path, load):
    text = load()
    reformatted = _reformatted(path, text)
    assert reformatted != _comments_removed(path, text)  # the layout really changed
    assert _texts(path, _comments_removed(path, text)) == _texts(path, text)
    assert _texts(path, reformatted) == _texts(path, text)


def test_comment_text_and_names_never_reach_the_stream():
    text = _read(os.path.join(ADMIN_JS, "calendar.js"))
    texts = set(_texts("calendar.js", text))
    assert not texts & {"Calendar", "monthsOfYear", "getDaysInMonth", "gettext"}
    assert texts <= set(tokens_module._grammar("javascript").anonymous_text) | {"V", "S", "N", "this", "null",
                                                                                "true", "false", "undefined"}


def test_two_different_real_files_give_different_streams():
    pairs = [("a.h", os.path.join(NUMPY_INCLUDE, "npy_math.h"), "b.h", os.path.join(NUMPY_INCLUDE, "npy_common.h")),
             ("a.js", os.path.join(ADMIN_JS, "calendar.js"), "b.js", os.path.join(ADMIN_JS, "inlines.js"))]
    for path_a, file_a, path_b, file_b in pairs:
        a, b = _texts(path_a, _read(file_a)), _texts(path_b, _read(file_b))
        assert a != b
        grams_a = {tuple(a[i:i + 23]) for i in range(len(a) - 22)}
        grams_b = {tuple(b[i:i + 23]) for i in range(len(b) - 22)}
        assert len(grams_a & grams_b) < 0.05 * min(len(grams_a), len(grams_b))


def test_tree_sitter_reads_what_the_regex_tokenizer_misreads():
    # A regex literal holding a quote and `//`: the regex tokenizer opens a
    # string or a comment there and loses the rest of the line's structure.
    js = "const re = /['\"]\\/\\//g; if (x) { y(re); }\n"
    assert _texts("a.js", js) == ["const", "V", "=", "S", "if", "(", "V", ")", "{", "V", "(", "V", ")", "}"]
    assert [t.text for t in _other_tokens(js)] != _texts("a.js", js)
    # `#x` stringifies inside a macro: kept as an operator, not a comment.
    assert _texts("a.c", "#  define STR(x) #x\n") == ["#define", "V", "(", "V", ")", "#", "V"]
    # A CUDA kernel launch parses as a call, not as shifts and comparisons.
    assert "<<<" in _texts("k.cu", CUDA_SAMPLE) and ">>>" in _texts("k.cu", CUDA_SAMPLE)


def test_a_snippet_cut_mid_structure_tokenises_like_the_same_lines_in_the_original():
    # Pasted without its enclosing class, a method makes tree-sitter recover
    # by lexing `const`, `async`, `get`, `this` as identifiers; the stream must
    # still equal the original's on those lines. Real classes: Playwright's
    # driver (a dev requirement), every 30-line window pasted into a host.
    lib = os.path.join(_package_dir("playwright"), "driver", "package", "lib")
    host = "function unrelated (a, b) {\n  return a + b\n}\n\n"
    differing = windows = 0
    for name in ("tools/cli-client/session.js", "tools/cli-client/registry.js", "tools/utils/socketConnection.js",
                 "serverRegistry.js"):
        lines = _read(os.path.join(lib, name)).split("\n")
        original = code_tokens(path=name, text="\n".join(lines))
        for start in range(0, len(lines) - 30, 10):
            expected = [t.text for t in original if start + 1 <= t.line <= start + 30]
            pasted = code_tokens(path="b.js", text=host + "\n".join(lines[start:start + 30]))
            windows += 1
            differing += [t.text for t in pasted if t.line >= 5] != expected
    assert windows > 200
    # 59 of 239 differed before identifiers spelled like keywords kept their text, 18 after.
    assert differing <= 0.1 * windows


def test_every_grammar_loads_and_the_version_names_the_tree_sitter_streams():
    assert TOKENIZER_VERSION == "codematch-tokens-2"
    for name in tokens_module._GRAMMAR_SOURCES:
        assert tokens_module._grammar(name) is not None, name


def test_languages_without_a_grammar_keep_the_regex_tokenizer():
    kotlin = "fun main() { val x = 1 // one\n println(x) }\n"
    assert _texts("a.kt", kotlin) == [t.text for t in _other_tokens(kotlin)]


def test_parsers_are_reused_within_a_thread_and_separate_across_threads():
    import threading

    grammar = tokens_module._grammar("c")
    mine = tokens_module._parser(grammar)
    assert tokens_module._parser(grammar) is mine
    other = []
    thread = threading.Thread(target=lambda: other.append(tokens_module._parser(grammar)))
    thread.start()
    thread.join()
    assert other[0] is not mine


# --- disguised copies found in an index ----------------------------------------

@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    reference = tmp_path_factory.mktemp("reference")
    shutil.copytree(NUMPY_INCLUDE, reference / "numpy-include", ignore=shutil.ignore_patterns("random"))
    shutil.copytree(ADMIN_JS, reference / "admin-js", ignore=shutil.ignore_patterns("vendor"))
    index = str(tmp_path_factory.mktemp("index"))
    summary = code_index_add(index_dir=index, source=str(reference), name="numpy-and-admin", version="1",
                             license_expression="BSD-3-Clause")
    assert summary.files >= 40
    instance = CodeMatcher(index_dir=index)
    yield instance
    instance.close()


@pytest.mark.parametrize("origin,vendor_path", [("numpy-include/npy_math.h", "third_party/mathlib/fastmath.h"),
                                                ("admin-js/calendar.js", "web/static/widgets/cal.js"),
                                                ("numpy-include/ndarraytypes.h", "src/core/types.h")])
def test_renamed_and_reformatted_copy_of_a_whole_file_is_found(matcher, origin, vendor_path):
    source = NUMPY_INCLUDE if origin.startswith("numpy") else ADMIN_JS
    text = _read(os.path.join(source, origin.split("/", 1)[1]))
    vendor_text = _reformatted(vendor_path, _renamed(vendor_path, text))
    matches = [m for m in matcher.file_match(path=vendor_path, text=vendor_text) if m.origin.path == origin]
    assert matches
    best = max(matches, key=lambda m: m.score)
    assert best.query_coverage > 0.8 and best.origin_coverage > 0.8
    total = text.count("\n") + 1
    assert best.origin.lines[0] <= 0.1 * total and best.origin.lines[1] >= 0.9 * total
    assert best.lines[1] <= vendor_text.count("\n") + 1


def test_partial_copy_pasted_into_an_unrelated_file_gives_both_line_ranges(matcher):
    origin_lines = _read(os.path.join(ADMIN_JS, "admin", "DateTimeShortcuts.js")).split("\n")
    first, last = 200, 260  # 61 lines in the middle of the file
    chunk = _renamed("x.js", "\n".join(origin_lines[first - 1:last])).split("\n")
    # The host is real JavaScript that was not indexed (Django's GIS widget).
    host = _read(os.path.join(_package_dir("django.contrib.gis"), "static", "gis", "js", "OLMapWidget.js")).split("\n")
    vendor = host[:40] + chunk + host[40:]
    matches = [m for m in matcher.file_match(path="web/map.js", text="\n".join(vendor))
               if m.origin.path == "admin-js/admin/DateTimeShortcuts.js"]
    assert matches
    best = max(matches, key=lambda m: m.score)
    assert 41 - 2 <= best.lines[0] and best.lines[1] <= 40 + len(chunk) + 2
    assert best.lines[1] - best.lines[0] >= 0.6 * len(chunk)
    assert first - 2 <= best.origin.lines[0] and best.origin.lines[1] <= last + 2


@pytest.mark.parametrize("path,file", [("web/map.js", ("django.contrib.gis", "static/gis/js/OLMapWidget.js")),
                                       ("src/gen.cpp", ("numpy", "_core/tests/data/generate_umath_validation_data.cpp")),
                                       ("src/bitgen.h", ("numpy", "_core/include/numpy/random/bitgen.h"))])
def test_unrelated_real_files_do_not_match(matcher, path, file):
    text = _read(os.path.join(_package_dir(file[0]), file[1]))
    assert matcher.file_match(path=path, text=text) == []


# --- hostile input ----------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SUFFIXES = sorted({".c", ".h", ".cpp", ".cu", ".go", ".rs", ".java", ".js", ".ts", ".tsx", ".sh", ".kt"})
# Characters that stress lexers: brackets, quotes, comment and string openers, newlines of every kind.
_NASTY = st.sampled_from(list("{}[]()<>\"'`/*#\\$\n\r\t ;,.:=+-!?@") + ["\r\n", "\u2028", "\x00", "\ufffd", "//", "/*",
                                                                        "*/", "R\"(", "<<<", "${", "'''", "é", "\ud800"])
_SOURCE_TEXT = st.one_of(st.text(max_size=400), st.lists(st.one_of(_NASTY, st.text(max_size=6)), max_size=200).map("".join),
                         st.binary(max_size=600).map(lambda b: b.decode("utf-8", errors="replace")))


def _assert_sane(path: str, text: str) -> None:
    tokens = code_tokens(path=path, text=text)
    line_count = text.count("\n") + 1
    previous = 1
    for token in tokens:
        assert previous <= token.line <= token.end_line <= line_count, (path, token)
        previous = token.line
        assert token.text


@pytest.mark.parametrize("suffix", FUZZ_SUFFIXES)
@FUZZ
@given(text=_SOURCE_TEXT)
def test_fuzz_never_raises_and_lines_stay_in_order_within_the_file(suffix, text):
    _assert_sane("fuzz" + suffix, text)


@pytest.mark.parametrize("suffix", [".c", ".js", ".rs", ".sh", ".cpp", ".kt"])
def test_deep_nesting_binary_junk_and_large_files_are_tokenised(suffix):
    deep = "f(" + "(" * 100_000 + "x" + ")" * 100_000 + ");\n"
    _assert_sane("deep" + suffix, deep)
    junk = bytes((i * 7919 + 13) % 256 for i in range(200_000)).decode("utf-8", errors="replace")
    _assert_sane("junk" + suffix, junk)
    # tree-sitter's error recovery is superlinear on this (5 s for 65 KB in C):
    # the parse is cancelled and the regex tokenizer, linear on it, takes over.
    unclosed = "{ [ ( \" ' /* " * 5_000
    _assert_sane("open" + suffix, unclosed)
    # Escaped quotes that never close: quadratic in the old regex tokenizer (19 s for 40 KB).
    _assert_sane("quotes" + suffix, '\\"' * 50_000 + "\n" + "\\'" * 50_000)


def test_a_cancelled_parse_leaves_the_parser_usable(monkeypatch):
    from compliance.engine.codematch import tokens as tokens_module

    text = _read(os.path.join(ADMIN_JS, "calendar.js"))
    before = _texts("a.js", text)
    pathological = "{ [ ( \" ' /* " * 5_000
    # The budget at zero: the parse is cancelled whatever the machine's speed (on a fast, quiet
    # machine the 1 s budget could outlast this file's error recovery, and the test then failed).
    monkeypatch.setattr(tokens_module, "PARSE_SECONDS", 0.0)
    monkeypatch.setattr(tokens_module, "PARSE_SECONDS_PER_MIB", 0.0)
    tokens = code_tokens(path="b.js", text=pathological)
    assert tokens == _other_tokens(pathological)  # the regex fallback answered
    monkeypatch.undo()
    assert _texts("a.js", text) == before


def test_a_two_mebibyte_file_is_tokenised_with_lines_to_the_end():
    text = _read(os.path.join(ADMIN_JS, "calendar.js"))
    big = (text + "\n") * (2 * 1024 * 1024 // len(text) + 1)
    tokens = code_tokens(path="big.js", text=big)
    assert tokens[-1].line >= big.count("\n") - 5
    assert len(tokens) > 100_000

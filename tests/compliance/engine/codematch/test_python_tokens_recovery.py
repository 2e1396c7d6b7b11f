"""Python code pasted at the wrong depth must not hide the rest of the file from the matcher."""

from __future__ import annotations

import inspect
import json

from compliance.engine.codematch.tokens import code_tokens


def test_a_bad_dedent_does_not_drop_the_rest_of_the_file():
    real = inspect.getsource(json.JSONEncoder)  # a real class, about 200 lines
    host = "def f(x):\n    if x:\n        return 1\n  y = 2\n"  # `  y` dedents to no outer level
    text = host + real
    tokens = code_tokens(path="vendor/enc.py", text=text)
    alone = code_tokens(path="ref.py", text=real)
    # Every token of the real class is still there, on its own lines (shifted by the host's 4).
    assert [t.text for t in tokens[-len(alone):]] == [t.text for t in alone]
    assert tokens[-1].line == alone[-1].line + 4


def test_a_partial_copy_cut_mid_block_is_tokenized_whole():
    lines = inspect.getsource(json.JSONEncoder).splitlines()
    cut = "\n".join(lines[40:120])  # starts and ends inside methods, indentation inconsistent
    tokens = code_tokens(path="part.py", text="x = 1\n" + cut)
    assert tokens and tokens[-1].line >= 70, "tokens reach the end of the pasted lines"
    assert all(a.line <= b.line for a, b in zip(tokens, tokens[1:]))


def test_unterminated_string_and_garbage_still_give_tokens_without_raising():
    for text in ('x = """never closed\n' + "y = 2\n" * 5, "\x00\x01 def (((( \n\t  ]", "  indented first line\nz = 1\n"):
        tokens = code_tokens(path="odd.py", text=text)
        assert isinstance(tokens, list)


def test_line_numbers_count_newlines_only():
    """A form feed or a lone carriage return inside a line does not shift the lines after it."""
    text = "x = 1  # page\x0cbreak\ny = 'a\rb'\n\n\nz = 3\n"
    tokens = code_tokens(path="ff.py", text=text)
    assert [t.line for t in tokens if t.text == "N"] == [1, 5]

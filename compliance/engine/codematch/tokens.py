"""Normalised token streams for copy detection.

Python goes through the standard `tokenize` module: identifiers become `V`,
string literals `S`, numbers `N`; comments, docstrings, blank lines,
indentation and line breaks are dropped. Renaming, reformatting (black,
yapf, re-wrapping) and comment stripping therefore leave the stream
unchanged. Keywords, operators and brackets stay: they are the structure.

Other languages use a regex tokenizer (tree-sitter was not used: its
grammars ship as separate wheels per language and the time box did not
allow pinning and testing them): C-family, Go, Rust, Java, JS/TS and shell
comments are removed, identifiers that are not keywords of the language
become `V`, literals `S`/`N`.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from dataclasses import dataclass

PYTHON_SUFFIXES = (".py", ".pyi")
OTHER_SUFFIXES = (
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cu", ".cuh", ".go", ".rs", ".java", ".js", ".jsx",
    ".ts", ".tsx", ".mjs", ".kt", ".scala", ".swift", ".m", ".mm", ".cs", ".sh", ".bash",
)
CODE_SUFFIXES = PYTHON_SUFFIXES + OTHER_SUFFIXES

# Soft keywords (match, case, type, _) are identifiers most of the time; keep them masked.
_PY_KEYWORDS = frozenset(keyword.kwlist)

_C_LIKE_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
bool true false class namespace template typename public private protected virtual override final new delete
this throw try catch using operator friend nullptr constexpr static_cast dynamic_cast reinterpret_cast
const_cast explicit mutable noexcept decltype __global__ __device__ __host__ __shared__
func package import type var map chan go defer select range interface fallthrough nil
fn let mut impl trait pub use mod crate self Self super match loop where as ref move async await dyn unsafe
extends implements abstract synchronized transient native instanceof throws null boolean byte
function of in yield export from typeof undefined instanceof
then fi elif esac done local
""".split())

_OTHER_TOKEN_RE = re.compile(
    r"""
    (?P<comment>//[^\n]*|/\*.*?\*/|\#(?!include|define|if|endif|else|pragma|ifdef|ifndef|undef)[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)
  | (?P<number>\b\d[\w.]*\b|\.\d[\w]*)
  | (?P<ident>[A-Za-z_$][\w$]*)
  | (?P<op>->|::|<<=|>>=|\+\+|--|&&|\|\||[-+*/%=!<>&|^]=?|[{}()\[\];,.?:~@\#])
  | (?P<space>\s+)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    """A normalised token and the source lines it spans (1-based)."""

    text: str
    line: int
    end_line: int


def _python_tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    previous_type = tokenize.NEWLINE  # start of file counts as a statement start
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = tok.type
            if kind in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER):
                continue
            if kind in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                previous_type = kind
                continue
            if kind == tokenize.STRING and previous_type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                # A string opening a statement is a docstring (or an inert
                # expression): documentation, not code. A string that starts an
                # expression like `"a" + b` is rare at statement start.
                previous_type = tokenize.STRING
                continue
            if previous_type == tokenize.STRING and kind == tokenize.STRING:
                continue  # implicit concatenation of a docstring's parts
            previous_type = kind
            if kind == tokenize.NAME:
                value = tok.string if tok.string in _PY_KEYWORDS else "V"
            elif kind == tokenize.STRING:
                value = "S"
            elif kind == tokenize.NUMBER:
                value = "N"
            elif kind == tokenize.OP:
                value = tok.string
            else:
                value = tok.string if len(tok.string) < 8 else "?"
            tokens.append(Token(value, tok.start[0], tok.end[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # Incomplete source (a snippet, a file cut short): keep what was read
        # so far rather than dropping the file; fall back if nothing was.
        if not tokens:
            return _other_tokens(text, python_comments=True)
    return _python_layout_normalise(tokens)


_CALL_OPENERS = frozenset({"V", ")", "]", "S"})
_CLOSERS = frozenset({")", "]", "}"})


def _python_layout_normalise(tokens: list[Token]) -> list[Token]:
    """Drop grouping parentheses and trailing commas.

    Formatters (black, `ast.unparse`) add and remove them freely: on
    django/core/paginator.py, `ast.unparse` changed 21 places, 19 of them
    parentheses or trailing commas, which cost a third of the shared
    fingerprints. A "(" after a name, a closing bracket or a string is a call
    (or a def/class signature) and stays; any other "(" only groups.
    """
    out: list[Token] = []
    dropped_stack: list[bool] = []
    for index, token in enumerate(tokens):
        text = token.text
        if text == "(":
            grouping = not out or out[-1].text not in _CALL_OPENERS
            dropped_stack.append(grouping)
            if grouping:
                continue
        elif text == ")":
            if dropped_stack and dropped_stack.pop():
                continue
        elif text == "," and index + 1 < len(tokens) and tokens[index + 1].text in _CLOSERS:
            continue
        out.append(token)
    return out


def _other_tokens(text: str, python_comments: bool = False) -> list[Token]:
    tokens: list[Token] = []
    line = 1
    for match in _OTHER_TOKEN_RE.finditer(text):
        kind = match.lastgroup
        value = match.group()
        newlines = value.count("\n")
        if kind == "ident":
            tokens.append(Token(value if value in _C_LIKE_KEYWORDS else "V", line, line))
        elif kind == "string":
            tokens.append(Token("S", line, line + newlines))
        elif kind == "number":
            tokens.append(Token("N", line, line))
        elif kind == "op":
            tokens.append(Token(value, line, line))
        line += newlines
    return tokens


def code_tokens(*, path: str, text: str) -> list[Token]:
    """Normalised tokens of one source file, chosen by its suffix."""
    if path.lower().endswith(PYTHON_SUFFIXES):
        return _python_tokens(text)
    return _other_tokens(text)


def path_is_code(*, path: str) -> bool:
    """True for files the matcher tokenises (Python and the C/Go/Rust/Java/JS family)."""
    return path.lower().endswith(CODE_SUFFIXES)

"""Normalised token streams for copy detection.

Python goes through the standard `tokenize` module: identifiers become `V`,
string literals `S`, numbers `N`; comments, docstrings, blank lines,
indentation and line breaks are dropped. Renaming, reformatting (black,
yapf, re-wrapping) and comment stripping therefore leave the stream
unchanged. Keywords, operators and brackets stay: they are the structure.

Languages with a maintained tree-sitter grammar wheel (pinned in
requirements.txt) are parsed with tree-sitter and their leaves normalised:

  C (.c, .h), C++ (.cc .cpp .cxx .hpp .hh), CUDA (.cu .cuh), Go, Rust, Java,
  JavaScript/JSX (.js .jsx .mjs), TypeScript (.ts), TSX (.tsx), shell (.sh .bash)

- comments (and `#!` lines) are dropped;
- identifiers of every kind (identifier, field_identifier, type_identifier,
  property_identifier, package_identifier, shell words and variable names...)
  become `V`;
- each string, char, template, raw-string, regex or heredoc literal becomes
  one `S` (its inside is not visited: an interpolation inside a template
  string is part of the literal); numbers become `N`;
- keywords, operators and punctuation stay as their grammar token, so
  `#  define` and `#define` are the same token; preprocessor directives keep
  their keyword, and a macro body (which tree-sitter leaves unparsed) is
  masked with the regex tokenizer below, so its identifiers are `V` too;
- language constants and primitive types (`this`, `self`, `super`, `true`,
  `false`, `null`, `nil`, `undefined`, `int`, `u32`...) stay as their text:
  like keywords, renaming cannot change them, and they carry structure;
- a trailing comma before a closing bracket is dropped (gofmt, rustfmt and
  prettier add it when they split a list over lines and remove it when they
  join it), and so is `;` in JavaScript/TypeScript (prettier's `semi` option
  and automatic semicolon insertion make it a formatting choice);
- tree-sitter tolerates errors: the leaves of ERROR nodes are kept (an ERROR
  leaf's text goes through the regex tokenizer), zero-width (MISSING) nodes
  are skipped. An "identifier" spelled like a keyword of the grammar keeps
  its text (error recovery in a snippet pasted mid-class lexes `const`,
  `async`, `get` as identifiers; see `_tree_tokens`). A `.h` file with C++ markers (`::`, `template <`, `namespace`,
  `class X {`) is parsed with the C++ grammar, any other with the C grammar.

Kotlin, Scala, Swift, Objective-C (.m, .mm) and C# have no grammar wheel in
our pins and keep the regex tokenizer (`_other_tokens`), which is also the
fallback if a grammar cannot be loaded or parsing fails: C-family, Go, Rust,
Java, JS/TS and shell comments are removed, identifiers that are not keywords
of the language become `V`, literals `S`/`N`.

Cost: a grammar is loaded once per process; a `tree_sitter.Parser` is not
safe to share between threads, so each thread keeps its own parser per
language (thread-local), created on first use and reused. The leaf walk uses
a TreeCursor in a loop (no recursion: 100,000 nested brackets are fine) and
looks each node kind up in a per-grammar action table. A parse gets a time
budget (PARSE_SECONDS + PARSE_SECONDS_PER_MIB per MiB): tree-sitter's error
recovery is superlinear on crafted input, and past the budget the file goes
through the regex tokenizer, which is linear on any input.

Bump `TOKENIZER_VERSION` whenever the stream for any input changes: indexes
built by another version are refused rather than silently mismatched.
"""

from __future__ import annotations

import importlib
import keyword
import logging
import re
import threading
import time
import tokenize
from functools import partial
from dataclasses import dataclass
from typing import NamedTuple

logger = logging.getLogger(__name__)

# Version of the token streams; the index records it and refuses a mismatch.
# 2: tree-sitter for C/C++/CUDA, Go, Rust, Java, JS/TS, shell.
TOKENIZER_VERSION = "codematch-tokens-2"

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

# An unclosed `/*` comments out the rest of the file and an unclosed quote
# ends at the end of its line (a backtick at the end of the file), as a lexer
# reads them: if they failed instead, every later `/*` or quote of a crafted
# file would rescan to the end (40 KB of `\"` took 19 s, quadratic).
_OTHER_TOKEN_RE = re.compile(
    r"""
    (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z)|\#(?!include|define|if|endif|else|pragma|ifdef|ifndef|undef)[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*(?:"|(?=\n)|\Z)|'(?:\\.|[^'\\\n])*(?:'|(?=\n)|\Z)|`(?:\\.|[^`\\])*(?:`|\Z))
  | (?P<number>\b\d[\w.]*\b|\.\d[\w]*)
  | (?P<ident>[A-Za-z_$][\w$]*)
  | (?P<op>->|::|<<=|>>=|\+\+|--|&&|\|\||[-+*/%=!<>&|^]=?|[{}()\[\];,.?:~@\#])
  | (?P<space>\s+)
    """,
    re.VERBOSE | re.DOTALL,
)


class Token(NamedTuple):
    """A normalised token and the source lines it spans (1-based).

    A named tuple rather than a frozen dataclass: a file makes thousands, and
    the dataclass's `__init__` (object.__setattr__ per field) was 7 % of a scan.
    """

    text: str
    line: int
    end_line: int


# A file with a bad dedent restarts the tokenizer at that line; past this many restarts the
# rest goes through the regex tokenizer (each restart is linear in what it reads, so this only
# bounds a pathological file's cost).
MAX_PYTHON_RESTARTS = 200


def _python_tokens(text: str) -> list[Token]:
    """Python tokens, resilient to pasted code whose indentation does not fit its host.

    `tokenize` stops at the first dedent that matches no outer level; a vendor file with
    a function pasted at the wrong depth (or a partial copy cut mid-block) would otherwise
    lose every token after it, copied code included. Indentation carries no token here, so
    the tokenizer restarts at the offending line and the streams are joined.
    """
    # Lines end at "\n" only, as tokenize reads them and as the scanner counts them
    # (str.splitlines would also split at \r, \x0c, \u2028 and shift every line after).
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    tokens: list[Token] = []
    start = 0
    for _restart in range(MAX_PYTHON_RESTARTS + 1):
        failed_at = _python_tokens_from(lines=lines, start=start, out=tokens)
        if failed_at is None:
            break
        start = max(failed_at, start + 1)
    else:
        rest = "".join(lines[start:])
        tokens.extend(Token(t.text, t.line + start, t.end_line + start)
                      for t in _other_tokens(rest, python_comments=True))
    if not tokens and text.strip():
        return _other_tokens(text, python_comments=True)
    return _python_layout_normalise(tokens)


# `_python_tokens_from` is `tokenize._tokenize` of Python 3.11 (its line
# loop, its regexes from the `tokenize` module itself, its errors) with the
# consumer of the tokens (comments, NL, docstrings, masking) folded in:
# no TokenInfo tuples, no generator, no per-token regex cache lookup. That
# was 75 % of a vendor file's scan time (2.9 us a token); this runs at about
# a third of it. `_python_tokens_from_stdlib` keeps the generator-based
# version; tests/compliance/engine/codematch/test_codematch_speed.py checks
# both give the same tokens on real files and on generated text.
_PSEUDO_TOKEN_RE = re.compile(tokenize.PseudoToken, re.UNICODE)
_END_PATTERNS = {key: re.compile(value, re.UNICODE) for key, value in tokenize.endpats.items() if value}
_SINGLE_QUOTED = frozenset(tokenize.single_quoted)
_TRIPLE_QUOTED = frozenset(tokenize.triple_quoted)
_TABSIZE = tokenize.tabsize
_NUMCHARS = "0123456789"
_token_make = partial(tuple.__new__, Token)  # Token((text, line, end_line)) without NamedTuple's Python __new__
_STATEMENT_START = 0  # previous_type NEWLINE, INDENT or DEDENT
_AFTER_STRING = 1     # previous_type STRING
_AFTER_OTHER = 2


def _python_tokens_from(*, lines: list[str], start: int, out: list[Token]) -> int | None:
    """Tokenize lines[start:] into `out` (absolute line numbers); the 0-based line index
    to restart from after a bad dedent, or None when the stream ended (cleanly or at an
    unterminated string or bracket, where the rest of the file belongs to that token)."""
    append = out.append
    make = _token_make
    keywords = _PY_KEYWORDS
    pseudo = _PSEUDO_TOKEN_RE.match
    previous = _STATEMENT_START  # start of file counts as a statement start
    lnum = parenlev = continued = 0
    contstr, needcont = "", 0
    strstart_row = 0
    endprog = None
    indents = [0]
    total = len(lines)
    index = start
    while True:
        if index < total:
            line = lines[index]
            index += 1
        else:
            line = ""
        lnum += 1
        row = lnum + start
        pos, max_ = 0, len(line)
        if contstr:  # continued string
            if not line:
                return None  # TokenError: EOF in multi-line string
            endmatch = endprog.match(line)
            if endmatch:
                pos = endmatch.end(0)
                # STRING from strstart_row to row
                if previous == _STATEMENT_START:
                    previous = _AFTER_STRING
                elif previous != _AFTER_STRING:
                    previous = _AFTER_STRING
                    append(make(("S", strstart_row, row)))
                contstr, needcont = "", 0
            elif needcont and line[-2:] != "\\\n" and line[-3:] != "\\\r\n":
                # ERRORTOKEN holding the unterminated string and this line
                text = contstr + line
                previous = _AFTER_OTHER
                append(make((text if len(text) < 8 else "?", strstart_row, row)))
                contstr = ""
                continue
            else:
                contstr = contstr + line
                continue
        elif parenlev == 0 and not continued:  # new statement
            if not line:
                break
            column = 0
            while pos < max_:
                char = line[pos]
                if char == " ":
                    column += 1
                elif char == "\t":
                    column = (column // _TABSIZE + 1) * _TABSIZE
                elif char == "\f":
                    column = 0
                else:
                    break
                pos += 1
            if pos == max_:
                break
            if line[pos] in "#\r\n":  # comment or blank line: COMMENT and NL, both dropped
                continue
            if column > indents[-1]:
                indents.append(column)
                previous = _STATEMENT_START  # INDENT
            while column < indents[-1]:
                if column not in indents:
                    return row - 1  # IndentationError at this line: restart here
                indents = indents[:-1]
                previous = _STATEMENT_START  # DEDENT
        else:  # continued statement
            if not line:
                return None  # TokenError: EOF in multi-line statement
            continued = 0
        while pos < max_:
            pseudomatch = pseudo(line, pos)
            if pseudomatch:
                begin, end = pseudomatch.span(1)
                pos = end
                if begin == end:
                    continue
                token, initial = line[begin:end], line[begin]
                if initial in _NUMCHARS or (initial == "." and token != "." and token != "..."):
                    previous = _AFTER_OTHER
                    append(make(("N", row, row)))
                elif initial.isidentifier() and "'" not in token and '"' not in token:
                    # A name (tokenize tests this after the string cases, but every
                    # string token holds a quote and no name does: same result).
                    previous = _AFTER_OTHER
                    append(make((token if token in keywords else "V", row, row)))
                elif initial in "\r\n":
                    if parenlev <= 0:
                        previous = _STATEMENT_START  # NEWLINE (NL inside brackets is dropped)
                elif initial == "#":
                    pass  # COMMENT
                elif token in _TRIPLE_QUOTED:
                    endprog = _END_PATTERNS[token]
                    endmatch = endprog.match(line, pos)
                    if endmatch:  # all on one line
                        pos = endmatch.end(0)
                        if previous == _STATEMENT_START:
                            previous = _AFTER_STRING
                        elif previous != _AFTER_STRING:
                            previous = _AFTER_STRING
                            append(make(("S", row, row)))
                    else:
                        strstart_row = row
                        contstr = line[begin:]
                        break
                elif initial in _SINGLE_QUOTED or token[:2] in _SINGLE_QUOTED or token[:3] in _SINGLE_QUOTED:
                    if token[-1] == "\n":  # continued string
                        strstart_row = row
                        endprog = (_END_PATTERNS.get(initial) or _END_PATTERNS.get(token[1])
                                   or _END_PATTERNS.get(token[2]))
                        contstr, needcont = line[begin:], 1
                        break
                    if previous == _STATEMENT_START:
                        previous = _AFTER_STRING
                    elif previous != _AFTER_STRING:
                        previous = _AFTER_STRING
                        append(make(("S", row, row)))
                elif initial.isidentifier():
                    previous = _AFTER_OTHER
                    append(make((token if token in keywords else "V", row, row)))
                elif initial == "\\":
                    continued = 1
                else:
                    if initial in "([{":
                        parenlev += 1
                    elif initial in ")]}":
                        parenlev -= 1
                    previous = _AFTER_OTHER
                    append(make((token, row, row)))
            else:
                previous = _AFTER_OTHER  # ERRORTOKEN: one character
                append(make((line[pos], row, row)))
                pos += 1
    return None


def _python_tokens_from_stdlib(*, lines: list[str], start: int, out: list[Token]) -> int | None:
    """Reference implementation of `_python_tokens_from` over the standard `tokenize` module
    (the tests compare the two on real and generated files)."""
    previous_type = tokenize.NEWLINE  # start of file counts as a statement start
    readline = iter(lines[start:]).__next__  # tokenize reads StopIteration as the end
    try:
        for tok in tokenize.generate_tokens(readline):
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
            out.append(Token(value, tok.start[0] + start, tok.end[0] + start))
    except IndentationError as exc:
        if exc.lineno:
            return start + exc.lineno - 1
        return None
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


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
    append = out.append
    dropped_stack: list[bool] = []
    texts = [token[0] for token in tokens]
    count = len(texts)
    last_text = None  # the text of out[-1]; None while out is empty
    for index, text in enumerate(texts):
        if text == "(":
            grouping = last_text is None or last_text not in _CALL_OPENERS
            dropped_stack.append(grouping)
            if grouping:
                continue
        elif text == ")":
            if dropped_stack and dropped_stack.pop():
                continue
        elif text == "," and index + 1 < count and texts[index + 1] in _CLOSERS:
            continue
        append(tokens[index])
        last_text = text
    return out


# The regex tokenizer's macro-body variant: `#x` (stringify) and `a ## b`
# (paste) are operators inside a #define, not shell-style comments.
_MACRO_TOKEN_RE = re.compile(_OTHER_TOKEN_RE.pattern.replace(
    r"|\#(?!include|define|if|endif|else|pragma|ifdef|ifndef|undef)[^\n]*", ""), re.VERBOSE | re.DOTALL)


def _other_tokens(text: str, python_comments: bool = False, *, line_offset: int = 0,
                  pattern: re.Pattern = _OTHER_TOKEN_RE, keywords: frozenset = _C_LIKE_KEYWORDS) -> list[Token]:
    """The regex tokenizer: languages without a grammar, and fallback for all.

    Inside a tree-sitter parse (macro bodies, ERROR leaves) `keywords` is that
    grammar's own: the union list would keep a C macro's `type` or `func`
    (Go keywords) as text, so renaming them would change the stream.
    """
    tokens: list[Token] = []
    line = 1 + line_offset
    for match in pattern.finditer(text):
        kind = match.lastgroup
        value = match.group()
        newlines = value.count("\n")
        if kind == "ident":
            tokens.append(Token(value if value in keywords else "V", line, line))
        elif kind == "string":
            tokens.append(Token("S", line, line + newlines))
        elif kind == "number":
            tokens.append(Token("N", line, line))
        elif kind == "op":
            tokens.append(Token(value, line, line))
        line += newlines
    return tokens


# ---------------------------------------------------------------- tree-sitter

# Grammar name -> (module, function returning the language pointer).
_GRAMMAR_SOURCES: dict[str, tuple[str, str]] = {
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    # tree-sitter-cuda 0.21.2 loads under tree-sitter 0.26 (ABI 15) and parses
    # `kernel<<<grid, block>>>(...)` as a kernel call instead of an error.
    "cuda": ("tree_sitter_cuda", "language"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "bash": ("tree_sitter_bash", "language"),
}

_SUFFIX_GRAMMAR: dict[str, str] = {
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".cu": "cuda", ".cuh": "cuda",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript",
    ".ts": "typescript", ".tsx": "tsx",
    ".sh": "bash", ".bash": "bash",
}
TREE_SITTER_SUFFIXES = tuple(_SUFFIX_GRAMMAR)

# What the walk does with a node of a given kind.
_DESCEND = 0   # visit children; a named leaf is kept as its text
_ANONYMOUS = 1  # keyword, operator or punctuation: kept as the grammar's token
_SKIP = 2      # comment: dropped with everything under it
_STRING = 3    # one `S`, children not visited
_NUMBER = 4    # one `N`
_IDENT = 5     # `V` (a node of this kind with children, such as C++'s
               # qualified_identifier `a::b`, is descended into instead)
_MACRO = 6     # unparsed macro body: masked by the regex tokenizer
_ERROR = 7     # visit children; an ERROR leaf goes through the regex tokenizer

_COMMENT_KINDS = frozenset({"comment", "line_comment", "block_comment", "html_comment", "hash_bang_line", "shebang"})
_STRING_KINDS = frozenset({
    "string_literal", "char_literal", "raw_string_literal", "concatenated_string", "system_lib_string",  # C/C++
    "string", "template_string", "regex", "jsx_text",  # JS/TS (and shell's "string")
    "interpreted_string_literal", "rune_literal",  # Go (raw_string_literal above)
    "character_literal", "text_block",  # Java
    "raw_string", "ansi_c_string", "translated_string", "heredoc_body", "extglob_pattern",  # shell
})
_NUMBER_KINDS = frozenset({
    "number_literal", "number", "int_literal", "float_literal", "imaginary_literal", "integer_literal",
    "decimal_integer_literal", "hex_integer_literal", "octal_integer_literal", "binary_integer_literal",
    "decimal_floating_point_literal", "hex_floating_point_literal",
})
# Names chosen by the author that do not end in "identifier".
_IDENT_KINDS = frozenset({"variable_name", "word", "label_name", "metavariable", "literal_suffix"})
_MACRO_KINDS = frozenset({"preproc_arg"})
# A named leaf longer than this that is none of the above is not a keyword-like
# constant: mask it rather than let its text into the stream.
_NAMED_LEAF_MAX = 24
_WORD = re.compile(r"[A-Za-z_]\w*")
_CONSTANT_KINDS = ("true", "false", "null", "this", "super", "nil", "undefined", "self")
# Parse budget. Real code parses at about 10 MB/s (2.4 MB of sqlite3.h in
# 0.23 s), but error recovery is superlinear on crafted input: 65 KB of
# unclosed `{ [ ( " ' /*` took 5.5 s in the C grammar. Past the budget the
# parse is cancelled and the file goes through the (linear) regex tokenizer,
# so one hostile file cannot stall a scan. Only pathological files reach it,
# so the time-based choice does not make normal tokenization vary.
PARSE_SECONDS = 1.0
PARSE_SECONDS_PER_MIB = 2.0
_READ_CHUNK = 1 << 16
_CPP_MARKERS = re.compile(rb"::|\btemplate\s*<|\bnamespace\b|\bclass\s+\w+\s*[:{]")


@dataclass(frozen=True)
class _Grammar:
    name: str
    language: object  # tree_sitter.Language
    actions: tuple[int, ...]  # by kind id
    anonymous_text: tuple[str | None, ...]  # by kind id: the token, or None for whitespace tokens
    drop_semicolons: bool
    keywords: frozenset  # the grammar's word tokens and constants, for text it leaves unparsed
    longest_keyword: int


def _action_for(name: str, named: bool) -> int:
    if not named:
        return _ANONYMOUS
    if name in _COMMENT_KINDS:
        return _SKIP
    if name in _STRING_KINDS:
        return _STRING
    if name in _NUMBER_KINDS:
        return _NUMBER
    if name in _MACRO_KINDS:
        return _MACRO
    if name in _IDENT_KINDS or name.endswith(("identifier", "identifier_pattern")):
        return _IDENT
    return _DESCEND


_GRAMMARS: dict[str, _Grammar | None] = {}
_GRAMMARS_LOCK = threading.Lock()
_THREAD_PARSERS = threading.local()


def _grammar(name: str) -> _Grammar | None:
    """The grammar and its action table, loaded once per process (None if it cannot load)."""
    grammar = _GRAMMARS.get(name, False)
    if grammar is not False:
        return grammar
    with _GRAMMARS_LOCK:
        if name in _GRAMMARS:
            return _GRAMMARS[name]
        try:
            import tree_sitter

            module_name, function_name = _GRAMMAR_SOURCES[name]
            language = tree_sitter.Language(getattr(importlib.import_module(module_name), function_name)())
            actions, texts = [], []
            for kind_id in range(language.node_kind_count):
                kind = language.node_kind_for_id(kind_id) or ""
                named = language.node_kind_is_named(kind_id)
                actions.append(_action_for(kind, named))
                visible = language.node_kind_is_visible(kind_id)  # hidden rules never appear as nodes
                texts.append(None if named or not visible or not kind.strip() else kind)
            words = {text for text in texts if text and _WORD.fullmatch(text)}
            words |= {kind for kind in _CONSTANT_KINDS if language.id_for_node_kind(kind, True) is not None}
            if "null" in words:
                words |= {"NULL", "nullptr"}
            grammar = _Grammar(name, language, tuple(actions), tuple(texts),
                               drop_semicolons=name in ("javascript", "typescript", "tsx"), keywords=frozenset(words),
                               longest_keyword=max(map(len, words), default=0))
        except Exception:  # noqa: BLE001 - a missing or incompatible wheel degrades to the regex tokenizer
            logger.warning("tree-sitter grammar %s could not be loaded; using the regex tokenizer", name,
                           exc_info=True)
            grammar = None
        _GRAMMARS[name] = grammar
        return grammar


def _parser(grammar: _Grammar):
    """This thread's parser for the grammar (Parser objects are not thread-safe)."""
    parsers = getattr(_THREAD_PARSERS, "parsers", None)
    if parsers is None:
        parsers = _THREAD_PARSERS.parsers = {}
    parser = parsers.get(grammar.name)
    if parser is None:
        import tree_sitter

        parser = parsers[grammar.name] = tree_sitter.Parser(grammar.language)
    return parser


def _end_line(node) -> int:
    """1-based last line of a node; a node ending just after a newline ends on the line before."""
    start_row = node.start_point[0]
    end_row, end_column = node.end_point
    if end_column == 0 and end_row > start_row:
        return end_row
    return end_row + 1


def _tree_tokens(grammar: _Grammar, root, source: bytes) -> list[Token]:
    actions = grammar.actions
    texts = grammar.anonymous_text
    table_size = len(actions)
    tokens: list[Token] = []
    append = tokens.append
    keywords = grammar.keywords
    longest_keyword = grammar.longest_keyword
    # A snippet pasted mid-class or mid-object makes tree-sitter recover by
    # lexing keywords as identifiers (`const`, `if`, `async`, `get`, `this` in
    # a pasted JS method), often without an ERROR node. An "identifier"
    # spelled as a keyword of the grammar therefore keeps its text, in every
    # parse: `map.get(k)` gives `get` in the original and in the copy alike,
    # and the pasted method lines up with the clean original (on 965 30-line
    # windows of real JS pasted into another file, 167 streams differed from
    # the original's, 18 with this rule). The price: renaming a variable that
    # is spelled like a contextual keyword (`from`, `type`) changes the stream.
    cursor = root.walk()
    while True:
        node = cursor.node
        kind_id = node.kind_id
        action = actions[kind_id] if kind_id < table_size else _ERROR  # ERROR is kind 65535
        descend = False
        if action == _SKIP:
            pass
        elif action == _STRING:
            if node.end_byte > node.start_byte:
                append(Token("S", node.start_point[0] + 1, _end_line(node)))
        elif node.child_count:
            descend = True
        elif node.start_byte == node.end_byte:
            pass  # MISSING token inserted by error recovery, or JS automatic semicolon
        elif action == _ANONYMOUS:
            text = texts[kind_id]
            if text is not None:
                line = node.start_point[0] + 1
                append(Token(text, line, line))
        elif action == _IDENT:
            line = node.start_point[0] + 1
            start, end = node.start_byte, node.end_byte
            if end - start <= longest_keyword:
                text = source[start:end].decode("utf-8", "replace")
                if text in keywords:
                    append(Token(text, line, line))
                else:
                    append(Token("V", line, line))
            else:
                append(Token("V", line, line))
        elif action == _NUMBER:
            append(Token("N", node.start_point[0] + 1, _end_line(node)))
        elif action == _MACRO or action == _ERROR:
            text = source[node.start_byte:node.end_byte].decode("utf-8", "replace")
            tokens.extend(_other_tokens(text, line_offset=node.start_point[0], keywords=grammar.keywords,
                                        pattern=_MACRO_TOKEN_RE if action == _MACRO else _OTHER_TOKEN_RE))
        else:  # a named leaf: this, true, null, nil, primitive types, #pragma...
            # Whitespace removed: "#  undef" is "#undef".
            text = "".join(source[node.start_byte:node.end_byte].decode("utf-8", "replace").split())
            if not text or len(text) > _NAMED_LEAF_MAX:
                text = "?"
            append(Token(text, node.start_point[0] + 1, _end_line(node)))
        if descend and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return tokens


def _layout_normalise(tokens: list[Token], *, drop_semicolons: bool) -> list[Token]:
    """Drop trailing commas before a closing bracket (and `;` where it is optional)."""
    out: list[Token] = []
    last = len(tokens) - 1
    for index, token in enumerate(tokens):
        text = token.text
        if text == "," and index < last and tokens[index + 1].text in _CLOSERS:
            continue
        if drop_semicolons and text == ";":
            continue
        out.append(token)
    return out


def _tree_sitter_tokens(grammar_name: str, text: str, *, header: bool = False) -> list[Token] | None:
    """Tokens through tree-sitter, or None when the grammar is unavailable or parsing fails."""
    grammar = _grammar(grammar_name)
    if grammar is None:
        return None
    try:
        source = text.encode("utf-8", "replace")  # lone surrogates become "?": same line count
        if header and _CPP_MARKERS.search(source):
            # A C++ header named .h: the C grammar's error recovery on C++ costs
            # 2-3x the C++ parse (libstdc++'s headers) and yields worse leaves.
            grammar = _grammar("cpp") or grammar
        parser = _parser(grammar)
        # Parsing through a read callback is what lets the progress callback
        # cancel; a tree parsed that way holds no copy of the source, so leaf
        # text is sliced from `source` (Node.text would call the reader again).
        deadline = time.monotonic() + PARSE_SECONDS + PARSE_SECONDS_PER_MIB * len(source) / (1 << 20)
        try:
            tree = parser.parse(lambda offset, _point: source[offset:offset + _READ_CHUNK],
                                progress_callback=lambda _offset, _has_error: time.monotonic() > deadline)
        except ValueError:  # cancelled by the deadline
            parser.reset()  # else the next parse would resume this one
            logger.warning("tree-sitter (%s) gave up after %.1f s on %d bytes; using the regex tokenizer",
                           grammar.name, time.monotonic() - deadline + PARSE_SECONDS
                           + PARSE_SECONDS_PER_MIB * len(source) / (1 << 20), len(source))
            return None
        if tree is None:
            return None
        return _layout_normalise(_tree_tokens(grammar, tree.root_node, source), drop_semicolons=grammar.drop_semicolons)
    except Exception:  # noqa: BLE001 - hostile input must not stop a scan: fall back to the regex tokenizer
        logger.warning("tree-sitter (%s) failed; using the regex tokenizer", grammar_name, exc_info=True)
        try:
            _parser(grammar).reset()
        except Exception:  # noqa: BLE001
            pass
        return None


def code_tokens(*, path: str, text: str) -> list[Token]:
    """Normalised tokens of one source file, chosen by its suffix."""
    lowered = path.lower()
    if lowered.endswith(PYTHON_SUFFIXES):
        return _python_tokens(text)
    suffix = lowered[lowered.rfind("."):] if "." in lowered else ""
    grammar_name = _SUFFIX_GRAMMAR.get(suffix)
    if grammar_name is not None:
        tokens = _tree_sitter_tokens(grammar_name, text, header=suffix == ".h")
        if tokens is not None:
            return tokens
    return _other_tokens(text)


def path_is_code(*, path: str) -> bool:
    """True for files the matcher tokenises (Python and the C/Go/Rust/Java/JS family)."""
    return path.lower().endswith(CODE_SUFFIXES)

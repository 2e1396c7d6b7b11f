"""Per-file licence and copyright detection, fast in the common case.

The answers come from ScanCode's licence index; the speed comes from not
asking it the expensive question when the answer is already known:

1. Content hash -> on-disk cache keyed by engine and rules version: a file
   seen before (the same LICENSE in 300 wheels) costs one sqlite lookup.
2. Prefilter: ScanCode only ever starts a match from its legal vocabulary
   (4,356 words). A file containing none of them has no licence; 80-85 % of
   source files stop here at about 0.1 ms each.
   A second, stricter test then asks whether the exact pass could match
   anything at all (every token of some rule present, or an
   SPDX-License-Identifier line: `ExactMatchFilter`); when it cannot, the
   exact pass is skipped, its answer being known to be empty.
3. Exact pass (`LicenseIndex.match(approximate=False)`: whole-file hash,
   Aho-Corasick over every rule, SPDX-License-Identifier lines). Research
   (licenses-and-code.md) measured the same answers as the full matcher on
   125/125 source files at 100x the speed.
4. Full matcher (approximate sequence alignment) only for licence, notice and
   copying files, and for files where the exact pass leaves legal words
   unexplained (see `UNEXPLAINED_LEGAL_WORDS_MIN`). Its candidate selection
   runs through `scancode_index.CandidateFilter`: the same candidates as
   ScanCode's own loop, 10-20x sooner.

In tiers 3 and 4, ScanCode's detection analysis reads each match's text;
`scancode_index._LazyTokens` tokenises the file for it only as far as it
reads (a licence header at the top of a long file: its first lines), and the
tokens are dropped whenever the scratch file holds other bytes, so a file's
answer never depends on the file scanned before it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import sys
import threading
import time
from dataclasses import dataclass, field

from compliance.engine.licenses.scancode_index import (
    detections_find,
    exact_match_filter_get,
    fast_candidates_enabled,
    matched_text_tokens_forget,
    scancode_state_get,
)

# 3: matched-text tokens are never an earlier file's (ScanCode kept the last file's by location,
# and our scratch locations repeat); no answer changed on the 1,870 bench files that reach ScanCode,
# but a result cached by 2 could be order-dependent.
ENGINE_VERSION = "licenses-engine-3"

# ScanCode's own query tokenizer pattern (licensedcode/tokenize.py), so the
# prefilter sees exactly the words the index would.
_WORD_SPLITTER = re.compile(r"[^_\W]+\+?[^_\W]*", re.UNICODE).findall

# File names whose whole purpose is legal text; ScanCode's exact pass gets
# 74/78 of these right (BSD-3 called BSD-2, GPL-2.0 variants), so they always
# get the full matcher.
_LEGAL_FILE_RE = re.compile(
    r"^(?:licen[cs]e|copying|copyright|notice|patents|unlicen[cs]e|legal|eula|terms|"
    r"licen[cs]e[-_.]\w+|\w+[-_.]licen[cs]e|copying[-_.]\w+|notice[-_.]\w+|copyright[-_.]\w+)"
    r"(?:\.(?:txt|md|rst|markdown|html?))?$",
    re.IGNORECASE,
)

# After the exact pass, licence vocabulary left on lines no match covers
# hints at a licence text the exact matcher could not align (a BSD with an
# edited clause, a licence pasted with changes). ScanCode's 4,356-word legal
# vocabulary is no use for this: it holds "init", "directly", "parameters",
# and 85 % of source files contain one of its words (bench/licenses.py). These
# words mark licence prose instead; a file escalates to the full matcher when
# some 30-line window of unexplained, non-copyright lines holds at least
# `UNEXPLAINED_WORDS_MIN` distinct ones (`UNEXPLAINED_WORDS_MIN_LEGAL` in
# LICENSE/COPYING/NOTICE files, which should be explained completely).
LICENCE_PROSE_WORDS = frozenset("""
permission permitted hereby granted grant warranty warranties merchantability fitness noninfringement
infringement liability liable damages indirect incidental consequential exemplary tort negligence
redistribution redistributions redistribute sublicense sublicensable licensor licensee licensees
royalty endorse promote disclaimer disclaimed disclaims conditions notice notices copyleft
gpl lgpl agpl mpl gnu bsd mit apache mozilla eclipse creative commons attribution sharealike noncommercial
license licence licensed licenses licences licensing software contributors derivative derived
modification modifications modify distribute distributed distribution source binary forms provided
express implied particular purpose patent patents trademark trademarks terms agreement obligations
""".split())
UNEXPLAINED_WINDOW_LINES = 30
UNEXPLAINED_WORDS_MIN = 8
UNEXPLAINED_WORDS_MIN_LEGAL = 4
# Exact answers holding these keys are usually fragments of a longer notice
# the exact pass could not align whole: on boto3's Apache header the exact
# pass says "Apache-2.0 AND warranty-disclaimer", the full matcher "Apache-2.0"
# (bench/licenses.py diagnostics, 2026-11). Such answers escalate.
FRAGMENT_KEYS = (
    "unknown-license-reference", "warranty-disclaimer", "free-unknown", "public-domain",
    "other-permissive", "other-copyleft", "scancode-unknown",
)
_COPYRIGHT_LINE = re.compile(r"copyright|\(c\)|\u00a9|all rights reserved", re.IGNORECASE)

# Package metadata whose licence evidence sits inside README prose (the
# long description): the full matcher reads them whole, not blanked. Blanked,
# it read 2 of 60 METADATA files differently from ScanCode (an
# unknown-license-reference clue lost, an "Apache-2.0 OR GPL-2.0-or-later"
# read as "MS-PL OR Apache-2.0"); whole, 60 of 60 agreed, for about 2.5 s
# more over those 60 files (bench/licenses.py, 2026-11-28).
_PROSE_METADATA_NAMES = frozenset({"METADATA", "PKG-INFO"})

# Non-legal files above 256 KiB (data dumps, licence databases, vendored
# bundles) never go to the full matcher: on a 971 KB JSON list of licence
# names it ran for over 5 minutes. The exact pass still reports what they cite.
FULL_MATCH_MAX_BYTES = 256 * 1024

# ScanCode's CLI gives a file 120 s; we give the full matcher 30 s and report
# what it found by then (mode "full-timeout") so one file cannot stall a scan.
FULL_MATCH_SECONDS = 30.0

# Copyright prefilter: ScanCode's copyright grammar needs a "copyright" token
# (cluecode/copyrights.py: COPY), which it accepts as copyright, copr,
# (c), ©, &copy;, &#169;, &#xa9;, |copy| (reStructuredText), \u00a9 escapes
# and copyleft; a file holding none of these substrings has no copyright
# statement and no holder for ScanCode. (Authors alone, "Author: X" with no
# copyright mark, are not looked for: bench/copyrights.py.)
_COPYRIGHT_HINT = re.compile(
    rb"copyr|copr|opyl|\(c\)|\xc2\xa9|\xa9|&#169|&#xa9|&copy|\|copy\||u00a9", re.IGNORECASE
)


def copyright_hint_present(*, data: bytes) -> bool:
    """Could ScanCode find a copyright statement in these bytes? (see `_COPYRIGHT_HINT`)"""
    return bool(_COPYRIGHT_HINT.search(data))

# Files ScanCode does not read as plain lines (PDF text, UTF-16 or binary
# strings, source-map JSON): their words as ScanCode sees them may not be
# the words of our UTF-8 decoding, so the exact-match test is not applied.
_NOT_PLAIN_SUFFIXES = (".map", ".pdf")


def scancode_readings(
    *, data: bytes, text: str, path: str, words: list[str] | None = None, lowered: str | None = None
):
    """The word sequences ScanCode's query could be made of, or None if unsure.

    Returns (readings, ordered). ScanCode decodes each line as UTF-8, else
    Latin-1, and in source files turns literal "\\n", "\\r", "\\t" into
    spaces. For valid UTF-8, ScanCode's words in order are one of the
    readings (`ordered` True); otherwise lines may mix decodings and only the
    union of the readings' words is sound (`ordered` False). `words` are the
    words of `text.lower()` if already split, `lowered` that text if already made.
    """
    if b"\x00" in data or data.startswith(b"%PDF") or path.lower().endswith(_NOT_PLAIN_SUFFIXES):
        return None
    if lowered is None:
        lowered = text.lower()
    bases = [(lowered, words if words is not None else _WORD_SPLITTER(lowered))]
    ordered = "\ufffd" not in text
    if not ordered:
        latin = data.decode("latin-1").lower()
        bases.append((latin, _WORD_SPLITTER(latin)))
    readings = [base_words for _, base_words in bases]
    for base_text, _ in bases:
        # Without a literal "\n", "\r" or "\t" the unescaped reading is the
        # same words again (most Python files hold a backslash somewhere).
        if "\\" in base_text and ("\\n" in base_text or "\\r" in base_text or "\\t" in base_text):
            readings.append(_WORD_SPLITTER(base_text.replace("\\r", " ").replace("\\n", " ").replace("\\t", " ")))
    return readings, ordered


# typecode asks libmagic twice about each file ScanCode reads: its description and its MIME type
# (about 0.9 ms each; on the bench tree, bench/submission_e2e.py, a third of the files reach it, and
# sparing the MIME question saves about 3 % of a licence scanner's CPU: BENCHMARKS.md).
# ScanCode's text reading uses the MIME type for two questions only: is the file media
# (`Type.is_media`: then it holds no text) or a PDF (`Type.is_pdf`: then its text is extracted).
# Where libmagic describes a file as one of the plain text, source or script formats below, the MIME
# type is not asked and text/plain stands for it. The list is ours, from libmagic's own answers on
# the 127,338 text files of a Debian system (/usr, /opt, /etc and the portal's Python packages,
# 7 Dec 2026): the 120,810 described so had MIME types text/*, application/json, application/csv
# or application/javascript, never media or PDF; "SVG XML document" (image/svg+xml) shows why it is
# a list of what is known to be text, not of what is known to be media. Any other description asks
# libmagic as before (tests/compliance/engine/licenses/test_fast_paths.py reads real files both
# ways). Were libmagic ever to call a listed description media, the file would be read as text
# where ScanCode reads nothing: more found, never less.
_TEXT_FORMATS = (
    r"Python script|Python script text executable Python script|C\+\+ source|C source|Java source|"
    r"Perl5 module source|Perl script text executable|Perl POD document|POSIX shell script|"
    r"Bourne-Again shell script|Ruby script|Node\.js script|HTML document|XML 1\.0 document|"
    r"exported SGML document|troff or preprocessor input|GNU gettext message catalogue|"
    r"Algol 68 source|Pascal source|assembler source|M4 macro processor script|makefile script|"
    r"awk or perl script|Tcl script|Lisp/Scheme program|FORTRAN program|Objective-C source|PHP script"
)
_PLAIN_TEXT_DESCRIPTION = re.compile(
    rf"^(?:(?:{_TEXT_FORMATS}), )?"
    r"(?:ASCII|UTF-8 Unicode|UTF-8 Unicode \(with BOM\)|ISO-8859|Non-ISO extended-ASCII) text(?: executable)?"
    r"(?:, with (?:very long lines(?: \(\d+\))?|(?:CRLF|CR|LF|NEL)(?:, (?:CRLF|CR|LF|NEL))* line terminators|"
    r"escape sequences|overstriking|no line terminators))*$"
    r"|^JSON data$|^CSV text$|^Perl script text executable$"
)
PLAIN_TEXT_MIME = "text/plain"


def _file_type_prime(*, location: str) -> None:
    """Ask libmagic for the file's description, and for its MIME type only when the description is
    not plain text (see `_PLAIN_TEXT_DESCRIPTION`)."""
    try:
        from typecode import contenttype
    except ImportError:  # pragma: no cover - depends on the install
        return
    file_type = contenttype.get_type(location)
    if file_type._mimetype_file is None and _PLAIN_TEXT_DESCRIPTION.match(file_type.filetype_file):
        file_type._mimetype_file = PLAIN_TEXT_MIME


def _file_type_forget(*, location: str) -> None:
    """Drop typecode's cached file type for a scratch location.

    typecode caches each location's type (text, binary, long lines, ...) for
    the life of the process, and our scratch file names repeat (every
    `__init__.py` of a scan is written to the same place): without this the
    first file of a name would decide how every later one is read.
    """
    try:
        from typecode import contenttype
    except ImportError:  # pragma: no cover - depends on the install
        return
    contenttype._registry.pop(os.path.abspath(location), None)


def license_file_is_legal(*, path: str) -> bool:
    """True for LICENSE, COPYING, NOTICE and similar files (by base name)."""
    return bool(_LEGAL_FILE_RE.match(os.path.basename(path)))


@dataclass
class LicenseMatch:
    """One rule matched in a file."""

    license_expression: str
    license_expression_scancode: str
    rule: str
    start_line: int
    end_line: int
    score: float
    matcher: str
    matched_length: int
    coverage: float

    def to_dict(self) -> dict:
        # `asdict` deep-copies every field (40,658 recursive calls for 5,000 files' results);
        # these fields are immutable, so the dict is the same without the copies.
        return {"license_expression": self.license_expression,
                "license_expression_scancode": self.license_expression_scancode, "rule": self.rule,
                "start_line": self.start_line, "end_line": self.end_line, "score": self.score,
                "matcher": self.matcher, "matched_length": self.matched_length, "coverage": self.coverage}


@dataclass
class CopyrightStatement:
    """A copyright statement, its holder, or an author, with its lines."""

    kind: str  # "copyright" | "holder" | "author"
    value: str
    start_line: int
    end_line: int

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "start_line": self.start_line, "end_line": self.end_line}


@dataclass
class FileLicenseResult:
    """What one file says about its licence and its authors.

    `mode` tells how the answer was reached: "no-legal-text" (prefilter),
    "exact", "full", each prefixed "cache:" when it came from the cache.
    """

    path: str
    sha256: str
    size: int
    license_expression: str | None
    license_expression_scancode: str | None
    matches: list[LicenseMatch] = field(default_factory=list)
    copyrights: list[CopyrightStatement] = field(default_factory=list)
    is_legal_file: bool = False
    mode: str = "no-legal-text"
    error: str | None = None

    @property
    def holders(self) -> list[str]:
        return sorted({c.value for c in self.copyrights if c.kind == "holder"})

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "license_expression": self.license_expression,
            "license_expression_scancode": self.license_expression_scancode,
            "matches": [m.to_dict() for m in self.matches],
            "copyrights": [c.to_dict() for c in self.copyrights],
            "holders": self.holders,
            "is_legal_file": self.is_legal_file,
            "mode": self.mode,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FileLicenseResult":
        return cls(
            path=data["path"],
            sha256=data["sha256"],
            size=data["size"],
            license_expression=data["license_expression"],
            license_expression_scancode=data.get("license_expression_scancode"),
            matches=[LicenseMatch(**m) for m in data.get("matches", [])],
            copyrights=[CopyrightStatement(**c) for c in data.get("copyrights", [])],
            is_legal_file=data.get("is_legal_file", False),
            mode=data.get("mode", "exact"),
            error=data.get("error"),
        )


# -- copyrights: ScanCode's detector, each distinct input computed once ----------------------
#
# On a tree of real source files two thirds of the licence check's CPU went to ScanCode's
# copyright detection (bench/submission_e2e.py tree, 3,000 files profiled: 98 of 145 s), and
# most of that repeats work: its lexer tries up to 1,092 regular expressions in turn on every
# token ("Copyright", "(c)", "2019", "Google", "LLC" in every file of a package), and the
# grammar then parses the same header block file after file. Both are pure functions of their
# input: a token's label depends on its text alone (every PATTERNS entry is a regex on the
# token's value), and a candidate-line group's detections on the group's texts and their
# relative line numbers. So the label of each token text and the detections of each group are
# remembered (bounded), and detections are moved to the group's own lines. The driver below is
# ScanCode's `cluecode.copyrights.detect_copyrights` with its defaults, step for step (credits
# files first, then the de-marked-up numbered lines, then candidate groups); the answers are
# tested identical to it (tests/compliance/test_licenses_engine.py).

_LABEL_MEMO_MAX = 200_000
_GROUP_MEMO_MAX = 20_000
_NO_LABEL = object()


def _first_chars_of(items, ignore_case: bool) -> tuple[set[str] | None, bool]:
    """(the characters a match of these parsed regex items can start with, or None for any;
    whether they can match the empty string). Sound, not tight: unsure means None."""
    from re import _constants as sre

    found: set[str] = set()
    for op, arg in items:
        if op is sre.AT or op is sre.ASSERT or op is sre.ASSERT_NOT:
            continue  # zero-width: the next item gives the first character
        if op is sre.SUBPATTERN:
            _group, add, delete, sub = arg
            chars, empty = _first_chars_of(sub, (ignore_case or bool(add & sre.SRE_FLAG_IGNORECASE))
                                           and not delete & sre.SRE_FLAG_IGNORECASE)
        elif op is sre.BRANCH:
            chars, empty = set(), False
            for alternative in arg[1]:
                these, alternative_empty = _first_chars_of(alternative, ignore_case)
                if these is None:
                    return None, False
                chars |= these
                empty = empty or alternative_empty
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, _high, sub = arg
            chars, empty = _first_chars_of(sub, ignore_case)
            empty = empty or low == 0
        elif op is sre.LITERAL or op is sre.IN:
            empty = False
            if op is sre.LITERAL:
                chars = {chr(arg)}
            else:
                chars = set()
                for kind, value in arg:
                    if kind is sre.LITERAL:
                        chars.add(chr(value))
                    elif kind is sre.RANGE and value[1] - value[0] <= 400:
                        chars.update(chr(code) for code in range(value[0], value[1] + 1))
                    else:  # NEGATE, CATEGORY (\w, \d...), a wide range
                        return None, False
            if ignore_case:
                if not all(char.isascii() for char in chars):
                    return None, False  # Unicode case folding (K and the Kelvin sign...)
                chars = chars | {char.lower() for char in chars} | {char.upper() for char in chars}
        else:  # ANY, NOT_LITERAL, GROUPREF, ...: anything
            return None, False
        if chars is None:
            return None, False
        found |= chars
        if not empty:
            return found, False
    return found, True


def _first_chars(pattern: str) -> set[str] | None:
    """The characters a `re.match` of `pattern` can start with, or None when any (see above).

    ScanCode's copyright lexer tries its 1,112 token patterns in turn until one matches; most
    start with a literal word ("^Copyright", "^[Ii]nc"), so a token's first character rules out
    all but about 60 of them. Tested label for label against the sequential lexer on 600,000
    tokens (tests/compliance/engine/licenses/test_fast_paths.py)."""
    from re import _parser

    compiled = re.compile(pattern)
    chars, empty = _first_chars_of(_parser.parse(pattern, compiled.flags), bool(compiled.flags & re.IGNORECASE))
    return None if empty else chars


def _memo_detector_make():
    from cluecode.copyrights import GRAMMAR, PATTERNS, VALIDATE, CopyrightDetector
    from pygmars import lex, parse

    class MemoLexer(lex.Lexer):
        """pygmars' Lexer, remembering each token text's label (first matching pattern, or none)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.labels: dict[str, object] = {}
            # For each ASCII first character, the matchers (in order) that can match a token
            # starting with it; a token starting otherwise tries them all.
            firsts = [_first_chars(matcher.__self__.pattern) for matcher, _ in self._matchers]
            self.by_first = {chr(code): [m for m, chars in zip(self._matchers, firsts)
                                         if chars is None or chr(code) in chars] for code in range(128)}

        def lex_tokens(self, tokens, trace=False):
            labels, everything, by_first = self.labels, self._matchers, self.by_first
            for token in tokens:
                value = token.value
                label = labels.get(value)
                if label is None:
                    label = _NO_LABEL
                    for matcher, candidate in by_first.get(value[:1], everything):
                        if matcher(value):
                            label = candidate
                            break
                    if len(labels) >= _LABEL_MEMO_MAX:
                        labels.clear()
                    labels[value] = label
                if label is not _NO_LABEL:
                    token.label = label
                yield token

    class LabelStringParser(parse.Parser):
        """pygmars' Parser without rebuilding the label string for every rule.

        `Rule.parse` encodes the tree's labels as "<A><B>..." (a join over every node), substitutes
        the rule's regex wrapping matches in braces, and rebuilds the tree only if the string
        changed; 400-odd rules a group, so the encoding dominated. Here the string is kept
        between rules and re-encoded only after a rule changed the tree; a rule is applied (the
        same substitution, "{}" removed, the same `ParseString.to_tree`) only where its regex
        finds a match, since a substitution without one leaves the string as it was."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._searches = [rule._transformer.func.__self__.search for rule in self.rules]
            # Which rules changed the tree, by the label string the parse started from. With
            # ScanCode's validation off (its default), what each rule does depends on the
            # labels alone, so the same labels (every "Copyright (c) <year> <Name> Inc." header)
            # are parsed again by applying only those rules, not by searching with all 400-odd.
            self.applied: dict[str, list[int]] = {}

        def _apply(self, tree, rule, changed):
            parse_string = parse.ParseString(tree, validate=rule._validate)
            parse_string._parse_string = changed
            tree = parse_string.to_tree(rule.label)
            return tree, "".join(f"<{node.label}>" for node in tree)

        def parse(self, tree):
            if not tree:
                raise Exception(f"Cannot parse empty tree: {tree!r}")
            if not isinstance(tree, parse.Tree):
                tree = parse.Tree(self._root_label, tree)
            encoded = "".join(f"<{node.label}>" for node in tree)
            applied = self.applied.get(encoded) if not self._validate else None
            if applied is not None:
                for index in applied:
                    rule = self.rules[index]
                    tree, encoded = self._apply(tree, rule, rule._transformer(encoded).replace("{}", ""))
                return tree
            start, applied = encoded, []
            for _ in range(self._loop):
                for index, (rule, search) in enumerate(zip(self.rules, self._searches)):
                    if search(encoded) is None:
                        continue
                    changed = rule._transformer(encoded).replace("{}", "")
                    if changed.rstrip() == encoded.rstrip():
                        continue
                    tree, encoded = self._apply(tree, rule, changed)
                    applied.append(index)
            if len(self.applied) >= _GROUP_MEMO_MAX:
                self.applied.clear()
            self.applied[start] = applied
            return tree

    class MemoDetector(CopyrightDetector):
        def __init__(self):
            self.lexer = MemoLexer(matchers=PATTERNS)
            self.parser = LabelStringParser(grammar=GRAMMAR, loop=1, trace=False, validate=VALIDATE)

    return MemoDetector()


_MEMO_DETECTOR = None
_GROUP_MEMO: dict[tuple, list[tuple[str, str, int, int]]] = {}


def _group_detections(group: list[tuple[int, str]]) -> list[tuple[str, str, int, int]]:
    """(kind, value, start, end) of one candidate-line group, lines relative to its first."""
    global _MEMO_DETECTOR
    first = group[0][0]
    key = tuple((number - first, text) for number, text in group)
    found = _GROUP_MEMO.get(key)
    if found is None:
        if _MEMO_DETECTOR is None:
            _MEMO_DETECTOR = _memo_detector_make()
        found = []
        for detection in _MEMO_DETECTOR.detect(numbered_lines=group):
            for kind in ("copyright", "holder", "author"):
                value = getattr(detection, kind, None)
                if value:
                    found.append((kind, value, detection.start_line - first, detection.end_line - first))
        if len(_GROUP_MEMO) >= _GROUP_MEMO_MAX:
            _GROUP_MEMO.clear()
        _GROUP_MEMO[key] = found
    return [(kind, value, start + first, end + first) for kind, value, start, end in found]


def copyright_statements_detect(*, location: str) -> list[CopyrightStatement]:
    """ScanCode's copyright, holder and author detections of the file at `location` (see above)."""
    from cluecode.linux_credits import detect_credits_authors
    from textcode.analysis import numbered_text_lines

    credits = list(detect_credits_authors(location))
    if credits:  # a CREDITS file: its authors only, as ScanCode does
        return [CopyrightStatement(kind="author", value=d.author, start_line=d.start_line, end_line=d.end_line)
                for d in credits if d.author]
    numbered_lines = list(numbered_text_lines(location, demarkup=True))
    if not numbered_lines:
        return []
    found = []
    groups = [group for group in _candidate_line_groups(numbered_lines) if group]
    for group in groups:
        found.extend(
            CopyrightStatement(kind=kind, value=value, start_line=start, end_line=end)
            for kind, value, start, end in _group_detections(group)
        )
    return found


# Bounded at 50,000 distinct lines: at 200,000 a scanner grew by 122 MB over 3,000 files (nearer its
# recycling limit) against 78 MB, for no measurable CPU (38.5-39.2 against 39.3-40.5 CPU s, same files).
_LINE_MEMO_MAX = 50_000
_PREPARED: dict[str, str] = {}
_CANDIDATE: dict[str, bool] = {}
_RAW: dict[str, tuple[str, bool]] = {}

# _RAW_MAYBE: a line of printable ASCII without "<", ">", "&", "\\" or "mailto:" goes through
# `prepare_text_line` by replacements that only put a space, a quote or " (c) " where
# something was, and by deletions at its ends: no two characters of it are joined and no digit
# or letter appears that it did not hold (checked on every distinct line of a 3,000-file sample, and
# fuzzed: tests/compliance/engine/licenses/test_fast_paths.py). So its prepared text holds a
# year ("19.." or "20..") or a statement marker only if the lowered line holds one of these:
# the markers themselves, "(c" or "c)" or "copy" or "a9" for what becomes " (c) ", and "by"
# followed by anything but a letter or digit for "by " (a space, or what becomes one).
_RAW_MAYBE = re.compile(
    r"[^\t\n\r\x0b\x0c\x20-\x7e]|[<>&\\]|mailto:"
    r"|19|20|\(c|c\)|copy|a9|169|opyr|opyl|copr|right|reserv|auth|filecontributor|devel|by[^a-z0-9]|@|s>|/s"
).search


def _is_candidate(prepared: str) -> bool:
    """ScanCode's `is_candidate(prepared)`, remembered, asking its deciding question first.

    It answers yes only for a line holding a year (1960 to last year: "19.." or "20..") or a
    statement marker, after tests that can only say no (the costly gibberish score among
    them); asked first, and the year pattern only where "19" or "20" occurs, the same answer
    costs a few substring tests for the code lines that hold neither."""
    answer = _CANDIDATE.get(prepared)
    if answer is None:
        from cluecode import copyrights_hint
        from cluecode.copyrights import is_candidate

        answer = False
        if prepared:
            lowered = prepared.lower()
            if any(marker in lowered for marker in copyrights_hint.statement_markers) or (
                    ("19" in prepared or "20" in prepared) and copyrights_hint.years(prepared)):
                answer = bool(is_candidate(prepared))
        if len(_CANDIDATE) >= _LINE_MEMO_MAX:
            _CANDIDATE.clear()
        _CANDIDATE[prepared] = answer
    return answer


def _candidate_line_groups(numbered_lines):
    """ScanCode's `cluecode.copyrights.collect_candidate_lines` (32.5.0), step for step, with
    each line prepared only when its prepared text is used.

    ScanCode prepares every line of the file (`prepare_text_line`: about 40 replacements,
    markup stripping, transliteration) to ask whether it is a candidate, then keeps only the
    candidates and the two lines after each. Here a line whose raw text shows that it cannot be
    a candidate (`_RAW_MAYBE` finds nothing in it: see there) is prepared only if it follows a
    candidate; each distinct line is reduced to its chars-only form, prepared and judged once
    per process. Ported rather than patched (ScanCode has no hook for it); tested group for
    group against ScanCode's own function."""
    from cluecode.copyrights import has_trailing_year, is_end_of_statement, prepare_text_line, remove_non_chars

    raw_memo, prepared_memo = _RAW, _PREPARED

    def prepared_of(line: str) -> str:
        prepared = prepared_memo.get(line)
        if prepared is None:
            if len(prepared_memo) >= _LINE_MEMO_MAX:
                prepared_memo.clear()
            prepared = prepared_memo[line] = prepare_text_line(line)
        return prepared

    candidates: list[tuple[int, str]] = []
    in_copyright = 0
    previous_chars = None
    for ln, line in numbered_lines:
        known = raw_memo.get(line)
        if known is None:
            lowered = line.lower()
            # Lowered, a non-ASCII character can become ASCII (the Kelvin sign): asked of the line.
            known = (remove_non_chars("", lowered).strip(), not line.isascii() or bool(_RAW_MAYBE(lowered)))
            if len(raw_memo) >= _LINE_MEMO_MAX:
                raw_memo.clear()
            raw_memo[line] = known
        chars_only, maybe = known
        if is_end_of_statement(chars_only):
            candidates.append((ln, prepared_of(line)))
            yield candidates
            candidates, in_copyright, previous_chars = [], 0, None
        elif (maybe and _is_candidate(prepared_of(line))) or "http" in chars_only or "s>" in line:
            in_copyright = 2
            candidates.append((ln, prepared_of(line)))
            previous_chars = chars_only
        elif in_copyright > 0:
            if (
                not chars_only
                and not previous_chars.endswith(("copyright", "copyrights", "and", "by", ","))
                and not has_trailing_year(previous_chars)
            ):
                yield candidates
                candidates, in_copyright, previous_chars = [], 0, None
            else:
                candidates.append((ln, prepared_of(line)))
                in_copyright -= 1
        elif candidates:
            yield candidates
            candidates, in_copyright, previous_chars = [], 0, None
    if candidates:
        yield candidates


class LicenseResultCache:
    """sqlite cache of per-content results; safe for several worker processes.

    Keyed by sha256 + engine version + rules version + whether the file is a
    legal file (the same bytes named LICENSE get the full matcher).
    """

    def __init__(self, *, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def get(self, *, key: str) -> dict | None:
        with self._lock:
            row = self._connection.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, *, key: str, value: dict) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )
            self._connection.commit()

    def close(self) -> None:
        self._connection.close()


class LicenseDetector:
    """Detects licences and copyrights in files given as bytes.

    Build one per scan (or per worker); the ScanCode index behind it is
    loaded once per process. `cache_dir` None disables the on-disk cache.
    `strategy` "fast" is the tiered path above; "full" runs ScanCode's full
    matcher on every file with legal words (for comparisons and audits).
    One detector per thread: it reuses one scratch file name per base name.
    """

    def __init__(self, *, cache_dir: str | None = None, copyrights: bool = True, strategy: str = "fast"):
        if strategy not in ("fast", "full"):
            raise ValueError(f"strategy must be 'fast' or 'full', not {strategy!r}")
        self.state = scancode_state_get()
        self.strategy = strategy
        self.copyrights = copyrights
        self.cache = LicenseResultCache(path=os.path.join(cache_dir, "license-cache.sqlite")) if cache_dir else None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="license-scan-")
        # Same bytes in one scan (a LICENSE vendored 40 times) are detected
        # once even without a disk cache; 4,096 entries of a few KB each.
        self._memory: dict[str, dict] = {}
        self.stats = {"files": 0, "cache_hits": 0, "no_legal_text": 0, "exact": 0, "full": 0, "escalated": 0}

    def close(self) -> None:
        if self.cache:
            self.cache.close()
        self._tmpdir.cleanup()

    def __enter__(self) -> "LicenseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the tiers -------------------------------------------------------

    def legal_words_by_line(self, *, text: str) -> dict[int, int]:
        """Count of legal-vocabulary words per 1-based line (only lines with some)."""
        trigger = self.state.trigger_words
        counts: dict[int, int] = {}
        for number, line in enumerate(text.lower().splitlines(), start=1):
            hits = sum(1 for word in _WORD_SPLITTER(line) if word in trigger)
            if hits:
                counts[number] = hits
        return counts

    def has_legal_text(self, *, text: str) -> bool:
        """Prefilter: any word of ScanCode's legal vocabulary in the text?"""
        return not self.state.trigger_words.isdisjoint(_WORD_SPLITTER(text.lower()))

    def _scancode_detect(
        self, *, location: str, approximate: bool, seconds: float | None = None
    ) -> tuple[str | None, list[LicenseMatch]]:
        """Run ScanCode's detection (matching + grouping + expression) on one file."""
        from packagedcode.utils import combine_expressions

        from licensedcode.cache import build_spdx_license_expression

        licensing = self.state.licensing
        expressions = []
        matches: list[LicenseMatch] = []
        deadline = time.time() + seconds if seconds else sys.maxsize
        with fast_candidates_enabled():
            # ScanCode's detect_licenses, less the detections' identifiers (see detections_find).
            detections = detections_find(
                index=self.state.index, location=location, approximate=approximate, deadline=deadline
            )
        for detection in detections:
            if detection.license_expression is not None:
                expressions.append(detection.license_expression)
            for match in detection.matches:
                key_expression = match.rule.license_expression
                matches.append(
                    LicenseMatch(
                        license_expression=str(build_spdx_license_expression(key_expression, licensing=licensing)),
                        license_expression_scancode=key_expression,
                        rule=match.rule.identifier,
                        start_line=int(match.start_line),
                        end_line=int(match.end_line),
                        score=round(float(match.score()), 2),
                        matcher=str(match.matcher),
                        matched_length=int(match.len()),
                        coverage=round(float(match.coverage()), 2),
                    )
                )
        if not expressions:
            return None, matches
        combined = combine_expressions(expressions=expressions, relation="AND", unique=True, licensing=licensing)
        return str(combined), matches

    def _copyrights_detect(self, *, location: str) -> list[CopyrightStatement]:
        return copyright_statements_detect(location=location)

    def copyrights_find(self, *, path: str, data: bytes) -> list[CopyrightStatement]:
        """Copyright statements, holders and authors of one file, with the copyright prefilter.

        What `detect` reports as `copyrights`; bench/copyrights.py times it
        against ScanCode's `get_copyrights`.
        """
        if not copyright_hint_present(data=data):
            return []
        location = os.path.join(self._tmpdir.name, os.path.basename(path) or "file")
        with open(location, "wb") as handle:
            handle.write(data)
        try:
            _file_type_prime(location=location)
            return self._copyrights_detect(location=location)
        finally:
            try:
                os.unlink(location)
            except OSError:
                pass
            _file_type_forget(location=location)

    def detect(self, *, path: str, data: bytes) -> FileLicenseResult:
        """Licences and copyrights of one file; `path` is only used for naming."""
        self.stats["files"] += 1
        sha256 = hashlib.sha256(data).hexdigest()
        is_legal = license_file_is_legal(path=path)
        text = data.decode("utf-8", errors="replace")
        lowered = text.lower()
        words = _WORD_SPLITTER(lowered)
        if self.state.trigger_words.isdisjoint(words):
            self.stats["no_legal_text"] += 1
            return FileLicenseResult(
                path=path, sha256=sha256, size=len(data), license_expression=None,
                license_expression_scancode=None, is_legal_file=is_legal, mode="no-legal-text",
                copyrights=self.copyrights_find(path=path, data=data) if self.copyrights else [],
            )
        key = f"{sha256}:{ENGINE_VERSION}:{self.state.rules_version}:{int(is_legal)}:{self.strategy}:{int(self.copyrights)}"
        cached = self._memory.get(key)
        if cached is None and self.cache:
            cached = self.cache.get(key=key)
        if cached is not None:
            self.stats["cache_hits"] += 1
            result = FileLicenseResult.from_dict({**cached, "path": path})
            result.mode = "cache:" + result.mode.removeprefix("cache:")
            return result
        exact_possible = True
        if self.strategy == "fast":
            readings = scancode_readings(data=data, text=text, path=path, words=words, lowered=lowered)
            if readings is not None:
                exact_filter = exact_match_filter_get()
                if readings[1]:
                    exact_possible = exact_filter.possible_in_order(readings=readings[0])
                else:
                    union = [word for reading in readings[0] for word in reading]
                    exact_possible = exact_filter.possible(tids=exact_filter.token_ids(words=union))
        result = self._detect_uncached(
            path=path, data=data, text=text, sha256=sha256, is_legal=is_legal, exact_possible=exact_possible
        )
        if result.error is None:
            stored = result.to_dict()
            if len(self._memory) >= 4096:
                self._memory.clear()
            self._memory[key] = stored
            if self.cache:
                self.cache.put(key=key, value=stored)
        return result

    def _detect_uncached(
        self, *, path: str, data: bytes, text: str, sha256: str, is_legal: bool, exact_possible: bool = True
    ) -> FileLicenseResult:
        # ScanCode reads files by location (it sniffs type, strips markup,
        # pulls strings from binaries), so the bytes go to a scratch file with
        # the same base name: same input, same answer as a plain ScanCode run.
        location = os.path.join(self._tmpdir.name, os.path.basename(path) or "file")
        with open(location, "wb") as handle:
            handle.write(data)
        # ScanCode keeps the last file's matched-text tokens by location, and
        # our scratch locations repeat (every LICENSE): without this a file's
        # matched text could be an earlier file's. (Kept between the exact and
        # the full pass when the full pass reads the same bytes.)
        matched_text_tokens_forget()
        try:
            # Legal files, too, start with the exact pass: it is right on 74 of
            # 78 licence files (research), and the 4 it gets wrong leave
            # licence prose unexplained, which escalates them below.
            # Copyrights first: an escalation below rewrites the scratch file
            # with only the licence prose, which can drop copyright lines.
            copyrights = []
            hinted = self.copyrights and copyright_hint_present(data=data)
            use_full = self.strategy == "full"
            if hinted or use_full or exact_possible:  # what reads the file through typecode
                _file_type_prime(location=location)
            if hinted:
                copyrights = self._copyrights_detect(location=location)
            started = time.perf_counter()
            if use_full or exact_possible:
                expression, matches = self._scancode_detect(
                    location=location, approximate=use_full, seconds=FULL_MATCH_SECONDS if use_full else None
                )
            else:
                # ExactMatchFilter: the exact pass would find nothing.
                self.stats["exact_skipped"] = self.stats.get("exact_skipped", 0) + 1
                expression, matches = None, []
            mode = "full" if use_full else "exact"
            if (
                not use_full
                and (is_legal or len(data) <= FULL_MATCH_MAX_BYTES)
                and (
                    (expression and any(key in expression for key in FRAGMENT_KEYS))
                    or self._exact_is_uncertain(text=text, matches=matches, is_legal=is_legal)
                )
            ):
                self.stats["escalated"] += 1
                started = time.perf_counter()
                if not is_legal and os.path.basename(path) not in _PROSE_METADATA_NAMES:
                    # Only the legal prose goes to the full matcher; see legal_lines_keep.
                    # A new file, not the old one rewritten: a lazy reader of the
                    # original's matched-text tokens (scancode_index._LazyTokens)
                    # holds it open and must never see the blanked text.
                    os.unlink(location)
                    with open(location, "w", encoding="utf-8") as handle:
                        handle.write(legal_lines_keep(text=text, matches=matches))
                    matched_text_tokens_forget()  # the blanked copy's own words, not the original's
                expression, matches = self._scancode_detect(
                    location=location, approximate=True, seconds=FULL_MATCH_SECONDS
                )
                mode = "full"
            if mode == "full" and time.perf_counter() - started >= FULL_MATCH_SECONDS:
                mode = "full-timeout"
            self.stats[mode] = self.stats.get(mode, 0) + 1
        except Exception as error:  # ScanCode raises bare Exceptions on odd inputs
            return FileLicenseResult(
                path=path, sha256=sha256, size=len(data), license_expression=None,
                license_expression_scancode=None, is_legal_file=is_legal, mode="error",
                error=f"{path}: licence detection failed ({type(error).__name__}: {error}); review this file by hand",
            )
        finally:
            try:
                os.unlink(location)
            except OSError:
                pass
            _file_type_forget(location=location)
        from licensedcode.cache import build_spdx_license_expression

        spdx = str(build_spdx_license_expression(expression, licensing=self.state.licensing)) if expression else None
        return FileLicenseResult(
            path=path, sha256=sha256, size=len(data), license_expression=spdx,
            license_expression_scancode=expression, matches=matches, copyrights=copyrights,
            is_legal_file=is_legal, mode=mode,
        )

    def _exact_is_uncertain(self, *, text: str, matches: list[LicenseMatch], is_legal: bool = False) -> bool:
        """Is there licence prose that no exact match explains (see LICENCE_PROSE_WORDS)?"""
        return unexplained_prose_words(text=text, matches=matches) >= (
            UNEXPLAINED_WORDS_MIN_LEGAL if is_legal else UNEXPLAINED_WORDS_MIN
        )


# Lines within 3 of each other join one block of legal text; 2 lines of margin
# keep a licence's first and last lines (often without a marker word).
KEEP_GAP_LINES = 3
KEEP_MARGIN_LINES = 2


def legal_lines_keep(*, text: str, matches: list[LicenseMatch]) -> str:
    """The text with every line blanked except licence prose and exact matches.

    The full matcher's cost grows with the whole file (candidate selection
    over every token); a 3,000-line CUDA header spends 2 s there for a
    40-line notice. Blanking (not deleting) keeps line numbers, so matches
    still point at the right lines of the original file.
    """
    lines = text.splitlines()
    keep = set()
    for match in matches:
        keep.update(range(match.start_line, match.end_line + 1))
    prose = [n for n, line in enumerate(lines, start=1) if LICENCE_PROSE_WORDS.intersection(_WORD_SPLITTER(line.lower()))]
    block_start = previous = None
    for number in prose + [None]:
        if number is not None and previous is not None and number - previous <= KEEP_GAP_LINES:
            previous = number
            continue
        if block_start is not None:
            keep.update(range(block_start - KEEP_MARGIN_LINES, previous + KEEP_MARGIN_LINES + 1))
        block_start = previous = number
    return "\n".join(line if n in keep else "" for n, line in enumerate(lines, start=1)) + "\n"


def unexplained_prose_words(*, text: str, matches: list[LicenseMatch]) -> int:
    """Most distinct licence-prose words in any 30-line window outside matches and copyright lines."""
    covered = set()
    for match in matches:
        covered.update(range(match.start_line, match.end_line + 1))
    words_by_line: dict[int, set[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if number in covered:
            continue
        lowered = line.lower()
        words = LICENCE_PROSE_WORDS.intersection(_WORD_SPLITTER(lowered))
        if words and not _COPYRIGHT_LINE.search(lowered):
            words_by_line[number] = words
    best = 0
    numbers = sorted(words_by_line)
    for i, first in enumerate(numbers):
        window: set[str] = set()
        for number in numbers[i:]:
            if number - first >= UNEXPLAINED_WINDOW_LINES:
                break
            window |= words_by_line[number]
        best = max(best, len(window))
    return best


# -- warm-up before the scanners fork -----------------------------------------------------------
#
# A scanner is forked from a process that holds ScanCode's index, and shares its pages until it
# writes to them. The first file that reaches each tier (the exact pass, the full matcher, the
# copyright grammar) builds what that tier builds once per process: ScanCode's lazily made
# tables and caches, our copyright detector (1,112 compiled token patterns and their first-character
# table). Built in each scanner, that is each scanner's own memory: a scanner forked from the bare
# index held 45 MB after its first two files and 153 MB after its first full match; forked after
# `detection_warm` had run once in its parent, 4 and 26 MB (bench/scanner_memory.py). So the
# worker's main process warms the detector before its pool forks (compliance.receivers).


def _warm_samples(*, state) -> list[tuple[str, bytes]]:
    """Files that reach every tier: a licence file (full matcher), an Apache header with its
    copyright (exact pass, copyright grammar), an SPDX line, a licence text pasted into a source
    file with a clause edited (escalated to the full matcher), package metadata, a README sentence,
    and a copyright notice without legal words. Licence texts are ScanCode's own."""
    mit = state.licenses_db["mit"].text
    bsd = state.licenses_db["bsd-new"].text.replace("specific\nprior written permission",
                                                      "the express written\nconsent of the authors")
    apache_header = (
        "# Copyright 2024 The Example Authors. All rights reserved.\n#\n"
        '# Licensed under the Apache License, Version 2.0 (the "License");\n'
        "# you may not use this file except in compliance with the License.\n"
        "# You may obtain a copy of the License at\n#\n#     http://www.apache.org/licenses/LICENSE-2.0\n#\n"
        "# Unless required by applicable law or agreed to in writing, software\n"
        '# distributed under the License is distributed on an "AS IS" BASIS,\n'
        "# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.\n"
        "# See the License for the specific language governing permissions and\n"
        "# limitations under the License.\n\n"
        "def add(a, b):\n    return a + b\n")
    commented_bsd = "".join(f"# {line}\n" for line in
                            (f"Copyright (c) 2019-2023, Example Org <dev@example.org>\n\n{bsd}").splitlines())
    return [
        ("LICENSE", f"MIT License\n\nCopyright (c) 2024 Example Org\n\n{mit}".encode()),
        ("src/example/module.py", apache_header.encode()),
        ("src/example/native.c", b"// SPDX-License-Identifier: GPL-2.0-or-later\n/* (c) 2020 Jane Roe */\n"
                                 b"int answer(void) { return 42; }\n"),
        ("src/example/vendored.py", (commented_bsd + "\nVALUE = 1\n").encode()),
        ("PKG-INFO", b"Metadata-Version: 2.1\nName: example\nVersion: 1.0\nLicense: MIT\n"
                     b"Classifier: License :: OSI Approved :: MIT License\n\nReleased under the MIT license.\n"),
        ("README.md", b"# Example\n\nThis project is licensed under the terms of the BSD-3-Clause license.\n"),
        ("notes.txt", "Written by Jane Roe.\n\u00a9 2021 Jane Roe\n".encode()),
    ]


def detection_warm() -> dict:
    """Detect the built-in samples once in this process (see above); returns the detector's
    counts by tier, which say that every tier ran. Answers do not depend on it: every table and
    memo it fills is a function of the bytes alone (tests/compliance/engine/licenses)."""
    from compliance.engine.licenses.scancode_index import heap_trim

    state = scancode_state_get()
    with LicenseDetector(copyrights=True) as detector:
        copyrights = 0
        for path, data in _warm_samples(state=state):
            copyrights += len(detector.detect(path=path, data=data).copyrights)
        stats = dict(detector.stats, copyrights=copyrights)
    heap_trim()
    return stats

"""The fast paths must give ScanCode's own answers: same candidates, no lost match, no lost copyright."""

import struct
import zlib

from compliance.engine.licenses import scancode_index
from compliance.engine.licenses.detect import scancode_readings
from tests.compliance.engine.licenses.conftest import installed_file


def _edited_bsd_licence() -> str:
    """Django's BSD-3-Clause text with a clause reworded, so only the approximate matcher can place it."""
    text = open(installed_file("Django", "licenses/LICENSE"), encoding="utf-8").read()
    return text.replace("Neither the name of", "Neither the registered name nor trade marks of") + (
        "\nThis software is also offered to members of the consortium under separate terms.\n"
    )


def _candidates(query_string: str, *, fast: bool) -> list:
    from licensedcode import match_set
    from licensedcode.query import build_query

    state = scancode_index.scancode_state_get()
    query = build_query(query_string=query_string, idx=state.index)
    run = query.whole_query_run()
    arguments = dict(query_run=run, idx=state.index, matchable_rids=state.index.approx_matchable_rids, top=70)
    if fast:
        with scancode_index.fast_candidates_enabled():
            found = match_set.compute_candidates(**arguments)
    else:
        found = match_set.compute_candidates(**arguments)
    return [(scores, rid, sorted(high)) for scores, rid, _rule, high in found]


def test_fast_candidate_selection_ranks_the_same_rules_as_scancode(license_detector):
    text = _edited_bsd_licence()
    original = _candidates(text, fast=False)
    assert original, "the edited licence should have approximate candidates"
    assert _candidates(text, fast=True) == original


def test_full_matcher_with_fast_candidates_gives_scancode_s_expression(license_detector, tmp_path):
    from licensedcode.detection import detect_licenses

    location = tmp_path / "LICENSE"
    location.write_text(_edited_bsd_licence())
    index = scancode_index.scancode_state_get().index

    def expressions():
        return [d.license_expression for d in detect_licenses(index=index, location=str(location), approximate=True)]

    reference = expressions()
    with scancode_index.fast_candidates_enabled():
        fast = expressions()
    assert fast == reference and "bsd-new" in " ".join(e for e in reference if e)


def test_exact_match_filter_never_skips_a_file_scancode_matches(license_detector):
    from licensedcode.detection import detect_licenses

    exact_filter = scancode_index.exact_match_filter_get()
    index = scancode_index.scancode_state_get().index
    files = [
        installed_file("commoncode", "commoncode/__init__.py"),  # SPDX line + header
        installed_file("Django", "licenses/LICENSE"),  # whole licence text
        installed_file("Django", "django/db/models/query.py"),  # legal-ish words, no licence
        installed_file("PyYAML", "yaml/__init__.py"),
        installed_file("Django", "django/utils/functional.py"),
    ]
    skipped = 0
    for path in files:
        data = open(path, "rb").read()
        readings, ordered = scancode_readings(data=data, text=data.decode("utf-8", "replace"), path=path)
        assert ordered
        possible = exact_filter.possible_in_order(readings=readings)
        found = [d.license_expression for d in detect_licenses(index=index, location=path, approximate=False)]
        assert possible or not found, f"{path}: skipped but ScanCode's exact pass finds {found}"
        skipped += not possible
    assert skipped >= 1  # the filter does skip ordinary code


def test_words_scancode_would_read_are_all_considered():
    # Invalid UTF-8 is read by ScanCode as Latin-1 line by line: both readings count.
    data = "Licen\u00e7a: GPL\n".encode("latin-1") + b"# see the \\nlicense\n"
    readings, ordered = scancode_readings(data=data, text=data.decode("utf-8", "replace"), path="x.py")
    words = {w for reading in readings for w in reading}
    assert not ordered
    assert "licen\u00e7a" in words  # Latin-1 reading
    assert "license" in words  # literal "\n" turned into a space, as ScanCode does in source files
    assert scancode_readings(data=b"\x00\x01bin", text="", path="x.bin") is None


def test_copyright_in_html_entity_without_legal_words_is_found(license_detector):
    data = b"<p>&copy; 2019 Example Widgets Ltd</p>\n"
    result = license_detector.detect(path="page.html", data=data)
    assert "Example Widgets Ltd" in result.holders


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


def test_a_file_is_read_by_its_own_type_not_by_an_earlier_file_of_the_same_name(tmp_path):
    from compliance.engine.licenses import LicenseDetector

    with LicenseDetector(cache_dir=None) as detector:
        image = detector.detect(path="a/notes.txt", data=_png() + b"license")
        text = detector.detect(path="b/notes.txt", data=b"# SPDX-License-Identifier: MIT\nnotes = 1\n")
    assert image.license_expression is None
    assert text.license_expression == "MIT"


def test_copyright_far_from_the_licence_survives_escalation(license_detector):
    licence = "\n".join("# " + line for line in _edited_bsd_licence().splitlines())
    code = "\n".join(f"value_{n} = {n}" for n in range(40))
    data = f"# Copyright 2021 Zebra Analytics GmbH\n{code}\n{licence}\n".encode()
    result = license_detector.detect(path="vendor/zebra.py", data=data)
    assert result.mode == "full"  # the reworded clause sends it to the full matcher
    assert "Zebra Analytics GmbH" in result.holders


def _detect_with_matched_text(detector, *, path: str, data: bytes, lazy: bool) -> dict:
    """One uncached detection with ScanCode's matched-text tokens built lazily or whole (ScanCode's own)."""
    from licensedcode import match

    previous = scancode_index.LAZY_MATCHED_TEXT
    scancode_index.LAZY_MATCHED_TEXT = lazy
    try:
        detector._memory.clear()
        scancode_index._LAZY_TOKENS_CACHE.clear()
        scancode_index._ORIGINAL_TOKENIZE_MATCHED_TEXT.__defaults__[-1].clear()
        assert match.tokenize_matched_text is scancode_index._tokenize_matched_text_lazy
        return detector.detect(path=path, data=data).to_dict()
    finally:
        scancode_index.LAZY_MATCHED_TEXT = previous


def test_lazy_matched_text_gives_scancode_s_tokens_in_order(license_detector):
    from licensedcode.match import _tokenize_matched_text

    index = scancode_index.scancode_state_get().index
    path = installed_file("Django", "licenses/LICENSE")
    whole = list(_tokenize_matched_text(location=path, query_string=None, dictionary=index.dictionary))
    lazy = scancode_index._LazyTokens(
        _tokenize_matched_text(location=path, query_string=None, dictionary=index.dictionary)
    )
    first_line = []
    for token in lazy:  # a reader that stops at the first line, as reportable_tokens does
        if token.line_num > 1:
            break
        first_line.append(token)
    assert first_line == [t for t in whole if t.line_num == 1]
    assert len(lazy._tokens) < len(whole)  # the rest of the licence was not tokenised yet
    assert list(lazy) == whole and list(lazy) == whole  # then whole, and the same again from memory


def test_lazy_matched_text_changes_no_answer(license_detector):
    # A licence header at the top of a long file (the case the laziness is for), a whole licence
    # text, and a reworded licence inside code that escalates to the full matcher on a blanked copy.
    licence = "\n".join("# " + line for line in _edited_bsd_licence().splitlines())
    code = "\n".join(f"value_{n} = {n}" for n in range(40))
    cases = [
        ("commoncode/__init__.py", open(installed_file("commoncode", "commoncode/__init__.py"), "rb").read()),
        ("LICENSE", open(installed_file("Django", "licenses/LICENSE"), "rb").read()),
        ("django/db/models/query.py", open(installed_file("Django", "django/db/models/query.py"), "rb").read()),
        ("vendor/zebra.py", f"# Copyright 2021 Zebra Analytics GmbH\n{code}\n{licence}\n".encode()),
    ]
    from compliance.engine.licenses import LicenseDetector

    with LicenseDetector(cache_dir=None) as detector:  # no disk cache: every detection really runs
        for path, data in cases:
            lazy = _detect_with_matched_text(detector, path=path, data=data, lazy=True)
            whole = _detect_with_matched_text(detector, path=path, data=data, lazy=False)
            assert lazy == whole, path
    assert lazy["mode"] == "full" and "BSD" in (lazy["license_expression"] or "")


def test_a_backslash_without_escapes_adds_no_second_reading():
    data = b"# SPDX-License-Identifier: MIT\npattern = r'\\d+\\s'\n"
    readings, ordered = scancode_readings(data=data, text=data.decode(), path="x.py")
    assert ordered and len(readings) == 1
    assert scancode_index.exact_match_filter_get().possible_in_order(readings=readings)
    escaped = b"text = 'Licensed under the MIT\\nlicense'\n"
    readings, _ = scancode_readings(data=escaped, text=escaped.decode(), path="x.py")
    assert len(readings) == 2 and "mitnlicense" not in readings[1] and "license" in readings[1]


def test_a_file_s_answer_does_not_depend_on_the_file_read_before_it():
    # Same base name, so the same scratch location: ScanCode's matched-text tokens of the
    # first file must not be taken for the second's.
    from compliance.engine.licenses import LicenseDetector

    bsd = open(installed_file("Django", "licenses/LICENSE"), "rb").read()
    mit = open(installed_file("PyYAML", "LICENSE"), "rb").read()
    with LicenseDetector(cache_dir=None) as alone:
        mit_alone = alone.detect(path="b/LICENSE", data=mit).to_dict()
    with LicenseDetector(cache_dir=None) as detector:
        detector.detect(path="a/LICENSE", data=bsd)
        mit_after_bsd = detector.detect(path="b/LICENSE", data=mit).to_dict()
    assert mit_after_bsd == mit_alone and mit_alone["license_expression"] == "MIT"


def _scancode_copyrights(location: str) -> list[tuple]:
    from cluecode.copyrights import detect_copyrights

    found = []
    for detection in detect_copyrights(location, include_authors=True):
        for kind in ("copyright", "holder", "author"):
            value = getattr(detection, kind, None)
            if value:
                found.append((kind, value, detection.start_line, detection.end_line))
    return found


def test_remembered_copyright_detection_gives_scancode_s_answers(tmp_path):
    """The label, group and line memos (detect.copyright_statements_detect) change no answer:
    real files with copyright statements, the same header again lower in another file (the group
    memo moves its lines), a credits file, and files with no statement at all."""
    import importlib.metadata
    import random

    from compliance.engine.licenses import detect

    files = []
    for distribution in ("Django", "numpy", "scancode-toolkit", "sympy", "botocore", "SQLAlchemy"):
        for entry in importlib.metadata.distribution(distribution).files or []:
            path = entry.locate()
            if entry.suffix in (".py", ".c", ".h", ".txt", "") and path.is_file() and path.stat().st_size < 200_000:
                files.append(path)
    sample = random.Random(16).sample(sorted(files), 160)
    header = sample[0].read_bytes()[:4000]
    cases = [(path.name, path.read_bytes()) for path in sample]
    cases.append(("shifted.py", b"\n" * 37 + header))  # a remembered group, 37 lines lower
    cases.append(("CREDITS", b"N: Ada Lovelace\nE: ada@example.org\nD: analytical engine\n\n"
                              b"N: Charles Babbage\nE: cb@example.org\n"))
    cases.append(("plain.py", b"x = 1\nprint(x)\n"))
    with_statements = 0
    for round_ in range(2):  # the second round answers from the memos
        for number, (name, data) in enumerate(cases):
            location = tmp_path / f"{round_}-{number}" / name
            location.parent.mkdir()
            location.write_bytes(data)
            ours = [(c.kind, c.value, c.start_line, c.end_line)
                    for c in detect.copyright_statements_detect(location=str(location))]
            detect._file_type_forget(location=str(location))
            assert ours == _scancode_copyrights(str(location)), name
            with_statements += bool(ours)
    assert with_statements >= 40  # the sample really exercised the detector (28 files a round)
    assert detect._GROUP_MEMO, "the group memo was used"
    assert any(detect._MEMO_DETECTOR.parser.applied.values()), "the parse memo was used"


# -- copyright candidate lines and the lexer: ScanCode's answers, less of its work ----------------

_RISKY_PIECES = list("()Cc|opyrightbBY 19208#*%`\"'ua9x;@s/mailto:\t\n\r\x0b\x0c-_.,[]{}!=<>&\\eEvdlfnK") + [
    "(C)", "( C)", "|copy|", "u00a9", "u00A9", "xa9;", "XA9;", "by", "year>", "<year>", "(co ", " u'", "dnl ",
    "rem ", " %s ", "class=x", "@end", "http://www.w3.org/2000/svg", "mailto:", "2019", "[?]", "&copy;", "&#169;",
    "<b>", "</s>", "\u00a9", "\xa0", "\u212a", "\u017f", "\u00e9", "\u2013",
]


def test_a_line_the_raw_test_passes_over_is_never_a_copyright_candidate():
    """detect._RAW_MAYBE lets a line skip ScanCode's preparation only when its prepared text cannot
    be a candidate: fuzzed with the pieces the preparation rewrites (a marker split by a tag, a
    "(C)" that becomes "(c)", "by" before what turns into a space, characters outside ASCII),
    and on every line of real files. Fails if a marker or the year test is dropped from it."""
    import random

    from cluecode.copyrights import is_candidate, prepare_text_line
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from compliance.engine.licenses import detect

    def skipped(line: str) -> bool:
        return line.isascii() and not detect._RAW_MAYBE(line.lower())

    @settings(max_examples=3000, deadline=None, derandomize=True)
    @given(st.lists(st.sampled_from(_RISKY_PIECES), min_size=1, max_size=14).map("".join))
    def never_hidden(line):
        if skipped(line):
            assert not is_candidate(prepare_text_line(line)), repr(line)

    never_hidden()
    rng = random.Random(16)
    passed_over = 0
    for _ in range(40_000):
        line = "".join(rng.choice(_RISKY_PIECES) for _ in range(rng.randint(1, 12)))
        if skipped(line):
            passed_over += 1
            assert not is_candidate(prepare_text_line(line)), repr(line)
    real = 0
    for distribution, name in (("Django", "django/db/models/query.py"), ("numpy", "numpy/__init__.py"),
                               ("scancode-toolkit", "cluecode/copyrights.py")):
        for line in open(installed_file(distribution, name), encoding="utf-8").read().splitlines(keepends=True):
            if skipped(line):
                real += 1
                assert not is_candidate(prepare_text_line(line)), repr(line)
    assert passed_over > 5_000 and real > 1_000  # the test really exercised the shortcut


def test_candidate_line_groups_are_scancode_s():
    """detect._candidate_line_groups (lines prepared only when used) gives the groups of ScanCode's
    own collect_candidate_lines, on real files and on lines made to sit on its state changes
    (a candidate, then continuation and empty lines, an end of statement, an http line)."""
    import importlib.metadata
    import random

    from cluecode.copyrights import collect_candidate_lines

    from compliance.engine.licenses import detect

    texts = []
    for distribution in ("Django", "numpy", "botocore", "SQLAlchemy"):
        for entry in importlib.metadata.distribution(distribution).files or []:
            if entry.suffix in (".py", ".c", ".h", ".txt", ""):
                path = entry.locate()
                if path.is_file() and path.stat().st_size < 200_000:
                    texts.append(path.read_text(encoding="utf-8", errors="replace"))
    texts = random.Random(16).sample(texts, 150)
    rng = random.Random(17)
    states = ["Copyright (c) 2019 Example Inc.", "All rights reserved.", "", "   ", "by", "and", "Copyright",
              "h.t.t.p: //example.org", "x = 1", "<s>Debian Maintainer</s>", "Author: Ada <ada@example.org>",
              "Portions (C) 1998, 2003", "# written by the team,", "\u00a9 2021 \u00c9quipe"]
    for _ in range(150):
        texts.append("\n".join(rng.choice(states) for _ in range(rng.randint(1, 30))))
    grouped = 0
    for text in texts:
        numbered = list(enumerate(text.splitlines(keepends=True), start=1))
        ours = [group for group in detect._candidate_line_groups(numbered) if group]
        assert ours == [list(group) for group in collect_candidate_lines(numbered) if group]
        grouped += bool(ours)
    assert grouped > 100


def test_the_lexer_s_first_character_table_gives_scancode_s_labels():
    """The copyright lexer tries only the patterns a token's first character allows
    (detect._first_chars): the same label as trying all 1,112 in turn, on the words of real files
    and on random tokens, ASCII or not (case folding: the Kelvin sign matches a "k" pattern)."""
    import random
    import re

    from cluecode.copyrights import PATTERNS

    from compliance.engine.licenses import detect

    everything = [(re.compile(pattern).match, label) for pattern, label in PATTERNS]
    lexer = detect._memo_detector_make().lexer

    def label_of(matchers, value):
        return next((label for matcher, label in matchers if matcher(value)), None)

    tokens = set()
    for distribution, name in (("Django", "django/db/models/query.py"), ("scancode-toolkit", "cluecode/copyrights.py"),
                               ("numpy", "numpy/__init__.py")):
        tokens.update(open(installed_file(distribution, name), encoding="utf-8").read().split())
    rng = random.Random(16)
    alphabet = [chr(code) for code in range(32, 127)] + ["\u212a", "\u017f", "\u0130", "\u00e9", "\u00a9"]
    tokens.update("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))) for _ in range(20_000))
    # Case-insensitive patterns ("(?i:opy...)"): the same words in other cases.
    tokens.update([value.upper() for value in tokens] + [value.swapcase() for value in tokens] + ["OPYRIGHTS"])
    labelled = 0
    for value in sorted(tokens):
        expected = label_of(everything, value)
        assert label_of(lexer.by_first.get(value[:1], everything), value) == expected, repr(value)
        labelled += expected is not None
    assert labelled > 5_000
    assert sum(map(len, lexer.by_first.values())) / 128 < 100  # the table really narrows the search


def test_the_unknown_licence_automaton_is_dropped_and_asking_for_it_says_why(tmp_path):
    """The loaded index holds no unknown-licence automaton (3.1 M nodes, 194 MB of every checks
    worker): detection as the portal runs it still finds the licence, and asking ScanCode for
    unknown-licence matching raises an error naming the reason, not a silent wrong answer."""
    import pytest
    from licensedcode.detection import detect_licenses

    state = scancode_index.scancode_state_get()
    assert isinstance(state.index.unknown_automaton, scancode_index._UnknownAutomatonDropped)
    location = tmp_path / "LICENSE"
    location.write_bytes(open(installed_file("PyYAML", "LICENSE"), "rb").read())
    found = list(detect_licenses(index=state.index, location=str(location)))
    assert [d.license_expression for d in found] == ["mit"]
    with pytest.raises(RuntimeError, match="unknown-licence matching"):
        list(detect_licenses(index=state.index, location=str(location), unknown_licenses=True))


_RULE_TABLES_DIGEST = r"""
import hashlib, json, os, sys
from licensedcode.cache import LICENSE_INDEX_DIR, LICENSE_INDEX_FILENAME, load_cache_file
from scancode_config import licensedcode_cache_dir

def digest(msets, postings, length):
    h = hashlib.sha256()
    for rid in range(length):
        mset, high = msets[rid], postings[rid]
        h.update(repr((rid, type(mset).__name__, None if mset is None else list(mset.items()))).encode())
        h.update(repr((rid, None if high is None else [(t, a.typecode, a.tolist()) for t, a in high.items()])).encode())
    return h.hexdigest()

if __name__ == "__main__":
    index = load_cache_file(os.path.join(licensedcode_cache_dir, LICENSE_INDEX_DIR, LICENSE_INDEX_FILENAME)).index
    print(json.dumps({"type": type(index.msets_by_rid).__name__, "length": len(index.tids_by_rid),
                      "digest": digest(index.msets_by_rid, index.high_postings_by_rid, len(index.tids_by_rid))}))
"""


def test_the_rule_tables_made_on_demand_equal_scancodes_own_for_every_rule(tmp_path):
    """`msets_by_rid` and `high_postings_by_rid` (171 MB of every checks worker) are made from the
    rules' token ids when asked: for every one of the 37,542 rules, in content, key order, array
    type and None-ness, they equal the tables ScanCode's pickled index holds, read in a separate
    process; and the memo that keeps the last few thousand is bounded."""
    import json
    import subprocess
    import sys

    state = scancode_index.scancode_state_get()
    index = state.index
    assert isinstance(index.msets_by_rid, scancode_index._RuleTable)
    assert isinstance(index.high_postings_by_rid, scancode_index._RuleTable)
    script = tmp_path / "digest.py"
    script.write_text(_RULE_TABLES_DIGEST)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=600)
    original = json.loads(done.stdout.strip().splitlines()[-1])
    assert original["type"] == "list"  # ScanCode's own tables, not ours
    namespace: dict = {}
    exec(compile(_RULE_TABLES_DIGEST.split('if __name__')[0], "digest", "exec"), namespace)
    length = len(index.tids_by_rid)
    assert original["length"] == length > 30_000
    assert namespace["digest"](index.msets_by_rid, index.high_postings_by_rid, length) == original["digest"]
    assert len(index.msets_by_rid.memo) <= scancode_index._RULE_TABLE_MEMO_MAX
    import pytest

    with pytest.raises(IndexError):
        index.msets_by_rid[length]


def test_the_warm_up_runs_every_tier_of_the_detector():
    """`detection_warm` (run by the checks worker's main process before its pool forks) reaches the
    exact pass, an escalation to the full matcher, the copyright grammar and the prefilter: were a
    sample to stop reaching its tier (a ScanCode upgrade), the scanners would build that tier's
    tables each for itself again."""
    from compliance.engine.licenses.detect import detection_warm

    tiers = detection_warm()
    assert tiers["files"] == 7
    assert tiers["exact"] >= 4 and tiers["full"] >= 1 and tiers["escalated"] >= 1
    assert tiers["no_legal_text"] >= 1 and tiers["copyrights"] >= 8


def _detections_summary(detections) -> list:
    return [
        (d.license_expression, list(d.detection_log),
         [(m.rule.identifier, m.start_line, m.end_line, m.score(), m.matcher, m.len(), str(m.qspan))
          for m in d.matches])
        for d in detections
    ]


def test_detections_without_identifiers_are_scancode_s_detections(license_detector, tmp_path):
    # Exact and full passes over files that reach ScanCode: headers, whole licences, an
    # SPDX line, a reworded licence (full matcher), and code with legal-ish words only.
    from licensedcode.detection import detect_licenses

    edited = tmp_path / "LICENSE"
    edited.write_text(_edited_bsd_licence())
    files = [
        str(edited),
        installed_file("commoncode", "commoncode/__init__.py"),
        installed_file("Django", "licenses/LICENSE"),
        installed_file("Django", "django/db/models/query.py"),
        installed_file("PyYAML", "LICENSE"),
        installed_file("scancode-toolkit", "summarycode/score.py"),
        installed_file("scancode-toolkit", "packagedcode/npm.py"),
    ]
    index = scancode_index.scancode_state_get().index
    found_any = 0
    for location in files:
        for approximate in (False, True):
            reference = list(detect_licenses(index=index, location=location, approximate=approximate))
            with scancode_index.fast_candidates_enabled():
                fast = scancode_index.detections_find(index=index, location=location, approximate=approximate,
                                                      deadline=float("inf"))
            assert _detections_summary(fast) == _detections_summary(reference), (location, approximate)
            found_any += bool(reference)
            # What ScanCode computes and the portal never reads is left unset, nothing else.
            assert all(d.identifier is None for d in fast)
    assert found_any >= 8


def test_false_positive_test_asks_relevance_first_with_scancode_s_answer(license_detector):
    # Rules of relevance below 100 take ScanCode's own path (their matched text is read);
    # the answer is ScanCode's for every rule, and some are false positives.
    from licensedcode import detection

    scancode_index.false_positive_fast_install()
    state = scancode_index.scancode_state_get()
    # Length-one rules ("GPL", bare licence tags) are ScanCode's false positives when alone.
    single = [rule for rule in state.index.rules_by_rid if rule.relevance < 100 and rule.length == 1][:30]
    low = single + [rule for rule in state.index.rules_by_rid if rule.relevance < 100 and 3 <= rule.length <= 30][:40]
    high = [rule for rule in state.index.rules_by_rid if rule.relevance == 100 and 3 <= rule.length <= 30][:20]
    answers = []
    for rule in low + high:
        matches = state.index.match(query_string=rule.text, approximate=False)
        if not matches:
            continue
        reference = scancode_index._ORIGINAL_IS_FALSE_POSITIVE(license_matches=matches)
        with scancode_index.fast_candidates_enabled():
            fast = detection.is_false_positive(license_matches=matches)
        assert fast == reference, rule.identifier
        answers.append(reference)
    assert True in answers and False in answers and len(answers) >= 40


def _type_answers(location: str) -> tuple:
    """What ScanCode's text reading asks of a file's type (textcode.analysis.numbered_text_lines)."""
    from typecode import contenttype

    t = contenttype.get_type(location)
    return (t.contains_text, t.is_pdf, t.is_binary, t.is_text, t.is_text_with_long_lines, t.is_compact_js,
            t.is_js_map, t.filetype_file == "data", t.filetype_file.startswith("Spline Font Database"))


def test_a_plain_text_description_spares_the_mime_question_and_changes_no_answer(tmp_path, monkeypatch):
    """`_file_type_prime` asks libmagic for the MIME type only where the description is not plain
    text: on real files of many kinds (sources, scripts, JSON, CSV, .po, HTML, very long lines,
    CRLF) and on media and PDF (which must still be asked), typecode answers what it answers alone."""
    import importlib.metadata
    import random

    from typecode import magic2

    from compliance.engine.licenses import detect

    files = []
    for distribution in ("Django", "numpy", "scancode-toolkit", "botocore", "SQLAlchemy", "Pygments", "weasyprint"):
        for entry in importlib.metadata.distribution(distribution).files or []:
            path = entry.locate()
            if path.is_file() and 0 < path.stat().st_size < 300_000 and entry.suffix not in (".pyc", ".so"):
                files.append(path)
    cases = [(p.name, p.read_bytes()) for p in random.Random(7).sample(sorted(files), 400)]
    cases += [
        ("image.png", _png()), ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><!-- Copyright 2020 X --></svg>'),
        ("icon.txt", b'<svg xmlns="http://www.w3.org/2000/svg"><!-- Copyright 2020 X --></svg>'),
        ("doc.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"),
        ("pic.pbm", b"P1\n2 2\n0 1\n1 0\n"), ("long.js", b"var a=1;" * 5000), ("crlf.txt", b"Copyright 2020 A\r\nline\r\n"),
        ("data.csv", b"a,b,c\n1,2,3\n4,5,6\n"), ("utf8.py", "# © 2021 Ünïcode GmbH\nx = 1\n".encode()),
    ]
    mime_asked = []
    real_mime = magic2.mime_type
    monkeypatch.setattr(magic2, "mime_type", lambda location: mime_asked.append(location) or real_mime(location))
    spared, asked = 0, set()
    for number, (name, data) in enumerate(cases):
        location = tmp_path / str(number) / name
        location.parent.mkdir()
        location.write_bytes(data)
        alone = _type_answers(str(location))
        detect._file_type_forget(location=str(location))
        before = len(mime_asked)
        detect._file_type_prime(location=str(location))
        primed = _type_answers(str(location))
        detect._file_type_forget(location=str(location))
        assert primed == alone, name
        if len(mime_asked) == before:
            spared += 1
        else:
            asked.add(name)
    assert spared >= 300, "most real text files are described as plain text"
    assert {"image.png", "logo.svg", "icon.txt", "doc.pdf", "pic.pbm"} <= asked  # never guessed

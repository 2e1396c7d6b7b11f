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

"""Reference code index: winnowing fingerprints of known code, in one sqlite file.

Layout of `<index_dir>/code-index.sqlite`:
  meta(key, value)            k, w, tokenizer version, index format
  packages(id, name, version, license_expression, root, files, fingerprints)
  files(id, package_id, path, lines, tokens, sha256, label, license_expression,
        fingerprints BLOB, token_stream BLOB)
  postings(hash, file_id)     WITHOUT ROWID, primary key (hash, file_id)

A file's fingerprints are one BLOB (20 bytes each: hash, token position,
first and last line), read only for candidate files; postings answer "which
reference files contain this hash" and, by their count, how common a hash is.
`token_stream` (zlib of 16-bit token ids and line deltas, about 1 byte a
token) lets the scanner verify a short candidate region token by token;
`line_hashes` (16-bit hash of each stripped source line, 0 for lines too
plain to count) tells a verbatim short copy from the same idiom written
twice (see scan.VERIFY_MIN_LINE_AGREEMENT).
`files.license_expression` is the file's own licence, from its header
(SPDX-License-Identifier tag or licence notice), or NULL when the header
names none: vendored files often carry another licence than their package
(numpy's `_utils/_pep440.py` is BSD-2-Clause inside a BSD-3-Clause package;
vllm files adapted from other projects add MIT notices). Fingerprints common to many reference
files are kept: transformers copies code between its model files ("Copied
from"), and the research prototype lost the signal when they were dropped;
the scanner instead attributes a match to the cluster of siblings.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from compliance.engine.codematch.labels import code_label
from compliance.engine.codematch.tokens import TOKENIZER_VERSION, code_tokens, path_is_code
from compliance.engine.codematch.winnow import FINGERPRINT_DTYPE, K_GRAM, WINDOW, fingerprints_compute, token_stream_pack
from compliance.engine.licenses.sources import members_from

INDEX_FILE_NAME = "code-index.sqlite"
# Format 2 added files.license_expression and files.token_stream; 3 adds files.line_hashes.
INDEX_FORMAT = "codematch-index-3"
DEFAULT_INDEX_DIR = os.path.join("var", "code-index")

# Generated or minified files above 2 MiB are not code anyone copies by hand,
# and one of them costs as much as 500 ordinary files to fingerprint.
MAX_REFERENCE_FILE_BYTES = 2 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, license_expression TEXT,
    root TEXT, files INTEGER NOT NULL DEFAULT 0, fingerprints INTEGER NOT NULL DEFAULT 0,
    indexed_at REAL, UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    path TEXT NOT NULL, lines INTEGER NOT NULL, tokens INTEGER NOT NULL, sha256 TEXT NOT NULL,
    label TEXT NOT NULL, license_expression TEXT, fingerprints BLOB NOT NULL, token_stream BLOB, line_hashes BLOB
);
CREATE INDEX IF NOT EXISTS files_package ON files (package_id);
CREATE TABLE IF NOT EXISTS postings (hash INTEGER NOT NULL, file_id INTEGER NOT NULL, PRIMARY KEY (hash, file_id)) WITHOUT ROWID;
"""


# A file's own licence is stated in its first lines: SPDX tags and notices
# sit above the imports (transformers, vllm, megatron, numpy's vendored
# files all within the first 30 lines); 60 leaves room for a module docstring.
HEADER_LINES = 60
# A header needs 3 distinct licence-prose words outside copyright lines before
# the licence detector is asked ("Licensed under the MIT License." has 3);
# code lines in a header reach 1-2 ("distributed", "source").
HEADER_PROSE_WORDS_MIN = 3
_SPDX_TAG_RE = re.compile(r"SPDX-License-Identifier:\s*(.+?)\s*(?:\*/|-->|#\}|$)", re.MULTILINE)
_COPYRIGHT_LINE_RE = re.compile(r"^\W*(?:copyright\b|\(c\)|©|spdx-)", re.IGNORECASE)
_COMMENT_LEAD_RE = re.compile(r"^\s*(?:#+|//+|/\*+|\*+/?|--|;+|\"\"\"|\'\'\')?\s?")
_WORD_RE = re.compile(r"[a-z]+")

_detector = None
_detector_failed = False


def _license_detector():
    """The ScanCode-backed detector, loaded once per process (about 10 s) and only when a header needs it."""
    global _detector, _detector_failed
    if _detector is None and not _detector_failed:
        try:
            from compliance.engine.licenses.detect import LicenseDetector

            _detector = LicenseDetector(copyrights=False)
        except Exception:  # ScanCode missing or its index unreadable: SPDX tags still work
            _detector_failed = True
    return _detector


def header_license_detect(*, text: str) -> str | None:
    """The licence a source file's header states for this file, as SPDX, or None.

    Cheap by design, because every reference file passes here: an
    SPDX-License-Identifier tag alone is taken as written; a header with
    licence prose goes to the licence detector's exact pass, fed only the
    prose lines with comment markers and copyright lines removed, so the same
    notice under different years and holders (thousands of transformers
    files) is one cached detection.
    """
    from compliance.engine.licenses.detect import LICENCE_PROSE_WORDS

    lines = text.splitlines()[:HEADER_LINES]
    tags = []
    for line in lines:
        found = _SPDX_TAG_RE.search(line)
        if found:
            tags.append(found.group(1).strip().rstrip(".;,").strip())
    words: set[str] = set()
    prose_lines: list[int] = []
    for number, line in enumerate(lines):
        if "SPDX-" in line or _COPYRIGHT_LINE_RE.match(line.strip()):
            continue
        line_words = set(_WORD_RE.findall(line.lower())) & LICENCE_PROSE_WORDS
        if line_words:
            words |= line_words
            prose_lines.append(number)
    # The notice is the prose lines and the short gaps between them (a URL
    # line, a clause without a marker word); code after it is left out.
    keep = set(prose_lines)
    for before, after in zip(prose_lines, prose_lines[1:]):
        if after - before <= 3:
            keep.update(range(before, after))
    kept = [_COMMENT_LEAD_RE.sub("", lines[number]).rstrip() for number in sorted(keep)
            if "SPDX-" not in lines[number] and not _COPYRIGHT_LINE_RE.match(lines[number].strip())]
    if len(words) < HEADER_PROSE_WORDS_MIN:
        return " AND ".join(dict.fromkeys(tags)) if tags else None
    detector = _license_detector()
    if detector is None:
        return " AND ".join(dict.fromkeys(tags)) if tags else None
    notice = "\n".join(kept) + "\n"
    if tags:
        notice = "".join(f"SPDX-License-Identifier: {tag}\n" for tag in tags) + notice
    result = detector.detect(path="header.txt", data=notice.encode("utf-8"))
    return result.license_expression or (" AND ".join(dict.fromkeys(tags)) if tags else None)


# A line counts for line agreement when it holds a name of 3+ characters
# and 8+ characters in all: `)`, `}`, `else:`, `return x` say nothing.
_LINE_NAME_RE = re.compile(r"[A-Za-z_]\w{2,}")
LINE_MIN_CHARS = 8


def line_hashes_compute(*, text: str) -> np.ndarray:
    """16-bit hash of each stripped line (index 0 is line 1); 0 marks lines too plain to count."""
    import zlib

    hashes = np.zeros(text.count("\n") + 1, dtype=np.uint16)
    for number, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if len(stripped) >= LINE_MIN_CHARS and _LINE_NAME_RE.search(stripped):
            hashes[number] = (zlib.crc32(stripped.encode("utf-8", "replace")) & 0xFFFF) or 1
    return hashes


def line_hashes_pack(*, text: str) -> bytes:
    import zlib

    return zlib.compress(line_hashes_compute(text=text).tobytes(), 6)


def line_hashes_unpack(blob: bytes) -> np.ndarray:
    import zlib

    return np.frombuffer(zlib.decompress(blob), dtype=np.uint16)


@dataclass
class ReferenceIndexSummary:
    """What `code_index_add` stored."""

    name: str
    version: str
    license_expression: str | None
    root: str
    files: int
    fingerprints: int
    skipped: int
    seconds: float
    index_path: str
    files_with_own_license: int = 0
    license_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def code_index_path(*, index_dir: str) -> str:
    return os.path.join(index_dir, INDEX_FILE_NAME)


def code_index_connect(*, index_dir: str, create: bool = False) -> sqlite3.Connection:
    """Open (or create) the index database with the settings every caller needs."""
    path = code_index_path(index_dir=index_dir)
    if not create and not os.path.exists(path):
        raise FileNotFoundError(
            f"{path}: no code index here; build one with `manage.py index_reference PATH --name N --version V`"
        )
    os.makedirs(index_dir, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.executescript(_SCHEMA)
    stored = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    expected = {"k": str(K_GRAM), "w": str(WINDOW), "tokenizer": TOKENIZER_VERSION, "format": INDEX_FORMAT}
    if not stored:
        connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", expected.items())
        connection.commit()
    elif any(stored.get(k) != v for k, v in expected.items()):
        raise ValueError(
            f"{path}: built with {stored}, this engine uses {expected}; rebuild the index (delete the file and "
            "re-run index_reference for each package)"
        )
    return connection


def code_index_digest(*, connection: sqlite3.Connection) -> str:
    """A digest of the index as last built: its format, and every package with what it was indexed
    from, its licence, file and fingerprint counts and when; plus the file table's extent. It changes
    whenever a package is (re)indexed or removed, so whatever is derived from the index (the
    memory-mapped postings, cached per-file scan results) is keyed by it."""
    digest = hashlib.sha256()
    for row in connection.execute("SELECT key, value FROM meta ORDER BY key"):
        digest.update(repr(row).encode("utf-8"))
    for row in connection.execute("SELECT id, name, version, license_expression, files, fingerprints, indexed_at "
                                  "FROM packages ORDER BY id"):
        digest.update(repr(row).encode("utf-8"))
    digest.update(repr(connection.execute("SELECT MAX(id), COUNT(*) FROM files").fetchone()).encode("utf-8"))
    return digest.hexdigest()[:24]


def reference_root_resolve(*, path_or_package: str) -> tuple[str, str | None, str | None]:
    """(root directory, version, licence) for a path or an importable package name."""
    if os.path.exists(path_or_package):
        return os.path.abspath(path_or_package), None, None
    spec = importlib.util.find_spec(path_or_package)
    if spec is None:
        raise FileNotFoundError(f"{path_or_package}: neither a path nor an importable package")
    if spec.submodule_search_locations:
        root = list(spec.submodule_search_locations)[0]
    elif spec.origin:
        root = spec.origin
    else:
        raise FileNotFoundError(f"{path_or_package}: package has no files on disk")
    version = None
    license_expression = None
    try:
        distributions = importlib.metadata.packages_distributions().get(path_or_package.split(".")[0], [])
        if distributions:
            dist = importlib.metadata.distribution(distributions[0])
            version = dist.version
            license_expression = dist.metadata.get("License-Expression")
    except importlib.metadata.PackageNotFoundError:
        pass
    return root, version, license_expression


def code_index_add(
    *,
    index_dir: str,
    source: str | Iterable[tuple[str, bytes]],
    name: str,
    version: str | None = None,
    license_expression: str | None = None,
    file_licenses: bool = True,
) -> ReferenceIndexSummary:
    """Fingerprint every code file of `source` and store it as package name@version.

    `source` is a directory, a file, an archive, an importable package name
    (e.g. "transformers"), or an iterable of (relative path, bytes).
    Re-indexing the same name and version replaces the earlier entry.
    `file_licenses` detects each file's own licence from its header (see
    `header_license_detect`); a match then carries that licence.
    """
    started = time.perf_counter()
    root_label = "(members)"
    if isinstance(source, str):
        root, found_version, found_license = reference_root_resolve(path_or_package=source)
        version = version or found_version
        license_expression = license_expression or found_license
        root_label = root
        members = members_from(source=root)
    else:
        members = source
    version = version or "unknown"
    # Labels are read from the path with its top folder: an installed package's files are
    # stored relative to it ("v1/worker/gpu_worker.py"), which hides the project's own name
    # ("vllm/"), one of the strongest cues (bench/codelabels.py: held-out file accuracy
    # 77.0 % without it, 81.4 % with it).
    label_root = os.path.basename(os.path.normpath(root_label)) if os.path.isdir(root_label) else name
    label_prefix = label_root.rstrip("/") + "/"
    connection = code_index_connect(index_dir=index_dir, create=True)
    try:
        connection.execute("DELETE FROM postings WHERE file_id IN (SELECT f.id FROM files f JOIN packages p ON p.id = f.package_id WHERE p.name = ? AND p.version = ?)", (name, version))
        connection.execute("DELETE FROM packages WHERE name = ? AND version = ?", (name, version))
        cursor = connection.execute(
            "INSERT INTO packages (name, version, license_expression, root, indexed_at) VALUES (?, ?, ?, ?, ?)",
            (name, version, license_expression, root_label, time.time()),
        )
        package_id = cursor.lastrowid
        files = fingerprints_total = skipped = own_licensed = 0
        license_seconds = 0.0
        for path, data in members:
            if not path_is_code(path=path) or len(data) > MAX_REFERENCE_FILE_BYTES:
                continue
            text = data.decode("utf-8", errors="replace")
            tokens = code_tokens(path=path, text=text)
            prints = fingerprints_compute(tokens=tokens)
            if len(prints) == 0:
                skipped += 1
                continue
            own_license = None
            if file_licenses:
                license_started = time.perf_counter()
                own_license = header_license_detect(text=text)
                license_seconds += time.perf_counter() - license_started
                own_licensed += own_license is not None
            cursor = connection.execute(
                "INSERT INTO files (package_id, path, lines, tokens, sha256, label, license_expression, fingerprints, "
                "token_stream, line_hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (package_id, path, text.count("\n") + 1, prints.token_count, hashlib.sha256(data).hexdigest(),
                 code_label(path=path if path.startswith(label_prefix) else label_prefix + path, text=text),
                 own_license, prints.array.tobytes(),
                 token_stream_pack(tokens=tokens), line_hashes_pack(text=text)),
            )
            file_id = cursor.lastrowid
            unique = np.unique(prints.array["hash"])
            connection.executemany(
                "INSERT OR IGNORE INTO postings (hash, file_id) VALUES (?, ?)", ((int(h), file_id) for h in unique)
            )
            files += 1
            fingerprints_total += len(prints)
        connection.execute(
            "UPDATE packages SET files = ?, fingerprints = ? WHERE id = ?", (files, fingerprints_total, package_id)
        )
        connection.commit()
    finally:
        connection.close()
    return ReferenceIndexSummary(
        name=name, version=version, license_expression=license_expression, root=root_label, files=files,
        fingerprints=fingerprints_total, skipped=skipped, seconds=round(time.perf_counter() - started, 2),
        index_path=code_index_path(index_dir=index_dir), files_with_own_license=own_licensed,
        license_seconds=round(license_seconds, 2),
    )


def file_fingerprints_load(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=FINGERPRINT_DTYPE)

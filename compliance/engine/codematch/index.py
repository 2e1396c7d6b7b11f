"""Reference code index: winnowing fingerprints of known code, in one sqlite file.

Layout of `<index_dir>/code-index.sqlite`:
  meta(key, value)            k, w, tokenizer version
  packages(id, name, version, license_expression, root, files, fingerprints)
  files(id, package_id, path, lines, tokens, sha256, label, fingerprints BLOB)
  postings(hash, file_id)     WITHOUT ROWID, primary key (hash, file_id)

A file's fingerprints are one BLOB (20 bytes each: hash, token position,
first and last line), read only for candidate files; postings answer "which
reference files contain this hash". Fingerprints common to many reference
files are kept: transformers copies code between its model files ("Copied
from"), and the research prototype lost the signal when they were dropped;
the scanner instead attributes a match to the cluster of siblings.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from compliance.engine.codematch.labels import code_label
from compliance.engine.codematch.tokens import code_tokens, path_is_code
from compliance.engine.codematch.winnow import FINGERPRINT_DTYPE, K_GRAM, WINDOW, fingerprints_compute
from compliance.engine.licenses.sources import members_from

INDEX_FILE_NAME = "code-index.sqlite"
TOKENIZER_VERSION = "codematch-tokens-1"
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
    label TEXT NOT NULL, fingerprints BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS files_package ON files (package_id);
CREATE TABLE IF NOT EXISTS postings (hash INTEGER NOT NULL, file_id INTEGER NOT NULL, PRIMARY KEY (hash, file_id)) WITHOUT ROWID;
"""


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
    expected = {"k": str(K_GRAM), "w": str(WINDOW), "tokenizer": TOKENIZER_VERSION}
    if not stored:
        connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", expected.items())
        connection.commit()
    elif any(stored.get(k) != v for k, v in expected.items()):
        raise ValueError(
            f"{path}: built with {stored}, this engine uses {expected}; rebuild the index (delete the file and "
            "re-run index_reference for each package)"
        )
    return connection


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
) -> ReferenceIndexSummary:
    """Fingerprint every code file of `source` and store it as package name@version.

    `source` is a directory, a file, an archive, an importable package name
    (e.g. "transformers"), or an iterable of (relative path, bytes).
    Re-indexing the same name and version replaces the earlier entry.
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
    connection = code_index_connect(index_dir=index_dir, create=True)
    try:
        connection.execute("DELETE FROM postings WHERE file_id IN (SELECT f.id FROM files f JOIN packages p ON p.id = f.package_id WHERE p.name = ? AND p.version = ?)", (name, version))
        connection.execute("DELETE FROM packages WHERE name = ? AND version = ?", (name, version))
        cursor = connection.execute(
            "INSERT INTO packages (name, version, license_expression, root, indexed_at) VALUES (?, ?, ?, ?, ?)",
            (name, version, license_expression, root_label, time.time()),
        )
        package_id = cursor.lastrowid
        files = fingerprints_total = skipped = 0
        for path, data in members:
            if not path_is_code(path=path) or len(data) > MAX_REFERENCE_FILE_BYTES:
                continue
            text = data.decode("utf-8", errors="replace")
            prints = fingerprints_compute(tokens=code_tokens(path=path, text=text))
            if len(prints) == 0:
                skipped += 1
                continue
            cursor = connection.execute(
                "INSERT INTO files (package_id, path, lines, tokens, sha256, label, fingerprints) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (package_id, path, text.count("\n") + 1, prints.token_count, hashlib.sha256(data).hexdigest(),
                 code_label(path=path, text=text), prints.array.tobytes()),
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
        index_path=code_index_path(index_dir=index_dir),
    )


def file_fingerprints_load(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=FINGERPRINT_DTYPE)

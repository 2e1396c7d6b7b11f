"""The index's postings (hash -> reference files) as sorted numpy arrays, memory-mapped.

Looking a vendor file's 100-1,000 distinct hashes up in sqlite (`hash IN (...)`
in chunks of 500) cost several ms a file; a binary search in a sorted array
costs tens of microseconds. The arrays are derived from the sqlite index, which
stays the only thing `code_index_add` writes (same index format):

  <index_dir>/code-index.postings-<key>/hashes.npy   int64, distinct hashes, ascending
                                        offsets.npy  int64, len(hashes) + 1: hash i's files are
                                                     files[offsets[i]:offsets[i + 1]]
                                        files.npy    int32, reference file ids, ascending per hash
                                        packages.npy int32, package id of each file id (index = file id)
                                        fingerprints.npy  every file's fingerprints (FINGERPRINT_DTYPE),
                                                     in file id order
                                        fingerprint_offsets.npy  int64, file id i's are
                                                     fingerprints[fingerprint_offsets[i]:...[i + 1]]

`<key>` is `index.code_index_digest` (the format, the packages table: ids,
names, versions, licences, file and fingerprint counts, indexing times, and the
file table's extent): any
`code_index_add` changes it, so a stale copy is never read. The first matcher
after a change writes the folder (about 1 s per million postings, atomically:
a temporary folder renamed into place) and removes older ones; every later
matcher, in any process, maps it read-only, so the two scan processes of a
check share one copy in the page cache. When the folder cannot be written
(read-only index directory), the arrays are built in memory instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile

import numpy as np

from compliance.engine.codematch.index import code_index_digest
from compliance.engine.codematch.winnow import FINGERPRINT_DTYPE

_PREFIX = "code-index.postings-"
_NAMES = ("hashes", "offsets", "files", "packages", "fingerprints", "fingerprint_offsets")


def _arrays_build(*, connection: sqlite3.Connection) -> dict[str, np.ndarray]:
    """The four arrays from the sqlite tables (postings are read in primary-key order: hash, file id)."""
    hash_chunks, file_chunks = [], []
    cursor = connection.execute("SELECT hash, file_id FROM postings ORDER BY hash, file_id")
    while True:
        rows = cursor.fetchmany(200_000)
        if not rows:
            break
        pairs = np.array(rows, dtype=np.int64)
        hash_chunks.append(pairs[:, 0])
        file_chunks.append(pairs[:, 1].astype(np.int32))
    all_hashes = np.concatenate(hash_chunks) if hash_chunks else np.zeros(0, dtype=np.int64)
    files = np.concatenate(file_chunks) if file_chunks else np.zeros(0, dtype=np.int32)
    if len(all_hashes):
        starts = np.flatnonzero(np.concatenate(([True], all_hashes[1:] != all_hashes[:-1])))
    else:
        starts = np.zeros(0, dtype=np.int64)
    hashes = all_hashes[starts]
    offsets = np.append(starts, len(all_hashes)).astype(np.int64)
    file_rows = connection.execute("SELECT id, package_id FROM files").fetchall()
    max_id = max((row[0] for row in file_rows), default=0)
    packages = np.full(max_id + 1, -1, dtype=np.int32)
    for file_id, package_id in file_rows:
        packages[file_id] = package_id
    # Every file's fingerprint BLOB, end to end in file id order: a candidate's
    # fingerprints are a slice of the mapped array instead of a sqlite row read.
    counts = np.zeros(max_id + 1, dtype=np.int64)
    blobs = []
    for file_id, blob in connection.execute("SELECT id, fingerprints FROM files ORDER BY id"):
        counts[file_id] = len(blob) // FINGERPRINT_DTYPE.itemsize
        blobs.append(blob)
    fingerprints = np.frombuffer(b"".join(blobs), dtype=FINGERPRINT_DTYPE) if blobs else np.zeros(0, FINGERPRINT_DTYPE)
    fingerprint_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return {"hashes": hashes, "offsets": offsets, "files": files, "packages": packages,
            "fingerprints": fingerprints, "fingerprint_offsets": fingerprint_offsets}


def postings_load(*, connection: sqlite3.Connection, index_dir: str) -> dict[str, np.ndarray]:
    """The arrays for this index, memory-mapped from their folder (written first when missing or stale)."""
    # One read transaction: the key and the arrays come from the same snapshot
    # even while `index_reference` commits another package (WAL readers).
    own_transaction = not connection.in_transaction
    if own_transaction:
        connection.execute("BEGIN")
    try:
        key = code_index_digest(connection=connection)
        folder = os.path.join(index_dir, _PREFIX + key)
        arrays = None if os.path.isdir(folder) else _arrays_build(connection=connection)
    finally:
        if own_transaction:
            connection.execute("COMMIT")
    if arrays is not None:
        try:
            temporary = tempfile.mkdtemp(prefix=".postings-", dir=index_dir)
            os.chmod(temporary, 0o755)  # as readable as the sqlite file beside it (mkdtemp makes it 0700)
            for name in _NAMES:
                np.save(os.path.join(temporary, name + ".npy"), arrays[name])
            try:
                os.rename(temporary, folder)
            except OSError:  # another process renamed its copy first: same content
                shutil.rmtree(temporary, ignore_errors=True)
            for entry in os.listdir(index_dir):
                if entry.startswith(_PREFIX) and entry != _PREFIX + key:
                    shutil.rmtree(os.path.join(index_dir, entry), ignore_errors=True)
        except OSError:
            return arrays  # read-only index directory: keep them in memory
    try:
        return {name: np.load(os.path.join(folder, name + ".npy"), mmap_mode="r") for name in _NAMES}
    except (OSError, ValueError):  # removed meanwhile by a matcher of a newer index: build in memory
        return _arrays_build(connection=connection)


class PostingsTable:
    """Which reference files hold each hash, restricted to a set of packages when given."""

    def __init__(self, *, connection: sqlite3.Connection, index_dir: str, package_ids: list[int] | None):
        arrays = postings_load(connection=connection, index_dir=index_dir)
        hashes, offsets, files = arrays["hashes"], arrays["offsets"], arrays["files"]
        if package_ids is not None:
            # Keep only the chosen packages' postings (a copy in memory, at most the full size).
            file_packages = arrays["packages"]
            keep = np.isin(file_packages[files], np.asarray(package_ids, dtype=np.int32))
            counts = np.add.reduceat(keep.astype(np.int64), offsets[:-1]) if len(files) else np.zeros(0, np.int64)
            present = counts > 0
            hashes = np.asarray(hashes)[present]
            files = np.asarray(files)[keep]
            offsets = np.concatenate(([0], np.cumsum(counts[present]))).astype(np.int64)
        self.hashes = np.asarray(hashes)
        self.offsets = np.asarray(offsets)
        self.files = np.asarray(files)
        self._fingerprints = arrays["fingerprints"]
        self._fingerprint_offsets = arrays["fingerprint_offsets"]

    def fingerprints(self, file_id: int) -> np.ndarray | None:
        """The file's fingerprints as stored in its row (a view of the mapped array), None if unknown."""
        if file_id + 1 >= len(self._fingerprint_offsets):
            return None
        return np.asarray(
            self._fingerprints[int(self._fingerprint_offsets[file_id]) : int(self._fingerprint_offsets[file_id + 1])])

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For int64 `hashes`: (which are in the index: bool mask, start, end offsets into `files`)."""
        if len(self.hashes) == 0 or len(hashes) == 0:
            empty = np.zeros(len(hashes), dtype=np.int64)
            return np.zeros(len(hashes), dtype=bool), empty, empty
        index = np.searchsorted(self.hashes, hashes)
        index_clipped = np.minimum(index, len(self.hashes) - 1)
        found = np.asarray(self.hashes[index_clipped] == hashes)
        starts = np.asarray(self.offsets[index_clipped])
        ends = np.asarray(self.offsets[index_clipped + 1])
        return found, starts, ends

    def frequency(self, hashes: np.ndarray) -> np.ndarray:
        """How many (selected) reference files hold each hash (0 when none)."""
        found, starts, ends = self.lookup(hashes)
        return np.where(found, ends - starts, 0)

"""Find code copied from indexed reference packages in a vendor tree.

For each vendor code file: fingerprint it, look its hashes up in the index,
take the reference files sharing the most hashes as candidates, and align
shared fingerprints into regions (runs where both sides advance together),
so a match carries line ranges on both sides and survives reordered
functions (each function is its own region). Regions that cover the same
vendor lines in several reference files are one match attributed to the
best reference file, with the others listed as siblings: transformers
copies the same attention block into dozens of model files, and the vendor
copied from one of them, not all.

Short copies (10-30 lines) share only 1-5 fingerprints with their origin,
as many as unrelated code shares by chance. Regions under the fingerprint
thresholds are therefore verified token by token against the reference
file's token stream kept in the index (`_region_verify`): accepted when at
least 40 masked tokens run identically on both sides, the run is not
repetitive (20 distinct token pairs), and half its source lines are the same
(or the run is 100+ tokens long). Rarity (how many reference files hold a
hash) was measured and is no evidence by itself: unrelated stdlib modules
share hashes found in a single reference file as often as copies do
(bench/codematch.py); it only nominates extra candidate files to verify.
A match carries the reference file's own licence when its header states one
(see index.header_license_detect), else the package's.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from compliance.engine.codematch.index import (
    code_index_digest,
    code_index_connect,
    file_fingerprints_load,
    line_hashes_compute,
    line_hashes_unpack,
)
from compliance.engine.codematch.labels import code_label
from compliance.engine.codematch.postings import PostingsTable
from compliance.engine.codematch.tokens import code_tokens, path_is_code
from compliance.engine.codematch.winnow import (
    K_GRAM,
    fingerprints_compute,
    token_id_array,
    token_ids,
    token_stream_unpack,
)
from compliance.engine.licenses.sources import members_from

# A region needs 8 distinct shared fingerprints: about 70 tokens, 7-10 lines
# of dense Python. Unrelated files reach at most 13 shared fingerprints in
# total (research), scattered over 1-3 token runs; bench/codematch.py
# measures precision per threshold.
MIN_REGION_FINGERPRINTS = 8
# Reordered functions break a copy into one region per function, and short
# functions (5-15 lines) give only 3-7 fingerprints each once the k-grams that
# straddled the old boundaries are gone. Regions of 3+ fingerprints count when,
# together, they share at least 20 with the same reference file: unrelated
# files reach at most 13 in total, scattered (research), not in aligned runs.
MIN_SMALL_REGION_FINGERPRINTS = 3
MIN_FILE_FINGERPRINTS = 20
# Two shared fingerprints stay in one region if they are at most 80 tokens
# apart on both sides: a few inserted or deleted lines do not split a copy.
REGION_GAP_TOKENS = 80
# Candidates per vendor file that get a full alignment (by shared-hash count).
MAX_CANDIDATES = 60
# A hash found in more than 2,000 reference files is boilerplate (imports,
# `super().__init__()`); it still counts inside regions but does not nominate
# candidates, which keeps a lookup at a few ms.
CANDIDATE_MAX_DOCUMENT_FREQUENCY = 2000
# Reference files scoring at least 90 % of the best on the same vendor lines
# are siblings of the origin (the same code copied within the reference).
SIBLING_RATIO = 0.9
# Regions scoring at least 60 % of the best on the same vendor lines compete
# to be the origin; the reference file sharing the most overall wins.
CONTENDER_RATIO = 0.6
MAX_SIBLINGS = 25
# Verification of short regions (see CodeMatcher._region_verify). Thresholds
# from bench/codematch.py, 300 unrelated standard-library modules against the
# 20,029-file index: masked runs alone do not separate copies from idioms
# (a deprecated getter/setter pair in configparser and rdflib, __getstate__ /
# state_dict pairs: 53-62 tokens, 22-24 distinct token pairs, while copied
# 10-line methods give 34-79 tokens, 14-41 pairs). Requiring half of the
# span's non-trivial source lines to be identical on both sides as well
# (copies: 0.55-1.0, idioms under 0.5) leaves, at 40 tokens and 20 pairs,
# six stdlib modules matched, each a real copy in an indexed package (lxml's
# _elementpath, numpy's _inspect, django's vendored makedirs and
# _enter_context, pygments' commonprefix, celery's and scipy's namedtuple /
# ChainMap code) and no false one. Runs of 100+ tokens (12+ lines) need no
# line agreement, so short copies with renamed identifiers still count:
# idiom runs in the negatives stop at 62.
VERIFY_MIN_FINGERPRINTS = 1
VERIFY_MIN_TOKENS = 40
VERIFY_MIN_DISTINCT_BIGRAMS = 20
VERIFY_MIN_LINE_AGREEMENT = 0.5
VERIFY_MASKED_MIN_TOKENS = 100
# Runs on one diagonal at most 12 tokens apart (a changed line) are one copy.
VERIFY_GAP_TOKENS = 12
# Beyond the MAX_CANDIDATES by shared-hash count, the 10 files sharing the
# rarest hashes (sum of log(N / document frequency), hashes in at most 200
# files) are checked too, their shared hashes as seeds: a short copy may
# share fewer than the 3 hashes the count needs (on the 20,021-file index,
# +2 partial-10 and +2 partial-20 found; 30 files found no more). Rarity
# alone is no evidence: 15 % of the negatives' verified
# runs hold a hash found in at most 3 reference files, 17 % of true short
# copies do (transformers copies its code between models).
VERIFY_CANDIDATES = 10
VERIFY_CANDIDATE_MAX_DOCUMENT_FREQUENCY = 200
# Regions the fingerprint count accepts with 8-15 fingerprints (not through
# the reference-file rule) must also be non-repetitive: stdlib opcode.py
# matched transformers' integrations/__init__.py with 8 fingerprints over two
# lists of one-line calls, 8 distinct token pairs; true copies in this class
# have 24-60 (bench, transformers index).
REPETITION_CHECK_BELOW_FINGERPRINTS = 16
REPETITION_MIN_DISTINCT_BIGRAMS = 12


# Reference files' hashes kept as Python lists between vendor files, at most this many in all.
HASH_LIST_CACHE_FINGERPRINTS = 2_000_000


@dataclass
class MatchOrigin:
    name: str
    version: str
    path: str
    lines: list[int]
    license_expression: str | None  # the reference file's own licence if its header states one, else the package's
    siblings: list[str] = field(default_factory=list)
    sibling_count: int = 0
    package_license_expression: str | None = None
    license_source: str | None = None  # "file" (header or SPDX tag), "package", or None when neither is known

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CodeMatch:
    """A region of a vendor file that matches indexed reference code."""

    path: str
    lines: list[int]
    origin: MatchOrigin
    license_expression: str | None
    label: str
    score: int
    query_coverage: float
    origin_coverage: float
    # Tokens found identical on both sides when a short region was verified token by token; None otherwise.
    matched_tokens: int | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["origin"] = self.origin.to_dict()
        return data


@dataclass
class CodeScanResult:
    matches: list[CodeMatch]
    files_scanned: int
    code_files: int
    files_with_matches: int
    index_packages: list[dict]

    def to_dict(self) -> dict:
        return {
            "matches": [m.to_dict() for m in self.matches],
            "files_scanned": self.files_scanned,
            "code_files": self.code_files,
            "files_with_matches": self.files_with_matches,
            "index_packages": self.index_packages,
        }


@dataclass
class _Region:
    file_id: int
    q_first: int
    q_last: int
    r_first: int
    r_last: int
    hashes: set
    q_positions: list
    pairs: list = field(default_factory=list)  # (query fingerprint index, reference fingerprint index)
    accepted: bool = False
    file_rule: bool = False  # the reference file shares 20+ fingerprints in regions of 3+ with the vendor file
    # Set by the token verification: matched tokens and line ranges on both sides.
    matched_tokens: int | None = None
    lines_override: tuple | None = None

    @property
    def score(self) -> int:
        return len(self.hashes)


def _run_extend(q_ids: np.ndarray, r_ids: np.ndarray, q: int, r: int) -> tuple[int, int, int]:
    """The longest identical token run through q (vendor) and r (reference): (q start, r start, length).

    The scanner uses `_run_extend_bytes` (same result, faster); this numpy
    version is the reference the tests compare it with."""
    right = 0
    while True:
        n = min(64 if right < 64 else 512, len(q_ids) - q - right, len(r_ids) - r - right)
        if n <= 0:
            break
        equal = q_ids[q + right : q + right + n] == r_ids[r + right : r + right + n]
        if equal.all():
            right += n
            continue
        right += int(np.argmin(equal))
        break
    left = 0
    while True:
        n = min(64 if left < 64 else 512, q - left, r - left)
        if n <= 0:
            break
        equal = q_ids[q - left - n : q - left][::-1] == r_ids[r - left - n : r - left][::-1]
        if equal.all():
            left += n
            continue
        left += int(np.argmin(equal))
        break
    return q - left, r - left, left + right


def _common_prefix(a: bytes, a_start: int, b: bytes, b_start: int, limit: int) -> int:
    """Tokens equal from a_start and b_start onwards (2-byte tokens), at most `limit`.

    Byte-slice comparisons (memcmp) in chunks, then a binary search in the
    chunk that differs: a few hundred ns where numpy's compare, all and argmin
    on small slices cost several us per seed.
    """
    length = 0
    step = 32
    while length < limit:
        n = min(step, limit - length)
        a0, b0 = 2 * (a_start + length), 2 * (b_start + length)
        if a[a0 : a0 + 2 * n] == b[b0 : b0 + 2 * n]:
            length += n
            step = 256
            continue
        low, high = 0, n  # the first `low` tokens are equal, the first `high` are not
        while high - low > 1:
            middle = (low + high) // 2
            if a[a0 : a0 + 2 * middle] == b[b0 : b0 + 2 * middle]:
                low = middle
            else:
                high = middle
        return length + low
    return length


def _common_suffix(a: bytes, a_end: int, b: bytes, b_end: int, limit: int) -> int:
    """Tokens equal just before a_end and b_end (going left), at most `limit`."""
    length = 0
    step = 32
    while length < limit:
        n = min(step, limit - length)
        a1, b1 = 2 * (a_end - length), 2 * (b_end - length)
        if a[a1 - 2 * n : a1] == b[b1 - 2 * n : b1]:
            length += n
            step = 256
            continue
        low, high = 0, n
        while high - low > 1:
            middle = (low + high) // 2
            if a[a1 - 2 * middle : a1] == b[b1 - 2 * middle : b1]:
                low = middle
            else:
                high = middle
        return length + low
    return length


def _run_extend_bytes(q_bytes: bytes, r_bytes: bytes, q: int, r: int) -> tuple[int, int, int]:
    """`_run_extend` on the token ids as bytes (2 per token): the same (q start, r start, length)."""
    q_count, r_count = len(q_bytes) // 2, len(r_bytes) // 2
    right = _common_prefix(q_bytes, q, r_bytes, r, max(0, min(q_count - q, r_count - r)))
    left = _common_suffix(q_bytes, q, r_bytes, r, max(0, min(q, r)))
    return q - left, r - left, left + right


def _regions_align(query: np.ndarray, reference: np.ndarray, file_id: int, *, q_hashes: list[int] | None = None,
                   q_set: set | None = None, r_hashes: list[int] | None = None,
                   q_index: dict[int, list[int]] | None = None, q_sorted: np.ndarray | None = None) -> list[_Region]:
    """Chain shared fingerprints into regions that advance together on both sides.

    `q_hashes`, `q_set`, `r_hashes`, `q_index`, `q_sorted`: the two files' hashes
    as Python lists, the query's as a set, as hash -> its indices (ascending) and
    as a sorted distinct array, when the caller keeps them across candidates."""
    # Only query fingerprints whose hash the reference holds can change any
    # state below (the others were skipped at the top of the loop), so the
    # loop visits just those, and the reference's positions are indexed only
    # for shared hashes: the same regions, without building a dict of every
    # reference fingerprint (most candidates share a few dozen hashes).
    if q_hashes is None:
        q_hashes = query["hash"].tolist()
    if q_set is None:
        q_set = set(q_hashes)
    if r_hashes is None:
        r_hashes = reference["hash"].tolist()
    positions_by_hash: dict[int, list[int]] = defaultdict(list)
    if q_sorted is not None and len(r_hashes) > 64:
        # A long reference file: find its shared fingerprints with a binary
        # search in the query's sorted hashes (the same indices, ascending).
        r_array = reference["hash"]
        found = np.searchsorted(q_sorted, r_array)
        np.minimum(found, len(q_sorted) - 1, out=found)
        for index in np.flatnonzero(q_sorted[found] == r_array).tolist():
            positions_by_hash[r_hashes[index]].append(index)
    else:
        for index, h in enumerate(r_hashes):
            if h in q_set:
                positions_by_hash[h].append(index)
    if not positions_by_hash:
        return []
    regions: list[_Region] = []
    open_regions: list[tuple[int, int, _Region]] = []  # (last q token pos, last r token pos, region)
    q_pos = query["pos"].tolist()
    r_pos = reference["pos"].tolist()
    if q_index is None:
        shared_q = [(qi, h) for qi, h in enumerate(q_hashes) if h in positions_by_hash]
    else:  # the same pairs, in vendor order, from the caller's hash -> query indices map
        shared_q = sorted((qi, h) for h in positions_by_hash for qi in q_index[h])
    gap = REGION_GAP_TOKENS
    back = -REGION_GAP_TOKENS // 4
    r_positions: dict[int, list[int]] = {}
    for qi, h in shared_q:
        r_indices = positions_by_hash[h]
        qp = q_pos[qi]
        placed = False
        for slot, (last_q, last_r, region) in enumerate(open_regions):
            advance = qp - last_q
            if advance > gap:
                continue
            # The reference occurrence whose step best matches the vendor's
            # (the first of equals), among steps within the gap.
            best = None
            if len(r_indices) <= 8:
                best_diff = 0
                for ri in r_indices:
                    step = r_pos[ri] - last_r
                    if back <= step <= gap:
                        diff = abs(step - advance)
                        if best is None or diff < best_diff:
                            best = ri
                            best_diff = diff
            else:
                # A hash repeated in the reference (2,639 times in one unicode
                # table): its positions ascend with the index, so the steps
                # within the gap are one slice, and the closest step to the
                # vendor's is one of the two around it (the lower on a tie, as
                # the scan above keeps the first of equals).
                positions = r_positions.get(h)
                if positions is None:
                    positions = r_positions[h] = [r_pos[ri] for ri in r_indices]
                low = bisect_left(positions, last_r + back)
                high = bisect_right(positions, last_r + gap)
                if low < high:
                    target = last_r + advance
                    at = bisect_left(positions, target, low, high)
                    if at == high or (at > low and target - positions[at - 1] <= positions[at] - target):
                        at -= 1
                    best = r_indices[at]
            if best is not None:
                region.q_last = qi
                if best < region.r_first:
                    region.r_first = best
                if best > region.r_last:
                    region.r_last = best
                region.hashes.add(h)
                region.q_positions.append(qi)
                region.pairs.append((qi, best))
                open_regions[slot] = (qp, r_pos[best], region)
                placed = True
                break
        if not placed:
            # Start one region per occurrence only for the first few: a
            # boilerplate hash present 40 times in one reference file would
            # otherwise open 40 regions.
            for ri in r_indices[:4]:
                region = _Region(file_id=file_id, q_first=qi, q_last=qi, r_first=ri, r_last=ri, hashes={h},
                                 q_positions=[qi], pairs=[(qi, ri)])
                regions.append(region)
                open_regions.append((qp, r_pos[ri], region))
        open_regions = [entry for entry in open_regions if qp - entry[0] <= REGION_GAP_TOKENS]
    small = [r for r in regions if r.score >= MIN_SMALL_REGION_FINGERPRINTS]
    file_rule = len(set().union(*(r.hashes for r in small))) >= MIN_FILE_FINGERPRINTS if small else False
    for region in regions:
        region.accepted = region.score >= MIN_REGION_FINGERPRINTS or (file_rule and region.score >= MIN_SMALL_REGION_FINGERPRINTS)
        region.file_rule = file_rule
    return regions


class CodeMatcher:
    """Scans vendor code against one index directory; reuse it across files.

    ``packages``, a list of (name, version), restricts the scan to those indexed packages (a
    programme's policy lists the corpora it compares against); the index then behaves as if
    it held only them, document frequencies included. None scans every indexed package."""

    def __init__(self, *, index_dir: str, packages: Iterable[tuple[str, str]] | None = None):
        self.index_dir = index_dir
        self.connection: sqlite3.Connection = code_index_connect(index_dir=index_dir)
        self.packages = {
            row[0]: {"name": row[1], "version": row[2], "license_expression": row[3], "files": row[4]}
            for row in self.connection.execute("SELECT id, name, version, license_expression, files FROM packages")
        }
        self._package_ids: list[int] | None = None
        if packages is not None:
            wanted = {(str(name), str(version or "")) for name, version in packages}
            self.packages = {pid: p for pid, p in self.packages.items()
                             if (p["name"], p["version"] or "") in wanted}
            self._package_ids = sorted(self.packages)
        self._table = PostingsTable(connection=self.connection, index_dir=index_dir, package_ids=self._package_ids)
        self._file_meta: dict[int, tuple] = {}
        self._streams: dict[int, tuple | None] = {}
        self._stream_bytes_cache: dict[int, bytes] = {}
        self._hash_lists: dict[int, list[int]] = {}
        self._hash_list_total = 0
        if self._package_ids is None:
            self.file_count = max(1, self.connection.execute("SELECT COUNT(*) FROM files").fetchone()[0])
        else:
            marks = ",".join("?" * len(self._package_ids))
            self.file_count = max(1, self.connection.execute(
                f"SELECT COUNT(*) FROM files WHERE package_id IN ({marks})", self._package_ids).fetchone()[0])
        # Files looked at; skipped as too small to hold a fingerprint; screened out
        # (no reference file nominated: see file_match); aligned and verified.
        self.stats = {"files": 0, "too_small": 0, "screened_out": 0, "full_path": 0}
        # Bench hook: when a list, every verified region's features are appended.
        self.verify_log: list | None = None

    def close(self) -> None:
        self.connection.close()

    def _postings_ordered(self, query_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The query's distinct hashes that the (selected) index holds, with where their files are.

        Returned in the order the sqlite lookup this replaces produced them
        (distinct hashes in set order, in chunks of 500, each chunk ascending):
        candidate ranking breaks ties by first appearance, so the same order
        keeps every answer the same. Returns (hashes, starts, ends) into
        `self._table.files`.
        """
        unique_hashes = list({int(h) for h in query_hashes.tolist()})
        ordered = np.concatenate([np.sort(np.array(unique_hashes[start : start + 500], dtype=np.int64))
                                  for start in range(0, len(unique_hashes), 500)]) if unique_hashes else np.zeros(0, np.int64)
        found, starts, ends = self._table.lookup(ordered)
        return ordered[found], starts[found], ends[found]

    def _file(self, file_id: int) -> tuple:
        meta = self._file_meta.get(file_id)
        if meta is None:
            prints = self._table.fingerprints(file_id)
            if prints is not None:  # the row without its BLOBs (they sit after these columns: no overflow pages read)
                row = self.connection.execute(
                    "SELECT package_id, path, tokens, label, license_expression FROM files WHERE id = ?", (file_id,),
                ).fetchone()
                meta = (row[0], row[1], row[2], row[3], prints, row[4])
            else:
                row = self.connection.execute(
                    "SELECT package_id, path, tokens, label, fingerprints, license_expression FROM files WHERE id = ?",
                    (file_id,),
                ).fetchone()
                meta = (row[0], row[1], row[2], row[3], file_fingerprints_load(row[4]), row[5])
            if len(self._file_meta) > 5000:
                self._file_meta.clear()
            self._file_meta[file_id] = meta
        return meta

    def _stream(self, file_id: int) -> tuple | None:
        """The reference file's token ids, token lines and line hashes, for verification (None in an index without them)."""
        if file_id in self._streams:
            return self._streams[file_id]
        row = self.connection.execute("SELECT token_stream, line_hashes FROM files WHERE id = ?", (file_id,)).fetchone()
        stream = None
        if row and row[0] and row[1]:
            stream = (*token_stream_unpack(row[0]), line_hashes_unpack(row[1]))
        if len(self._streams) > 2000:
            self._streams.clear()
        self._streams[file_id] = stream
        return stream

    def _hash_list(self, file_id: int) -> list[int]:
        """The reference file's fingerprint hashes as Python ints (kept beside `_file`'s cache)."""
        cached = self._hash_lists.get(file_id)
        if cached is None:
            cached = self._file(file_id)[4]["hash"].tolist()
            # Bounded by fingerprints held (36 bytes each as Python ints: about 70 MB), not by files.
            self._hash_list_total += len(cached)
            if self._hash_list_total > HASH_LIST_CACHE_FINGERPRINTS:
                self._hash_lists.clear()
                self._hash_list_total = len(cached)
            self._hash_lists[file_id] = cached
        return cached

    def _stream_bytes(self, file_id: int, r_ids: np.ndarray) -> bytes:
        cached = self._stream_bytes_cache.get(file_id)
        if cached is None:
            if len(self._stream_bytes_cache) > 2000:
                self._stream_bytes_cache.clear()
            cached = self._stream_bytes_cache[file_id] = np.ascontiguousarray(r_ids, dtype=np.uint16).tobytes()
        return cached

    def _candidates_rank(self, query_hashes: np.ndarray) -> tuple[list[int], list[int], dict[int, int]]:
        """(files to align, files sharing the rarest hashes, hash -> document frequency of shared hashes).

        Files to align: the MAX_CANDIDATES files sharing the most distinct
        hashes held by at most CANDIDATE_MAX_DOCUMENT_FREQUENCY files (at least
        MIN_SMALL_REGION_FINGERPRINTS of them). Rare files: the
        VERIFY_CANDIDATES files with the largest sum of log(N / frequency) over
        shared hashes held by at most VERIFY_CANDIDATE_MAX_DOCUMENT_FREQUENCY
        files. Ties go to the file seen first in posting order, as
        Counter.most_common did when this was a loop (the weights are summed in
        the same order, with math.log, so they are the same floats).
        """
        shared, starts, ends = self._postings_ordered(query_hashes)
        frequency = ends - starts
        postings = dict(zip(shared.tolist(), frequency.tolist()))
        files = self._table.files

        def gather(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lengths = frequency[mask]
            total = int(lengths.sum())
            if total == 0:
                return np.zeros(0, dtype=np.int64), lengths
            begin = np.repeat(starts[mask] - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
            return np.asarray(files[begin + np.arange(total)], dtype=np.int64), lengths

        def ranked(ids: np.ndarray, scores: np.ndarray, first: np.ndarray, count: int) -> list[int]:
            order = np.lexsort((first, -scores))[:count]
            return ids[order].tolist()

        candidates: list[int] = []
        common_files, _ = gather(frequency <= CANDIDATE_MAX_DOCUMENT_FREQUENCY)
        if len(common_files):
            ids, first, counts = np.unique(common_files, return_index=True, return_counts=True)
            top = ranked(ids, counts, first, MAX_CANDIDATES)
            count_of = dict(zip(ids.tolist(), counts.tolist()))
            candidates = [fid for fid in top if count_of[fid] >= MIN_SMALL_REGION_FINGERPRINTS]
        rare_files: list[int] = []
        rare = frequency <= VERIFY_CANDIDATE_MAX_DOCUMENT_FREQUENCY
        rare_postings, lengths = gather(rare)
        if len(rare_postings):
            weight_of = {f: math.log(self.file_count / f) for f in set(lengths.tolist())}
            posting_weights = np.repeat(np.array([weight_of[f] for f in lengths.tolist()], dtype=np.float64), lengths)
            ids, first, inverse = np.unique(rare_postings, return_index=True, return_inverse=True)
            sums = np.bincount(inverse, weights=posting_weights, minlength=len(ids))
            rare_files = ranked(ids, sums, first, VERIFY_CANDIDATES)
        return candidates, rare_files, postings

    def file_match(self, *, path: str, text: str) -> list[CodeMatch]:
        """Matches of one vendor file against the index.

        Two stages. The screen (tokenise, winnow, look the hashes up in the
        memory-mapped postings) costs a few ms; only a file it nominates
        reference files for goes on to alignment and verification. Why a
        screened-out file can have no match (so the screen changes no answer):

        - every match comes from a region (`_regions_attribute` is fed only
          `regions`); a region is either aligned against a file in
          `candidates` (`_regions_align`) or seeded from a file in
          `rare_files`, and both lists are all `file_match` ever compares the
          vendor file with;
        - a file enters `candidates` only by sharing at least
          MIN_SMALL_REGION_FINGERPRINTS hashes held by at most
          CANDIDATE_MAX_DOCUMENT_FREQUENCY reference files, and `rare_files`
          only by sharing a hash held by at most
          VERIFY_CANDIDATE_MAX_DOCUMENT_FREQUENCY files;
        - so a vendor file that shares no hash with the index, or only hashes
          common to more than 2,000 reference files, has both lists empty, no
          region, and no match: it is screened out here without building the
          rest (vendor token ids, line hashes, reference streams).

        A file with fewer than K_GRAM tokens has no fingerprint and no match;
        every token spans at least one character, so a text shorter than
        K_GRAM characters is skipped before it is tokenised.
        """
        self.stats["files"] += 1
        if len(text) < K_GRAM:
            self.stats["too_small"] += 1
            return []
        tokens = code_tokens(path=path, text=text)
        all_ids = token_id_array(tokens=tokens)
        query = fingerprints_compute(tokens=tokens, ids=all_ids).array
        if len(query) == 0:
            self.stats["too_small"] += 1
            return []
        candidates, rare_files, postings = self._candidates_rank(query["hash"])
        if not candidates and not rare_files:
            self.stats["screened_out"] += 1
            return []
        self.stats["full_path"] += 1
        # Short copies share 1-5 fingerprints with their origin: too few to
        # rank among files sharing boilerplate with a long vendor file, so the
        # files sharing the rarest hashes are checked too: their shared
        # hashes become seed regions for verification, without the full
        # alignment (which cost 1.5x scan time for 10 extra files).
        chosen = set(candidates)
        regions: list[_Region] = []
        unverified: list[_Region] = []
        q_index: dict[int, list[int]] | None = None
        q_pos = query["pos"]
        for file_id in rare_files:
            if file_id in chosen:
                continue
            chosen.add(file_id)
            if q_index is None:
                q_index = defaultdict(list)
                for qi, h in enumerate(query["hash"].tolist()):
                    q_index[h].append(qi)
            prints = self._file(file_id)[4]
            shared = np.flatnonzero(np.isin(prints["hash"], query["hash"]))[:256].tolist()
            pairs = sorted((qi, ri) for ri in shared for qi in q_index[int(prints["hash"][ri])][:2])
            cluster: list = []
            for pair in pairs + [None]:
                if cluster and (pair is None or q_pos[pair[0]] - q_pos[cluster[-1][0]] > REGION_GAP_TOKENS):
                    unverified.append(_Region(
                        file_id=file_id, q_first=cluster[0][0], q_last=cluster[-1][0],
                        r_first=min(r for _, r in cluster), r_last=max(r for _, r in cluster),
                        hashes={int(prints["hash"][r]) for _, r in cluster}, q_positions=[q for q, _ in cluster],
                        pairs=cluster))
                    cluster = []
                if pair is not None:
                    cluster.append(pair)
        ids_cache: list = []

        def vendor_ids() -> np.ndarray:
            if not ids_cache:
                ids_cache.append(token_ids(tokens=tokens, ids=all_ids))
                ids_cache.append(line_hashes_compute(text=text))
                ids_cache.append(ids_cache[0].tobytes())
            return ids_cache[0]

        q_hashes = query["hash"].tolist()
        q_set = set(q_hashes)
        q_sorted = np.unique(query["hash"])
        q_indices: dict[int, list[int]] = defaultdict(list)
        for qi, h in enumerate(q_hashes):
            q_indices[h].append(qi)
        for file_id in candidates:
            for region in _regions_align(query, self._file(file_id)[4], file_id, q_hashes=q_hashes, q_set=q_set,
                                         r_hashes=self._hash_list(file_id), q_index=q_indices, q_sorted=q_sorted):
                if region.accepted and (region.file_rule or region.score >= REPETITION_CHECK_BELOW_FINGERPRINTS):
                    regions.append(region)
                elif region.accepted:
                    # 8-15 fingerprints can still be a run of one-line calls
                    # or assignments (stdlib opcode.py against transformers'
                    # integrations/__init__.py); the repetition check decides.
                    stream = self._stream(file_id)
                    if stream is None or self._region_verify(
                        region=region, query=query, reference=self._file(file_id)[4], tokens=tokens,
                        q_ids=vendor_ids(), stream=stream, postings=postings, repetition_only=True, q_bytes=ids_cache[2],
                    ):
                        regions.append(region)
                elif region.score >= VERIFY_MIN_FINGERPRINTS:
                    unverified.append(region)
        # Short regions inside vendor lines that accepted regions already
        # cover add nothing (an exact copy holds hundreds): skip verifying them.
        covered = np.zeros(len(query), dtype=bool)
        for region in regions:
            covered[region.q_first : region.q_last + 1] = True
        for region in unverified:
            if covered[region.q_first : region.q_last + 1].all():
                continue
            stream = self._stream(region.file_id)
            if stream is None:
                continue
            if self._region_verify(region=region, query=query, reference=self._file(region.file_id)[4], tokens=tokens,
                                   q_ids=vendor_ids(), stream=stream, postings=postings, q_line_hashes=ids_cache[1],
                                   q_bytes=ids_cache[2]):
                regions.append(region)
        if not regions:
            return []
        return self._regions_attribute(path=path, text=text, query=query, regions=regions)

    def _region_verify(self, *, region: _Region, query: np.ndarray, reference: np.ndarray, tokens: list,
                       q_ids: np.ndarray, stream: tuple, postings: dict, repetition_only: bool = False,
                       q_bytes: bytes | None = None,
                       q_line_hashes: np.ndarray | None = None) -> bool:
        """Accept a short region when its tokens really run together on both sides.

        Winnowing keeps about one k-gram in nine, so 10-30 copied lines share
        only 1-5 fingerprints with their origin, which the fingerprint count
        cannot tell from boilerplate. Each shared fingerprint is a seed: both
        token streams are compared outwards from it to the longest identical
        run, runs on one diagonal with small gaps are chained, and the chain
        counts when it is long (`VERIFY_MIN_TOKENS`) and not repetitive
        (`VERIFY_MIN_DISTINCT_BIGRAMS`: runs of `self.x = x` lines or of one-line
        calls have few distinct token pairs). `repetition_only` applies only
        the second test, to regions the fingerprint count already accepted.
        Then, unless the run is long (`VERIFY_MASKED_MIN_TOKENS`), the source
        lines must agree too (`VERIFY_MIN_LINE_AGREEMENT`): identifiers are
        masked, so a getter/setter pair or a state_dict/load_state_dict pair
        written in two projects is the same token run; a verbatim copy also
        has the same lines.
        """
        r_ids, r_lines, r_line_hashes = stream
        q_bytes = q_ids.tobytes() if q_bytes is None else q_bytes
        r_bytes = self._stream_bytes(region.file_id, r_ids)
        q_pos = query["pos"]
        r_pos = reference["pos"]
        runs: list[tuple[int, int, int]] = []
        for qi, ri in region.pairs:
            qp, rp = int(q_pos[qi]), int(r_pos[ri])
            # Pairs come in vendor order, so a seed inside an earlier run is
            # inside one of the last few (checking all was quadratic).
            if any(q0 <= qp < q0 + length and qp - q0 == rp - r0 for q0, r0, length in runs[-4:]):
                continue
            runs.append(_run_extend_bytes(q_bytes, r_bytes, qp, rp))
        runs.sort()
        best_chain: list = []
        chain: list = []
        for run in runs:
            if chain:
                q0, r0, length = chain[-1]
                q_gap, r_gap = run[0] - (q0 + length), run[1] - (r0 + length)
                if -K_GRAM <= q_gap <= VERIFY_GAP_TOKENS and -K_GRAM <= r_gap <= VERIFY_GAP_TOKENS:
                    chain.append(run)
                    continue
            if sum(r[2] for r in chain) > sum(r[2] for r in best_chain):
                best_chain = chain
            chain = [run]
        if sum(r[2] for r in chain) > sum(r[2] for r in best_chain):
            best_chain = chain
        matched = sum(r[2] for r in best_chain)
        if matched < VERIFY_MIN_TOKENS and self.verify_log is None and not repetition_only:
            return False  # most seeds stop here, before the costlier measures below
        q_first, r_first = best_chain[0][0], best_chain[0][1]
        q_last = max(r[0] + r[2] for r in best_chain) - 1
        r_last = max(r[1] + r[2] for r in best_chain) - 1
        segment = np.concatenate([q_ids[q0 : q0 + length] for q0, _, length in best_chain]).astype(np.uint32)
        distinct = len(np.unique((segment[:-1] << 16) | segment[1:])) if len(segment) > 1 else 0
        q_span = [tokens[q_first].line, tokens[q_last].end_line]
        r_span = [int(r_lines[r_first]), int(r_lines[r_last])]
        agreement = 0.0
        if q_line_hashes is not None and not repetition_only:
            vendor_lines = q_line_hashes[q_span[0] - 1 : q_span[1]]
            vendor_lines = vendor_lines[vendor_lines != 0]
            reference_lines = set(r_line_hashes[r_span[0] - 1 : r_span[1]].tolist())
            if len(vendor_lines):
                agreement = sum(1 for h in vendor_lines.tolist() if h in reference_lines) / len(vendor_lines)
        if self.verify_log is not None:
            rarest = min(postings.get(int(query["hash"][qi]), 0) or 1 for qi, _ in region.pairs)
            self.verify_log.append({"file_id": region.file_id, "matched": matched, "distinct": distinct,
                                    "rarest": rarest, "score": region.score, "accepted": repetition_only,
                                    "agreement": round(agreement, 3), "q_lines": q_span})
        if repetition_only:
            return distinct >= REPETITION_MIN_DISTINCT_BIGRAMS
        if matched < VERIFY_MIN_TOKENS or distinct < VERIFY_MIN_DISTINCT_BIGRAMS:
            return False
        if agreement < VERIFY_MIN_LINE_AGREEMENT and matched < VERIFY_MASKED_MIN_TOKENS:
            return False
        region.matched_tokens = matched
        region.lines_override = (q_span, r_span)
        return True

    def _regions_attribute(self, *, path: str, text: str, query: np.ndarray, regions: list[_Region]) -> list[CodeMatch]:
        """Group regions covering the same vendor lines; pick origin and siblings."""
        regions.sort(key=lambda r: (-r.score, r.q_first))
        # Evidence per reference file over the whole vendor file: when a short
        # region exists in several reference files (transformers copies blocks
        # between models), the file that shares the most with this vendor
        # file overall is the likelier origin (reordered copies, bench).
        file_total: dict[int, set] = defaultdict(set)
        for region in regions:
            file_total[region.file_id] |= region.hashes
        lines = text.split("\n")  # as the tokenizers count lines (not splitlines: \r, \x0c, \u2028)
        claimed = np.zeros(len(query), dtype=bool)
        matches = []
        for region in regions:
            span = claimed[region.q_first : region.q_last + 1]
            if span.mean() > 0.5:
                continue  # these vendor lines already belong to a better region
            overlapping = [
                other for other in regions
                if other.file_id != region.file_id
                and other.score >= CONTENDER_RATIO * region.score
                and min(other.q_last, region.q_last) - max(other.q_first, region.q_first) >= 0.5 * (region.q_last - region.q_first)
            ]
            best = min(
                [region, *overlapping],
                key=lambda r: (-len(file_total[r.file_id]), -r.score, -self._origin_fraction(r), self._file(r.file_id)[1]),
            )
            group = [r for r in [region, *overlapping] if r.file_id != best.file_id and r.score >= SIBLING_RATIO * best.score]
            claimed[region.q_first : region.q_last + 1] = True
            claimed[best.q_first : best.q_last + 1] = True
            package_id, ref_path, _, ref_label, ref_prints, file_license = self._file(best.file_id)
            package = self.packages[package_id]
            if best.lines_override:
                q_lines, r_lines = (list(best.lines_override[0]), list(best.lines_override[1]))
            else:
                q_lines = [int(query["start_line"][best.q_first]), int(query["end_line"][best.q_last])]
                r_lines = [int(ref_prints["start_line"][best.r_first]), int(ref_prints["end_line"][best.r_last])]
            # The file's own licence (its header) wins over its package's: a
            # vendored file keeps the licence it was published under.
            effective_license = file_license or package["license_expression"]
            siblings = sorted({self._file(g.file_id)[1] for g in group})
            region_text = "\n".join(lines[q_lines[0] - 1 : q_lines[1]])
            # The origin's label first: its path inside a known project is reliable, while a
            # vendor may rename files (bench/codelabels.py: held-out training-called-inference
            # 4 -> 2, inference-called-training 1 -> 0); then the region's text on either path.
            label = ref_label
            if label == "other":
                label = code_label(path=ref_path, text=region_text)
            if label == "other":
                label = code_label(path=path, text=region_text)
            matches.append(CodeMatch(
                path=path,
                lines=q_lines,
                origin=MatchOrigin(
                    name=package["name"], version=package["version"], path=ref_path, lines=r_lines,
                    license_expression=effective_license, siblings=siblings[:MAX_SIBLINGS],
                    sibling_count=len(siblings), package_license_expression=package["license_expression"],
                    license_source="file" if file_license else ("package" if package["license_expression"] else None),
                ),
                license_expression=effective_license,
                label=label,
                score=best.score,
                matched_tokens=best.matched_tokens,
                query_coverage=round(len(best.hashes & set(query["hash"].tolist())) / max(1, len(set(query["hash"].tolist()))), 3),
                origin_coverage=round(self._origin_fraction(best), 3),
            ))
        matches.sort(key=lambda m: m.lines[0])
        return matches

    def _origin_fraction(self, region: _Region) -> float:
        prints = self._file(region.file_id)[4]
        return len(region.hashes) / max(1, len(set(prints["hash"].tolist())))


def code_scan(
    *, source: str | Iterable[tuple[str, bytes]], index_dir: str, matcher: CodeMatcher | None = None,
    on_matched_file: Callable[[str, str], None] | None = None, packages: Iterable[tuple[str, str]] | None = None,
    cache=None, processes: int = 1, engine_version: str = "", run=None, slots=None, recycle_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CodeScanResult:
    """Scan a directory, file, archive or (path, bytes) iterable for copied reference code.

    `on_matched_file(path, text)` is called for each vendor file with matches, while its text
    is at hand: a caller that shows the matched lines needs no second pass over an archive.
    `packages` (name, version) restricts the scan to those indexed packages (see CodeMatcher);
    the result's `index_packages` lists the packages actually scanned.
    `cache` (a `compliance.engine.filecache.FileResultCache`) is looked up first for each code
    file, under a namespace naming `engine_version`, the index's identity and the packages
    compared with (`result.cache` says how many were reused); `processes` > 1 splits the
    matching across forked processes (`compliance.engine.parallel`), each with its own matcher.
    `run` (a `compliance.engine.parallel.RunStats`) receives the counts, processes and namespace;
    `slots` (a `compliance.engine.parallel.ScanSlots`) and `recycle_bytes` bound the processes'
    number on the host and their memory. `progress(files, reused)` is told, as the scan goes, how
    many files of the source it has checked (code or not: a file that is not code is checked by
    being passed over) and how many code files' results came from the cache.
    The matches are the same, in the same order, whatever the cache and the number."""
    import hashlib
    import json

    from compliance.engine.filecache import content_key
    from compliance.engine.parallel import FileHandler, RunStats, file_results

    if matcher is not None and processes > 1:
        raise ValueError("a given matcher runs in this process: processes must be 1")
    wanted = None if packages is None else sorted({(str(n), str(v or "")) for n, v in packages})
    parent = matcher or CodeMatcher(index_dir=index_dir, packages=wanted)
    try:
        scanned_packages = sorted(parent.packages.values(), key=lambda p: (p["name"], p["version"]))
        # Every package as last indexed: file ids and document frequencies depend on all of them.
        index_id = code_index_digest(connection=parent.connection)[:16]
    except BaseException:
        if matcher is None:
            parent.close()
        raise
    scope_id = ("all" if wanted is None
                else hashlib.sha256(json.dumps(wanted).encode()).hexdigest()[:16])
    namespace = f"codematch:{engine_version}:index={index_id}:scope={scope_id}:format=1"
    if matcher is None and processes > 1:
        # Each forked process opens its own connection: an SQLite connection must not cross a fork.
        parent.close()
        parent = None

    class _Handler(FileHandler):
        def __init__(self) -> None:
            self.matcher = parent or CodeMatcher(index_dir=index_dir, packages=wanted)
            self.own = parent is None

        def __call__(self, path: str, data: bytes) -> dict:
            found = self.matcher.file_match(path=path, text=data.decode("utf-8", errors="replace"))
            return {"matches": [{k: v for k, v in m.to_dict().items() if k != "path"} for m in found]}

        def close(self) -> None:
            if self.own:
                self.matcher.close()

    counts = {"scanned": 0}
    # For the k-th code file, how many members of the source had been read up to it (progress).
    members_at: list[int] = []

    def code_members() -> Iterable[tuple[str, bytes]]:
        for path, data in members_from(source=source):
            counts["scanned"] += 1
            if path_is_code(path=path):
                members_at.append(counts["scanned"])
                yield path, data

    matches: list[CodeMatch] = []
    run = run if run is not None else RunStats()
    try:
        for path, data, value, _reused in file_results(
            items=code_members(), factory=_Handler, processes=processes, cache=cache, namespace=namespace,
            key=lambda path, data: content_key(data=data, name=path), run=run, slots=slots,
            recycle_bytes=recycle_bytes, label="code",
            progress=None if progress is None else lambda done: progress(members_at[done.done - 1], done.done_reused),
        ):
            found = [CodeMatch(**{**m, "path": path, "origin": MatchOrigin(**m["origin"])}) for m in value["matches"]]
            if found and on_matched_file is not None:
                on_matched_file(path, data.decode("utf-8", errors="replace"))
            matches.extend(found)
    finally:
        if matcher is None and parent is not None:
            parent.close()
    return CodeScanResult(
        matches=matches, files_scanned=counts["scanned"], code_files=run.files,
        files_with_matches=len({m.path for m in matches}), index_packages=scanned_packages,
    )

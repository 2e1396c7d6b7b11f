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
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from compliance.engine.codematch.index import code_index_connect, file_fingerprints_load
from compliance.engine.codematch.labels import code_label
from compliance.engine.codematch.tokens import code_tokens, path_is_code
from compliance.engine.codematch.winnow import fingerprints_compute
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


@dataclass
class MatchOrigin:
    name: str
    version: str
    path: str
    lines: list[int]
    license_expression: str | None
    siblings: list[str] = field(default_factory=list)
    sibling_count: int = 0

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

    @property
    def score(self) -> int:
        return len(self.hashes)


def _regions_align(query: np.ndarray, reference: np.ndarray, file_id: int) -> list[_Region]:
    """Chain shared fingerprints into regions that advance together on both sides."""
    positions_by_hash: dict[int, list[int]] = defaultdict(list)
    for index, h in enumerate(reference["hash"].tolist()):
        positions_by_hash[h].append(index)
    regions: list[_Region] = []
    open_regions: list[tuple[int, int, _Region]] = []  # (last q token pos, last r token pos, region)
    q_hashes = query["hash"].tolist()
    q_pos = query["pos"].tolist()
    r_pos = reference["pos"].tolist()
    for qi, h in enumerate(q_hashes):
        r_indices = positions_by_hash.get(h)
        if not r_indices:
            continue
        qp = q_pos[qi]
        placed = False
        for slot, (last_q, last_r, region) in enumerate(open_regions):
            if qp - last_q > REGION_GAP_TOKENS:
                continue
            best = None
            for ri in r_indices:
                step = r_pos[ri] - last_r
                if -REGION_GAP_TOKENS // 4 <= step <= REGION_GAP_TOKENS and (best is None or abs(step - (qp - last_q)) < abs(r_pos[best] - last_r - (qp - last_q))):
                    best = ri
            if best is not None:
                region.q_last = qi
                region.r_first = min(region.r_first, best)
                region.r_last = max(region.r_last, best)
                region.hashes.add(h)
                region.q_positions.append(qi)
                open_regions[slot] = (qp, r_pos[best], region)
                placed = True
                break
        if not placed:
            # Start one region per occurrence only for the first few: a
            # boilerplate hash present 40 times in one reference file would
            # otherwise open 40 regions.
            for ri in r_indices[:4]:
                region = _Region(file_id=file_id, q_first=qi, q_last=qi, r_first=ri, r_last=ri, hashes={h}, q_positions=[qi])
                regions.append(region)
                open_regions.append((qp, r_pos[ri], region))
        open_regions = [entry for entry in open_regions if qp - entry[0] <= REGION_GAP_TOKENS]
    small = [r for r in regions if r.score >= MIN_SMALL_REGION_FINGERPRINTS]
    if len(set().union(*(r.hashes for r in small))) >= MIN_FILE_FINGERPRINTS if small else False:
        return small
    return [r for r in small if r.score >= MIN_REGION_FINGERPRINTS]


class CodeMatcher:
    """Scans vendor code against one index directory; reuse it across files."""

    def __init__(self, *, index_dir: str):
        self.index_dir = index_dir
        self.connection: sqlite3.Connection = code_index_connect(index_dir=index_dir)
        self.packages = {
            row[0]: {"name": row[1], "version": row[2], "license_expression": row[3], "files": row[4]}
            for row in self.connection.execute("SELECT id, name, version, license_expression, files FROM packages")
        }
        self._file_meta: dict[int, tuple] = {}

    def close(self) -> None:
        self.connection.close()

    def _postings(self, hashes: list[int]) -> dict[int, list[int]]:
        found: dict[int, list[int]] = defaultdict(list)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for h, file_id in self.connection.execute(
                f"SELECT hash, file_id FROM postings WHERE hash IN ({marks})", chunk
            ):
                found[h].append(file_id)
        return found

    def _file(self, file_id: int) -> tuple:
        meta = self._file_meta.get(file_id)
        if meta is None:
            row = self.connection.execute(
                "SELECT package_id, path, tokens, label, fingerprints FROM files WHERE id = ?", (file_id,)
            ).fetchone()
            meta = (row[0], row[1], row[2], row[3], file_fingerprints_load(row[4]))
            if len(self._file_meta) > 5000:
                self._file_meta.clear()
            self._file_meta[file_id] = meta
        return meta

    def file_match(self, *, path: str, text: str) -> list[CodeMatch]:
        """Matches of one vendor file against the index."""
        query = fingerprints_compute(tokens=code_tokens(path=path, text=text)).array
        if len(query) < MIN_SMALL_REGION_FINGERPRINTS:
            return []
        unique_hashes = list({int(h) for h in query["hash"].tolist()})
        postings = self._postings(unique_hashes)
        counts: Counter = Counter()
        for h, file_ids in postings.items():
            if len(file_ids) <= CANDIDATE_MAX_DOCUMENT_FREQUENCY:
                counts.update(file_ids)
        candidates = [fid for fid, n in counts.most_common(MAX_CANDIDATES) if n >= MIN_SMALL_REGION_FINGERPRINTS]
        regions: list[_Region] = []
        for file_id in candidates:
            regions.extend(_regions_align(query, self._file(file_id)[4], file_id))
        if not regions:
            return []
        return self._regions_attribute(path=path, text=text, query=query, regions=regions)

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
        lines = text.splitlines()
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
            package_id, ref_path, _, ref_label, ref_prints = self._file(best.file_id)
            package = self.packages[package_id]
            q_lines = [int(query["start_line"][best.q_first]), int(query["end_line"][best.q_last])]
            r_lines = [int(ref_prints["start_line"][best.r_first]), int(ref_prints["end_line"][best.r_last])]
            siblings = sorted({self._file(g.file_id)[1] for g in group})
            region_text = "\n".join(lines[q_lines[0] - 1 : q_lines[1]])
            label = code_label(path=path, text=region_text)
            if label == "other":
                label = code_label(path=ref_path, text=region_text) if ref_label == "other" else ref_label
            matches.append(CodeMatch(
                path=path,
                lines=q_lines,
                origin=MatchOrigin(
                    name=package["name"], version=package["version"], path=ref_path, lines=r_lines,
                    license_expression=package["license_expression"], siblings=siblings[:MAX_SIBLINGS],
                    sibling_count=len(siblings),
                ),
                license_expression=package["license_expression"],
                label=label,
                score=best.score,
                query_coverage=round(len(best.hashes & set(query["hash"].tolist())) / max(1, len(set(query["hash"].tolist()))), 3),
                origin_coverage=round(self._origin_fraction(best), 3),
            ))
        matches.sort(key=lambda m: m.lines[0])
        return matches

    def _origin_fraction(self, region: _Region) -> float:
        prints = self._file(region.file_id)[4]
        return len(region.hashes) / max(1, len(set(prints["hash"].tolist())))


def code_scan(
    *, source: str | Iterable[tuple[str, bytes]], index_dir: str, matcher: CodeMatcher | None = None
) -> CodeScanResult:
    """Scan a directory, file, archive or (path, bytes) iterable for copied reference code."""
    own = matcher is None
    matcher = matcher or CodeMatcher(index_dir=index_dir)
    matches: list[CodeMatch] = []
    scanned = code_files = 0
    try:
        for path, data in members_from(source=source):
            scanned += 1
            if not path_is_code(path=path):
                continue
            code_files += 1
            matches.extend(matcher.file_match(path=path, text=data.decode("utf-8", errors="replace")))
        packages = sorted(matcher.packages.values(), key=lambda p: (p["name"], p["version"]))
    finally:
        if own:
            matcher.close()
    return CodeScanResult(
        matches=matches, files_scanned=scanned, code_files=code_files,
        files_with_matches=len({m.path for m in matches}), index_packages=packages,
    )

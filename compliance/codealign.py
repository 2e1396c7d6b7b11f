"""Side-by-side rows for one copied-code region: vendor line i beside reference line j.

The code check stores, per matched region, the vendor's lines and the reference's lines
(``excerpt``, ``origin.excerpt``, each starting at the region's first line) and the line ranges
the matcher settled on; it does not store which line went with which. Lines are paired here the
way the matcher's token runs pair them: identical lines (after the normalisation the tokenizers
make irrelevant: indentation and runs of spaces) in order, so a line inserted on one side shows
against a gap instead of shifting every later line against the wrong one. No Django.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AlignedRow:
    vendor_no: int | None
    vendor: str | None
    origin_no: int | None
    origin: str | None
    kind: str  # "same", "changed", "vendor_only", "origin_only"


@dataclass(frozen=True)
class AlignedRegion:
    rows: list[AlignedRow]
    identical: int  # rows whose two lines are the same after normalisation
    vendor_lines: int
    origin_lines: int

    @property
    def identical_share(self) -> float:
        """Identical lines over the longer side's lines (0..1)."""
        return self.identical / max(1, self.vendor_lines, self.origin_lines)


def _normalised(line: str) -> str:
    return _SPACES.sub(" ", line.strip())


def region_align(*, vendor: str, origin: str, vendor_first: int = 1, origin_first: int = 1) -> AlignedRegion:
    """Pair the two excerpts line by line. ``*_first`` are the line numbers of each excerpt's first
    line in its file, so every row carries the numbers a reader finds in the files."""
    a = vendor.split("\n") if vendor else []
    b = origin.split("\n") if origin else []
    matcher = difflib.SequenceMatcher(None, [_normalised(x) for x in a], [_normalised(x) for x in b],
                                      autojunk=False)
    rows: list[AlignedRow] = []
    identical = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                rows.append(AlignedRow(vendor_first + i, a[i], origin_first + j, b[j], "same"))
                identical += 1
            continue
        # replace / delete / insert: pair what faces each other, then the side that is longer alone.
        pairs = min(i2 - i1, j2 - j1)
        for k in range(pairs):
            rows.append(AlignedRow(vendor_first + i1 + k, a[i1 + k], origin_first + j1 + k, b[j1 + k], "changed"))
        for i in range(i1 + pairs, i2):
            rows.append(AlignedRow(vendor_first + i, a[i], None, None, "vendor_only"))
        for j in range(j1 + pairs, j2):
            rows.append(AlignedRow(None, None, origin_first + j, b[j], "origin_only"))
    return AlignedRegion(rows=rows, identical=identical, vendor_lines=len(a), origin_lines=len(b))

"""Winnowing fingerprints (Schleimer, Wilkerson, Aiken, SIGMOD 2003) over normalised tokens.

k = 23 tokens, w = 17 windows: the Dolos defaults, and the pair the research
prototype measured on 806 transformers model files (exact/renamed/reformatted
copies 284/284 shared fingerprints, unrelated files at most 13; k=12, w=8
let unrelated files reach 99). Every shared run of at least k + w - 1 = 39
tokens (about 4-5 lines of Python) is guaranteed a shared fingerprint.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from compliance.engine.codematch.tokens import Token

K_GRAM = 23
WINDOW = 17

# Odd 64-bit multipliers (from splitmix64): spread crc32 token ids over 64 bits
# and combine k of them by polynomial hashing with wrap-around (mod 2**64).
_SPREAD = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(0xBF58476D1CE4E5B9)

FINGERPRINT_DTYPE = np.dtype([("hash", "<i8"), ("pos", "<u4"), ("start_line", "<u4"), ("end_line", "<u4")])

_TOKEN_IDS: dict[str, int] = {}


def _token_id(text: str) -> int:
    value = _TOKEN_IDS.get(text)
    if value is None:
        value = zlib.crc32(text.encode("utf-8")) | 1
        _TOKEN_IDS[text] = value
    return value


@dataclass
class Fingerprints:
    """Selected fingerprints of one file, in token order."""

    array: np.ndarray  # FINGERPRINT_DTYPE
    token_count: int

    def __len__(self) -> int:
        return len(self.array)


def token_id_array(*, tokens: list[Token]) -> np.ndarray:
    """crc32-based id of each token (odd, uint64): what `fingerprints_compute` hashes.

    A scanner computes it once per file and passes it to both
    `fingerprints_compute` and `token_ids` (each computed it again before)."""
    known = _TOKEN_IDS.get
    return np.array([known(t[0]) or _token_id(t[0]) for t in tokens], dtype=np.uint64)


def token_ids(*, tokens: list[Token], ids: np.ndarray | None = None) -> np.ndarray:
    """16-bit ids of the normalised tokens, for verifying a candidate region token by token.

    The masked vocabulary is a few hundred symbols (keywords, operators, V, S,
    N), so the low 16 bits of crc32 rarely collide, and a collision only makes
    two rare symbols equal.
    """
    if ids is None:
        ids = token_id_array(tokens=tokens)
    return (ids & np.uint64(0xFFFF)).astype(np.uint16)


def token_stream_pack(*, tokens: list[Token]) -> bytes:
    """zlib of (16-bit token ids, 16-bit line deltas): about 1 byte per token stored.

    The verification pass compares a vendor region with the reference
    region token by token; keeping the stream in the index means the
    reference tree need not be on the machine that scans.
    """
    ids = token_ids(tokens=tokens)
    lines = np.fromiter((t.line for t in tokens), dtype=np.int64, count=len(tokens))
    deltas = np.diff(lines, prepend=0).clip(0, 65535).astype(np.uint16)
    return zlib.compress(ids.tobytes() + deltas.tobytes(), 6)


def token_stream_unpack(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(token ids uint16, 1-based start line of each token uint32) from `token_stream_pack`."""
    raw = zlib.decompress(blob)
    half = len(raw) // 2
    ids = np.frombuffer(raw[:half], dtype=np.uint16)
    lines = np.cumsum(np.frombuffer(raw[half:], dtype=np.uint16), dtype=np.uint32)
    return ids, lines


def fingerprints_compute(*, tokens: list[Token], k: int = K_GRAM, w: int = WINDOW,
                         ids: np.ndarray | None = None) -> Fingerprints:
    """Winnowed k-gram hashes with the token position and line span each covers.

    `ids`: `token_id_array(tokens=tokens)` when the caller has it already."""
    n = len(tokens)
    if n < k:
        return Fingerprints(array=np.zeros(0, dtype=FINGERPRINT_DTYPE), token_count=n)
    if ids is None:
        ids = token_id_array(tokens=tokens)
    ids = ids * _SPREAD
    grams = n - k + 1
    hashes = np.zeros(grams, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            hashes = hashes * _BASE + ids[j : j + grams]
    if grams <= w:
        chosen = np.array([grams - 1 - int(np.argmin(hashes[::-1]))])
    else:
        windows = np.lib.stride_tricks.sliding_window_view(hashes, w)
        # Rightmost minimum in each window (the paper's rule, so a run of equal
        # hashes yields one fingerprint, not one per window).
        rightmost = w - 1 - np.argmin(windows[:, ::-1], axis=1)
        positions = np.arange(len(windows)) + rightmost
        keep = np.ones(len(positions), dtype=bool)
        keep[1:] = positions[1:] != positions[:-1]
        chosen = np.unique(positions[keep])
    starts = np.fromiter((tokens[i].line for i in chosen), dtype=np.uint32, count=len(chosen))
    ends = np.fromiter((tokens[i + k - 1].end_line for i in chosen), dtype=np.uint32, count=len(chosen))
    array = np.zeros(len(chosen), dtype=FINGERPRINT_DTYPE)
    array["hash"] = hashes[chosen].view(np.int64)
    array["pos"] = chosen
    array["start_line"] = starts
    array["end_line"] = ends
    return Fingerprints(array=array, token_count=n)

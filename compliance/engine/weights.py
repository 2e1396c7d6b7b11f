"""Readers for model weight files: safetensors (single or sharded), GGUF, Hugging Face folders.

Pure Python, no Django. Everything here reads by byte range: a header, then only the
rows a caller asks for. A 200 GB checkpoint is never read whole, so the same code
serves a local file and an object-storage range reader.

PyTorch pickle checkpoints (.bin/.pt/.pth/.ckpt/.pkl) are never opened: unpickling
runs arbitrary code. They are listed in `Model.skipped` instead.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

# A real 70B header is about 100 KB; safetensors' own reader refuses more than 100 MB.
SAFETENSORS_HEADER_CAP = 100_000_000

# Bytes per element for every safetensors dtype the format defines (byte-sized ones).
SAFETENSORS_DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

# GGUF quantisation types we dequantise ourselves without the gguf package's help.
_GGUF_NATIVE = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


class WeightsFormatError(ValueError):
    """A weight file is malformed, unsafe or unsupported; the message names the file and the fix."""


@runtime_checkable
class ByteSource(Protocol):
    """Anything that can return a byte range: a local file, an S3 object, a test buffer."""

    name: str
    size: int

    def read(self, offset: int, length: int) -> bytes:  # pragma: no cover - protocol
        ...


class LocalFileSource:
    """A local file read by range; counts the bytes it hands out in `bytes_read`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = self.path.name
        try:
            self.size = self.path.stat().st_size
        except OSError as exc:
            raise WeightsFormatError(f"{self.path}: cannot open ({exc.strerror})") from exc
        self.bytes_read = 0
        self.reads = 0

    def read(self, offset: int, length: int) -> bytes:
        """Return exactly `length` bytes at `offset`, or raise WeightsFormatError if the file is shorter."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise WeightsFormatError(
                f"{self.name}: asked for bytes {offset}..{offset + length} but the file holds {self.size} bytes (truncated?)"
            )
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            raise WeightsFormatError(f"{self.name}: short read at offset {offset} (file changed while reading?)")
        self.bytes_read += length
        self.reads += 1
        return data


class CountingSource:
    """Wraps any ByteSource (e.g. an object-storage range reader) and counts bytes read."""

    def __init__(self, inner: ByteSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.size = inner.size
        self.bytes_read = 0
        self.reads = 0

    def read(self, offset: int, length: int) -> bytes:
        """Read through to the wrapped source and count."""
        data = self.inner.read(offset, length)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def read_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Several reads through the wrapped source's own `read_many` where it has one."""
        many = getattr(self.inner, "read_many", None)
        datas = many(ranges) if many is not None else [self.inner.read(o, n) for o, n in ranges]
        self.bytes_read += sum(len(d) for d in datas)
        self.reads += len(datas)
        return datas


class BytesSource:
    """An in-memory ByteSource (tests, small uploads)."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.data = data
        self.name = name
        self.size = len(data)
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        """Slice the buffer; refuse ranges past the end."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise WeightsFormatError(f"{self.name}: range {offset}..{offset + length} is past the end ({self.size} bytes)")
        self.bytes_read += length
        return self.data[offset:offset + length]


def source_bytes_read(source: Any) -> int:
    """Bytes read so far through `source`, 0 when it does not count."""
    return int(getattr(source, "bytes_read", 0))


def _human(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------- safetensors


@dataclass(frozen=True)
class TensorInfo:
    """One tensor in a safetensors file: dtype name, shape, absolute byte range [start, end)."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "start": self.start, "end": self.end}


@dataclass
class SafetensorsHeader:
    """A validated safetensors header. Offsets in `tensors` are absolute file offsets."""

    name: str
    header_length: int
    data_start: int
    file_size: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "header_length": self.header_length,
            "file_size": self.file_size,
            "tensor_count": len(self.tensors),
            "metadata": dict(self.metadata),
        }


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    pass


def safetensors_header_read(source: ByteSource) -> SafetensorsHeader:
    """Read and strictly validate a safetensors header from `source` (two small reads).

    Checks: 8-byte little-endian length, length cap, '{' start, UTF-8 JSON object
    without duplicate keys, `__metadata__` str->str, known dtypes, non-negative shapes,
    byte spans equal to shape x dtype size, offsets contiguous and sorted with no
    overlap or hole, and a file size of exactly 8 + header + data.
    """
    name = source.name
    size = source.size
    if size < 8:
        raise WeightsFormatError(f"{name}: {size} bytes is too short for a safetensors file (needs an 8-byte header length)")
    (n,) = struct.unpack("<Q", source.read(0, 8))
    if n > SAFETENSORS_HEADER_CAP:
        raise WeightsFormatError(
            f"{name}: header length field says {n} bytes, above the {SAFETENSORS_HEADER_CAP // 1_000_000} MB cap "
            "(corrupt or hostile file; not a safetensors file?)"
        )
    if n < 2:
        raise WeightsFormatError(f"{name}: header length {n} is too small to hold a JSON object")
    if 8 + n > size:
        raise WeightsFormatError(
            f"{name}: header says it is {_human(n)} long but the file holds only {_human(size - 8)} after the length field (truncated upload?)"
        )
    raw = source.read(8, n)
    if raw[:1] != b"{":
        raise WeightsFormatError(f"{name}: header does not start with '{{' (got {raw[:8]!r}); not a safetensors file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WeightsFormatError(f"{name}: header is not valid UTF-8 (byte {exc.start})") from exc
    try:
        header = json.loads(text.rstrip(" "), object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise WeightsFormatError(f"{name}: header lists key {exc.args[0]!r} twice (ambiguous file)") from None
    except json.JSONDecodeError as exc:
        raise WeightsFormatError(f"{name}: header is not valid JSON ({exc.msg} at byte {exc.pos})") from exc
    except RecursionError:
        raise WeightsFormatError(f"{name}: header JSON is nested too deeply (hostile file?)") from None
    if not isinstance(header, dict):
        raise WeightsFormatError(f"{name}: header is JSON but not an object")

    metadata_raw = header.pop("__metadata__", {})
    if not isinstance(metadata_raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata_raw.items()
    ):
        raise WeightsFormatError(f"{name}: __metadata__ must map strings to strings")

    data_start = 8 + n
    data_size = size - data_start
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, TensorInfo] = {}
    for tname, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise WeightsFormatError(
                f"{name}: tensor {tname!r} must have exactly dtype, shape and data_offsets (got {sorted(entry) if isinstance(entry, dict) else type(entry).__name__})"
            )
        dtype = entry["dtype"]
        if dtype not in SAFETENSORS_DTYPE_SIZES:
            raise WeightsFormatError(f"{name}: tensor {tname!r} has unknown dtype {dtype!r}")
        shape = entry["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise WeightsFormatError(f"{name}: tensor {tname!r} has an invalid shape {shape!r} (need non-negative integers)")
        offsets = entry["data_offsets"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise WeightsFormatError(f"{name}: tensor {tname!r} has invalid data_offsets {offsets!r}")
        # Python ints do not overflow, but a crafted shape can describe exabytes: cap at 2**63.
        nbytes = SAFETENSORS_DTYPE_SIZES[dtype]
        for d in shape:
            nbytes *= d
            if nbytes >= 2**63:
                raise WeightsFormatError(f"{name}: tensor {tname!r} shape {shape} overflows 2**63 bytes")
        begin, end = offsets
        if end - begin != nbytes:
            raise WeightsFormatError(
                f"{name}: tensor {tname!r} is {dtype} {shape} = {nbytes} bytes but its offsets span {end - begin} bytes"
            )
        spans.append((begin, end, tname))
        tensors[tname] = TensorInfo(dtype=dtype, shape=tuple(shape), start=data_start + begin, end=data_start + end)

    spans.sort()
    cursor = 0
    previous = None
    for begin, end, tname in spans:
        if begin < cursor:
            raise WeightsFormatError(f"{name}: tensor {tname!r} (bytes {begin}..{end}) overlaps {previous!r} (ends at {cursor})")
        if begin > cursor:
            raise WeightsFormatError(
                f"{name}: {begin - cursor} bytes between {previous or 'the header'!r} and {tname!r} belong to no tensor (hole at data offset {cursor})"
            )
        cursor = end
        previous = tname
    if cursor > data_size:
        raise WeightsFormatError(
            f"{name}: header says {_human(cursor)} of tensors but the file holds {_human(data_size)} (truncated upload?)"
        )
    if cursor < data_size:
        raise WeightsFormatError(
            f"{name}: {data_size - cursor} bytes after the last tensor belong to no tensor (trailing data or wrong header)"
        )
    return SafetensorsHeader(
        name=name, header_length=n, data_start=data_start, file_size=size, tensors=tensors, metadata=dict(metadata_raw)
    )


# --------------------------------------------------------------------------- GGUF


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One tensor in a GGUF file. `shape` is in numpy (row-major) order, the reverse of GGUF's ne[]."""

    name: str
    type_name: str
    type_id: int
    shape: tuple[int, ...]
    start: int
    n_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "shape": list(self.shape), "start": self.start, "n_bytes": self.n_bytes}


@dataclass
class GGUFHeader:
    """GGUF metadata (scalars and arrays as Python values) and tensor table."""

    name: str
    file_size: int
    data_start: int
    metadata: dict[str, Any]
    tensors: dict[str, GGUFTensorInfo]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def to_dict(self) -> dict[str, Any]:
        small = {k: v for k, v in self.metadata.items() if not isinstance(v, list) or len(v) <= 16}
        return {"name": self.name, "file_size": self.file_size, "tensor_count": len(self.tensors), "metadata": small}


def _gguf_field_value(reader: Any, fld: Any) -> Any:
    import gguf

    types = list(fld.types)
    if not types:
        return None
    if types[0] == gguf.GGUFValueType.ARRAY:
        sub = types[1] if len(types) > 1 else None
        if sub == gguf.GGUFValueType.STRING:
            return [bytes(fld.parts[i]).decode("utf-8", errors="replace") for i in fld.data]
        return [fld.parts[i].tolist()[0] for i in fld.data]
    if types[0] == gguf.GGUFValueType.STRING:
        return bytes(fld.parts[fld.data[0]]).decode("utf-8", errors="replace")
    return fld.parts[fld.data[0]].tolist()[0]


def gguf_header_read(path: str | os.PathLike[str]) -> GGUFHeader:
    """Parse a GGUF file's metadata and tensor table with the `gguf` package's GGUFReader.

    The reader memory-maps the file; only the metadata pages are touched. Any parser
    exception, or a tensor whose bytes fall outside the file, becomes a WeightsFormatError.
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise WeightsFormatError(f"{path}: cannot open ({exc.strerror})") from exc
    if size < 24:
        raise WeightsFormatError(f"{name}: {size} bytes is too short for a GGUF file")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise WeightsFormatError(f"{name}: does not start with the GGUF magic (got {magic!r})")
    return _gguf_header_parse(path=path, name=name, size=size)


def _gguf_header_parse(*, path: Path, name: str, size: int) -> GGUFHeader:
    """GGUFReader on ``path`` (the file, or a sparse stand-in of the same size), validated."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
        metadata = {key: _gguf_field_value(reader, fld) for key, fld in reader.fields.items()}
        tensors: dict[str, GGUFTensorInfo] = {}
        for t in reader.tensors:
            ne = [int(x) for x in t.shape]
            tensors[t.name] = GGUFTensorInfo(
                name=t.name,
                type_name=t.tensor_type.name,
                type_id=int(t.tensor_type),
                shape=tuple(reversed(ne)),
                start=int(t.data_offset),
                n_bytes=int(t.n_bytes),
            )
        data_start = int(reader.data_offset)
    except WeightsFormatError:
        raise
    except Exception as exc:  # the parser raises ValueError/IndexError/struct.error on bad input
        raise WeightsFormatError(f"{name}: not a readable GGUF file ({type(exc).__name__}: {exc})") from exc
    for info in tensors.values():
        if any(d < 0 for d in info.shape) or len(info.shape) > 4:
            raise WeightsFormatError(f"{name}: tensor {info.name!r} has implausible shape {info.shape}")
        if info.start < data_start or info.start + info.n_bytes > size:
            raise WeightsFormatError(
                f"{name}: tensor {info.name!r} claims bytes {info.start}..{info.start + info.n_bytes} but the file holds {size} (truncated upload?)"
            )
    return GGUFHeader(name=name, file_size=size, data_start=data_start, metadata=metadata, tensors=tensors)


# The first read of a GGUF header by range, doubled until the whole header is in hand. A GGUF
# header is its metadata (a 128k-token vocabulary with its merges is ~8 MB) and tensor table
# (~100 bytes a tensor); 1 MiB holds most, and doubling fetches at most twice what is needed.
GGUF_HEADER_FIRST_READ = 1024 * 1024
# A header past 256 MiB is refused, as safetensors' is past 100 MB: no real model has one.
GGUF_HEADER_CAP = 256 * 1024 * 1024


def gguf_header_read_source(source: ByteSource) -> GGUFHeader:
    """``gguf_header_read`` for a file read by range (object storage): only the header is fetched.

    The same parser decides (the gguf package's GGUFReader, as for a local file), run on a sparse
    stand-in: a temporary file of the object's size holding the fetched prefix, the rest a hole
    that costs no disk. The parse counts only if everything it read lies in the fetched prefix
    (the reader's ``data_offset``, where the header ends, is within it); otherwise, or when the
    parse failed, the prefix is doubled, up to ``GGUF_HEADER_CAP``, and the parse run again, so a
    hole read as zeros never decides anything."""
    import tempfile

    name, size = source.name, source.size
    if size < 24:
        raise WeightsFormatError(f"{name}: {size} bytes is too short for a GGUF file")
    magic = source.read(0, 4)
    if magic != b"GGUF":
        raise WeightsFormatError(f"{name}: does not start with the GGUF magic (got {magic!r})")
    fetched = 0
    with tempfile.TemporaryDirectory(prefix="gguf-header-") as tmp:
        stand_in = Path(tmp) / name
        with open(stand_in, "wb") as handle:
            handle.truncate(size)
        want = min(size, GGUF_HEADER_FIRST_READ)
        while True:
            with open(stand_in, "r+b") as handle:
                handle.seek(fetched)
                handle.write(source.read(fetched, want - fetched))
            fetched = want
            try:
                header = _gguf_header_parse(path=stand_in, name=name, size=size)
            except WeightsFormatError:
                if fetched >= min(size, GGUF_HEADER_CAP):
                    raise
                header = None
            if header is not None and header.data_start <= fetched:
                return header
            if fetched >= size:  # everything is real bytes: the parse above is the answer
                if header is None:
                    raise WeightsFormatError(f"{name}: not a readable GGUF file")
                return header
            if fetched >= GGUF_HEADER_CAP:
                raise WeightsFormatError(
                    f"{name}: GGUF header is larger than {GGUF_HEADER_CAP // (1024 * 1024)} MiB (hostile file?)")
            want = min(size, fetched * 2, GGUF_HEADER_CAP)


# --------------------------------------------------------------------------- decoding


def _fp8_table(exponent_bits: int, mantissa_bits: int, finite_only: bool) -> np.ndarray:
    """float32 value of each of the 256 FP8 codes (OCP FP8: E4M3FN has no infinities, E5M2 is IEEE-like)."""
    codes = np.arange(256, dtype=np.int64)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exponent = (codes >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = codes & ((1 << mantissa_bits) - 1)
    bias = (1 << (exponent_bits - 1)) - 1
    normal = (1.0 + mantissa / (1 << mantissa_bits)) * np.power(2.0, exponent - bias)
    subnormal = (mantissa / (1 << mantissa_bits)) * 2.0 ** (1 - bias)
    values = sign * np.where(exponent == 0, subnormal, normal)
    top = (1 << exponent_bits) - 1
    if finite_only:  # E4M3FN: only S.1111.111 is NaN
        values[(exponent == top) & (mantissa == (1 << mantissa_bits) - 1)] = np.nan
    else:  # E5M2: exponent all ones is inf / NaN
        values[(exponent == top) & (mantissa == 0)] = sign[(exponent == top) & (mantissa == 0)] * np.inf
        values[(exponent == top) & (mantissa != 0)] = np.nan
    return values.astype(np.float32)


# DeepSeek-V3/R1 and Kimi K2 ship FP8 E4M3 weights with per-block scales (see Model.tensor).
_FP8_TABLES = {"F8_E4M3": _fp8_table(4, 3, True), "F8_E5M2": _fp8_table(5, 2, False)}


def _decode(raw: bytes, dtype: str, count: int) -> np.ndarray:
    """Decode `count` elements of safetensors dtype `dtype` to float32."""
    if dtype in _FP8_TABLES:
        return _FP8_TABLES[dtype][np.frombuffer(raw, dtype=np.uint8, count=count)]
    if dtype == "BF16":
        u = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
        return u.view(np.float32)
    table = {
        "F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "U8": "u1", "I16": "<i2", "U16": "<u2",
        "I32": "<i4", "U32": "<u4", "I64": "<i8", "U64": "<u8", "BOOL": "u1",
    }
    if dtype not in table:
        raise WeightsFormatError(f"dtype {dtype} cannot be converted to float here (lineage is inconclusive for it)")
    return np.frombuffer(raw, dtype=table[dtype], count=count).astype(np.float32)


def _row_runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Group sorted unique row indices into (first, count) runs so each run is one read."""
    runs: list[tuple[int, int]] = []
    for r in rows.tolist():
        if runs and runs[-1][0] + runs[-1][1] == r:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((r, 1))
    return runs


# Bytes asked of a source in one `read_many` (its ranges then travel together; `tensors_read`).
READ_MANY_BYTES = 32 * 1024 * 1024


@dataclass
class TensorRef:
    """Where a tensor lives: its source, dtype, numpy-order shape, and byte range."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    source: Any
    start: int
    end: int
    gguf_type: int | None = None
    row_permutation: Any = None  # GGUF llama q/k: hf row r lives at file row row_permutation[r]

    @property
    def n_params(self) -> int:
        out = 1
        for d in self.shape:
            out *= d
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "file": self.source.name, "bytes": self.end - self.start}


def _gguf_rope_unpermute_index(n_rows: int, n_head: int) -> np.ndarray:
    """Row map undoing llama.cpp's convert_hf_to_gguf permute() of q/k rows.

    llama.cpp stores head h's rows as interleaved pairs (row 2i+j came from HF row
    j*hd/2+i); index[r_hf] gives the file row holding HF row r_hf.
    """
    hd = n_rows // n_head
    index = np.empty(n_rows, dtype=np.int64)
    half = hd // 2
    for h in range(n_head):
        for j in range(2):
            for i in range(half):
                index[h * hd + j * half + i] = h * hd + 2 * i + j
    return index


def tensor_read(ref: TensorRef, rows: Any = None) -> np.ndarray:
    """Read tensor `ref` (or only `rows` of its first axis, for 3-D tensors of its flattened leading axes) as float32.

    `rows` may be None (whole tensor), a slice, or a sequence of indices; only the
    bytes of those rows are read.
    """
    return tensors_read([(ref, rows)])[0]


@dataclass
class _ReadPlan:
    ref: TensorRef
    rows: Any
    shape: tuple
    index: np.ndarray
    row_elems: int
    row_bytes: int
    order: np.ndarray
    inverse: np.ndarray
    runs: list[tuple[int, int]]
    unique: int


def _read_plan(ref: TensorRef, rows: Any) -> _ReadPlan:
    shape = ref.shape
    if len(shape) == 0:
        n_rows, row_shape = 1, ()
    elif len(shape) == 1:
        n_rows, row_shape = 1, shape
    else:
        n_rows = int(np.prod(shape[:-1]))
        row_shape = (shape[-1],)
    row_elems = int(np.prod(row_shape)) if row_shape else 1
    if rows is None:
        index = np.arange(n_rows)
    elif isinstance(rows, slice):
        index = np.arange(n_rows)[rows]
    else:
        index = np.asarray(rows, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= n_rows):
            raise WeightsFormatError(f"{ref.name}: row index out of range (tensor has {n_rows} rows)")
    file_index = index if ref.row_permutation is None else np.asarray(ref.row_permutation)[index]
    if ref.gguf_type is None:
        row_bytes = row_elems * SAFETENSORS_DTYPE_SIZES[ref.dtype]
    else:
        row_bytes = _gguf_row_bytes(ref, row_elems)
    order = np.argsort(file_index, kind="stable")
    unique_rows, inverse = np.unique(file_index[order], return_inverse=True)
    return _ReadPlan(ref=ref, rows=rows, shape=shape, index=index, row_elems=row_elems, row_bytes=row_bytes,
                     order=order, inverse=inverse, runs=_row_runs(unique_rows), unique=len(unique_rows))


def _read_finish(plan: _ReadPlan, raws: list[bytes]) -> np.ndarray:
    ref, row_elems = plan.ref, plan.row_elems
    decoded = np.empty((plan.unique, row_elems), dtype=np.float32)
    pos = 0
    for (_first, count), raw in zip(plan.runs, raws, strict=True):
        if ref.gguf_type is None:
            block = _decode(raw, ref.dtype, count * row_elems)
        else:
            block = _gguf_decode(ref, raw, count, row_elems)
        decoded[pos:pos + count] = block.reshape(count, row_elems)
        pos += count
    out = np.empty((len(plan.index), row_elems), dtype=np.float32)
    out[plan.order] = decoded[plan.inverse]
    if plan.rows is None:
        return out.reshape(plan.shape) if plan.shape else out.reshape(())
    if len(plan.shape) <= 1:
        return out.reshape(-1)
    return out


def tensors_read(requests: list[tuple[TensorRef, Any]]) -> list[np.ndarray]:
    """`[tensor_read(ref, rows) for ref, rows in requests]`, each source asked for its ranges together.

    Each run of adjacent rows is one range. A source that can answer several ranges at once
    (`read_many`: object storage, which sends them in parallel) gets all the requests' ranges on it
    in groups that close once they hold READ_MANY_BYTES; other sources are read range by range, in
    order. The arrays are the same either way."""
    plans = [_read_plan(ref, rows) for ref, rows in requests]
    raws: list[list[bytes | None]] = [[None] * len(plan.runs) for plan in plans]
    wanted: dict[int, tuple[Any, list[tuple[int, int, int, int]]]] = {}
    for p, plan in enumerate(plans):
        source = plan.ref.source
        entry = wanted.setdefault(id(source), (source, []))
        for r, (first, count) in enumerate(plan.runs):
            entry[1].append((p, r, plan.ref.start + first * plan.row_bytes, count * plan.row_bytes))
    for source, ranges in wanted.values():
        many = getattr(source, "read_many", None)
        if many is None or len(ranges) < 2:
            for p, r, offset, length in ranges:
                raws[p][r] = source.read(offset, length)
            continue
        group: list[tuple[int, int, int, int]] = []
        size = 0
        for position, item in enumerate(ranges):
            group.append(item)
            size += item[3]
            if size >= READ_MANY_BYTES or position == len(ranges) - 1:
                for (p, r, _offset, _length), data in zip(group, many([(o, n) for _, _, o, n in group]), strict=True):
                    raws[p][r] = data
                group, size = [], 0
    return [_read_finish(plan, raw) for plan, raw in zip(plans, raws, strict=True)]


def _gguf_row_bytes(ref: TensorRef, row_elems: int) -> int:
    import gguf

    qtype = gguf.GGMLQuantizationType(ref.gguf_type)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if row_elems % block:
        raise WeightsFormatError(f"{ref.name}: row of {row_elems} values is not a whole number of {qtype.name} blocks")
    return row_elems // block * type_size


def _gguf_decode(ref: TensorRef, raw: bytes, count: int, row_elems: int) -> np.ndarray:
    import gguf

    qtype = gguf.GGMLQuantizationType(ref.gguf_type)
    if qtype.name in _GGUF_NATIVE:
        return np.frombuffer(raw, dtype=_GGUF_NATIVE[qtype.name]).astype(np.float32)
    if qtype.name == "BF16":
        return _decode(raw, "BF16", count * row_elems)
    try:
        data = np.frombuffer(raw, dtype=np.uint8).reshape(count, -1)
        return gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(-1)
    except Exception as exc:  # NotImplementedError for types the package cannot dequantise
        raise WeightsFormatError(
            f"{ref.source.name}: tensor {ref.name!r} uses GGUF type {qtype.name}, which cannot be dequantised here (lineage is inconclusive for it)"
        ) from exc


# --------------------------------------------------------------------------- model


@dataclass
class Model:
    """A model opened for reading: tensors by name (lazy), config, tokenizer files, model card.

    `kind` is "hf_dir", "safetensors" or "gguf". `skipped` lists files that were not
    read and why (pickle checkpoints).
    """

    path: Path
    kind: str
    tensors: dict[str, TensorRef]
    config: dict[str, Any] = field(default_factory=dict)
    gguf_metadata: dict[str, Any] = field(default_factory=dict)
    tokenizer_files: dict[str, Path] = field(default_factory=dict)
    model_card: str = ""
    skipped: list[dict[str, str]] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    header_bytes: int = 0
    total_bytes: int = 0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def bytes_read(self) -> int:
        """Bytes fetched so far, header reads included."""
        return self.header_bytes + sum(source_bytes_read(s) for s in self.sources)

    def tensors_rows(self, requests: list[tuple[str, Any]]) -> list[np.ndarray]:
        """`[self.tensor(name, rows) for name, rows in requests]`, the ranges of all of them asked of
        each source together (`tensors_read`: object storage sends them in parallel)."""
        out: list[np.ndarray | None] = [None] * len(requests)
        together = []
        for position, (name, rows) in enumerate(requests):
            if name not in self.tensors:
                raise KeyError(f"{self.name}: no tensor named {name!r}")
            ref = self.tensors[name]
            if ref.dtype in _FP8_TABLES and name + "_scale_inv" in self.tensors and len(ref.shape) == 2:
                out[position] = self.tensor(name, rows)  # with its block scales
            else:
                together.append(position)
        read = tensors_read([(self.tensors[requests[p][0]], requests[p][1]) for p in together])
        for position, values in zip(together, read, strict=True):
            out[position] = values
        return out

    def tensor(self, name: str, rows: Any = None) -> np.ndarray:
        """Tensor `name` as float32, reading only the bytes of `rows` when given.

        FP8 weights with a `<name>_scale_inv` sibling (DeepSeek-V3 layout: one float32 scale per
        128 x 128 block, `quantization_config.weight_block_size`) are multiplied by their block scales.
        """
        if name not in self.tensors:
            raise KeyError(f"{self.name}: no tensor named {name!r}")
        ref = self.tensors[name]
        values = tensor_read(ref, rows)
        scale_name = name + "_scale_inv"
        if ref.dtype in _FP8_TABLES and scale_name in self.tensors and len(ref.shape) == 2:
            block_rows, block_cols = (self.config.get("quantization_config") or {}).get("weight_block_size", [128, 128])
            index = np.arange(ref.shape[0])[rows] if isinstance(rows, slice) else (
                np.arange(ref.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1))
            scale_rows, inverse = np.unique(index // block_rows, return_inverse=True)
            scales = tensor_read(self.tensors[scale_name], scale_rows)[inverse]
            column_block = np.arange(ref.shape[1]) // block_cols
            if scales.shape[1] <= column_block[-1]:
                raise WeightsFormatError(f"{self.name}: {scale_name} has too few column blocks for {name}")
            values = values.reshape(len(index), ref.shape[1]) * scales[:, column_block]
            if rows is None:
                values = values.reshape(ref.shape)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "tensor_count": len(self.tensors),
            "parameters": sum(t.n_params for t in self.tensors.values()),
            "total_bytes": self.total_bytes,
            "bytes_read": self.bytes_read,
            "skipped": list(self.skipped),
            "tokenizer_files": sorted(self.tokenizer_files),
        }


def _skip_pickle(path: Path) -> dict[str, str]:
    return {
        "file": path.name,
        "reason": "PyTorch pickle checkpoint: not loaded (unsafe format: unpickling can run arbitrary code); provide safetensors",
    }


def _safe_member(directory: Path, filename: str, what: str) -> Path:
    """Resolve `filename` inside `directory`, refusing paths that escape it (index.json is vendor-supplied)."""
    if not isinstance(filename, str) or not filename or "/" in filename or "\\" in filename or filename in (".", "..") or filename.startswith("."):
        raise WeightsFormatError(f"{what}: shard name {filename!r} is not a plain file name in the model folder")
    return directory / filename


def _open_safetensors_files(files: list[Path], model: Model, remote: Mapping[str, ByteSource]) -> None:
    for file in files:
        source = remote[file.name] if file.name in remote else LocalFileSource(file)
        header = safetensors_header_read(source)
        model.sources.append(source)
        model.total_bytes += header.file_size
        for tname, info in header.tensors.items():
            if tname in model.tensors:
                raise WeightsFormatError(f"{file.name}: tensor {tname!r} also appears in {model.tensors[tname].source.name}")
            model.tensors[tname] = TensorRef(
                name=tname, dtype=info.dtype, shape=info.shape, source=source, start=info.start, end=info.end
            )


def _gguf_to_config(meta: dict[str, Any]) -> dict[str, Any]:
    """Describe a GGUF model in Hugging Face config terms, so config comparison works across formats."""
    arch = str(meta.get("general.architecture", ""))

    def get(key: str) -> Any:
        return meta.get(f"{arch}.{key}")

    config = {
        "model_type": arch,
        "architectures": [f"gguf:{arch}"],
        "hidden_size": get("embedding_length"),
        "num_hidden_layers": get("block_count"),
        "intermediate_size": get("feed_forward_length"),
        "num_attention_heads": get("attention.head_count"),
        "num_key_value_heads": get("attention.head_count_kv"),
        "max_position_embeddings": get("context_length"),
        "rope_theta": get("rope.freq_base"),
        "n_routed_experts": get("expert_count"),
        "num_experts_per_tok": get("expert_used_count"),
        "moe_intermediate_size": get("expert_feed_forward_length"),
    }
    tokens = meta.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list):
        config["vocab_size"] = len(tokens)
    return {k: v for k, v in config.items() if v is not None}


# Architectures whose q/k rows llama.cpp's converter permutes for its rotary layout.
GGUF_ROPE_PERMUTED_ARCHS = {"llama", "mistral", "granite", "deci"}


# llama.cpp's split GGUF (`gguf-split`, and the gguf package's GGUFWriter with split_max_tensors or
# split_max_size): one model in files named "{stem}-00001-of-0000N.gguf" (its SHARD_NAME_FORMAT), the
# first holding the model's metadata, every one "split.no" (0-based), "split.count" and
# "split.tensors.count". Large GGUF models are published so (Hugging Face caps a file at 50 GB): they
# are one model, read as one from their first file.
GGUF_SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def gguf_split_names(name: str) -> list[str] | None:
    """Every file name of the split GGUF that file `name` belongs to, first to last (the suffix as
    `name` spells it), or None when `name` is not a split file's name."""
    match = GGUF_SPLIT_NAME.match(name)
    if not match or not 1 <= int(match["no"]) <= int(match["count"]) or int(match["count"]) < 2:
        return None
    count, suffix = int(match["count"]), name[-len(".gguf"):]
    return [f"{match['stem']}-{i:05d}-of-{count:05d}{suffix}" for i in range(1, count + 1)]


def _gguf_header_open(path: Path, model: Model, remote: Mapping[str, ByteSource] | None) -> tuple[GGUFHeader, Any]:
    if remote and path.name in remote:
        source = remote[path.name]
        return gguf_header_read_source(source), source
    header = gguf_header_read(path)
    model.header_bytes += header.data_start  # read through the memory map, not the source
    return header, LocalFileSource(path)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _open_gguf(path: Path, model: Model, remote: Mapping[str, ByteSource] | None = None) -> None:
    header, source = _gguf_header_open(path, model, remote)
    model.gguf_metadata = header.metadata
    model.config = _gguf_to_config(header.metadata)
    arch = header.architecture
    n_head = header.metadata.get(f"{arch}.attention.head_count")
    n_head_kv = header.metadata.get(f"{arch}.attention.head_count_kv", n_head)
    parts = [(header, source)]
    count = _int_or_none(header.metadata.get("split.count")) or 1
    if count > 1:
        parts = _gguf_split_parts(path=path, model=model, remote=remote, first=(header, source), count=count)
    for part_header, part_source in parts:
        model.sources.append(part_source)
        model.total_bytes += part_header.file_size
        for tname, info in part_header.tensors.items():
            if tname in model.tensors:
                raise WeightsFormatError(f"{part_header.name}: tensor {tname!r} also appears in "
                                         f"{model.tensors[tname].source.name}")
            perm = None
            if arch in GGUF_ROPE_PERMUTED_ARCHS and n_head and len(info.shape) == 2:
                if tname.endswith("attn_q.weight"):
                    perm = _gguf_rope_unpermute_index(info.shape[0], int(n_head))
                elif tname.endswith("attn_k.weight"):
                    perm = _gguf_rope_unpermute_index(info.shape[0], int(n_head_kv or n_head))
            model.tensors[tname] = TensorRef(
                name=tname, dtype=info.type_name, shape=info.shape, source=part_source, start=info.start,
                end=info.start + info.n_bytes, gguf_type=info.type_id, row_permutation=perm,
            )
    expected = _int_or_none(header.metadata.get("split.tensors.count"))
    if count > 1 and expected is not None and expected != len(model.tensors):
        raise WeightsFormatError(f"{path.name}: the split GGUF's files hold {len(model.tensors)} tensors, "
                                 f"its first file says {expected}")


def _gguf_split_parts(*, path: Path, model: Model, remote: Mapping[str, ByteSource] | None,
                      first: tuple[GGUFHeader, Any], count: int) -> list[tuple[GGUFHeader, Any]]:
    """The headers and sources of every file of the split GGUF whose first file is `path`, in order."""
    header = first[0]
    names = gguf_split_names(path.name)
    number = _int_or_none(header.metadata.get("split.no"))
    if names is None or len(names) != count or number != 0 or path.name != names[0]:
        shown = f"file {number + 1} of {count}" if number is not None and number >= 0 else f"a file of {count}"
        raise WeightsFormatError(
            f"{path.name}: {shown} of a split GGUF model; its files must be named "
            f"STEM-00001-of-{count:05d}.gguf to STEM-{count:05d}-of-{count:05d}.gguf and read from the first")
    missing = [n for n in names[1:] if not (remote and n in remote) and not path.with_name(n).is_file()]
    if missing:
        raise WeightsFormatError(f"{path.name}: split GGUF model of {count} files; missing: {', '.join(missing[:5])}")
    parts = [first]
    for index, name in enumerate(names[1:], start=1):
        part = _gguf_header_open(path.with_name(name), model, remote)
        meta = part[0].metadata
        if _int_or_none(meta.get("split.no")) != index or _int_or_none(meta.get("split.count")) != count:
            raise WeightsFormatError(f"{name}: its split.no / split.count ({meta.get('split.no')!r} / "
                                     f"{meta.get('split.count')!r}) do not say file {index + 1} of {count}")
        parts.append(part)
    return parts


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "tokenizer_config.json", "vocab.json", "merges.txt")


def model_open(path: str | os.PathLike[str], *, remote: Mapping[str, ByteSource] | None = None) -> Model:
    """Open a Hugging Face model folder, a single .safetensors file or a .gguf file for lazy reading.

    `remote` names safetensors files of the folder that live elsewhere (object storage), by base
    name, each a ByteSource read by range: they count as files of the folder and are never
    copied. A GGUF file may be remote too (`path` then names it, `remote[path.name]` reads it). Pickle checkpoints are never loaded: a folder holding only those raises
    WeightsFormatError; alongside safetensors they are listed in `skipped`.
    """
    path = Path(path)
    remote = dict(remote or {})
    for remote_name in remote:
        _safe_member(path, remote_name, f"{path.name}: remote file")
    if path.suffix.lower() == ".gguf" and path.name in remote:
        model = Model(path=path, kind="gguf", tensors={})
        _open_gguf(path, model, remote)
        return model
    if not path.exists():
        raise WeightsFormatError(f"{path}: no such file or folder")
    if path.is_file():
        suffix = path.suffix.lower()
        model = Model(path=path, kind="", tensors={})
        if suffix == ".gguf":
            model.kind = "gguf"
            _open_gguf(path, model)
        elif suffix == ".safetensors":
            model.kind = "safetensors"
            _open_safetensors_files([path], model, remote)
        elif suffix in PICKLE_SUFFIXES:
            raise WeightsFormatError(
                f"{path.name}: PyTorch pickle checkpoint, never loaded because unpickling can run arbitrary code; convert it to safetensors"
            )
        else:
            raise WeightsFormatError(f"{path.name}: unknown weight format (expected .safetensors or .gguf)")
        return model

    model = Model(path=path, kind="hf_dir", tensors={})
    config_path = path / "config.json"
    if config_path.is_file():
        try:
            model.config = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsFormatError(f"{path.name}/config.json: not valid JSON ({exc})") from exc
        if not isinstance(model.config, dict):
            raise WeightsFormatError(f"{path.name}/config.json: expected a JSON object")
    for fname in _TOKENIZER_FILES:
        if (path / fname).is_file():
            model.tokenizer_files[fname] = path / fname
    for card in ("README.md", "readme.md", "MODEL_CARD.md"):
        if (path / card).is_file():
            with open(path / card, encoding="utf-8", errors="replace") as handle:
                model.model_card = handle.read(200_000)  # a model card longer than 200 KB is not read further
            break

    files = sorted({p for p in path.iterdir() if p.is_file()} | {path / n for n in remote})
    model.skipped = [_skip_pickle(p) for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    index_path = path / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
            assert isinstance(weight_map, dict)
        except Exception as exc:
            raise WeightsFormatError(f"{path.name}/model.safetensors.index.json: needs a JSON object with a weight_map ({exc})") from exc
        shard_names = sorted(set(weight_map.values()))
        shards = [_safe_member(path, s, f"{path.name}/model.safetensors.index.json") for s in shard_names]
        missing = [s.name for s in shards if not (s.is_file() or s.name in remote)]
        if missing:
            raise WeightsFormatError(f"{path.name}: index lists shards that are missing: {', '.join(missing[:5])}")
        _open_safetensors_files(shards, model, remote)
        for tname, shard in weight_map.items():
            ref = model.tensors.get(tname)
            if ref is None or ref.source.name != shard:
                raise WeightsFormatError(f"{path.name}: index says {tname!r} is in {shard} but that shard does not hold it")
    else:
        st_files = [p for p in files if p.suffix == ".safetensors"]
        gguf_files = [p for p in files if p.suffix.lower() == ".gguf"]
        if st_files:
            _open_safetensors_files(st_files, model, remote)
        elif gguf_files:
            model.kind = "gguf"
            _open_gguf(gguf_files[0], model)
            model.path = path
        elif model.skipped:
            raise WeightsFormatError(
                f"{path.name}: only PyTorch pickle checkpoints ({', '.join(s['file'] for s in model.skipped[:3])}); "
                "these are never loaded because unpickling can run arbitrary code; please upload safetensors"
            )
        else:
            raise WeightsFormatError(f"{path.name}: no .safetensors or .gguf weight files found")
    return model


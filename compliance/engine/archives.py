"""Inspect untrusted zip / tar / tar.gz / tar.zst uploads as streams, never extracting.

Rules (OWASP ASVS 5.0 V5.2.3, V5.2.5, V5.3.3; research notes Part B.3):
- Nothing is ever written to a path an archive names. Members are read as
  byte streams; a nested zip (which needs random access) is spooled into an
  anonymous temporary file that is deleted on close.
- Absolute paths, `..` components, symbolic and hard links, device files and
  fifos are findings (and refusals for `archive_iter_members`).
- Member count and expanded size are checked from the headers before any
  decompression (zip central directory; each tar header before its data) and
  enforced again while decompressing, so a member whose header lies about
  its size stops at the declared size, and the archive stops at the cap.
- Invalid UTF-8 names are reported with their bytes shown as \\xNN escapes.

The zip central directory is parsed here rather than by `zipfile` because
`zipfile` raises on a name flagged UTF-8 that is not (losing every other
member), does not report overlapping members (the "non-recursive zip bomb"),
and hides the raw name bytes. Tar headers are parsed by `tarfile` in stream
mode, with a guard on the size of pax / GNU long-name headers.
"""

from __future__ import annotations

import bz2
import io
import stat
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from compliance.engine.intake_common import Finding, IntakeLimits, MiB, display_name

ARCHIVE_KINDS = ("zip", "pytorch_zip", "tar", "tar_gz", "tar_zst", "gzip", "zstd")

_ZIP_LOCAL_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY_MAGIC = b"PK\x05\x06"
_ZIP_CENTRAL_MAGIC = b"PK\x01\x02"
_ZIP_EOCD = struct.Struct("<4s4H2LH")  # 22 bytes
_ZIP_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
_ZIP_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_ZIP_CENTRAL = struct.Struct("<4s6H3L5H2L")  # 46 bytes
_ZIP_LOCAL = struct.Struct("<4s5H3L2H")  # 30 bytes
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = MiB
_TAR_STREAM_BUFFER = 32 * 1024  # tarfile's own read-ahead in stream mode (see `_tar_walk`)
# Bytes of a member we look at to recognise nested archives and pickles:
# one tar header block (512) plus the gzip/zstd frame headers.
_SNIFF_BYTES = 4096
# zstd decodes whole blocks (up to 128 KiB compressed), so recognising a
# tar inside a zstd frame may need this much input before 512 bytes come out.
ZSTD_SNIFF_BYTES = 256 * 1024
# Members smaller than this are not judged on compression ratio: a 1 KB run
# of spaces legitimately compresses 100x.
_RATIO_MIN_BYTES = MiB


class ArchiveError(ValueError):
    """The archive cannot be read safely (corrupt, unsupported, or refused)."""


class ArchiveLimitError(ArchiveError):
    """A ceiling from `IntakeLimits` was reached; reading stopped there."""

    def __init__(self, message: str, *, code: str, evidence: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.evidence = evidence


@dataclass(frozen=True)
class ArchiveMember:
    """A regular file inside an archive, safe to read, never to write to its path.

    `path` is a normalised relative path ("src/model.py"), `reader` a stream
    of the member's bytes that enforces the declared size and the archive's
    expansion budget. With tar archives, read (or skip) each member before
    asking for the next one: the archive is a single forward stream.
    """

    path: str
    size: int
    reader: BinaryIO

    def __iter__(self) -> Iterator[Any]:
        """Unpack as `(path, size, reader)`."""
        return iter((self.path, self.size, self.reader))


@dataclass
class ArchiveReport:
    """Structure and safety of one archive (and of the archives nested in it)."""

    name: str
    format: str
    member_count: int = 0
    declared_bytes: int = 0
    read_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    nested: list[ArchiveReport] = field(default_factory=list)
    member_kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "member_count": self.member_count,
            "declared_bytes": self.declared_bytes,
            "read_bytes": self.read_bytes,
            "member_kinds": dict(sorted(self.member_kinds.items())),
            "findings": [f.to_dict() for f in self.findings],
            "nested": [n.to_dict() for n in self.nested],
        }


# A hook other checks plug in to look at member contents while the archive
# streams by: (member path, first bytes, full stream) -> findings.
MemberHook = Callable[[str, bytes, BinaryIO], list[Finding]]


# ---------------------------------------------------------------------------
# Format sniffing
# ---------------------------------------------------------------------------

def _tar_header_valid(block: bytes) -> bool:
    """POSIX/GNU magic, or a v7 header whose checksum adds up."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == unsigned and any(block[:100])


def archive_kind_sniff(*, head: bytes) -> str | None:
    """Archive format from its first bytes: zip, tar, tar_gz, gzip, tar_zst, zstd or None.

    `head` should be at least 4 KiB (256 KiB for zstd, whose blocks decode
    whole) so compressed tars can be told from plain gzip/zstd by
    decompressing their first tar block.
    """
    if head[:4] in (_ZIP_LOCAL_MAGIC, _ZIP_EMPTY_MAGIC, b"PK\x07\x08"):
        return "zip"
    if head[:2] == _GZIP_MAGIC:
        try:
            first = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 512)
        except zlib.error:
            first = b""
        return "tar_gz" if _tar_header_valid(first) else "gzip"
    if head[:4] == _ZSTD_MAGIC:
        try:
            first = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(head)).read(512)
        except zstandard.ZstdError:
            first = b""
        return "tar_zst" if _tar_header_valid(first) else "zstd"
    if _tar_header_valid(head[:512]):
        return "tar"
    return None


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

def _name_check(*, raw: bytes, container: str, limits: IntakeLimits) -> tuple[str, list[Finding]]:
    """Normalise a member name; report anything that could escape or confuse."""
    findings: list[Finding] = []
    shown = display_name(raw)
    evidence = {"archive": container, "member": shown}
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.append(
            Finding(
                "medium",
                "archive_name_invalid_utf8",
                f"{container}: member name '{shown}' is not valid UTF-8 (byte {exc.start}); tools will disagree on its name",
                {**evidence, "raw_hex": raw.hex()},
            )
        )
    if b"\x00" in raw:
        findings.append(
            Finding("high", "archive_name_nul", f"{container}: member name '{shown}' contains a NUL byte, which truncates it in C tools", evidence)
        )
    if not raw.strip(b"/\\"):
        findings.append(Finding("high", "archive_name_empty", f"{container}: a member has an empty name", evidence))
    if len(raw) > limits.max_name_bytes:
        findings.append(
            Finding(
                "high",
                "archive_name_too_long",
                f"{container}: a member name is {len(raw):,} bytes long (limit {limits.max_name_bytes:,})",
                {**evidence, "member": shown[:200], "length": len(raw)},
            )
        )
    # Path logic runs on the name with invalid bytes as U+FFFD: the display
    # form's \\xNN escapes must not turn into extra '\\' separators.
    text = raw.decode("utf-8", "replace").replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        findings.append(
            Finding(
                "critical",
                "archive_absolute_path",
                f"{container}: member '{shown}' has an absolute path; extracting it would write outside the target folder",
                evidence,
            )
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        findings.append(
            Finding(
                "critical",
                "archive_path_traversal",
                f"{container}: member '{shown}' climbs out of the archive with '..' (zip-slip); extracting it would overwrite files elsewhere",
                evidence,
            )
        )
    safe = "/".join(p for p in parts if p != "..").replace("\x00", "\\x00")
    return safe, findings


# ---------------------------------------------------------------------------
# Budget shared by an archive and everything nested inside it
# ---------------------------------------------------------------------------

@dataclass
class _Budget:
    limits: IntakeLimits
    members: int = 0
    expanded: int = 0

    def member_add(self, *, container: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveLimitError(
                f"{container}: more than {self.limits.max_members:,} members; stopped reading",
                code="archive_too_many_members",
                evidence={"archive": container, "limit": self.limits.max_members},
            )

    def bytes_add(self, n: int, *, container: str) -> None:
        self.expanded += n
        if self.expanded > self.limits.max_expanded_bytes:
            raise ArchiveLimitError(
                f"{container}: expands to more than {self.limits.max_expanded_bytes:,} bytes; stopped reading (zip bomb?)",
                code="archive_expanded_too_large",
                evidence={"archive": container, "limit": self.limits.max_expanded_bytes},
            )

    def declared_check(self, size: int, *, container: str, member: str) -> None:
        """Refuse before decompressing when a header already says it is too big."""
        if self.expanded + size > self.limits.max_expanded_bytes:
            raise ArchiveLimitError(
                f"{container}: member '{member}' declares {size:,} bytes, beyond the {self.limits.max_expanded_bytes:,}-byte "
                "expansion limit; refused before decompressing (zip bomb?)",
                code="archive_expanded_too_large",
                evidence={"archive": container, "member": member, "declared": size, "limit": self.limits.max_expanded_bytes},
            )


class _CountingReader(io.RawIOBase):
    """Counts decompressed bytes against the budget as they are read."""

    def __init__(self, inner: BinaryIO, budget: _Budget, container: str) -> None:
        self._inner = inner
        self._budget = budget
        self._container = container

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._budget.bytes_add(n, container=self._container)
        return n


class _PrefixedReader(io.RawIOBase):
    """Replays bytes already read (the sniffed head) before the rest of a stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO, n: int) -> bytes:
    parts = []
    remaining = n
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _drain(stream: BinaryIO) -> int:
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return total
        total += len(chunk)


# ---------------------------------------------------------------------------
# Zip
# ---------------------------------------------------------------------------

@dataclass
class _ZipEntry:
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    local_offset: int
    mode: int | None
    is_dir: bool
    data_start: int = 0


class _ZipMemberReader(io.RawIOBase):
    """Decompresses one zip member, never producing more than its declared size."""

    def __init__(self, *, handle: BinaryIO, entry: _ZipEntry, budget: _Budget, container: str, name: str) -> None:
        self._handle = handle
        self._entry = entry
        self._budget = budget
        self._container = container
        self._name = name
        self._raw_pos = entry.data_start
        self._raw_left = entry.compressed_size
        self._produced = 0
        self._crc = 0
        self._eof = False
        self._pending = b""  # compressed bytes not yet consumed (zlib unconsumed_tail)
        method = entry.method
        if method == 0:
            self._decompressor: Any = None
        elif method == 8:
            self._decompressor = zlib.decompressobj(-15)
        elif method == 12:
            self._decompressor = bz2.BZ2Decompressor()
        elif method == 93:
            self._decompressor = zstandard.ZstdDecompressor().decompressobj()
        else:  # checked by the caller
            raise ArchiveError(f"{container}: member '{name}' uses unsupported compression method {method}")

    def readable(self) -> bool:
        return True

    def _raw_read(self, n: int) -> bytes:
        n = min(n, self._raw_left)
        if n <= 0:
            return b""
        self._handle.seek(self._raw_pos)
        data = self._handle.read(n)
        if len(data) < n:
            raise ArchiveError(f"{self._container}: member '{self._name}' is cut short (truncated upload?)")
        self._raw_pos += n
        self._raw_left -= n
        return data

    def _decompress_some(self, want: int) -> bytes:
        entry = self._entry
        if entry.method == 0:
            return self._raw_read(want)
        while True:
            if not self._pending:
                self._pending = self._raw_read(256 * 1024)
            if entry.method == 8:
                out = self._decompressor.decompress(self._pending, want)
                self._pending = self._decompressor.unconsumed_tail
                if self._decompressor.eof:
                    self._pending = b""
                    self._raw_left = 0
            elif entry.method == 12:
                if self._decompressor.eof:
                    return b""
                out = self._decompressor.decompress(self._pending, want)
                self._pending = b""
                if self._decompressor.eof:
                    self._raw_left = 0
            else:
                # zstd decompressobj has no output cap per call; feed it small
                # slices: a 3-byte RLE block header yields up to 128 KiB, so
                # 256 bytes in give at most ~10 MiB out before the size check.
                piece, self._pending = self._pending[:256], self._pending[256:]
                out = self._decompressor.decompress(piece)
            if out or (not self._pending and self._raw_left == 0):
                return out

    def readinto(self, buffer: Any) -> int:
        if self._eof:
            return 0
        try:
            data = self._decompress_some(len(buffer))
        except (zlib.error, OSError, EOFError, ValueError, zstandard.ZstdError) as exc:
            if isinstance(exc, ArchiveError):
                raise
            raise ArchiveError(f"{self._container}: member '{self._name}' does not decompress ({exc})") from exc
        if not data:
            self._eof = True
            if self._produced != self._entry.size:
                raise ArchiveLimitError(
                    f"{self._container}: member '{self._name}' declares {self._entry.size:,} bytes but holds {self._produced:,}",
                    code="archive_size_mismatch",
                    evidence={"archive": self._container, "member": self._name, "declared": self._entry.size, "actual": self._produced},
                )
            if self._crc != self._entry.crc:
                raise ArchiveLimitError(
                    f"{self._container}: member '{self._name}' fails its CRC-32 check (corrupted or tampered)",
                    code="archive_crc_mismatch",
                    evidence={"archive": self._container, "member": self._name},
                )
            return 0
        self._produced += len(data)
        if self._produced > self._entry.size:
            raise ArchiveLimitError(
                f"{self._container}: member '{self._name}' expands beyond the {self._entry.size:,} bytes its header declares; "
                "stopped at the declared size (zip bomb with a lying header?)",
                code="archive_size_mismatch",
                evidence={"archive": self._container, "member": self._name, "declared": self._entry.size, "read_at_least": self._produced},
            )
        self._crc = zlib.crc32(data, self._crc)
        self._budget.bytes_add(len(data), container=self._container)
        n = len(data)
        buffer[:n] = data
        return n


def _zip_extra_zip64(extra: bytes, *, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + length]
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body)) if len(body) >= 8 else []
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        pos += 4 + length
    return size, csize, offset


def _zip_directory_read(*, handle: BinaryIO, file_size: int, container: str, limits: IntakeLimits) -> tuple[list[_ZipEntry], list[Finding], int]:
    """Parse the central directory; return entries, findings, and where it starts."""
    findings: list[Finding] = []
    tail_size = min(file_size, 22 + 65535)
    handle.seek(file_size - tail_size)
    tail = handle.read(tail_size)
    eocd_pos = tail.rfind(b"PK\x05\x06")
    if eocd_pos < 0 or eocd_pos + 22 > len(tail):
        raise ArchiveError(f"{container}: no zip end-of-central-directory record (truncated upload, or not a zip)")
    _, disk, cd_disk, _, total, cd_size, cd_offset, _ = _ZIP_EOCD.unpack_from(tail, eocd_pos)
    record_abs = file_size - tail_size + eocd_pos
    # A zip64 locator right before the end record means zip64 records lie between the directory and
    # it, whether or not the classic fields are saturated: PyTorch's writer (torch.save, TorchScript
    # .pt/.ptl) always writes them. Read as zipfile does, from the zip64 record; taken for a prefix,
    # their 76 bytes made every such file "damaged".
    locator_abs = record_abs - 20
    locator = b""
    if locator_abs >= 0:
        handle.seek(locator_abs)
        locator = handle.read(20)
    saturated = total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF
    if saturated or (len(locator) == 20 and locator[:4] == b"PK\x06\x07"):
        if locator_abs < 0:
            raise ArchiveError(f"{container}: zip64 fields without a zip64 locator (corrupt zip)")
        sig, _, eocd64_offset, _ = _ZIP_EOCD64_LOCATOR.unpack(locator)
        if sig != b"PK\x06\x07":
            raise ArchiveError(f"{container}: zip64 locator missing (corrupt zip)")
        record_abs = locator_abs - 56
        if record_abs < 0:
            raise ArchiveError(f"{container}: zip64 record out of range (corrupt zip)")
        handle.seek(record_abs)
        block = handle.read(56)
        if len(block) < 56 or block[:4] != b"PK\x06\x06":
            raise ArchiveError(f"{container}: zip64 end record missing (corrupt zip)")
        _, _, _, _, disk, cd_disk, _, total, cd_size, cd_offset = _ZIP_EOCD64.unpack(block)
        del eocd64_offset
    if disk != 0 or cd_disk != 0:
        raise ArchiveError(f"{container}: multi-part (spanned) zip archives are not supported; upload one file")
    if total > limits.max_members:
        raise ArchiveLimitError(
            f"{container}: the zip directory lists {total:,} members (limit {limits.max_members:,}); refused before reading",
            code="archive_too_many_members",
            evidence={"archive": container, "members": total, "limit": limits.max_members},
        )
    # Bytes in front of the first member (self-extracting stubs, polyglots):
    # zipfile silently shifts every offset by this amount; so do we, but say so.
    prefix = record_abs - cd_size - cd_offset
    if prefix < 0:
        raise ArchiveError(f"{container}: the central directory claims to lie beyond the end of the file (truncated or corrupt zip)")
    if prefix > 0:
        findings.append(
            Finding(
                "medium",
                "zip_prepended_data",
                f"{container}: {prefix:,} bytes precede the zip data; the file is also something else (a polyglot or self-extractor)",
                {"archive": container, "prefix_bytes": prefix},
            )
        )
    cd_start = cd_offset + prefix
    handle.seek(cd_start)
    directory = io.BufferedReader(_Window(handle, cd_start, cd_size), buffer_size=256 * 1024)
    entries: list[_ZipEntry] = []
    for index in range(total):
        fixed = directory.read(46)
        if len(fixed) < 46 or fixed[:4] != _ZIP_CENTRAL_MAGIC:
            raise ArchiveError(f"{container}: central directory entry {index} is damaged (corrupt zip)")
        (_, made_by, _, flags, method, _, _, crc, csize, size, nlen, elen, clen, _, _, eattr, loff) = _ZIP_CENTRAL.unpack(fixed)
        raw_name = directory.read(nlen)
        extra = directory.read(elen)
        directory.read(clen)
        if len(raw_name) < nlen or len(extra) < elen:
            raise ArchiveError(f"{container}: central directory entry {index} is cut short (corrupt zip)")
        size, csize, loff = _zip_extra_zip64(extra, size=size, csize=csize, offset=loff)
        mode = (eattr >> 16) if (made_by >> 8) == 3 else None  # 3 = Unix
        is_dir = raw_name.endswith(b"/") or bool(mode and stat.S_ISDIR(mode))
        entries.append(_ZipEntry(raw_name, flags, method, crc, csize, size, loff + prefix, mode, is_dir))
    return entries, findings, cd_start


class _Window(io.RawIOBase):
    """A read-only byte range of a file, so a lying size cannot read past it."""

    def __init__(self, handle: BinaryIO, start: int, length: int) -> None:
        self._handle = handle
        self._pos = start
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        self._handle.seek(self._pos)
        data = self._handle.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        self._left -= len(data)
        return len(data)


def _zip_local_headers_check(*, handle: BinaryIO, entries: list[_ZipEntry], cd_start: int, container: str) -> list[Finding]:
    """Find each member's data; report overlaps (a non-recursive zip bomb) and mismatches."""
    findings: list[Finding] = []
    spans: list[tuple[int, int, str]] = []
    for entry in entries:
        name = display_name(entry.raw_name)
        handle.seek(entry.local_offset)
        fixed = handle.read(30)
        if len(fixed) < 30 or fixed[:4] != _ZIP_LOCAL_MAGIC:
            raise ArchiveError(f"{container}: member '{name}' has no local header at offset {entry.local_offset} (corrupt zip)")
        (_, _, _, _, _, _, _, _, _, nlen, elen) = _ZIP_LOCAL.unpack(fixed)
        local_name = handle.read(nlen)
        if local_name != entry.raw_name:
            findings.append(
                Finding(
                    "high",
                    "zip_name_mismatch",
                    f"{container}: member '{name}' is named '{display_name(local_name)}' in its local header; "
                    "tools that read different headers see different files",
                    {"archive": container, "member": name, "local_name": display_name(local_name)},
                )
            )
        entry.data_start = entry.local_offset + 30 + nlen + elen
        end = entry.data_start + entry.compressed_size
        if end > cd_start:
            raise ArchiveError(
                f"{container}: member '{name}' claims {entry.compressed_size:,} compressed bytes, running past the central directory (truncated or corrupt zip)"
            )
        spans.append((entry.local_offset, end, name))
    spans.sort()
    for (start_a, end_a, name_a), (start_b, _, name_b) in zip(spans, spans[1:]):
        if start_b < end_a:
            findings.append(
                Finding(
                    "critical",
                    "archive_overlapping_members",
                    f"{container}: members '{name_a}' and '{name_b}' share compressed bytes; this is how non-recursive zip bombs multiply their size",
                    {"archive": container, "members": [name_a, name_b], "offsets": [start_a, start_b]},
                )
            )
            break
    return findings


def _zip_walk(*, handle: BinaryIO, container: str, budget: _Budget, findings: list[Finding], report: ArchiveReport | None) -> Iterator[tuple[str, int, BinaryIO | None, list[Finding]]]:
    """Yield (safe path, size, reader or None, member findings) for each zip member."""
    handle.seek(0, io.SEEK_END)
    file_size = handle.tell()
    entries, dir_findings, cd_start = _zip_directory_read(handle=handle, file_size=file_size, container=container, limits=budget.limits)
    findings.extend(dir_findings)
    declared = sum(e.size for e in entries)
    if report is not None:
        report.declared_bytes += declared
    # ASVS 5.2.3: judge the declared totals before decompressing anything.
    if budget.expanded + declared > budget.limits.max_expanded_bytes:
        raise ArchiveLimitError(
            f"{container}: the zip directory declares {declared:,} bytes once expanded (limit {budget.limits.max_expanded_bytes:,}); "
            "refused before decompressing (zip bomb?)",
            code="archive_expanded_too_large",
            evidence={"archive": container, "declared": declared, "limit": budget.limits.max_expanded_bytes},
        )
    findings.extend(_zip_local_headers_check(handle=handle, entries=entries, cd_start=cd_start, container=container))
    seen: set[bytes] = set()
    for entry in entries:
        budget.member_add(container=container)
        safe, member_findings = _name_check(raw=entry.raw_name, container=container, limits=budget.limits)
        shown = display_name(entry.raw_name)
        if entry.raw_name in seen:
            member_findings.append(
                Finding("medium", "archive_duplicate_member", f"{container}: member '{shown}' appears more than once; tools disagree on which copy wins",
                        {"archive": container, "member": shown})
            )
        seen.add(entry.raw_name)
        if entry.mode is not None and stat.S_ISLNK(entry.mode):
            member_findings.append(
                Finding("high", "archive_symlink", f"{container}: member '{shown}' is a symbolic link; links in uploads can point anywhere on the server",
                        {"archive": container, "member": shown})
            )
            yield safe, entry.size, None, member_findings
            continue
        if entry.mode is not None and (stat.S_ISCHR(entry.mode) or stat.S_ISBLK(entry.mode) or stat.S_ISFIFO(entry.mode) or stat.S_ISSOCK(entry.mode)):
            member_findings.append(
                Finding("high", "archive_special_file", f"{container}: member '{shown}' is a device, fifo or socket, not a file",
                        {"archive": container, "member": shown, "mode": oct(entry.mode)})
            )
            yield safe, entry.size, None, member_findings
            continue
        if entry.is_dir:
            yield safe, 0, None, member_findings
            continue
        if entry.flags & 0x1:
            member_findings.append(
                Finding("medium", "archive_encrypted_member", f"{container}: member '{shown}' is encrypted and cannot be inspected",
                        {"archive": container, "member": shown})
            )
            yield safe, entry.size, None, member_findings
            continue
        if entry.method not in (0, 8, 12, 93):
            member_findings.append(
                Finding("medium", "archive_unsupported_compression",
                        f"{container}: member '{shown}' uses compression method {entry.method}, which the portal cannot inspect",
                        {"archive": container, "member": shown, "method": entry.method})
            )
            yield safe, entry.size, None, member_findings
            continue
        if entry.method == 0 and entry.compressed_size != entry.size:
            raise ArchiveLimitError(
                f"{container}: stored member '{shown}' declares {entry.size:,} bytes but occupies {entry.compressed_size:,}",
                code="archive_size_mismatch",
                evidence={"archive": container, "member": shown, "declared": entry.size, "stored": entry.compressed_size},
            )
        limits = budget.limits
        ratio = entry.size / max(entry.compressed_size, 1)
        if entry.size >= limits.bomb_min_bytes and ratio > limits.bomb_ratio:
            member_findings.append(_bomb_finding(
                message=f"{container}: member '{shown}' expands {ratio:,.0f}x ({entry.compressed_size:,} bytes to {entry.size:,}), "
                        f"beyond the {limits.bomb_ratio:,}x no real file reaches: nearly all of it repeats one byte or a "
                        "few. A compression bomb; quarantined until a reviewer decides",
                evidence={"archive": container, "member": shown, "scope": "member", "size": entry.size,
                          "compressed": entry.compressed_size, "ratio": round(ratio, 1), "limit": limits.bomb_ratio}))
        elif entry.size >= _RATIO_MIN_BYTES and ratio > limits.max_compression_ratio:
            member_findings.append(
                Finding("low", "archive_high_compression_ratio",
                        f"{container}: member '{shown}' expands {entry.size // max(entry.compressed_size, 1):,}x; almost all of it is repetition",
                        {"archive": container, "member": shown, "size": entry.size, "compressed": entry.compressed_size})
            )
        reader = _ZipMemberReader(handle=handle, entry=entry, budget=budget, container=container, name=shown)
        yield safe, entry.size, io.BufferedReader(reader, buffer_size=_CHUNK), member_findings


# ---------------------------------------------------------------------------
# Tar
# ---------------------------------------------------------------------------

_TAR_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


def _tarinfo_class(limit: int) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses pax / GNU long-name headers larger than `limit`.

    tarfile reads such a header's whole body into memory, so a header that
    claims gigabytes would otherwise exhaust memory before we see it.
    """

    class GuardedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:  # noqa: N802 - tarfile's hook name
            if self.type in _TAR_META_TYPES and self.size > limit:
                raise ArchiveLimitError(
                    f"tar metadata header of {self.size:,} bytes exceeds {limit:,}; refused before reading it",
                    code="archive_header_too_large",
                    evidence={"declared": self.size, "limit": limit},
                )
            return super()._proc_member(tarfile_)

    return GuardedTarInfo


class _GzipReader(io.RawIOBase):
    """Streaming gzip decoder with bounded output per read and 1 MiB input reads.

    `gzip.GzipFile` on Python 3.11 feeds zlib 8 KiB at a time; at 1 GB that
    overhead made tar.gz inspection 3x slower than `tar -xzO`. Handles
    multi-member files (concatenated gzip streams) like `gzip -d` does.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""
        self._input_done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if not self._pending and not self._input_done:
                self._pending = self._raw.read(_CHUNK)
                if not self._pending:
                    self._input_done = True
            if self._decompressor.eof:
                rest = self._decompressor.unused_data + self._pending
                self._pending = b""
                if rest.strip(b"\x00") == b"" and self._input_done:
                    return 0
                if not rest:
                    continue
                if rest.strip(b"\x00") == b"":
                    continue  # zero padding after the last member (tape blocks)
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._pending = rest
            if not self._pending and self._input_done:
                raise EOFError("compressed stream ends before its end marker (truncated upload?)")
            out = self._decompressor.decompress(self._pending, len(buffer))
            self._pending = self._decompressor.unconsumed_tail
            if out:
                buffer[: len(out)] = out
                return len(out)


def _tar_decompressed(raw: BinaryIO, kind: str) -> BinaryIO:
    if kind == "tar_gz":
        return _GzipReader(raw)
    if kind == "tar_zst":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_size=_CHUNK, read_across_frames=True)
    return raw


def _tar_walk(*, stream: BinaryIO, kind: str, container: str, budget: _Budget, findings: list[Finding], report: ArchiveReport | None) -> Iterator[tuple[str, int, BinaryIO | None, list[Finding]]]:
    counted = io.BufferedReader(_CountingReader(_tar_decompressed(stream, kind), budget, container), buffer_size=_CHUNK)
    archive = tarfile.open(
        fileobj=counted,
        mode="r|",
        # Not 1 MiB: tarfile's stream mode keeps what it read ahead as one bytes
        # object and copies the rest of it on every read (`self.buf = t[size:]`),
        # so each member's header and data cost a copy of up to the whole buffer.
        # Reading the 20,000 members of bench/v2_fixed_cost.py's tar.gz (200 MB):
        # 2.8-3.5 CPU s at 1 MiB, 1.4-1.7 s at 32 KiB (10-64 KiB alike); a 300 MB
        # member reads the same at both (0.07-0.09 s): the decompressed stream below
        # is already read 1 MiB at a time.
        bufsize=_TAR_STREAM_BUFFER,
        encoding="utf-8",
        errors="surrogateescape",
        tarinfo=_tarinfo_class(budget.limits.max_tar_header_bytes),
    )
    seen: set[bytes] = set()
    with archive:
        for member in archive:
            budget.member_add(container=container)
            raw_name = member.name.encode("utf-8", "surrogateescape")
            shown = display_name(raw_name)
            safe, member_findings = _name_check(raw=raw_name, container=container, limits=budget.limits)
            if raw_name in seen:
                member_findings.append(
                    Finding("medium", "archive_duplicate_member", f"{container}: member '{shown}' appears more than once; the last copy silently wins",
                            {"archive": container, "member": shown})
                )
            seen.add(raw_name)
            evidence = {"archive": container, "member": shown}
            if member.issym():
                target = display_name(member.linkname.encode("utf-8", "surrogateescape"))
                member_findings.append(
                    Finding("high", "archive_symlink", f"{container}: member '{shown}' is a symbolic link to '{target}'; links in uploads can point anywhere on the server",
                            {**evidence, "target": target})
                )
                yield safe, 0, None, member_findings
                continue
            if member.islnk():
                target = display_name(member.linkname.encode("utf-8", "surrogateescape"))
                member_findings.append(
                    Finding("high", "archive_hardlink", f"{container}: member '{shown}' is a hard link to '{target}'; extracting it can overwrite or expose other files",
                            {**evidence, "target": target})
                )
                yield safe, 0, None, member_findings
                continue
            if member.ischr() or member.isblk() or member.isfifo():
                what = "character device" if member.ischr() else "block device" if member.isblk() else "fifo"
                member_findings.append(
                    Finding("high", "archive_special_file", f"{container}: member '{shown}' is a {what}, not a file",
                            {**evidence, "type": what})
                )
                yield safe, 0, None, member_findings
                continue
            if member.isdir():
                yield safe, 0, None, member_findings
                continue
            if not member.isfile():
                member_findings.append(
                    Finding("medium", "archive_unknown_member_type", f"{container}: member '{shown}' has tar type '{member.type}', which is not a plain file",
                            {**evidence, "type": member.type.decode("latin-1")})
                )
                yield safe, 0, None, member_findings
                continue
            if report is not None:
                report.declared_bytes += member.size
            # The data is counted again as it streams through `counted`; this
            # check refuses before reading when the header is already too big.
            budget.declared_check(member.size, container=container, member=shown)
            reader = archive.extractfile(member)
            yield safe, member.size, reader, member_findings


# ---------------------------------------------------------------------------
# Walking any archive
# ---------------------------------------------------------------------------

_EXPECTED_ERRORS = (
    tarfile.TarError, EOFError, OSError, zlib.error, zstandard.ZstdError, struct.error,
    ValueError, OverflowError, UnicodeError, IndexError, KeyError, TypeError, MemoryError,
)


@contextmanager
def _errors_as_archive_error(container: str) -> Iterator[None]:
    try:
        yield
    except ArchiveError:
        raise
    except _EXPECTED_ERRORS as exc:
        raise ArchiveError(f"{container}: cannot be read as an archive ({type(exc).__name__}: {exc}); corrupt or truncated upload?") from exc


def _walk(*, handle: BinaryIO, kind: str, container: str, budget: _Budget, findings: list[Finding], report: ArchiveReport | None) -> Iterator[tuple[str, int, BinaryIO | None, list[Finding]]]:
    if kind in ("zip", "pytorch_zip"):
        walker = _zip_walk(handle=handle, container=container, budget=budget, findings=findings, report=report)
    elif kind in ("tar", "tar_gz", "tar_zst"):
        walker = _tar_walk(stream=handle, kind=kind, container=container, budget=budget, findings=findings, report=report)
    else:
        raise ArchiveError(f"{container}: '{kind}' is not an archive format the portal inspects")
    while True:
        with _errors_as_archive_error(container):
            try:
                item = next(walker)
            except StopIteration:
                return
        yield item


def _kind_of(handle: BinaryIO, container: str) -> str:
    handle.seek(0)
    head = handle.read(ZSTD_SNIFF_BYTES)
    handle.seek(0)
    kind = archive_kind_sniff(head=head)
    if kind is None or kind in ("gzip", "zstd"):
        raise ArchiveError(f"{container}: not a zip, tar, tar.gz or tar.zst archive")
    return kind


def archive_iter_members(*, path: str | Path, limits: IntakeLimits = IntakeLimits(), strict: bool = True) -> Iterator[ArchiveMember]:
    """Yield each regular file of an archive as (safe relative path, size, reader).

    Nothing touches the filesystem. With `strict` (the default) the first
    unsafe entry (absolute path, '..', link, device, invalid name,
    overlapping data) raises `ArchiveError`; without it dangerous entries are
    skipped and names that are not UTF-8 are yielded escaped. Limits
    (members, expanded bytes, lying sizes) raise in both modes. With tar,
    read each member before asking for the next.
    """
    path = Path(path)
    container = path.name
    budget = _Budget(limits=limits)
    findings: list[Finding] = []
    with path.open("rb") as handle:
        kind = _kind_of(handle, container)
        for safe, size, reader, member_findings in _walk(handle=handle, kind=kind, container=container, budget=budget, findings=findings, report=None):
            if strict:
                # Archive-level findings (overlaps, prepended data) and member
                # findings down to medium (e.g. invalid UTF-8 names) refuse.
                blocking = [f for f in findings + member_findings if f.severity in ("critical", "high", "medium")]
                if blocking:
                    raise ArchiveError(blocking[0].message)
            findings.clear()
            # Lenient: skip only members that are themselves dangerous; a
            # name that is merely not UTF-8 is yielded with \xNN escapes.
            if reader is None or any(f.severity in ("critical", "high") for f in member_findings):
                continue
            yield ArchiveMember(path=safe, size=size, reader=_GuardedMember(reader, container))


class _GuardedMember(io.RawIOBase):
    """Turns decompression errors met while a consumer reads into ArchiveError."""

    def __init__(self, inner: BinaryIO, container: str) -> None:
        self._inner = inner
        self._container = container

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _errors_as_archive_error(self._container):
            data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while True:
                chunk = self.read(_CHUNK)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        with _errors_as_archive_error(self._container):
            return self._inner.read(size)


def _finding_from_limit(exc: ArchiveLimitError) -> Finding:
    severity = "critical" if exc.code in ("archive_expanded_too_large", "archive_too_many_members", "archive_size_mismatch") else "high"
    return Finding(severity, exc.code, str(exc), exc.evidence)


def _inspect_stream(*, handle: BinaryIO, kind: str, container: str, budget: _Budget, depth: int, member_hook: MemberHook | None) -> ArchiveReport:
    """Walk an archive, drain every member (so lying sizes and CRCs are caught), recurse."""
    report = ArchiveReport(name=container, format=kind)
    try:
        for safe, size, reader, member_findings in _walk(handle=handle, kind=kind, container=container, budget=budget, findings=report.findings, report=report):
            report.member_count += 1
            report.findings.extend(member_findings)
            if reader is None:
                continue
            _member_inspect(report=report, reader=reader, member_name=f"{container}/{safe}", size=size, budget=budget, depth=depth, member_hook=member_hook)
    except ArchiveLimitError as exc:
        report.findings.append(_finding_from_limit(exc))
    except ArchiveError as exc:
        report.findings.append(Finding("high", "archive_corrupt", str(exc), {"archive": container}))
    return report


def _member_inspect(*, report: ArchiveReport, reader: BinaryIO, member_name: str, size: int | None, budget: _Budget, depth: int, member_hook: MemberHook | None) -> None:
    """Sniff one member's first bytes and dispatch: nested archive, pickle, safetensors, hook; then drain."""
    from compliance.engine.pickles import NPY_MAGIC, pickle_looks_like  # local: avoids a cycle at import time

    container = report.name
    with _errors_as_archive_error(container):
        head = _read_head(reader, _SNIFF_BYTES)
        if head[:4] == _ZSTD_MAGIC:
            head += _read_head(reader, ZSTD_SNIFF_BYTES - len(head))
        report.read_bytes += len(head)
        nested_kind = archive_kind_sniff(head=head)
        label = nested_kind or "file"
        if nested_kind is None and head.startswith(NPY_MAGIC):
            label = "npy"
        elif nested_kind is None and pickle_looks_like(head=head[:2] if head[:1] == b"\x80" else head):
            label = "pickle"
        elif nested_kind is None and size is not None and safetensors_looks_like(head=head):
            label = "safetensors"
        report.member_kinds[label] = report.member_kinds.get(label, 0) + 1
        report.findings.extend(_member_weights_name_findings(member_name=member_name, label=label, head=head,
                                                             container=container))
        if label == "safetensors":
            head += _read_head(reader, _safetensors_header_span(head) - len(head))
            report.read_bytes += 0 if len(head) <= _SNIFF_BYTES else len(head) - _SNIFF_BYTES
            report.findings.extend(_safetensors_member_findings(head=head, name=member_name, size=size or 0))
        stream = io.BufferedReader(_PrefixedReader(head, reader), buffer_size=_CHUNK)
        if nested_kind is not None:
            if depth + 1 > budget.limits.max_depth:
                report.findings.append(
                    Finding("high", "archive_nesting_too_deep",
                            f"{member_name}: archive nested {depth + 1} levels deep (limit {budget.limits.max_depth}); not inspected further (recursive bomb?)",
                            {"archive": container, "member": member_name, "depth": depth + 1, "limit": budget.limits.max_depth})
                )
            else:
                report.nested.append(
                    _inspect_nested(stream=stream, kind=nested_kind, container=member_name, budget=budget, depth=depth + 1, member_hook=member_hook)
                )
                return
        elif label == "pickle":
            report.findings.extend(_pickle_member_findings(stream=stream, name=member_name, limits=budget.limits))
        elif label == "npy":
            report.findings.extend(_npy_member_findings(head=head, stream=stream, name=member_name, limits=budget.limits))
        elif member_hook is not None:
            report.findings.extend(member_hook(member_name, head, stream))
        report.read_bytes += _drain(stream) - len(head)


def _member_weights_name_findings(*, member_name: str, label: str, head: bytes, container: str) -> list[Finding]:
    """A member named as weights must be those weights, as for a file uploaded alone
    (`intake.extension_kind`): a model folder zipped with a '.safetensors' that is not one
    would fail every loader, or be read by a laxer one as something else."""
    lowered = member_name.lower()
    if lowered.endswith(".safetensors"):
        expected, ok = "safetensors", label == "safetensors"
    elif lowered.endswith(".gguf"):
        expected, ok = "gguf", head[:4] == b"GGUF"
    else:
        return []
    if ok:
        return []
    return [Finding("critical", "weights_unparseable",
                    f"{member_name}: the name says {expected} weights but the content does not parse as {expected}; "
                    "weights that do not parse are rejected",
                    {"archive": container, "file": member_name, "extension_kind": expected, "detected": label})]


# Safetensors headers above this are refused by the safetensors library itself.
_SAFETENSORS_HEADER_CAP = 100_000_000


def safetensors_looks_like(*, head: bytes) -> bool:
    """8-byte little-endian header length, then '{'.

    A real header length is below 100 MB, so its top bytes are zero; a text
    file that happens to have '{' as its ninth byte has printable bytes there
    instead. A hostile header claiming 2**63 bytes still has a JSON object
    ('{"', '{}', '{ ') at byte 8. Random binary matches by chance about once
    in 2**32 files.
    """
    if len(head) < 9 or head[8:9] != b"{":
        return False
    if not any(b < 0x20 or b > 0x7E for b in head[:8] if b not in (0x09, 0x0A, 0x0D)):
        return False
    return head[5:8] == b"\x00\x00\x00" or head[9:10] in (b'"', b"}", b" ")


def _safetensors_header_span(head: bytes) -> int:
    length = int.from_bytes(head[:8], "little")
    return 8 + length if length <= _SAFETENSORS_HEADER_CAP else len(head)


class _HeadSource:
    """A weights.ByteSource over the first bytes of a member whose full size is known."""

    def __init__(self, head: bytes, name: str, size: int) -> None:
        self._head = head
        self.name = name
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        from compliance.engine.weights import WeightsFormatError

        if offset < 0 or length < 0 or offset + length > self.size:
            raise WeightsFormatError(f"{self.name}: asked for bytes {offset}..{offset + length} but the member holds {self.size} bytes (truncated?)")
        if offset + length > len(self._head):
            raise WeightsFormatError(f"{self.name}: header runs past the bytes available (truncated?)")
        return self._head[offset:offset + length]


def _safetensors_member_findings(*, head: bytes, name: str, size: int) -> list[Finding]:
    """Validate a safetensors file inside an archive with the strict reader, from its header bytes only."""
    from compliance.engine.weights import WeightsFormatError, safetensors_header_read

    try:
        safetensors_header_read(_HeadSource(head, name, size))
    except WeightsFormatError as exc:
        return [Finding("critical", "safetensors_invalid", str(exc), {"file": name})]
    return []


def _npy_member_findings(*, head: bytes, stream: BinaryIO, name: str, limits: IntakeLimits) -> list[Finding]:
    """NumPy object arrays (also inside .npz) hold a pickle after their header."""
    from compliance.engine.pickles import PickleScanError, npy_object_data_offset

    try:
        offset = npy_object_data_offset(head=head)
    except PickleScanError as exc:
        return [Finding("critical", "pickle_scan_failed", f"{name}: {exc}; an unreadable pickle is never treated as clean", {"file": name})]
    if offset is None:
        return []
    _read_head(stream, offset)  # skip the header; the stream replays `head` first
    return [
        Finding("medium", "npy_object_dtype", f"{name}: NumPy array of Python objects; np.load needs allow_pickle=True, which runs code",
                {"file": name}),
        *_pickle_member_findings(stream=stream, name=name, limits=limits),
    ]


def _pickle_member_findings(*, stream: BinaryIO, name: str, limits: IntakeLimits) -> list[Finding]:
    from compliance.engine.pickles import PickleScanError, pickle_scan

    try:
        return pickle_scan(stream=stream, name=name, limits=limits).findings
    except PickleScanError as exc:
        if isinstance(exc.__cause__, ArchiveError):
            # The member itself is bad (lying size, CRC, budget): report that.
            raise exc.__cause__ from None
        return [Finding("critical", "pickle_scan_failed", f"{exc}; an unreadable pickle is never treated as clean", {"file": name})]


def _inspect_nested(*, stream: BinaryIO, kind: str, container: str, budget: _Budget, depth: int, member_hook: MemberHook | None) -> ArchiveReport:
    if kind in ("gzip", "zstd"):
        # A bare compressed file (model.bin.gz, config.json.zst): decompress
        # against the budget and inspect what comes out like an archive member.
        report = ArchiveReport(name=container, format=kind)
        try:
            with _errors_as_archive_error(container):
                inner = _GzipReader(stream) if kind == "gzip" else zstandard.ZstdDecompressor().stream_reader(stream, read_size=_CHUNK, read_across_frames=True)
                decompressed = io.BufferedReader(_CountingReader(inner, budget, container), buffer_size=_CHUNK)
                report.member_count = 1
                _member_inspect(report=report, reader=decompressed, member_name=f"{container}:decompressed", size=None, budget=budget, depth=depth, member_hook=member_hook)
        except ArchiveLimitError as exc:
            report.findings.append(_finding_from_limit(exc))
        except ArchiveError as exc:
            report.findings.append(Finding("high", "archive_corrupt", str(exc), {"archive": container}))
        return report
    if kind == "zip":
        # Zip needs random access: spool to an anonymous temporary file (no
        # name on disk, removed on close), bounded by the expansion budget.
        with tempfile.TemporaryFile() as spool:
            try:
                with _errors_as_archive_error(container):
                    while True:
                        chunk = stream.read(_CHUNK)
                        if not chunk:
                            break
                        spool.write(chunk)
            except ArchiveError as exc:
                report = ArchiveReport(name=container, format=kind)
                report.findings.append(_finding_from_limit(exc) if isinstance(exc, ArchiveLimitError) else Finding("high", "archive_corrupt", str(exc), {"archive": container}))
                return report
            spool.seek(0)
            return _inspect_stream(handle=spool, kind=kind, container=container, budget=budget, depth=depth, member_hook=member_hook)
    return _inspect_stream(handle=stream, kind=kind, container=container, budget=budget, depth=depth, member_hook=member_hook)


def _bomb_finding(*, message: str, evidence: dict[str, Any]) -> Finding:
    """High, so it blocks approval; its code quarantines rather than rejects (`QUARANTINE_CODES`)."""
    return Finding("high", "archive_compression_bomb", message, evidence)


def _report_findings(report: ArchiveReport) -> Iterator[Finding]:
    yield from report.findings
    for nested in report.nested:
        yield from _report_findings(nested)


def _total_bomb_findings(*, report: ArchiveReport, budget: _Budget, stored: int) -> list[Finding]:
    """The whole upload's expansion: what a recursive extraction would write over what was sent.

    Catches nests (42.zip) and single-stream formats (tar.gz, tar.zst, .gz) that have no
    per-member compressed size; silent when a member was already called a bomb."""
    limits = budget.limits
    expanded = budget.expanded
    ratio = expanded / max(stored, 1)
    if expanded < limits.bomb_min_bytes or ratio <= limits.bomb_ratio:
        return []
    if any(f.code == "archive_compression_bomb" for f in _report_findings(report)):
        return []
    nested = sum(1 for _ in _nested_reports(report))
    return [_bomb_finding(
        message=f"{report.name}: {stored:,} bytes expand to {expanded:,} ({ratio:,.0f}x"
                + (f", across {nested} nested archive(s)" if nested else "")
                + f"), beyond the {limits.bomb_ratio:,}x no real upload reaches. A compression bomb; "
                "quarantined until a reviewer decides",
        evidence={"archive": report.name, "scope": "total", "expanded": expanded, "stored": stored,
                  "ratio": round(ratio, 1), "nested_archives": nested, "limit": limits.bomb_ratio})]


def _nested_reports(report: ArchiveReport) -> Iterator[ArchiveReport]:
    for nested in report.nested:
        yield nested
        yield from _nested_reports(nested)


def archive_inspect(*, path: str | Path, limits: IntakeLimits = IntakeLimits(), member_hook: MemberHook | None = None) -> ArchiveReport:
    """Inspect an archive file's structure and every member's bytes, without extracting.

    Returns a report whose findings say what is unsafe; a corrupt archive is
    a finding (`archive_corrupt`), not an exception. Raises `ArchiveError`
    only if the file is not a zip/tar/tar.gz/tar.zst at all. Pickles found
    inside (including PyTorch zip checkpoints' data.pkl) are scanned
    statically; `member_hook` lets other checks look at the other members.
    """
    path = Path(path)
    container = path.name
    budget = _Budget(limits=limits)
    with path.open("rb") as handle:
        head = handle.read(ZSTD_SNIFF_BYTES)
        handle.seek(0)
        kind = archive_kind_sniff(head=head)
        if kind in ("gzip", "zstd"):
            # A single compressed file: decompress against the budget (bomb check).
            report = _inspect_nested(stream=handle, kind=kind, container=container, budget=budget, depth=0, member_hook=member_hook)
        else:
            kind = _kind_of(handle, container)
            report = _inspect_stream(handle=handle, kind=kind, container=container, budget=budget, depth=0, member_hook=member_hook)
    report.findings.extend(_total_bomb_findings(report=report, budget=budget, stored=path.stat().st_size))
    return report


def zip_member_names(*, path: str | Path, limits: IntakeLimits = IntakeLimits()) -> list[str]:
    """Names in a zip's central directory (display form), without reading any data."""
    path = Path(path)
    with path.open("rb") as handle, _errors_as_archive_error(path.name):
        handle.seek(0, io.SEEK_END)
        entries, _, _ = _zip_directory_read(handle=handle, file_size=handle.tell(), container=path.name, limits=limits)
    return [display_name(e.raw_name) for e in entries]

"""Builders for a hostile upload corpus, written as bytes into a test's tmp folder.

Nothing here is ever loaded, unpickled or extracted: the pickles that would
run a command are assembled opcode by opcode, the zip bombs by hand-written
headers. Each builder returns the path it wrote.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zstandard
from safetensors.numpy import save_file

GiB = 1024**3
MiB = 1024**2

# protocol 0: GLOBAL os.system, MARK, STRING, TUPLE, REDUCE, STOP. `pickle.loads`
# of this runs `echo pwned`; we only ever write and scan it.
PICKLE_OS_SYSTEM_P0 = b"cos\nsystem\n(S'echo pwned'\ntR."

# protocol 4 with STACK_GLOBAL and memo indirection: the module and name
# strings are memoised, then fetched back with BINGET before STACK_GLOBAL,
# the trick that desynchronises look-behind scanners.
PICKLE_OS_SYSTEM_P4_MEMO = (
    b"\x80\x04"
    b"\x8c\x05posix\x94"  # SHORT_BINUNICODE 'posix', MEMOIZE -> memo[0]
    b"\x8c\x06system\x94"  # 'system' -> memo[1]
    b"0"  # POP
    b"0"  # POP
    b"\x8c\x05dummy"  # a decoy string left on the stack
    b"0"  # POP
    b"h\x00h\x01"  # BINGET 0, BINGET 1
    b"\x93"  # STACK_GLOBAL -> posix.system
    b"\x8c\x0aecho pwned\x85"  # args tuple
    b"R."  # REDUCE, STOP
)


def pickle_torch_state_dict() -> bytes:
    """A protocol 2 pickle shaped exactly like PyTorch's data.pkl for {'weight': 2x2 float}.

    Hand-assembled (torch is not a dependency): OrderedDict, _rebuild_tensor_v2,
    a persistent id ('storage', FloatStorage, '0', 'cpu', 4).
    """
    parts = [
        b"\x80\x02",
        b"ccollections\nOrderedDict\nq\x00)Rq\x01",
        b"X\x06\x00\x00\x00weightq\x02",
        b"ctorch._utils\n_rebuild_tensor_v2\nq\x03(",
        b"(X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08Q",
        b"K\x00K\x02K\x02\x86q\tK\x02K\x01\x86q\n\x89ccollections\nOrderedDict\nq\x0b)Rq\x0c",
        b"tq\rRq\x0e",
        b"s.",
    ]
    return b"".join(parts)


def pickle_torch_legacy() -> bytes:
    """The legacy (non-zip) torch.save layout: magic, version, sys info, state dict, storage keys, raw data."""
    import pickle

    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    keys = pickle.dumps(["0"], protocol=2)
    raw = struct.pack("<q", 4) + np.zeros(4, np.float32).tobytes()
    return magic + version + sys_info + pickle_torch_state_dict() + keys + raw


@dataclass
class RawZipEntry:
    """One member of a hand-built zip: what the headers claim, and what the bytes are."""

    name: bytes
    data: bytes = b""  # bytes actually stored (already compressed if method 8)
    method: int = 0
    claimed_size: int | None = None  # uncompressed size written in the headers
    crc: int | None = None
    utf8_flag: bool = False
    unix_mode: int | None = None  # e.g. 0o120777 for a symlink
    reuse_offset_of: int | None = None  # point this CD entry at another member's local header


def zip_raw_write(path: Path, entries: list[RawZipEntry]) -> Path:
    """Write a zip whose headers say exactly what we tell them (zip64 when needed)."""
    body = io.BytesIO()
    offsets: list[int] = []
    for entry in entries:
        if entry.reuse_offset_of is not None:
            offsets.append(offsets[entry.reuse_offset_of])
            continue
        offsets.append(body.tell())
        size = entry.claimed_size if entry.claimed_size is not None else len(entry.data)
        crc = entry.crc if entry.crc is not None else 0
        flags = 0x800 if entry.utf8_flag else 0
        zip64 = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(entry.data)) if zip64 else b""
        body.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 45 if zip64 else 20, flags, entry.method, 0, 0, crc,
                               0xFFFFFFFF if zip64 else len(entry.data), 0xFFFFFFFF if zip64 else size, len(entry.name), len(extra)))
        body.write(entry.name + extra + entry.data)
    cd_start = body.tell()
    for entry, offset in zip(entries, offsets):
        source = entries[entry.reuse_offset_of] if entry.reuse_offset_of is not None else entry
        size = entry.claimed_size if entry.claimed_size is not None else len(source.data)
        crc = entry.crc if entry.crc is not None else 0
        flags = 0x800 if entry.utf8_flag else 0
        zip64 = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(source.data)) if zip64 else b""
        made_by = (3 << 8) | 20 if entry.unix_mode is not None else 20
        eattr = (entry.unix_mode << 16) if entry.unix_mode is not None else 0
        body.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", made_by, 45 if zip64 else 20, flags, source.method, 0, 0, crc,
                               0xFFFFFFFF if zip64 else len(source.data), 0xFFFFFFFF if zip64 else size,
                               len(entry.name), len(extra), 0, 0, 0, eattr, offset))
        body.write(entry.name + extra)
    cd_size = body.tell() - cd_start
    body.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), cd_size, cd_start, 0))
    path.write_bytes(body.getvalue())
    return path


def deflate(data: bytes, level: int = 9) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def deflate_zeros(n: int) -> bytes:
    """Raw deflate of n zero bytes, built in 1 MiB steps (memory stays flat)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(MiB)
    parts = []
    left = n
    while left > 0:
        step = min(left, MiB)
        parts.append(compressor.compress(block[:step]))
        left -= step
    parts.append(compressor.flush())
    return b"".join(parts)


def zip_bomb_claimed(path: Path, claimed: int = 10 * GiB) -> Path:
    """A zip whose header claims 10 GB of zeros but holds 1 KB."""
    data = deflate(bytes(1024))
    return zip_raw_write(path, [RawZipEntry(name=b"zeros.bin", data=data, method=8, claimed_size=claimed)])


def zip_bomb_lying(path: Path, real: int = 64 * MiB, claimed: int = 1000) -> Path:
    """A member whose header says 1,000 bytes but whose deflate stream expands to 64 MiB."""
    data = deflate_zeros(real)
    crc = zlib.crc32(bytes(claimed))
    return zip_raw_write(path, [RawZipEntry(name=b"small.txt", data=data, method=8, claimed_size=claimed, crc=crc)])


def zip_bomb_real(path: Path, size: int = 64 * MiB) -> Path:
    """An honest highly compressed member (zeros), headers telling the truth."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            block = bytes(MiB)
            for _ in range(size // MiB):
                member.write(block)
    return path


def zip_overlapping(path: Path) -> Path:
    """Two directory entries sharing one member's bytes (non-recursive zip bomb)."""
    data = b"hello"
    crc = zlib.crc32(data)
    return zip_raw_write(path, [RawZipEntry(name=b"a.txt", data=data, crc=crc), RawZipEntry(name=b"b.txt", crc=crc, reuse_offset_of=0)])


def zip_slip(path: Path, token: str) -> Path:
    """zipfile writes these names as given: traversal, absolute, Windows forms."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"../../{token}-slip.sh", "echo owned")
        archive.writestr(f"/tmp/{token}-abs.sh", "echo owned")
        archive.writestr(f"..\\..\\{token}-winslip.bat", "echo owned")
        archive.writestr(f"C:/{token}-drive.bat", "echo owned")
        archive.writestr("fine/readme.txt", "ok")
    return path


def zip_symlink(path: Path) -> Path:
    target = b"/etc/passwd"
    return zip_raw_write(path, [RawZipEntry(name=b"passwd-link", data=target, crc=zlib.crc32(target), unix_mode=0o120777)])


def zip_invalid_utf8(path: Path) -> Path:
    data = b"x"
    return zip_raw_write(path, [
        RawZipEntry(name=b"bad-\xff\xfe.txt", data=data, crc=zlib.crc32(data), utf8_flag=True),
        RawZipEntry(name=b"good.txt", data=data, crc=zlib.crc32(data)),
    ])


def zip_torch_checkpoint(path: Path, data_pkl: bytes) -> Path:
    """The layout torch.save writes (zip of archive/data.pkl, archive/data/0, version)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
        archive.writestr("archive/version", "3\n")
    return path


def zip_nested(path: Path, depth: int) -> Path:
    """A zip inside a zip ... `depth` levels, the innermost holding a text file."""
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("inner.txt", "bottom")
    for level in range(depth - 1):
        wrapped = io.BytesIO()
        with zipfile.ZipFile(wrapped, "w") as archive:
            archive.writestr(f"level{level}.zip", payload.getvalue())
        payload = wrapped
    path.write_bytes(payload.getvalue())
    return path


def _tar_add(archive: tarfile.TarFile, name: str, *, data: bytes = b"", type_: bytes = tarfile.REGTYPE, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    archive.addfile(info, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)


def tar_hostile(path: Path, token: str, mode: str = "w") -> Path:
    """Tar-slip, absolute path, symlink, hard link, devices and a fifo, plus one honest file."""
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as archive:
        _tar_add(archive, f"../../{token}-tarslip.sh", data=b"echo owned")
        _tar_add(archive, f"/tmp/{token}-tarabs.sh", data=b"echo owned")
        _tar_add(archive, "link-to-passwd", type_=tarfile.SYMTYPE, linkname="/etc/passwd")
        _tar_add(archive, "hard-to-shadow", type_=tarfile.LNKTYPE, linkname="/etc/shadow")
        _tar_add(archive, "dev-null", type_=tarfile.CHRTYPE)
        _tar_add(archive, "dev-sda", type_=tarfile.BLKTYPE)
        _tar_add(archive, "a-fifo", type_=tarfile.FIFOTYPE)
        _tar_add(archive, "ok/readme.txt", data=b"fine")
    return path


def tar_zst_write(path: Path, members: dict[str, bytes]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in members.items():
            _tar_add(archive, name, data=data)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return path


def tar_zst_zeros(path: Path, size: int) -> Path:
    """A tar.zst holding `size` zero bytes, streamed (compresses ~1000x+)."""
    with path.open("wb") as handle:
        with zstandard.ZstdCompressor(level=3).stream_writer(handle, closefd=False) as writer:
            with tarfile.open(fileobj=writer, mode="w|") as archive:
                info = tarfile.TarInfo("zeros.bin")
                info.size = size
                archive.addfile(info, _ZeroReader(size))
    return path


class _ZeroReader(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self._left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        buffer[:n] = bytes(n)
        self._left -= n
        return n


def tar_invalid_utf8(path: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as archive:
        _tar_add(archive, b"bad-\xff.txt".decode("utf-8", "surrogateescape"), data=b"x")
    return path


def tar_huge_pax_header(path: Path, claimed: int = 4 * GiB) -> Path:
    """A pax extended header claiming gigabytes (tarfile would read it all into memory)."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = claimed
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    path.write_bytes(header + b"0" * 4096)
    return path


def safetensors_valid(path: Path) -> Path:
    save_file({"w": np.arange(8, dtype=np.float32).reshape(2, 4), "b": np.zeros(4, np.float32)}, str(path))
    return path


def safetensors_raw(path: Path, header: dict, data: bytes, length: int | None = None) -> Path:
    blob = json.dumps(header).encode()
    n = len(blob) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + blob + data)
    return path


def safetensors_overlapping(path: Path) -> Path:
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    return safetensors_raw(path, header, bytes(12))


def safetensors_huge_length(path: Path) -> Path:
    path.write_bytes(struct.pack("<Q", 2**63) + b'{"a": 1}')
    return path


def gguf_valid(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def truncate(path: Path, keep: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def zip_one_byte_bomb(path: Path, size: int = 64 * MiB, byte: bytes = b"A") -> Path:
    """An honest zip whose one member is `size` copies of one byte: deflate at its ceiling
    (~1,030x), written 1 MiB at a time so neither memory nor disk hold the expansion."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("data.bin", "w", force_zip64=True) as member:
            block = byte * MiB
            for _ in range(size // MiB):
                member.write(block)
    return path


def zip_realistic_config(path: Path, config: bytes) -> Path:
    """A real model config zipped at the highest level: compressible, nowhere near a bomb."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("config.json", config)
    return path


def not_safetensors(path: Path) -> Path:
    """Text under a weights name: what a vendor's mislabelled (or disguised) upload looks like."""
    path.write_bytes(b"This is not a tensor file, whatever its name says.\n" * 20)
    return path


def random_bytes(path: Path, n: int = 64 * 1024, seed: int = 7) -> Path:
    path.write_bytes(np.random.default_rng(seed).bytes(n))
    return path

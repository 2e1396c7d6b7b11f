"""Turn a directory, a single file or an archive into (relative path, bytes) pairs.

Both the licence scanner and the code matcher read their input through
`source_members_iter`, so an uploaded archive is streamed member by member and
never extracted to disk. Archives go through `compliance.engine.archives`
(the shared safe reader) when it is importable; otherwise a small fallback
reader for zip and tar below applies the same rules: no absolute paths, no
`..`, no links, no device files, and a cap on member and total size.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

ARCHIVE_SUFFIXES = (".zip", ".whl", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

# Directories that hold tooling state, never the vendor's code or licences.
SKIPPED_DIR_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"})


@dataclass(frozen=True)
class SourceLimits:
    """Caps applied while reading members.

    max_member_bytes: licence and code files above 16 MiB are data or
    generated blobs; reading them costs memory and never changes a verdict.
    max_total_bytes: 4 GiB of decompressed text stops a zip bomb well before
    it fills a worker's disk or memory.
    """

    max_member_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    max_members: int = 500_000


def path_is_archive(*, path: str) -> bool:
    """True when the file name ends with a suffix we read as an archive."""
    lowered = path.lower()
    return any(lowered.endswith(suffix) for suffix in ARCHIVE_SUFFIXES)


def _safe_relative(name: str) -> str | None:
    """Normalise an archive member name; None when it escapes the root."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    normal = posixpath.normpath(name)
    if normal in (".", "") or normal.startswith("../") or normal == "..":
        return None
    return normal


def _fallback_archive_iter(*, path: str, limits: SourceLimits) -> Iterator[tuple[str, bytes]]:
    """Minimal safe zip/tar reader used only if the shared archive reader is missing."""
    total = 0
    count = 0
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                # Symlinks in zips carry the S_IFLNK mode in the high 16 bits.
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    continue
                rel = _safe_relative(info.filename)
                if rel is None or info.file_size > limits.max_member_bytes:
                    continue
                count += 1
                total += info.file_size
                if count > limits.max_members or total > limits.max_total_bytes:
                    raise ValueError(
                        f"{os.path.basename(path)}: more than {limits.max_total_bytes} bytes or "
                        f"{limits.max_members} members once decompressed (archive bomb?)"
                    )
                with archive.open(info) as handle:
                    data = handle.read(limits.max_member_bytes + 1)
                if len(data) > limits.max_member_bytes:
                    continue
                yield rel, data
        return
    with tarfile.open(path, mode="r:*") as archive:
        for info in archive:
            if not info.isreg():
                continue
            rel = _safe_relative(info.name)
            if rel is None or info.size > limits.max_member_bytes:
                continue
            count += 1
            total += info.size
            if count > limits.max_members or total > limits.max_total_bytes:
                raise ValueError(
                    f"{os.path.basename(path)}: more than {limits.max_total_bytes} bytes or "
                    f"{limits.max_members} members once decompressed (archive bomb?)"
                )
            handle = archive.extractfile(info)
            if handle is None:
                continue
            yield rel, handle.read()


def _read_member(reader) -> bytes:
    """Accept the shared reader's member handle in any of its plausible shapes."""
    if isinstance(reader, bytes | bytearray):
        return bytes(reader)
    if callable(reader):
        reader = reader()
    if hasattr(reader, "read"):
        try:
            return reader.read()
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()
    if isinstance(reader, bytes | bytearray):
        return bytes(reader)
    raise TypeError(f"cannot read archive member from {type(reader).__name__}")


def archive_members_iter(*, path: str, limits: SourceLimits | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, bytes) for the regular files inside an archive.

    Uses the shared streaming reader (`compliance.engine.archives`) in
    non-strict mode: unsafe entries (links, '..', absolute paths) are skipped
    here because the intake check already reports them, and one bad entry
    should not hide the licences of the rest. Its limits (expanded size,
    member count, nesting) still raise.
    """
    limits = limits or SourceLimits()
    try:
        from compliance.engine.archives import archive_iter_members
    except ImportError:
        archive_iter_members = None
    if archive_iter_members is None:
        yield from _fallback_archive_iter(path=path, limits=limits)
        return
    for rel, size, reader in archive_iter_members(path=path, strict=False):
        if size is not None and size > limits.max_member_bytes:
            continue
        yield rel, _read_member(reader)


def source_members_iter(*, path: str, limits: SourceLimits | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, bytes) for a directory tree, one file or an archive.

    Paths are POSIX-style and relative to the directory (or the archive root);
    a single plain file yields its own base name. Symlinks are not followed,
    so a tree cannot point the scanner at files outside it.
    """
    limits = limits or SourceLimits()
    if os.path.isdir(path):
        root = os.path.abspath(path)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIR_NAMES)
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                if os.path.getsize(full) > limits.max_member_bytes:
                    continue
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as handle:
                    yield rel, handle.read()
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path_is_archive(path=path):
        yield from archive_members_iter(path=path, limits=limits)
        return
    with open(path, "rb") as handle:
        yield os.path.basename(path), handle.read()


def members_from(*, source: str | Iterable[tuple[str, bytes]]) -> Iterable[tuple[str, bytes]]:
    """Accept a path or an iterable of (relative path, bytes) pairs."""
    if isinstance(source, str | os.PathLike):
        return source_members_iter(path=os.fspath(source))
    return source

"""Turn a directory, a single file or an archive into (relative path, bytes) pairs.

Both the licence scanner and the code matcher read their input through
`source_members_iter`, so an uploaded archive is streamed member by member and
never extracted to disk. Archives go through `compliance.engine.archives`, the
shared safe reader: no absolute paths, no `..`, no links, no device files, and
caps on member and total size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

ARCHIVE_SUFFIXES = (".zip", ".whl", ".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.bz2", ".tbz2", ".tar.xz",
                    ".txz")

# Directories that hold tooling state, never the vendor's code or licences.
SKIPPED_DIR_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"})


@dataclass(frozen=True)
class SourceLimits:
    """Caps applied while reading members.

    max_member_bytes: licence and code files above 16 MiB are data or
    generated blobs; reading them costs memory and never changes a verdict.
    Expanded size, member count and nesting are capped by the shared archive
    reader (`compliance.engine.archives`, its IntakeLimits).
    """

    max_member_bytes: int = 16 * 1024 * 1024


def source_is_archive(*, path: str, name: str | None = None) -> bool:
    """True for an archive we open: told by its content (zip, tar, tar.gz, tar.zst), so a
    stored copy with no name or a renamed suffix is still opened, or by an archive suffix of
    `name` (default: the path), so a format the shared reader refuses (tar.bz2, tar.xz) gets
    its clear error rather than being read as one opaque file."""
    from compliance.engine.archives import ZSTD_SNIFF_BYTES, archive_kind_sniff

    if (name or path).lower().endswith(ARCHIVE_SUFFIXES):
        return True
    with open(path, "rb") as handle:
        return archive_kind_sniff(head=handle.read(ZSTD_SNIFF_BYTES)) in ("zip", "tar", "tar_gz", "tar_zst")


def archive_members_iter(*, path: str, limits: SourceLimits | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, bytes) for the regular files inside an archive.

    Uses the shared streaming reader (`compliance.engine.archives`) in
    non-strict mode: unsafe entries (links, '..', absolute paths) are skipped
    here because the intake check already reports them, and one bad entry
    should not hide the licences of the rest. Its limits (expanded size,
    member count, nesting) still raise.
    """
    from compliance.engine.archives import archive_iter_members

    limits = limits or SourceLimits()
    for member in archive_iter_members(path=path, strict=False):
        if member.size > limits.max_member_bytes:
            continue
        yield member.path, member.reader.read()


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
    if source_is_archive(path=path):
        yield from archive_members_iter(path=path, limits=limits)
        return
    with open(path, "rb") as handle:
        yield os.path.basename(path), handle.read()


def members_from(*, source: str | Iterable[tuple[str, bytes]]) -> Iterable[tuple[str, bytes]]:
    """Accept a path or an iterable of (relative path, bytes) pairs."""
    if isinstance(source, str | os.PathLike):
        return source_members_iter(path=os.fspath(source))
    return source

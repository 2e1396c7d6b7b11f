"""Stored files read by byte range, on local storage and on object storage alike.

Workers on other hosts reach uploads only through object storage, and a 200 GB checkpoint
must never be downloaded to learn what its header says. ``stored_range_reader`` gives the
engine's byte-source shape (``name``, ``size``, ``read(offset, length)``, ``bytes_read``)
for any stored file: a ranged ``GET`` (``Range: bytes=a-b``) per read on S3, a seek and a
read on local storage. ``stored_file_copy`` streams a whole file to local disk by ranges of
8 MiB, for readers that need a local path (intake's archive walk, GGUF's memory map).

The shape matches ``compliance.engine.weights.ByteSource`` structurally; nothing here imports
the engine, so imports still point one way (``compliance`` -> ``projects``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files.storage import default_storage

# 8 MiB a request: at ~100 MB/s from object storage that is ~80 ms, small enough that a lease
# keeper's progress is never starved, large enough that request overhead (~1 ms) stays under 2 %.
COPY_RANGE_BYTES = 8 * 1024 * 1024


class StoredFileReadError(OSError):
    """A stored file could not be read as asked (missing, shorter than expected, storage refused)."""


def _object_storage_key(name: str) -> str | None:
    """The object key of ``name`` when default storage is S3 (django-storages), else None."""
    if not hasattr(default_storage, "bucket_name"):
        return None
    from storages.utils import clean_name

    return default_storage._normalize_name(clean_name(name))


class StoredRangeReader:
    """One stored file, read by byte range; counts what it hands out (``bytes_read``, ``reads``)."""

    def __init__(self, *, stored_name: str, name: str) -> None:
        self.stored_name = stored_name
        self.name = name
        self.bytes_read = 0
        self.reads = 0
        self._key = _object_storage_key(stored_name)
        self._local: Path | None = None
        if self._key is None:
            try:
                self._local = Path(default_storage.path(stored_name))
            except NotImplementedError:
                self._local = None
        try:
            self.size = default_storage.size(stored_name)
        except (FileNotFoundError, OSError) as exc:
            raise StoredFileReadError(f"{name}: the stored file {stored_name} cannot be read ({exc})") from exc

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``, or StoredFileReadError."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise StoredFileReadError(
                f"{self.name}: asked for bytes {offset}..{offset + length} but the file holds {self.size} bytes")
        if length == 0:
            return b""
        if self._key is not None:
            client = default_storage.connection.meta.client
            response = client.get_object(Bucket=default_storage.bucket_name, Key=self._key,
                                         Range=f"bytes={offset}-{offset + length - 1}")
            with response["Body"] as body:
                data = body.read()
        elif self._local is not None:
            with open(self._local, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
        else:  # another remote storage without ranged reads: seek on its file object
            with default_storage.open(self.stored_name, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
        if len(data) != length:
            raise StoredFileReadError(f"{self.name}: short read at offset {offset} (file changed while reading?)")
        self.bytes_read += length
        self.reads += 1
        return data


def stored_file_is_local(*, stored_name: str) -> bool:
    """True when the stored file has a path on this machine (local storage)."""
    try:
        default_storage.path(stored_name)
    except NotImplementedError:
        return False
    return True


def stored_range_reader(*, stored_name: str, name: str) -> StoredRangeReader:
    """A byte-range reader of the stored file ``stored_name``, shown to people as ``name``."""
    return StoredRangeReader(stored_name=stored_name, name=name)


def stored_file_copy(*, stored_name: str, target: Path) -> Path:
    """Stream the stored file to ``target`` by ranges of COPY_RANGE_BYTES (never whole in memory)."""
    if _object_storage_key(stored_name) is None:
        with default_storage.open(stored_name, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        return target
    reader = stored_range_reader(stored_name=stored_name, name=target.name)
    with open(target, "wb") as dst:
        for offset in range(0, reader.size, COPY_RANGE_BYTES):
            dst.write(reader.read(offset, min(COPY_RANGE_BYTES, reader.size - offset)))
    return target


def stored_artifact_file_release(*, stored_name: str) -> bool:
    """Delete the stored object ``stored_name`` unless an artifact row still refers to it.

    A new version carries files over by reference (``projects.services.submission_carry_over``):
    several rows, in several versions, then name one stored object, and removing a file from a
    draft must leave the earlier versions' copy readable. Call after the deleting transaction
    committed. No carry-over can add a reference between the check and the delete: files are
    removed only from a draft, and a carry-over reads the latest version, which is never the
    draft (one open draft per project). Returns whether the object was deleted."""
    from projects.models import Artifact

    if not stored_name or Artifact.objects.filter(file=stored_name).exists():
        return False
    default_storage.delete(stored_name)
    return True

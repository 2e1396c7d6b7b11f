"""Stored files read by byte range, on local storage and on object storage alike.

Workers on other hosts reach uploads only through object storage, and a 200 GB checkpoint
must never be downloaded to learn what its header says. ``stored_range_reader`` gives the
engine's byte-source shape (``name``, ``size``, ``read(offset, length)``, ``bytes_read``)
for any stored file: a ranged ``GET`` (``Range: bytes=a-b``) per read on S3, a seek and a
read on local storage. ``stored_file_copy`` streams a whole file to local disk by ranges of
8 MiB, for readers that need a local path (intake's archive walk, a pickle scan).

On object storage an upload is put with S3's SHA-256 checksums (``stored_object_put``), and
what the store then says identifies the object (its checksum, ETag, VersionId, size) is kept
with the artifact; ``stored_object_verify`` compares it with a HEAD, so intake can tell that
weights are unchanged since upload without downloading them.

The shape matches ``compliance.engine.weights.ByteSource`` structurally; nothing here imports
the engine, so imports still point one way (``compliance`` -> ``projects``).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path
from typing import BinaryIO

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

    def __init__(self, *, stored_name: str, name: str, identity: dict | None = None) -> None:
        self.stored_name = stored_name
        self.name = name
        # Pin every ranged GET to the object verified (``stored_object_verify``): its version when
        # the bucket keeps versions (versions never change), else its ETag (If-Match: a replaced
        # object answers 412 and the read fails rather than mixing two objects' bytes).
        identity = identity or {}
        self._pin = ({"VersionId": identity["version_id"]} if identity.get("version_id")
                     else {"IfMatch": identity["etag"]} if identity.get("etag") else {})
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

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise StoredFileReadError(
                f"{self.name}: asked for bytes {offset}..{offset + length} but the file holds {self.size} bytes")

    def _get(self, client, offset: int, length: int) -> bytes:
        """One ranged GET of the pinned object (boto3 clients may be shared across threads)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = client.get_object(Bucket=default_storage.bucket_name, Key=self._key,
                                         Range=f"bytes={offset}-{offset + length - 1}", **self._pin)
            with response["Body"] as body:
                return body.read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "412", "NoSuchKey", "NoSuchVersion"):
                raise StoredObjectChanged(f"the stored object changed while it was read ({code})") from exc
            raise StoredFileReadError(f"{self.name}: object storage refused bytes {offset}..{offset + length} "
                                      f"({exc})") from exc
        except BotoCoreError as exc:
            raise StoredFileReadError(f"{self.name}: object storage refused bytes {offset}..{offset + length} "
                                      f"({exc})") from exc

    def _counted(self, data: bytes, offset: int, length: int) -> bytes:
        if len(data) != length:
            raise StoredFileReadError(f"{self.name}: short read at offset {offset} (file changed while reading?)")
        self.bytes_read += length
        self.reads += 1
        return data

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``, or StoredFileReadError."""
        self._check(offset, length)
        if length == 0:
            return b""
        if self._key is not None:
            data = self._get(default_storage.connection.meta.client, offset, length)
        elif self._local is not None:
            with open(self._local, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
        else:  # another remote storage without ranged reads: seek on its file object
            with default_storage.open(self.stored_name, "rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
        return self._counted(data, offset, length)

    def read_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """``[read(offset, length) for offset, length in ranges]``, the GETs of an object sent
        several at a time. A store answers each GET after a first-byte latency (tens
        of milliseconds on a real S3) that a small range does not amortise: the lineage check reads
        about 1,600 ranges of 30 KB from a 100B checkpoint, so one at a time they cost that
        latency 1,600 times; sent together, about 1,600 / 8 times (bench/submission_e2e.py --s3
        --s3-latency-ms). Same bytes, same order, same errors (the first range that fails).
        ``PORTAL_S3_READ_THREADS`` (8) sets how many; 1 sends them one at a time."""
        from django.conf import settings

        threads = getattr(settings, "PORTAL_S3_READ_THREADS", 8)
        ranges = [(int(offset), int(length)) for offset, length in ranges]
        if self._key is None or len(ranges) < 2 or threads <= 1:
            return [self.read(offset, length) for offset, length in ranges]
        for offset, length in ranges:
            self._check(offset, length)
        from concurrent.futures import ThreadPoolExecutor

        client = default_storage.connection.meta.client
        with ThreadPoolExecutor(max_workers=min(threads, len(ranges)),
                                thread_name_prefix="ranged-get") as pool:
            futures = [pool.submit(self._get, client, offset, length) if length else None
                       for offset, length in ranges]
            datas = [future.result() if future is not None else b"" for future in futures]
        return [self._counted(data, offset, length) if length else data
                for data, (offset, length) in zip(datas, ranges)]


def stored_file_is_s3() -> bool:
    """True when default storage is S3 (django-storages' S3Storage)."""
    return hasattr(default_storage, "bucket_name")


def stored_file_is_local(*, stored_name: str) -> bool:
    """True when the stored file has a path on this machine (local storage)."""
    try:
        default_storage.path(stored_name)
    except NotImplementedError:
        return False
    return True


def stored_range_reader(*, stored_name: str, name: str, identity: dict | None = None) -> StoredRangeReader:
    """A byte-range reader of the stored file ``stored_name``, shown to people as ``name``; on
    object storage pinned to ``identity`` (the object ``stored_object_verify`` checked) when given."""
    return StoredRangeReader(stored_name=stored_name, name=name, identity=identity)


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


class StoredObjectChanged(StoredFileReadError):
    """The object in the store is not the one recorded at upload (replaced, or damaged)."""


class _HashingReader:
    """A local file read once, front to back, hashing what it hands out. It has no ``seek``, so
    boto3 takes its non-seekable path and reads it in order, part by part: the hash covers exactly
    the bytes sent, whatever the part size."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def _object_head(key: str) -> dict:
    client = default_storage.connection.meta.client
    return client.head_object(Bucket=default_storage.bucket_name, Key=key, ChecksumMode="ENABLED")


def _identity_from_head(head: dict) -> dict:
    version = head.get("VersionId")
    return {"etag": head.get("ETag"), "version_id": version if version and version != "null" else None,
            "checksum_sha256": head.get("ChecksumSHA256"), "checksum_type": head.get("ChecksumType"),
            "size": head.get("ContentLength")}


def stored_object_put(*, source: Path, name: str, sha256: str) -> tuple[str, dict]:
    """Put the local file ``source`` into object storage as ``name`` (a free name, as storage's
    ``save`` picks it) and return (stored name, identity).

    Sent with ``ChecksumAlgorithm=SHA256``: boto3 sends each part's SHA-256 and the store refuses
    a part whose bytes do not match it (one object under 8 MiB is one part, its checksum the
    whole file's SHA-256; a multipart object's is the SHA-256 of its parts' SHA-256s). The bytes
    sent are hashed as they are read, and must give ``sha256``, the hash taken while the upload
    streamed in: the file cannot have changed between the two. The identity is what a HEAD then
    says: checksum, ETag, VersionId (a versioned bucket) and size."""
    stored_name = default_storage.get_available_name(name)
    key = _object_storage_key(stored_name)
    params = default_storage._get_write_parameters(key)  # content type and object parameters, as save() sends
    params["ChecksumAlgorithm"] = "SHA256"
    client = default_storage.connection.meta.client
    with open(source, "rb") as handle:
        reader = _HashingReader(handle)
        client.upload_fileobj(reader, default_storage.bucket_name, key, ExtraArgs=params,
                              Config=default_storage.transfer_config)
    identity = _identity_from_head(_object_head(key))
    if reader.digest.hexdigest() != sha256 or identity["size"] != reader.size:
        client.delete_object(Bucket=default_storage.bucket_name, Key=key)
        raise StoredFileReadError(f"{name}: the bytes sent to object storage (SHA-256 {reader.digest.hexdigest()[:16]}…, "
                                  f"{reader.size:,} bytes) are not the upload's ({sha256[:16]}…); not stored")
    identity["sent_sha256"] = sha256
    if identity["checksum_sha256"] and identity["checksum_type"] != "COMPOSITE" and "-" not in identity["checksum_sha256"]:
        # A single-part object: the store's checksum is the file's own SHA-256, verified on receipt.
        identity["checksum_is_file_sha256"] = (
            base64.b64decode(identity["checksum_sha256"]) == bytes.fromhex(sha256))
    return stored_name, identity


def stored_object_verify(*, stored_name: str, identity: dict) -> dict | None:
    """Whether the object ``stored_name`` is still the one recorded at upload, asked with one HEAD.

    Returns the evidence (how it was verified, and the values compared) when it is; raises
    StoredObjectChanged when it is not; returns None when the store keeps nothing that proves it
    without reading the bytes (local storage, no recorded identity, or only an ETag, which is MD5
    based and not proof against a deliberate replacement): the caller then reads and re-hashes."""
    key = _object_storage_key(stored_name)
    if key is None or not identity or not (identity.get("checksum_sha256") or identity.get("version_id")):
        return None
    from botocore.exceptions import ClientError

    try:
        now = _identity_from_head(_object_head(key))
    except ClientError as exc:
        raise StoredObjectChanged(f"{stored_name}: the stored object cannot be found ({exc})") from exc
    compared = [("checksum_sha256", "SHA-256 checksum"), ("version_id", "version"), ("etag", "ETag"),
                ("size", "size")]
    for field, label in compared:
        if identity.get(field) is not None and now.get(field) != identity.get(field):
            raise StoredObjectChanged(f"the stored object's {label} {now.get(field)} differs from the "
                                      f"{identity.get(field)} recorded at upload")
    by = [label for field, label in compared if identity.get(field) is not None]
    return {"method": "object storage identity", "compared": by,
            "checksum_sha256": identity.get("checksum_sha256"), "checksum_type": identity.get("checksum_type"),
            "checksum_is_file_sha256": identity.get("checksum_is_file_sha256", False),
            "version_id": identity.get("version_id"), "etag": identity.get("etag"),
            "sent_sha256": identity.get("sent_sha256")}

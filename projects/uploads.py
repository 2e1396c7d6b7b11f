"""Streaming, resumable artifact uploads with the SHA-256 computed while streaming.

A client creates an upload session (file name, kind, size), then sends the file
in chunks, each at the offset the server holds (``Upload-Offset``, as in the tus
protocol). A dropped connection loses at most the chunk in flight: the client
asks for the offset and carries on. Nothing is ever read whole into memory: a
chunk is copied to a partial file 1 MiB at a time and fed to the running hash.

The running hash lives in the web process (hashlib states cannot be saved). If a
chunk lands on another process, or after a restart, the hash is rebuilt by
re-reading the partial file once, sequentially, at disk speed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import threading
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from portal.services import audit_record
from projects.models import Artifact, Submission, UploadSession
from projects.selectors import user_can_submit

CHUNK_COPY_BYTES = 1024 * 1024  # 1 MiB copy buffer: flat memory whatever the file size
MAX_FILENAME_CHARS = 500

_hash_cache: dict[str, tuple[int, "hashlib._Hash"]] = {}
_hash_cache_lock = threading.Lock()


class UploadConflict(Exception):
    """The chunk's offset is not where the upload stands (the client should resume at ``expected``)."""

    def __init__(self, expected: int, message: str):
        super().__init__(message)
        self.expected = expected


def filename_clean(name: str) -> str:
    """A safe relative POSIX path for display and storage names: no '..', no absolute
    paths, no control characters. The original folder structure (a model directory)
    is kept so 'model/config.json' stays recognisable."""
    name = (name or "").replace("\\", "/")
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    parts = [p for p in PurePosixPath(name).parts if p not in {"", ".", "..", "/"}]
    cleaned = "/".join(parts)[-MAX_FILENAME_CHARS:]
    if not cleaned:
        raise ValidationError({"filename": _("The file needs a name.")})
    return cleaned


def _check_writable(user, submission: Submission) -> None:
    if not user_can_submit(user=user, project=submission.project):
        raise PermissionDenied(_("Only the project's vendor members may upload artifacts."))
    if submission.status != Submission.Status.DRAFT:
        raise ValidationError(_("This submission was already submitted; open a new version to add files."))


def _check_size(submission: Submission, size: int) -> None:
    limit = submission.project.programme.max_artifact_bytes
    if size <= 0:
        raise ValidationError({"size": _("The file is empty.")})
    if size > limit:
        raise ValidationError({"size": _("The file is %(size)s bytes; this programme accepts at most %(limit)s bytes "
                                         "per artifact.") % {"size": f"{size:,}", "limit": f"{limit:,}"}})


def _partial_path(session: UploadSession) -> Path:
    settings.UPLOAD_PARTIAL_DIR.mkdir(parents=True, exist_ok=True)
    return settings.UPLOAD_PARTIAL_DIR / f"{session.pk}.part"


def upload_session_create(*, user, submission: Submission, kind: str, filename: str, size: int) -> UploadSession:
    """Start an upload, or return the unfinished one for the same file so the client resumes it."""
    _check_writable(user, submission)
    if kind not in Artifact.Kind.values:
        raise ValidationError({"kind": _("Unknown artifact kind %(kind)r.") % {"kind": kind}})
    filename = filename_clean(filename)
    _check_size(submission, size)
    existing = UploadSession.objects.filter(submission=submission, created_by=user, filename=filename, size=size,
                                            kind=kind, artifact__isnull=True).first()
    if existing:
        return existing
    return UploadSession.objects.create(submission=submission, kind=kind, filename=filename, size=size,
                                        created_by=user)


def _hash_for(session: UploadSession, path: Path):
    """The running hash of the first ``session.received`` bytes."""
    key = str(session.pk)
    with _hash_cache_lock:
        cached = _hash_cache.pop(key, None)
    if cached and cached[0] == session.received:
        return cached[1]
    digest = hashlib.sha256()
    remaining = session.received
    with open(path, "rb") as fh:
        while remaining:
            block = fh.read(min(CHUNK_COPY_BYTES, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


def upload_chunk_write(*, user, session: UploadSession, offset: int, stream: BinaryIO,
                       length: int | None) -> UploadSession:
    """Append one chunk at ``offset``. Finalises the artifact when the last byte arrives."""
    submission = session.submission
    _check_writable(user, submission)
    if session.complete:
        raise UploadConflict(session.size, _("This upload is already complete."))
    if offset != session.received:
        raise UploadConflict(session.received, _("The upload stands at byte %(at)d, not %(offset)d; resume there.")
                             % {"at": session.received, "offset": offset})
    if length is not None and offset + length > session.size:
        raise ValidationError(_("This chunk would take the file past its declared size of %(size)d bytes.")
                              % {"size": session.size})
    path = _partial_path(session)
    path.touch(exist_ok=True)
    with open(path, "r+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UploadConflict(session.received, _("Another chunk of this upload is being written.")) from None
        # Bytes past `received` are what a dropped connection left behind: discard them.
        fh.truncate(session.received)
        fh.seek(session.received)
        digest = _hash_for(session, path)
        written = 0
        try:
            while True:
                want = CHUNK_COPY_BYTES if length is None else min(CHUNK_COPY_BYTES, length - written)
                if want <= 0:
                    break
                block = stream.read(want)
                if not block:
                    break
                if session.received + written + len(block) > session.size:
                    raise ValidationError(_("The file is larger than its declared size of %(size)d bytes.")
                                          % {"size": session.size})
                fh.write(block)
                digest.update(block)
                written += len(block)
            if length is not None and written != length:
                raise ValidationError(_("The chunk ended after %(got)d of %(want)d bytes (connection dropped?); "
                                        "resume at byte %(at)d.") % {"got": written, "want": length,
                                                                     "at": session.received})
            fh.flush()
        except BaseException:
            fh.truncate(session.received)
            raise
    new_received = session.received + written
    updated = UploadSession.objects.filter(pk=session.pk, received=session.received).update(received=new_received)
    if updated != 1:
        raise UploadConflict(session.received, _("The upload moved on meanwhile; ask for its offset."))
    session.received = new_received
    if new_received == session.size:
        _artifact_from_partial(user=user, session=session, path=path, sha256=digest.hexdigest())
    else:
        with _hash_cache_lock:
            _hash_cache[str(session.pk)] = (new_received, digest)
    return session


def _store(path: Path, name: str) -> str:
    """Move a finished file into storage without copying it through memory."""
    storage_name = Artifact.file.field.generate_filename(None, name)
    if isinstance(default_storage, FileSystemStorage):
        storage_name = default_storage.get_available_name(storage_name)
        target = Path(default_storage.path(storage_name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        return storage_name
    with open(path, "rb") as fh:
        stored = default_storage.save(storage_name, File(fh))
    path.unlink(missing_ok=True)
    return stored


def _artifact_record(*, user, submission: Submission, kind: str, filename: str, size: int, sha256: str,
                     source: Path) -> Artifact:
    """Create the artifact row for a complete file, or refuse a duplicate, removing the file either way
    on failure so nothing is orphaned."""
    if submission.artifacts.filter(sha256=sha256).exists():
        source.unlink(missing_ok=True)
        other = submission.artifacts.filter(sha256=sha256).first()
        raise ValidationError(_("This file (SHA-256 %(sha)s) is already in the submission as %(name)s.")
                              % {"sha": sha256[:16], "name": other.original_name})
    stored = _store(source, Path(filename).name)
    try:
        with transaction.atomic():
            artifact = Artifact.objects.create(submission=submission, kind=kind, original_name=filename,
                                               file=stored, size=size, sha256=sha256, uploaded_by=user)
            audit_record(actor=user, action="artifact.upload", object_type="artifact", object_id=artifact.pk,
                         object_label=filename, submission_id=submission.pk, project_id=submission.project_id,
                         data={"sha256": sha256, "size": size, "kind": kind})
    except IntegrityError:
        default_storage.delete(stored)
        raise ValidationError(_("This file is already in the submission.")) from None
    except BaseException:
        default_storage.delete(stored)
        raise
    return artifact


def _artifact_from_partial(*, user, session: UploadSession, path: Path, sha256: str) -> Artifact:
    try:
        artifact = _artifact_record(user=user, submission=session.submission, kind=session.kind,
                                    filename=session.filename, size=session.size, sha256=sha256, source=path)
    except ValidationError:
        session.delete()
        raise
    UploadSession.objects.filter(pk=session.pk).update(artifact=artifact)
    session.artifact = artifact
    return artifact


def artifact_upload_file(*, user, submission: Submission, kind: str, filename: str, fileobj: BinaryIO) -> Artifact:
    """One-shot upload (a multipart form or a small API upload): stream to a partial file,
    hashing as it goes, then record the artifact."""
    _check_writable(user, submission)
    if kind not in Artifact.Kind.values:
        raise ValidationError({"kind": _("Unknown artifact kind %(kind)r.") % {"kind": kind}})
    filename = filename_clean(filename)
    limit = submission.project.programme.max_artifact_bytes
    settings.UPLOAD_PARTIAL_DIR.mkdir(parents=True, exist_ok=True)
    path = settings.UPLOAD_PARTIAL_DIR / f"direct-{os.getpid()}-{threading.get_ident()}-{os.urandom(6).hex()}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            while True:
                block = fileobj.read(CHUNK_COPY_BYTES)
                if not block:
                    break
                size += len(block)
                if size > limit:
                    raise ValidationError({"file": _("The file is larger than this programme's limit of %(limit)s "
                                                     "bytes per artifact.") % {"limit": f"{limit:,}"}})
                out.write(block)
                digest.update(block)
        if size == 0:
            raise ValidationError({"file": _("The file is empty.")})
        return _artifact_record(user=user, submission=submission, kind=kind, filename=filename, size=size,
                                sha256=digest.hexdigest(), source=path)
    finally:
        path.unlink(missing_ok=True)


def upload_session_abort(*, user, session: UploadSession) -> None:
    """Drop an unfinished upload and its partial file."""
    _check_writable(user, session.submission)
    _partial_path(session).unlink(missing_ok=True)
    with _hash_cache_lock:
        _hash_cache.pop(str(session.pk), None)
    session.delete()


def artifact_delete(*, user, artifact: Artifact) -> None:
    """Remove an artifact from a draft submission (file and row)."""
    _check_writable(user, artifact.submission)
    name = artifact.file.name
    with transaction.atomic():
        audit_record(actor=user, action="artifact.delete", object_type="artifact", object_id=artifact.pk,
                     object_label=artifact.original_name, submission_id=artifact.submission_id,
                     project_id=artifact.submission.project_id, data={"sha256": artifact.sha256})
        UploadSession.objects.filter(artifact=artifact).delete()
        artifact.delete()
    transaction.on_commit(lambda: default_storage.delete(name))

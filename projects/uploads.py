"""Streaming, resumable artifact uploads with the SHA-256 computed while streaming.

A client creates an upload session (file name, kind, size), then sends the file
in chunks, each at the offset the server holds (``Upload-Offset``, as in the tus
protocol). A dropped connection loses at most the chunk in flight: the client
asks for the offset and carries on. Nothing is ever read whole into memory: a
chunk is copied to a partial file 1 MiB at a time and fed to the running hash.

The running hash is saved with the session's row (``projects.hashstate``: OpenSSL's
SHA-256 state, 112 bytes), so the next chunk may land on any process of any host.
Where that state is unavailable the hash is rebuilt by re-reading the partial file,
sequentially, at disk speed. The partial files live in ``UPLOAD_PARTIAL_DIR``, which
every web host must share (or route a session's chunks to one host).
"""

from __future__ import annotations

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
from projects.hashstate import ResumableSha256, sha256_state_available
from projects.limits import MESSAGE_ATTACHMENT_BYTES, UPLOAD_CHUNK_BYTES, limit_filename
from projects.models import Artifact, Submission, UploadSession
from projects.selectors import user_can_review, user_can_submit
from projects.storage import stored_artifact_file_release, stored_file_is_s3, stored_object_put

CHUNK_COPY_BYTES = 1024 * 1024  # 1 MiB copy buffer: flat memory whatever the file size



class UploadConflict(Exception):
    """The chunk's offset is not where the upload stands (the client should resume at ``expected``).
    ``reset_from`` is set when the stored bytes were lost and the session must restart at 0."""

    def __init__(self, expected: int, message: str, reset_from: int | None = None):
        super().__init__(message)
        self.expected = expected
        self.reset_from = reset_from


def filename_clean(name: str) -> str:
    """A safe relative POSIX path for display and storage names: no '..', no absolute
    paths, no control characters. The original folder structure (a model directory)
    is kept so 'model/config.json' stays recognisable."""
    name = (name or "").replace("\\", "/")
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    parts = [p for p in PurePosixPath(name).parts if p not in {"", ".", "..", "/"}]
    cleaned = "/".join(parts)
    if not cleaned:
        raise ValidationError({"filename": _("The file needs a name.")})
    return limit_filename(value=cleaned)


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
    if kind not in Artifact.UPLOAD_KINDS:
        raise ValidationError({"kind": _("Unknown artifact kind %(kind)r.") % {"kind": kind}})
    filename = filename_clean(filename)
    _check_size(submission, size)
    existing = UploadSession.objects.filter(submission=submission, created_by=user, filename=filename, size=size,
                                            kind=kind, artifact__isnull=True).first()
    if existing:
        return existing
    return UploadSession.objects.create(submission=submission, kind=kind, filename=filename, size=size,
                                        created_by=user)


def _hash_rebuilt(path: Path, received: int, digest):
    """``digest`` fed the first ``received`` bytes of the partial file, read once at disk speed:
    where no saved state exists (OpenSSL's resumable state unavailable, or a session older
    than the state column)."""
    remaining = received
    with open(path, "rb") as fh:
        while remaining:
            block = fh.read(min(CHUNK_COPY_BYTES, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


def _chunk_stage(*, session: UploadSession, stream: BinaryIO, length: int | None, offset: int) -> tuple[Path, int]:
    """Receive the chunk from the network into a file of its own, before any lock is taken: a slow
    client must not hold the session's lock (on SQLite, every writer's) while its bytes trickle in."""
    if length is not None and length > UPLOAD_CHUNK_BYTES:
        raise ValidationError({"chunk": _("A chunk is at most %(limit)s bytes; send this one in smaller parts.")
                               % {"limit": f"{UPLOAD_CHUNK_BYTES:,}"}})
    if length is not None and offset + length > session.size:
        raise ValidationError(_("This chunk would take the file past its declared size of %(size)d bytes.")
                              % {"size": session.size})
    staged = settings.UPLOAD_PARTIAL_DIR / f"{session.pk}.{os.urandom(8).hex()}.chunk"
    written = 0
    try:
        with open(staged, "wb") as out:
            while True:
                want = CHUNK_COPY_BYTES if length is None else min(CHUNK_COPY_BYTES, length - written)
                if want <= 0:
                    break
                block = stream.read(want)
                if not block:
                    break
                written += len(block)
                if offset + written > session.size:
                    raise ValidationError(_("The file is larger than its declared size of %(size)d bytes.")
                                          % {"size": session.size})
                if written > UPLOAD_CHUNK_BYTES:
                    raise ValidationError({"chunk": _("A chunk is at most %(limit)s bytes; send this one in "
                                                      "smaller parts.") % {"limit": f"{UPLOAD_CHUNK_BYTES:,}"}})
                out.write(block)
        if length is not None and written != length:
            raise ValidationError(_("The chunk ended after %(got)d of %(want)d bytes (connection dropped?); "
                                    "resume at byte %(at)d.") % {"got": written, "want": length, "at": offset})
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged, written


def _chunk_append(*, locked: UploadSession, path: Path, staged: Path) -> str | None:
    """Append the staged chunk to the partial file and advance the hash and the row; called with
    the session's row locked. Returns the SHA-256 when the file is complete."""
    path.touch(exist_ok=True)
    resumable = sha256_state_available()
    with open(path, "r+b") as fh:
        if os.fstat(fh.fileno()).st_size < locked.received:
            # The row says more than the disk holds (a crash between the row's commit and the
            # data reaching disk): the hash no longer describes the file. Start again from 0.
            fh.truncate(0)
            raise UploadConflict(0, _("The stored part of this upload was lost; send it again from byte 0."),
                                 reset_from=locked.received)
        # Bytes past `received` are what an interrupted append left behind: discard them.
        fh.truncate(locked.received)
        fh.seek(locked.received)
        if resumable and (locked.sha256_state or locked.received == 0):
            digest = ResumableSha256(bytes(locked.sha256_state) if locked.sha256_state else None)
        else:
            digest = _hash_rebuilt(path, locked.received, ResumableSha256() if resumable else hashlib.sha256())
        written = 0
        try:
            with open(staged, "rb") as chunk:
                while block := chunk.read(CHUNK_COPY_BYTES):
                    fh.write(block)
                    digest.update(block)
                    written += len(block)
            fh.flush()
            # On disk before the row says so: the row must never claim bytes a crash could lose.
            os.fsync(fh.fileno())
        except BaseException:
            fh.truncate(locked.received)
            raise
    locked.received += written
    locked.sha256_state = digest.state() if isinstance(digest, ResumableSha256) else None
    UploadSession.objects.filter(pk=locked.pk).update(received=locked.received, sha256_state=locked.sha256_state)
    return digest.hexdigest() if locked.received == locked.size else None


def upload_chunk_write(*, user, session: UploadSession, offset: int, stream: BinaryIO,
                       length: int | None) -> UploadSession:
    """Append one chunk at ``offset``. Finalises the artifact when the last byte arrives.

    One lock covers reading the offset, appending, hashing, updating the row and finalising
    (issue #11: two chunks at once corrupted 13 uploads in 30 when the offset was read before
    the lock and the lock released before the row was written). The lock is the session's row:
    ``select_for_update`` on PostgreSQL, and on SQLite the IMMEDIATE transaction every
    ``atomic()`` opens (settings.py), so it holds across processes and hosts. A chunk that
    loses the race is answered 409 with the offset to resume at, and changes nothing.
    """
    submission = session.submission
    _check_writable(user, submission)
    # A cheap early answer for a stale chunk before its body is read; the locked check decides.
    current = UploadSession.objects.filter(pk=session.pk).values("received", "artifact_id").first()
    if current is None:
        raise UploadConflict(0, _("This upload no longer exists; start it again."))
    if current["artifact_id"] is not None:
        raise UploadConflict(session.size, _("This upload is already complete."))
    if offset != current["received"]:
        raise UploadConflict(current["received"], _("The upload stands at byte %(at)d, not %(offset)d; resume "
                                                    "there.") % {"at": current["received"], "offset": offset})
    path = _partial_path(session)
    staged, _written = _chunk_stage(session=session, stream=stream, length=length, offset=offset)
    refused: ValidationError | None = None
    try:
        with transaction.atomic():
            locked = UploadSession.objects.select_for_update().filter(pk=session.pk).first()
            if locked is None:
                raise UploadConflict(0, _("This upload no longer exists; start it again."))
            if locked.artifact_id is not None:
                raise UploadConflict(locked.size, _("This upload is already complete."))
            if offset != locked.received:
                raise UploadConflict(locked.received, _("The upload stands at byte %(at)d, not %(offset)d; "
                                                        "resume there.") % {"at": locked.received, "offset": offset})
            sha256 = _chunk_append(locked=locked, path=path, staged=staged)
            if sha256 is not None:
                try:
                    with transaction.atomic():
                        artifact = _artifact_record(user=user, submission=submission, kind=locked.kind,
                                                    filename=locked.filename, size=locked.size, sha256=sha256,
                                                    source=path)
                except ValidationError as exc:  # the same file is already in the submission
                    refused = exc
                    locked.delete()
                else:
                    UploadSession.objects.filter(pk=locked.pk).update(artifact=artifact)
                    locked.artifact = artifact
    except UploadConflict as exc:
        if exc.reset_from is not None:
            # Outside the rolled-back transaction, and only if nobody moved the session meanwhile.
            UploadSession.objects.filter(pk=session.pk, received=exc.reset_from).update(received=0,
                                                                                       sha256_state=None)
        raise
    finally:
        staged.unlink(missing_ok=True)
    if refused is not None:
        path.unlink(missing_ok=True)
        raise refused
    session.received, session.sha256_state, session.artifact = locked.received, locked.sha256_state, locked.artifact
    return session


def _store(path: Path, name: str, sha256: str) -> tuple[str, dict]:
    """Move a finished file into storage without copying it through memory; return its stored name
    and, on object storage, what the store says identifies it (``projects.storage.stored_object_put``)."""
    storage_name = Artifact.file.field.generate_filename(None, name)
    if isinstance(default_storage, FileSystemStorage):
        storage_name = default_storage.get_available_name(storage_name)
        target = Path(default_storage.path(storage_name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        return storage_name, {}
    if stored_file_is_s3():
        stored, identity = stored_object_put(source=path, name=storage_name, sha256=sha256)
        path.unlink(missing_ok=True)
        return stored, identity
    with open(path, "rb") as fh:
        stored = default_storage.save(storage_name, File(fh))
    path.unlink(missing_ok=True)
    return stored, {}


def _artifact_record(*, user, submission: Submission, kind: str, filename: str, size: int, sha256: str,
                     source: Path) -> Artifact:
    """Create the artifact row for a complete file, or refuse a duplicate, removing the file either way
    on failure so nothing is orphaned."""
    if submission.artifacts.filter(sha256=sha256).exists():
        source.unlink(missing_ok=True)
        other = submission.artifacts.filter(sha256=sha256).first()
        raise ValidationError(_("This file (SHA-256 %(sha)s) is already in the submission as %(name)s.")
                              % {"sha": sha256[:16], "name": other.original_name})
    stored, identity = _store(source, Path(filename).name, sha256)
    try:
        with transaction.atomic():
            artifact = Artifact.objects.create(submission=submission, kind=kind, original_name=filename,
                                               file=stored, size=size, sha256=sha256, uploaded_by=user,
                                               stored_identity=identity)
            audit_record(actor=user, action="artifact.upload", object_type="artifact", object_id=artifact.pk,
                         object_label=filename, submission_id=submission.pk, project_id=submission.project_id,
                         data={"sha256": sha256, "size": size, "kind": kind,
                               # On the hash-chained record: what the store said identifies the object.
                               **({"stored_identity": identity} if identity else {})})
    except IntegrityError:
        stored_artifact_file_release(stored_name=stored)
        raise ValidationError(_("This file is already in the submission.")) from None
    except BaseException:
        stored_artifact_file_release(stored_name=stored)
        raise
    return artifact


def artifact_upload_file(*, user, submission: Submission, kind: str, filename: str, fileobj: BinaryIO) -> Artifact:
    """One-shot upload (a multipart form or a small API upload): stream to a partial file,
    hashing as it goes, then record the artifact."""
    _check_writable(user, submission)
    if kind not in Artifact.UPLOAD_KINDS:
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
    with transaction.atomic():
        # Under the session's lock: an abort never lands in the middle of a chunk's append.
        UploadSession.objects.select_for_update().filter(pk=session.pk).first()
        _partial_path(session).unlink(missing_ok=True)
        session.delete()


def artifact_delete(*, user, artifact: Artifact) -> None:
    """Remove an artifact from a draft submission: its row, and its stored file unless another
    row (an earlier version's, or the one it was carried over from) still uses it."""
    _check_writable(user, artifact.submission)
    name = artifact.file.name
    with transaction.atomic():
        audit_record(actor=user, action="artifact.delete", object_type="artifact", object_id=artifact.pk,
                     object_label=artifact.original_name, submission_id=artifact.submission_id,
                     project_id=artifact.submission.project_id,
                     data={"sha256": artifact.sha256, "carried_from": artifact.carried_from_id})
        UploadSession.objects.filter(artifact=artifact).delete()
        artifact.delete()
    transaction.on_commit(lambda: stored_artifact_file_release(stored_name=name))


def correspondence_file_store(*, user, submission: Submission, filename: str, fileobj: BinaryIO) -> Artifact:
    """Store a file attached to a message on a finding as an artifact of kind correspondence.

    Unlike deliverables this is allowed after submission (a conversation on findings happens
    then), by the project's vendor members and its reviewers alike; the file goes through the
    same intake as any artifact: streamed to a partial file while hashed, moved into storage,
    quarantined until intake accepts it (the caller creates the intake run). The same file
    already in the submission is linked again rather than stored twice (the unique
    (submission, SHA-256) rule); bounded by ``projects.limits.MESSAGE_ATTACHMENT_BYTES``."""
    if not (user_can_submit(user=user, project=submission.project)
            or user_can_review(user=user, project=submission.project)):
        raise PermissionDenied(_("Only the project's vendor members and its reviewers may attach files."))
    if submission.status == Submission.Status.DRAFT:
        raise ValidationError({"attachment": _("Attach files to messages once the submission is submitted.")})
    filename = filename_clean(filename)
    settings.UPLOAD_PARTIAL_DIR.mkdir(parents=True, exist_ok=True)
    path = settings.UPLOAD_PARTIAL_DIR / f"message-{os.getpid()}-{threading.get_ident()}-{os.urandom(6).hex()}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            while block := fileobj.read(CHUNK_COPY_BYTES):
                size += len(block)
                if size > MESSAGE_ATTACHMENT_BYTES:
                    raise ValidationError({"attachment": _(
                        "An attachment is at most %(limit)s MiB; upload larger files as artifacts of a new "
                        "version.") % {"limit": f"{MESSAGE_ATTACHMENT_BYTES // (1024 * 1024):,}"}})
                out.write(block)
                digest.update(block)
        if size == 0:
            raise ValidationError({"attachment": _("The file is empty.")})
        existing = submission.artifacts.filter(sha256=digest.hexdigest()).first()
        if existing is not None:
            return existing
        return _artifact_record(user=user, submission=submission, kind=Artifact.Kind.CORRESPONDENCE,
                                filename=filename, size=size, sha256=digest.hexdigest(), source=path)
    finally:
        path.unlink(missing_ok=True)

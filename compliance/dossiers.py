"""Dossier writes and lookups: request, render on a worker, store once, download, verify.

Rendering and signing are ``compliance.dossier`` (plain Python); this module is the
database side: numbering, storage with the SHA-256, audit events, and the registry
lookup that verification uses.

Rendering has the check runs' guarantees (``compliance.services.leases``, issue #11): a
worker claims the dossier with one conditional UPDATE that takes attempt N, renews its
lease while it lives, and stores the PDF only while attempt N still owns the row. A killed
worker's dossier is requeued when its lease lapses and failed, with the reason, after
``DOSSIER_MAX_ATTEMPTS`` interrupted attempts.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import Dossier
from compliance.notifications import dossier_issued_notify
from compliance.services.leases import LeasedJob
from portal.models import Role
from portal.selectors import user_role
from portal.services import audit_record
from projects.models import Submission
from projects.selectors import user_can_review

logger = logging.getLogger(__name__)

# With the print caps a submission at every field limit renders in 8-11 s and older, larger data in
# under 25 s at load 7 (BENCHMARKS.md, "At the field limits"); two minutes is the ceiling, so a render
# that cannot finish frees its dossier worker after 2 min, not 4.
RENDER_TIMEOUT_S = 120
DOSSIER_LANGS = {"en", "ko"}
# As for check runs: five interrupted renders (worker killed, out of memory) and the dossier
# fails with the reason instead of taking a worker down for ever; staff may retry it.
DOSSIER_MAX_ATTEMPTS = 5
DOSSIER_JOB = LeasedJob(model=Dossier, queued=Dossier.State.QUEUED, running=Dossier.State.RENDERING,
                        lease_setting="DOSSIER_LEASE_S", stale_setting="DOSSIER_QUEUED_STALE_S",
                        max_attempts=DOSSIER_MAX_ATTEMPTS)


def user_can_request_dossier(*, user, submission: Submission) -> bool:
    """Administrators, officers and the project's assigned reviewers (auditors only read)."""
    return user_role(user=user) in {Role.ADMIN, Role.OFFICER} or user_can_review(user=user,
                                                                                 project=submission.project)


def _allocate(*, submission: Submission, lang: str, requested_by) -> Dossier:
    dossier = Dossier.objects.create(submission=submission, lang=lang, requested_by=requested_by,
                                     number=f"pending-{timezone.now().timestamp()}-{submission.pk}",
                                     queued_at=timezone.now())
    # Numbers follow the row id: unique, never reused, and regenerating makes a new one.
    dossier.number = f"D-{timezone.localdate().year}-{dossier.pk:06d}"
    Dossier.objects.filter(pk=dossier.pk).update(number=dossier.number)
    return dossier


def dossier_request(*, user, submission: Submission, lang: str = "en") -> Dossier:
    """Queue a new numbered dossier for a submission; the dossier worker renders it."""
    if not user_can_request_dossier(user=user, submission=submission):
        raise PermissionDenied(_("Only administrators, officers and the project's reviewers may issue dossiers."))
    if lang not in DOSSIER_LANGS:
        raise ValidationError({"lang": _("Choose English (en) or Korean (ko).")})
    if submission.status == Submission.Status.DRAFT:
        raise ValidationError(_("A draft has nothing to file; the vendor must submit it first."))
    with transaction.atomic():
        dossier = _allocate(submission=submission, lang=lang, requested_by=user)
        audit_record(actor=user, action="dossier.request", object_type="dossier", object_id=dossier.pk,
                     object_label=dossier.number, submission_id=submission.pk, project_id=submission.project_id,
                     data={"lang": lang})
        dossier_id = dossier.pk
        transaction.on_commit(lambda: _send(dossier_id), robust=True)
    return dossier


def _send(dossier_id: int) -> None:
    """Send the render after commit; a broker that cannot take it is logged, never raised into
    the request (issue #11): the dossier stays queued, and the reconciler re-sends it once it
    has been queued longer than ``DOSSIER_QUEUED_STALE_S`` (``dossiers_reconcile``)."""
    from compliance.broker import task_send
    from compliance.tasks import render_dossier_task

    task_send(task=render_dossier_task, args=[dossier_id], label=f"dossier {dossier_id}", queue="dossier")


def _issue(dossier: Dossier) -> bytes:
    """Render and sign; returns the PDF bytes (raises on failure or timeout).

    First a signed audit checkpoint is taken (sealing every committed event, so the
    excerpt shows their hashes) and embedded: the dossier then proves what the audit
    log held when it was issued (issue #10).
    """
    from compliance.dossier.context import dossier_context_build
    from compliance.dossier.issue import dossier_issue
    from compliance.dossier.signing import signing_identity_from_settings
    from portal.checkpoints import audit_checkpoint_export
    from portal.models import AuditCheckpoint
    from portal.services import audit_checkpoint_create

    identity = signing_identity_from_settings(settings=settings)
    checkpoint = audit_checkpoint_create(reason=AuditCheckpoint.Reason.DOSSIER, identity=identity)
    context = dossier_context_build(submission=dossier.submission, lang=dossier.lang,
                                    dossier_number=dossier.number, issued_at=timezone.now(),
                                    verify_url=settings.DOSSIER_VERIFY_URL)
    context.audit_checkpoint = audit_checkpoint_export(checkpoint=checkpoint)
    issued = dossier_issue(context=context, identity=identity, tsa_url=settings.DOSSIER_TSA_URL or None,
                           timeout_s=RENDER_TIMEOUT_S)
    return issued.pdf_bytes


def _store(dossier: Dossier, pdf: bytes, actor) -> bool:
    """Record the PDF of the attempt that owns the dossier; False (nothing written) if it lost its claim.

    The file is written once, under the dossier's number, inside the transaction that holds
    the row (PostgreSQL: FOR UPDATE; SQLite: IMMEDIATE transactions take the write lock at
    BEGIN), and only after the fence: an attempt that lost its claim writes no file. A file
    already at that name can only come from an earlier attempt of this number that died
    between writing and committing (the row would otherwise be READY and unclaimable);
    nothing recorded it, so the owner replaces it instead of storing a second copy beside it
    (FileSystemStorage would add a random suffix).
    """
    digest = hashlib.sha256(pdf).hexdigest()
    with transaction.atomic():
        owned = DOSSIER_JOB.owned(row=dossier).select_for_update().first()
        if owned is None:
            return False
        name = owned.file.field.generate_filename(owned, f"{owned.number}.pdf")
        if owned.file.storage.exists(name):
            owned.file.storage.delete(name)
        owned.file.save(f"{owned.number}.pdf", ContentFile(pdf), save=False)
        owned.sha256 = digest
        owned.size = len(pdf)
        owned.state = Dossier.State.READY
        owned.rendered_at = timezone.now()
        owned.error = ""
        owned.lease_expires_at = None
        owned.save()
        audit_record(actor=actor, action="dossier.issue", object_type="dossier", object_id=owned.pk,
                     object_label=owned.number, submission_id=owned.submission_id,
                     project_id=dossier.submission.project_id,
                     data={"sha256": digest, "size": len(pdf), "attempt": owned.attempts})
        dossier_issued_notify(dossier=owned)
    dossier.refresh_from_db()
    return True


def _fail(dossier: Dossier, *, error: str, actor, lapsed_before=None) -> bool:
    """Fail the attempt that owns the dossier, with the reason staff will read; False if it lost
    its claim (or, for the reconciler, renewed its lease after all)."""
    owned = DOSSIER_JOB.owned(row=dossier)
    if lapsed_before is not None:
        owned = owned.filter(lease_expires_at__lt=lapsed_before)
    with transaction.atomic():
        if not owned.update(state=Dossier.State.FAILED, error=error[:2000], lease_expires_at=None):
            return False
        audit_record(actor=actor, action="dossier.fail", object_type="dossier", object_id=dossier.pk,
                     object_label=dossier.number, submission_id=dossier.submission_id,
                     project_id=dossier.submission.project_id,
                     data={"attempt": dossier.attempts, "error": error[:500]})
    return True


def _test_wait() -> None:
    """Test-only (PORTAL_TEST_DOSSIER_RENDER_DELAY_S, 0 unless set): a render slow enough for a
    test to kill its worker in the middle."""
    if settings.TEST_DOSSIER_RENDER_DELAY_S > 0:
        time.sleep(settings.TEST_DOSSIER_RENDER_DELAY_S)


def _render_claimed(dossier: Dossier, *, actor) -> str:
    """Render and store a dossier this process has claimed: 'ready', 'failed' or 'superseded'."""
    try:
        with DOSSIER_JOB.keeper(row=dossier):
            _test_wait()
            pdf = _issue(dossier)
    except Exception as exc:  # noqa: BLE001 - the reason is recorded on the dossier for staff to act on
        logger.exception("dossier %s failed", dossier.number)
        failed = _fail(dossier, error=f"{type(exc).__name__}: {exc}"[:2000] or "the renderer crashed", actor=actor)
        return "failed" if failed else "superseded"
    return "ready" if _store(dossier, pdf, actor) else "superseded"


def dossier_render_execute(*, dossier_id: int, worker: str | None = None) -> str:
    """Worker side: claim a queued dossier (or one whose renderer died), render, sign, store once.
    Safe to deliver twice: a second delivery finds nothing to claim."""
    if not DOSSIER_JOB.claim(pk=dossier_id, worker=worker or socket.gethostname(), error=""):
        return "not claimable"
    dossier = Dossier.objects.select_related("submission", "submission__project").get(pk=dossier_id)
    return _render_claimed(dossier, actor="worker")


def dossier_render_now(*, submission: Submission, lang: str = "en", actor="operator") -> tuple[Dossier, bytes]:
    """Operator side (the dossier_render command): render in this process and register the result.
    The command claims and leases its dossier like a worker, so the reconciler leaves it alone."""
    if lang not in DOSSIER_LANGS:
        raise ValidationError({"lang": _("Choose en or ko.")})
    with transaction.atomic():
        dossier = _allocate(submission=submission, lang=lang, requested_by=None)
        DOSSIER_JOB.claim(pk=dossier.pk, worker=f"{actor}@{socket.gethostname()}")
    dossier = Dossier.objects.select_related("submission", "submission__project").get(pk=dossier.pk)
    try:
        with DOSSIER_JOB.keeper(row=dossier):
            pdf = _issue(dossier)
    except Exception as exc:
        # Failed, with the reason, rather than left for the reconciler to hand to a worker.
        _fail(dossier, error=f"{type(exc).__name__}: {exc}"[:2000], actor=actor)
        raise
    if not _store(dossier, pdf, actor):
        raise RuntimeError(f"dossier {dossier.number} was taken over while rendering; nothing was stored")
    return dossier, pdf


def dossier_retry(*, user, dossier: Dossier) -> Dossier:
    """Staff: render a failed dossier again under the same number.

    A failed dossier issued nothing (no file, no hash), so its number has never stood for
    any content; retrying under it keeps the register free of gaps and still gives every
    number at most one issued file. Attempt numbers keep growing; the interrupted-attempt
    budget restarts from here."""
    if not user_can_request_dossier(user=user, submission=dossier.submission):
        raise PermissionDenied(_("Only administrators, officers and the project's reviewers may issue dossiers."))
    with transaction.atomic():
        retried = Dossier.objects.filter(pk=dossier.pk, state=Dossier.State.FAILED).update(
            state=Dossier.State.QUEUED, error="", attempt_base=F("attempts"), queued_at=timezone.now(),
            lease_expires_at=None, worker="")
        if retried != 1:
            raise ValidationError(_("Only a failed dossier can be retried."))
        audit_record(actor=user, action="dossier.retry", object_type="dossier", object_id=dossier.pk,
                     object_label=dossier.number, submission_id=dossier.submission_id,
                     project_id=dossier.submission.project_id, data={"after_attempt": dossier.attempts})
        dossier_id = dossier.pk
        transaction.on_commit(lambda: _send(dossier_id), robust=True)
    dossier.refresh_from_db()
    return dossier


def dossiers_reconcile() -> dict:
    """Requeue dossiers whose renderer vanished (lease lapsed), re-send dossiers the broker may
    have lost (queued too long), fail dossiers interrupted too often. Safe anywhere, any time:
    every change is one conditional UPDATE, so it never waits on a render."""
    now = timezone.now()
    counts = {"requeued": 0, "resent": 0, "failed": 0}
    for dossier in DOSSIER_JOB.lapsed(now=now).select_related("submission"):
        if DOSSIER_JOB.exhausted(row=dossier):
            interrupted = dossier.attempts - dossier.attempt_base
            if _fail(dossier, actor="reconciler", lapsed_before=now,
                     error=f"rendering was interrupted {interrupted} times (worker killed or out of memory?)"):
                counts["failed"] += 1
        elif DOSSIER_JOB.requeue_lapsed(row=dossier, now=now):
            _send(dossier.pk)
            counts["requeued"] += 1
    for dossier in DOSSIER_JOB.stale_queued(now=now):
        if DOSSIER_JOB.mark_resent(row=dossier, now=now):
            _send(dossier.pk)
            counts["resent"] += 1
    return counts


def dossier_record_by_sha256(sha256: str) -> dict | None:
    """The registry lookup verification uses: what the portal issued under this hash."""
    dossier = (Dossier.objects.filter(sha256=sha256.lower(), state=Dossier.State.READY)
               .select_related("submission__project__programme").first())
    if dossier is None:
        return None
    submission = dossier.submission
    return {"submission": submission.pk, "dossier_number": dossier.number,
            "project": submission.project.code, "programme": submission.project.programme.code,
            "version": submission.number, "issued_at": dossier.rendered_at.isoformat() if dossier.rendered_at else None}


def dossier_verify_bytes(*, pdf_bytes: bytes) -> dict:
    """Verify a dossier held in memory (the operator's command, tests); see ``dossier_verify_file``."""
    from io import BytesIO

    return dossier_verify_file(pdf_file=BytesIO(pdf_bytes))


def dossier_verify_file(*, pdf_file, sha256: str | None = None) -> dict:
    """Verify a dossier file against the registry and the portal's signing certificates.

    ``pdf_file`` is a seekable binary file object (an anonymous upload streamed to disk) that is
    read in chunks, never whole; ``sha256`` its digest when the upload handler already computed
    it while receiving the bytes."""
    from compliance.dossier.signing import trusted_certificates_from_settings
    from compliance.dossier.verify import dossier_verify

    result = dossier_verify(pdf_file=pdf_file, sha256=sha256,
                            trusted_certs=trusted_certificates_from_settings(settings=settings),
                            known_hashes=dossier_record_by_sha256)
    # The embedded checkpoint is read only from a file the portal's signature covers whole: pypdf
    # repairs a damaged file by reading all of it, and an altered file's checkpoint proves nothing.
    checkpoint = (dossier_checkpoint_verify(pdf_file=pdf_file) if result.unaltered and result.signature_valid
                  else None)
    return result.to_dict() | {"audit_checkpoint": checkpoint}


def dossier_checkpoint_verify(*, pdf_file) -> dict | None:
    """The audit checkpoint a dossier was issued under, as far as a quick public check goes: whether
    the portal signed it, and whether the portal's register still holds the same checkpoint. Whether
    the audit log itself still reproduces it (no event removed or rewritten since) takes a walk of
    the whole chain, which is the auditor's ``audit_verify --dossier FILE``, not a public page's."""
    from portal.checkpoints import audit_checkpoint_check_signature, audit_checkpoint_from_pdf
    from portal.models import AuditCheckpoint

    exported = audit_checkpoint_from_pdf(pdf_file=pdf_file)
    if exported is None:
        return None
    reasons = audit_checkpoint_check_signature(exported=exported)
    number = exported.get("number")
    stored = AuditCheckpoint.objects.filter(number=number).first() if isinstance(number, int) else None
    held = stored is not None and (stored.event_count, stored.head_hash) == (exported.get("event_count"),
                                                                           exported.get("head_hash"))
    if not reasons and not held:
        reasons = [_("The portal's register no longer holds this audit checkpoint as the dossier carries it.")]
    return {"number": number, "event_count": exported.get("event_count"), "head_hash": exported.get("head_hash"),
            "signature_valid": not audit_checkpoint_check_signature(exported=exported), "held": held,
            "ok": not reasons, "reasons": reasons}


def dossier_verify_hash(*, sha256: str) -> dict:
    """Verification from a hash alone: only whether the portal issued such a file."""
    sha256 = (sha256 or "").strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValidationError({"sha256": _("Give the SHA-256 as 64 hexadecimal characters.")})
    record = dossier_record_by_sha256(sha256)
    return {"ok": record is not None, "issued": record is not None, "unaltered": record is not None,
            "signature_valid": None, "submission": record["submission"] if record else None,
            "dossier_number": record["dossier_number"] if record else None, "sha256": sha256,
            "reasons": [] if record else [_("The portal never issued a file with this SHA-256.")],
            "notes": [_("Checked by hash only; upload the file to check its signature too.")]}


def dossier_download_record(*, user, dossier: Dossier) -> None:
    """Every download is an audit event."""
    audit_record(actor=user, action="dossier.download", object_type="dossier", object_id=dossier.pk,
                 object_label=dossier.number, submission_id=dossier.submission_id,
                 project_id=dossier.submission.project_id, data={"sha256": dossier.sha256})

"""Dossier writes and lookups: request, render on a worker, store once, download, verify.

Rendering and signing are ``compliance.dossier`` (plain Python); this module is the
database side: numbering, storage with the SHA-256, audit events, and the registry
lookup that verification uses.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import Dossier
from portal.models import Role
from portal.selectors import user_role
from portal.services import audit_record
from projects.models import Submission
from projects.selectors import user_can_review

logger = logging.getLogger(__name__)

# Rendering 10,000 findings takes well under a minute (BENCHMARKS.md); four minutes is the ceiling.
RENDER_TIMEOUT_S = 240
DOSSIER_LANGS = {"en", "ko"}


def user_can_request_dossier(*, user, submission: Submission) -> bool:
    """Administrators, officers and the project's assigned reviewers (auditors only read)."""
    return user_role(user=user) in {Role.ADMIN, Role.OFFICER} or user_can_review(user=user,
                                                                                 project=submission.project)


def _allocate(*, submission: Submission, lang: str, requested_by) -> Dossier:
    dossier = Dossier.objects.create(submission=submission, lang=lang, requested_by=requested_by,
                                     number=f"pending-{timezone.now().timestamp()}-{submission.pk}")
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
        transaction.on_commit(lambda: _send(dossier_id))
    return dossier


def _send(dossier_id: int) -> None:
    """Send the render after commit; a broker that cannot take it is logged, never raised into
    the request (issue #11): the dossier stays queued, and asking again makes a new one."""
    from compliance.broker import task_send
    from compliance.tasks import render_dossier_task

    task_send(task=render_dossier_task, args=[dossier_id], label=f"dossier {dossier_id}", queue="dossier")


def _issue(dossier: Dossier) -> bytes:
    """Render and sign; returns the PDF bytes (raises on failure or timeout)."""
    from compliance.dossier.context import dossier_context_build
    from compliance.dossier.issue import dossier_issue
    from compliance.dossier.signing import signing_identity_from_settings

    context = dossier_context_build(submission=dossier.submission, lang=dossier.lang,
                                    dossier_number=dossier.number, issued_at=timezone.now(),
                                    verify_url=settings.DOSSIER_VERIFY_URL)
    identity = signing_identity_from_settings(settings=settings)
    issued = dossier_issue(context=context, identity=identity, tsa_url=settings.DOSSIER_TSA_URL or None,
                           timeout_s=RENDER_TIMEOUT_S)
    return issued.pdf_bytes


def _store(dossier: Dossier, pdf: bytes, actor) -> Dossier:
    digest = hashlib.sha256(pdf).hexdigest()
    with transaction.atomic():
        dossier.file.save(f"{dossier.number}.pdf", ContentFile(pdf), save=False)
        dossier.sha256 = digest
        dossier.size = len(pdf)
        dossier.state = Dossier.State.READY
        dossier.rendered_at = timezone.now()
        dossier.error = ""
        dossier.save()
        audit_record(actor=actor, action="dossier.issue", object_type="dossier", object_id=dossier.pk,
                     object_label=dossier.number, submission_id=dossier.submission_id,
                     project_id=dossier.submission.project_id, data={"sha256": digest, "size": len(pdf)})
    return dossier


def dossier_render_execute(*, dossier_id: int) -> str:
    """Worker side: claim a queued dossier, render, sign, store once. Safe to deliver twice."""
    claimed = Dossier.objects.filter(pk=dossier_id, state=Dossier.State.QUEUED).update(
        state=Dossier.State.RENDERING)
    if claimed != 1:
        return "not claimable"
    dossier = Dossier.objects.select_related("submission", "submission__project").get(pk=dossier_id)
    try:
        pdf = _issue(dossier)
    except Exception as exc:  # noqa: BLE001 - the reason is recorded on the dossier for staff to act on
        logger.exception("dossier %s failed", dossier.number)
        Dossier.objects.filter(pk=dossier_id).update(state=Dossier.State.FAILED,
                                                     error=f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"
    _store(dossier, pdf, actor="worker")
    return "ready"


def dossier_render_now(*, submission: Submission, lang: str = "en", actor="operator") -> tuple[Dossier, bytes]:
    """Operator side (the dossier_render command): render in this process and register the result."""
    if lang not in DOSSIER_LANGS:
        raise ValidationError({"lang": "choose en or ko"})
    with transaction.atomic():
        dossier = _allocate(submission=submission, lang=lang, requested_by=None)
        Dossier.objects.filter(pk=dossier.pk).update(state=Dossier.State.RENDERING)
    pdf = _issue(dossier)
    return _store(dossier, pdf, actor=actor), pdf


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
    """Verify a dossier file against the registry and the portal's signing certificates."""
    from compliance.dossier.signing import trusted_certificates_from_settings
    from compliance.dossier.verify import dossier_verify

    result = dossier_verify(pdf_bytes=pdf_bytes, trusted_certs=trusted_certificates_from_settings(settings=settings),
                            known_hashes=dossier_record_by_sha256)
    return result.to_dict()


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

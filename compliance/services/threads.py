"""Conversations on findings: the vendor and the ministry's reviewers write to each other.

Messages are appended, never changed: there is no update or delete here, and ``message_post``
is the one way in (pages, API, commands), so the permission check, the limits, the attachment's
intake and the audit entry happen the same way everywhere. Notifications hook in here too.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from compliance.models import Finding, FindingMessage
from portal.services import audit_record
from projects.limits import limit_text
from projects.selectors import user_can_review, user_can_submit
from projects.uploads import correspondence_file_store

# What the ministry side may send; the vendor side always replies.
MINISTRY_KINDS = (FindingMessage.Kind.QUESTION, FindingMessage.Kind.NOTE)


def message_side_for(*, user, finding: Finding) -> str | None:
    """The side the user writes from on this finding, or None if they may not write on it:
    the project's vendor members write as the vendor; administrators, officers and the
    reviewers assigned to the project (who may decide its findings) write as the ministry.
    Auditors only read."""
    project = finding.submission.project
    if user_can_submit(user=user, project=project):
        return FindingMessage.Side.VENDOR
    if user_can_review(user=user, project=project):
        return FindingMessage.Side.MINISTRY
    return None


def message_post(*, user, finding: Finding, body: str, kind: str = "", attachment_name: str = "",
                 attachment_file: BinaryIO | None = None) -> FindingMessage:
    """Append a message to the finding's conversation, with an optional attached file.

    ``kind``: the vendor's messages are replies whatever is asked; the ministry's are a
    question to the vendor (the default: the vendor's turn) or a note (nobody's turn). The
    attachment becomes a correspondence artifact of the submission, quarantined until intake
    (sent after commit) accepts it."""
    side = message_side_for(user=user, finding=finding)
    if side is None:
        raise PermissionDenied(_("Only the project's vendor members and its assigned reviewers may write on "
                                 "its findings."))
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    try:
        limit_text(field="message", value=body)  # refused with the limit, never cut
    except ValidationError as exc:
        raise ValidationError({"body": exc.message_dict["message"]}) from None
    if side == FindingMessage.Side.VENDOR:
        kind = FindingMessage.Kind.REPLY
    elif not kind:
        kind = FindingMessage.Kind.QUESTION
    elif kind not in MINISTRY_KINDS:
        raise ValidationError({"kind": _("Choose a question to the vendor or a note.")})
    artifact = None
    if attachment_file is not None:
        # Streamed and stored before the message's transaction: on SQLite a transaction holds
        # every writer's lock, and a 100 MiB file takes a while to arrive.
        artifact = correspondence_file_store(user=user, submission=finding.submission,
                                             filename=attachment_name, fileobj=attachment_file)
    with transaction.atomic():
        if artifact is not None:
            _attachment_intake_start(artifact=artifact)
        message = FindingMessage.objects.create(finding=finding, author=user, side=side, kind=kind, body=body,
                                                attachment=artifact)
        audit_record(actor=user, action="finding.message", object_type="finding", object_id=finding.pk,
                     object_label=finding.title, submission_id=finding.submission_id,
                     project_id=finding.submission.project_id,
                     # The first 2,000 characters as the old replies were recorded, and the SHA-256
                     # of the whole text, so the chained trail commits to every character.
                     data={"message": message.pk, "side": side, "kind": kind, "body": body[:2000],
                           "body_sha256": hashlib.sha256(body.encode()).hexdigest(),
                           "attachment": ({"artifact": artifact.pk, "name": artifact.original_name,
                                           "sha256": artifact.sha256} if artifact else None)})
        # Whoever must answer is told: reviewers of a vendor's reply, the vendor of a question.
        from compliance.notifications import finding_question_notify, finding_reply_notify

        if side == FindingMessage.Side.VENDOR:
            finding_reply_notify(user=user, finding=finding)
        elif kind == FindingMessage.Kind.QUESTION:
            finding_question_notify(user=user, finding=finding)
    return message


def _attachment_intake_start(*, artifact) -> None:
    """Create the attachment's check runs (intake alone applies to correspondence) unless it
    already has them (the same file linked again); their tasks are sent after commit."""
    from compliance.services.runs import check_runs_create_for_artifact

    check_runs_create_for_artifact(artifact=artifact)

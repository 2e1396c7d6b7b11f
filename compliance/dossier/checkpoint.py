"""The audit checkpoint a dossier is issued under: its attachment and its line in the verification section.

Plain Python on ``DossierContext.audit_checkpoint`` (the export dict made by
``portal.checkpoints.audit_checkpoint_export`` when the dossier was issued):
the JSON goes in as ``audit-checkpoint.json``, byte for byte what a witness
would keep, and ``python manage.py audit_verify --dossier FILE`` reads it back
to check that the audit chain still holds it.
"""

from __future__ import annotations

import json

from compliance.dossier.context import DossierContext
from compliance.dossier.labels import label_for
from compliance.dossier.render import AttachmentFile

# Same name as portal.checkpoints.DOSSIER_ATTACHMENT_NAME, which reads it back; the dossier
# package imports no Django, so the constant is repeated and a test pins the two together.
ATTACHMENT_NAME = "audit-checkpoint.json"


def dossier_checkpoint_attachment(*, context: DossierContext) -> AttachmentFile | None:
    """The signed checkpoint as an attachment, or None for a dossier built without one (samples)."""
    checkpoint = context.audit_checkpoint
    if not checkpoint:
        return None
    data = json.dumps(checkpoint, indent=1, sort_keys=True, ensure_ascii=False).encode()
    return AttachmentFile(ATTACHMENT_NAME, label_for(context.lang, "attachment_checkpoint"), "application/json",
                          "Supplement", data)


def dossier_checkpoint_verify_step(*, context: DossierContext) -> str:
    """The verification-section sentence naming the checkpoint's number, event count and head hash."""
    checkpoint = context.audit_checkpoint
    if not checkpoint:
        return ""
    return label_for(context.lang, "verify_step_checkpoint", number=checkpoint["number"],
                     count=f"{checkpoint['event_count']:,}", head=checkpoint["head_hash"])

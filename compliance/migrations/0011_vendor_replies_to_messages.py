"""Each finding's single ``vendor_reply`` becomes the first message of its conversation.

The author is who wrote that text: the latest ``finding.reply`` audit event of the finding (a
later reply overwrote an earlier one, so the latest event wrote what the column holds), taken
at that event's time. Without such an event (the audit trail of an older import), the
submission's creator (a vendor member) at the finding's creation time, so the message stays
attributable to the vendor side. The column is kept and left as it was (see Finding.vendor_reply).
"""

from django.db import migrations


def vendor_replies_to_messages(apps, schema_editor):
    Finding = apps.get_model("compliance", "Finding")
    FindingMessage = apps.get_model("compliance", "FindingMessage")
    AuditEvent = apps.get_model("portal", "AuditEvent")
    findings = (Finding.objects.exclude(vendor_reply="").select_related("submission")
                .order_by("pk").iterator(chunk_size=500))
    for finding in findings:
        if not finding.vendor_reply.strip() or FindingMessage.objects.filter(finding_id=finding.pk).exists():
            continue  # blank, or already moved (the migration run twice on a copy)
        event = (AuditEvent.objects.filter(action="finding.reply", object_type="finding",
                                           object_id=str(finding.pk), actor__isnull=False)
                 .order_by("-created_at", "-id").first())
        author_id = event.actor_id if event else finding.submission.created_by_id
        created_at = event.created_at if event else finding.created_at
        FindingMessage.objects.create(finding_id=finding.pk, author_id=author_id, side="vendor", kind="reply",
                                      body=finding.vendor_reply, created_at=created_at)


class Migration(migrations.Migration):

    dependencies = [
        ("compliance", "0010_finding_messages"),
        ("portal", "0002_audit_chain_seal_and_checkpoints"),
    ]

    operations = [
        migrations.RunPython(vendor_replies_to_messages, migrations.RunPython.noop, elidable=False),
    ]

"""Take a signed audit checkpoint now: `python manage.py audit_checkpoint [--json] [--export FILE]`.

``--json`` prints the new checkpoint as a witness would keep it (the export
format of ``portal.checkpoints.audit_checkpoint_export``). ``--export FILE``
also writes every stored checkpoint, oldest first, as a JSON list to FILE for
an outside witness; ``audit_verify --checkpoint FILE`` checks the chain against it.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from portal.checkpoints import audit_checkpoint_export
from portal.models import AuditCheckpoint
from portal.services import audit_checkpoint_create


class Command(BaseCommand):
    help = "Seal pending audit events and sign a checkpoint of the chain (count and head hash)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the checkpoint as JSON.")
        parser.add_argument("--export", metavar="FILE", help="Write every checkpoint (a JSON list) to FILE.")

    def handle(self, *args, **options):
        checkpoint = audit_checkpoint_create(reason=AuditCheckpoint.Reason.MANUAL)
        if options["export"]:
            exported = [audit_checkpoint_export(checkpoint=row) for row in AuditCheckpoint.objects.order_by("number")]
            Path(options["export"]).write_text(json.dumps(exported, indent=1, sort_keys=True, ensure_ascii=False))
        if options["json"]:
            self.stdout.write(json.dumps(audit_checkpoint_export(checkpoint=checkpoint), indent=2, sort_keys=True,
                                         ensure_ascii=False))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"checkpoint {checkpoint.number}: {checkpoint.event_count} events, head {checkpoint.head_hash}, "
                f"signed by certificate {checkpoint.signer_fingerprint}"
                + (f"; {options['export']} written" if options["export"] else "")))

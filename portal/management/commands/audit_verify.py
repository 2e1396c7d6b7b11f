"""Verify the audit trail: `python manage.py audit_verify [--json] [--dossier FILE ...] [--checkpoint FILE ...]`.

Walks the hash chain, checks that it still reproduces every signed checkpoint
(count and head hash) and that the latest one's signature is the portal's, and
that it holds the checkpoint embedded in each dossier given (and in each
witness copy from ``audit_checkpoint --export``). Exit status 0 when all hold,
1 with the reasons when events were removed, rewritten or edited.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.checkpoints import audit_trail_verify


class Command(BaseCommand):
    help = "Check the audit log's hash chain against its signed checkpoints and any dossier or witness copy."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument("--dossier", nargs="+", action="extend", default=[], metavar="FILE",
                            help="Dossier PDF(s) whose embedded checkpoint the chain must still hold.")
        parser.add_argument("--checkpoint", nargs="+", action="extend", default=[], metavar="FILE",
                            help="Checkpoint JSON kept by a witness (audit_checkpoint --export).")
        parser.add_argument("--no-seal", action="store_true",
                            help="Do not chain committed-but-unsealed events first (read-only database).")

    def handle(self, *args, **options):
        def read(paths):
            files = []
            for path in paths:
                try:
                    files.append((path, Path(path).read_bytes()))
                except OSError as exc:
                    raise CommandError(f"{path}: {exc.strerror}") from exc
            return files

        report = audit_trail_verify(dossiers=read(options["dossier"]), witnesses=read(options["checkpoint"]),
                                    seal=not options["no_seal"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
        elif report["ok"]:
            checkpoint = report["checkpoint"]
            held = (f"; checkpoint {checkpoint['number']} ({checkpoint['event_count']} events) reproduced"
                    if checkpoint else "; no checkpoint yet")
            self.stdout.write(self.style.SUCCESS(
                f"audit trail intact: {report['events']} events, head {report['head_hash']}{held}"
                + "".join(f"; {d['file']}: checkpoint {d['checkpoint']} held" for d in report["dossiers"])))
        else:
            self.stdout.write(self.style.ERROR(f"audit trail BROKEN ({report['events']} events):"))
            for reason in report["reasons"]:
                self.stdout.write(self.style.ERROR(f"  - {reason}"))
        if not report["ok"]:
            raise SystemExit(1)

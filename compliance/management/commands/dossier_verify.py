"""Verify a dossier file: `python manage.py dossier_verify FILE --json`.

JSON keys: ok, issued, unaltered, signature_valid, submission, dossier_number, sha256,
size, signer_subject, signer_fingerprint, signed_at, timestamped, reasons, notes.
Exit status 0 when the file is issued, unaltered and validly signed, 1 otherwise."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.dossiers import dossier_verify_file

# A dossier of 10,000 findings is a few MB; 512 MB is far past any real one.
MAX_DOSSIER_BYTES = 512 * 1024 * 1024


class Command(BaseCommand):
    help = "Check that a dossier PDF is one the portal issued, unaltered, with a valid signature."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        if path.stat().st_size > MAX_DOSSIER_BYTES:
            raise CommandError(f"{path}: {path.stat().st_size} bytes is larger than any dossier the portal issues")
        with path.open("rb") as pdf_file:  # read in chunks, never whole
            result = dossier_verify_file(pdf_file=pdf_file)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, sort_keys=True))
        else:
            verdict = "VALID" if result["ok"] else "NOT VALID"
            self.stdout.write(f"{verdict}: issued={result['issued']} unaltered={result['unaltered']} "
                              f"signature_valid={result['signature_valid']} submission={result['submission']}")
            for reason in result["reasons"]:
                self.stdout.write(f"  - {reason}")
        if not result["ok"]:
            raise SystemExit(1)

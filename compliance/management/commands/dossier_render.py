"""Render, sign and register a dossier now:
`python manage.py dossier_render SUBMISSION_ID [--lang ko] -o FILE`.

Prints JSON: dossier number, SHA-256, size, file. The dossier is registered like one a
worker issued, so `dossier_verify` and the verification page recognise it."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.dossiers import dossier_render_now
from projects.models import Submission


class Command(BaseCommand):
    help = "Render and sign a compliance dossier for a submission, and write it to a file."

    def add_arguments(self, parser):
        parser.add_argument("submission_id", type=int)
        parser.add_argument("--lang", default="en", choices=["en", "ko"])
        parser.add_argument("-o", "--output", required=True, help="Where to write the PDF")

    def handle(self, *args, **options):
        submission = Submission.objects.select_related("project").filter(pk=options["submission_id"]).first()
        if submission is None:
            raise CommandError(f"no submission with id {options['submission_id']}")
        if submission.status == Submission.Status.DRAFT:
            raise CommandError(f"submission {submission.pk} is a draft; there is nothing to file yet")
        dossier, pdf = dossier_render_now(submission=submission, lang=options["lang"])
        output = Path(options["output"])
        output.write_bytes(pdf)
        self.stdout.write(json.dumps({"dossier_number": dossier.number, "sha256": dossier.sha256,
                                      "size": dossier.size, "lang": dossier.lang, "submission": submission.pk,
                                      "file": str(output)}, indent=2, sort_keys=True))

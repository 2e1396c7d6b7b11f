"""Add known code to the reference index:
`python manage.py index_reference PATH --name NAME --version V --license SPDX`.

PATH is a source tree, an archive or an importable package name
(`transformers`); version and licence default to the installed package's
metadata. The index lives in settings.CODE_INDEX_DIR (default var/code-index).
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.engine.codematch import DEFAULT_INDEX_DIR, code_index_add


def code_index_dir() -> str:
    return str(getattr(settings, "CODE_INDEX_DIR", None) or DEFAULT_INDEX_DIR)


class Command(BaseCommand):
    help = "Fingerprint a source tree or installed package into the code reference index."

    def add_base_argument(self, parser, *args, **kwargs):
        # Django's own --version (print Django's version) would shadow the
        # reference version this command is asked for.
        if "--version" in args:
            return
        super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", help="Directory, archive, or importable package name.")
        parser.add_argument("--name", required=True, help="Reference name, e.g. transformers.")
        parser.add_argument("--version", dest="ref_version", default=None, help="Reference version.")
        parser.add_argument("--license", dest="license_expression", default=None, help="SPDX expression of the code.")
        parser.add_argument("--index-dir", default=None, help="Override settings.CODE_INDEX_DIR.")

    def handle(self, *args, **options):
        from compliance.spdx import spdx_expression_problem

        licence = options["license_expression"]
        if licence:
            problem = spdx_expression_problem(licence)
            if problem:
                raise CommandError(f"--license: {problem}; give an SPDX expression, e.g. Apache-2.0 or "
                                   "LicenseRef-<name> for a licence SPDX does not list")
        try:
            summary = code_index_add(
                index_dir=options["index_dir"] or code_index_dir(),
                source=options["path"],
                name=options["name"],
                version=options["ref_version"],
                license_expression=options["license_expression"],
            )
        except (FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from error
        data = summary.to_dict()
        from django.db import DatabaseError

        from compliance.references import code_corpus_record

        try:
            code_corpus_record(summary=data)
            data["registry_updated"] = True
        except DatabaseError as error:
            # The index is written and usable by scan_code; only the portal's registry lags.
            data["registry_updated"] = False
            self.stderr.write(f"index written, but the portal's registry of code corpora was not updated ({error}); "
                              "run `python manage.py migrate`, then this command again")
        self.stdout.write(json.dumps(data, indent=2, sort_keys=True))

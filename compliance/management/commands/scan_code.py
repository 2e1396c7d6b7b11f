"""Find copied reference code: `python manage.py scan_code PATH [--json]`.

PATH is a directory, a file or an archive. Matches name the vendor lines,
the reference file and lines they come from (with sibling files holding the
same code), its licence, and whether the code is training, inference or other.
"""

import json
import os

from django.core.management.base import BaseCommand, CommandError

from compliance.engine.codematch import code_scan
from compliance.management.commands.index_reference import code_index_dir


class Command(BaseCommand):
    help = "Scan a vendor tree or archive for code copied from indexed reference packages."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Directory, file or archive to scan.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument("--index-dir", default=None, help="Override settings.CODE_INDEX_DIR.")

    def handle(self, *args, **options):
        if not os.path.exists(options["path"]):
            raise CommandError(f"{options['path']}: no such file or directory")
        try:
            result = code_scan(source=options["path"], index_dir=options["index_dir"] or code_index_dir())
        except (FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(result.to_dict(), indent=2, sort_keys=True))
            return
        self.stdout.write(f"{result.code_files} code files, {result.files_with_matches} with copied code")
        for match in result.matches:
            origin = match.origin
            self.stdout.write(
                f"  {match.path}:{match.lines[0]}-{match.lines[1]} <- {origin.name} {origin.version} "
                f"{origin.path}:{origin.lines[0]}-{origin.lines[1]} [{match.license_expression or '?'}, {match.label}, "
                f"score {match.score}, {origin.sibling_count} sibling(s)]"
            )

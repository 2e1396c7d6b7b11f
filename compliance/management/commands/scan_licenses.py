"""Detect licences, copyrights and declared licences: `python manage.py scan_licenses PATH [--json]`.

PATH is a directory, a single file or an archive (zip, wheel, tar.*). With
--policy FILE.json (a LicensePolicy as JSON) the policy findings are added.
Results per file content are cached in settings.LICENSE_CACHE_DIR (default
var/license-cache), so a rescan of a mostly unchanged tree is fast.
"""

import json
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.engine.licenses import LicensePolicy, license_policy_evaluate, license_scan


def license_cache_dir() -> str:
    configured = getattr(settings, "LICENSE_CACHE_DIR", None)
    if configured:
        return str(configured)
    var_dir = getattr(settings, "VAR_DIR", None)
    return os.path.join(str(var_dir), "license-cache") if var_dir else os.path.join("var", "license-cache")


class Command(BaseCommand):
    help = "Detect licences (SPDX), copyrights and declared licences in a directory, file or archive."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Directory, file or archive to scan.")
        parser.add_argument("--json", action="store_true", help="Print the full result as JSON.")
        parser.add_argument("--policy", help="LicensePolicy as a JSON file; adds policy findings.")
        parser.add_argument("--no-cache", action="store_true", help="Do not read or write the result cache.")
        parser.add_argument("--no-copyrights", action="store_true", help="Skip copyright detection.")
        parser.add_argument("--only-licensed", action="store_true", help="List only files with a licence or copyright.")

    def handle(self, *args, **options):
        path = options["path"]
        if not os.path.exists(path):
            raise CommandError(f"{path}: no such file or directory")
        result = license_scan(
            source=path,
            cache_dir=None if options["no_cache"] else license_cache_dir(),
            copyrights=not options["no_copyrights"],
        )
        output = result.to_dict(include_empty_files=not options["only_licensed"])
        if options["policy"]:
            with open(options["policy"]) as handle:
                policy = LicensePolicy.from_dict(json.load(handle))
            output["findings"] = [f.to_dict() for f in license_policy_evaluate(inventory=result.inventory, policy=policy)]
        if options["json"]:
            self.stdout.write(json.dumps(output, indent=2, sort_keys=True))
            return
        inventory = result.inventory
        self.stdout.write(f"{inventory.files_scanned} files, {inventory.files_with_licenses} with a licence")
        self.stdout.write(f"declared: {inventory.declared_expression or '-'}")
        for lic in inventory.licenses:
            self.stdout.write(f"  {lic.key} [{lic.category or '?'}]: {len(lic.files)} file(s)")
        for conflict in inventory.conflicts:
            self.stdout.write(self.style.WARNING(f"  conflict: {conflict.message}"))
        for finding in output.get("findings", []):
            self.stdout.write(f"  {finding['severity']}: {finding['title']}")

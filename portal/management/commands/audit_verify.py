"""Verify the audit trail's hash chain: `python manage.py audit_verify [--json]`.

Exit status 0 when intact, 1 when an entry was altered, removed or reordered."""

import json

from django.core.management.base import BaseCommand

from portal.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Walk the append-only audit log and check every entry's link and hash."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        elif report.ok:
            self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.entries} entries"))
        else:
            self.stdout.write(self.style.ERROR(f"audit chain BROKEN at entry {report.first_bad_id}: {report.reason}"))
        if not report.ok:
            raise SystemExit(1)

"""List the registry of known models: `python manage.py list_reference_models [--json]`."""

import json

from django.core.management.base import BaseCommand

from compliance.management.commands.add_reference_model import reference_as_dict
from compliance.models import ReferenceModel


class Command(BaseCommand):
    help = "List reference models with their licence and fingerprint bundle hash."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        rows = [reference_as_dict(r) for r in ReferenceModel.objects.order_by("name")]
        if options["json"]:
            self.stdout.write(json.dumps({"references": rows}, indent=2, sort_keys=True))
            return
        for row in rows:
            self.stdout.write(f"{row['name']:<50} {row['license_expression']:<24} "
                              f"{(row['bundle_sha256'] or 'no bundle')[:16]}")

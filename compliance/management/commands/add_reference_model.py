"""Register a known open model and fingerprint it:
`python manage.py add_reference_model PATH --name NAME --publisher P --license SPDX [--source URL]`.

PATH is a model directory, a GGUF or safetensors file, or a fingerprint bundle. Only
the bundle is stored; the weights are not kept. Prints the reference as JSON."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.models import ReferenceModel
from compliance.references import reference_bundle_attach
from compliance.spdx import spdx_expression_problem


class Command(BaseCommand):
    help = "Add (or re-fingerprint) a reference model in the registry of known models."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", required=True)
        parser.add_argument("--publisher", required=True)
        parser.add_argument("--license", default="", help="SPDX expression (LicenseRef-… allowed)")
        parser.add_argument("--source", default="", help="Where the model was published")
        parser.add_argument("--architecture", default="")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path}: no such file or directory")
        if options["license"]:
            problem = spdx_expression_problem(options["license"])
            if problem:
                raise CommandError(problem)
        reference, created = ReferenceModel.objects.get_or_create(
            name=options["name"],
            defaults={"publisher": options["publisher"], "license_expression": options["license"],
                      "source_url": options["source"], "architecture": options["architecture"]})
        try:
            reference_bundle_attach(reference=reference, model_path=path, actor="operator")
        except Exception as exc:  # noqa: BLE001 - surface the engine's message, keep no half-made row
            if created:
                reference.delete()
            raise CommandError(f"{path}: could not fingerprint: {exc}") from exc
        self.stdout.write(json.dumps(reference_as_dict(reference), indent=2, sort_keys=True))


def reference_as_dict(reference: ReferenceModel) -> dict:
    return {"id": reference.pk, "name": reference.name, "publisher": reference.publisher,
            "license_expression": reference.license_expression, "source": reference.source_url,
            "architecture": reference.architecture, "bundle_sha256": reference.bundle_sha256,
            "programmes": [p.programme.code for p in reference.policies.select_related("programme")]}

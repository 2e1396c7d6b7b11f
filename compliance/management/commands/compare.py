"""`manage.py compare CANDIDATE REFERENCE [--json]`: lineage test of CANDIDATE against REFERENCE.

Thin wrapper over `compliance.engine.lineage.lineage_compare`. Each argument is a model folder,
a .safetensors or .gguf file, or a fingerprint bundle from `manage.py fingerprint -o`. The report
keeps `verdict`, `p_value`, `evidence` and `layers` at the top (the lead component's) and lists
every pair of components tested in `components` (language, vision, audio, projector).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.engine.lineage import lineage_compare
from compliance.engine.weights import WeightsFormatError


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Test whether CANDIDATE is derived from REFERENCE (weights, GGUF or fingerprint bundles)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("candidate", help="model folder, .safetensors, .gguf or fingerprint bundle")
        parser.add_argument("reference", help="model folder, .safetensors, .gguf or fingerprint bundle")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON (sorted keys)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = lineage_compare(candidate=str(options["candidate"]), reference=str(options["reference"]))
        except WeightsFormatError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        data = report.to_dict()
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
            return
        self.stdout.write(f"{data['candidate']} vs {data['reference']}: {data['verdict']} (p = {data['p_value']:.3g})")
        self.stdout.write(data["reason"])
        for entry in data["components"]:
            self.stdout.write(f"  {entry['candidate']}: {entry['verdict']} (p = {entry['p_value']:.3g}, against the "
                              f"reference's {entry['reference']})")

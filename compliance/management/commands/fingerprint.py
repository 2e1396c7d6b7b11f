"""`manage.py fingerprint PATH [-o BUNDLE]`: fingerprint a model for lineage tests; print a JSON summary.

Thin wrapper over `compliance.engine.lineage.fingerprint_build` / `fingerprint_save`. PATH is a
Hugging Face model folder, a .safetensors file or a .gguf file; only sampled byte ranges are read.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.engine.lineage import fingerprint_build, fingerprint_save
from compliance.engine.weights import WeightsFormatError


class Command(BaseCommand):
    # Engine-only work: no database, so no system checks (runs on a bare worker host).
    requires_system_checks: list[str] = []
    help = "Fingerprint a model (folder, .safetensors or .gguf) for lineage comparison; optionally save a bundle."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="model folder, .safetensors or .gguf file")
        parser.add_argument("-o", "--output", default=None, help="write the fingerprint bundle (.npz) here")

    def handle(self, *args: object, **options: object) -> None:
        try:
            fp = fingerprint_build(path=str(options["path"]))
        except WeightsFormatError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        summary = fp.to_dict()
        if options["output"]:
            saved = fingerprint_save(fp, str(options["output"]))
            summary["bundle"] = {"path": str(saved), "bytes": saved.stat().st_size}
        self.stdout.write(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False, default=str))

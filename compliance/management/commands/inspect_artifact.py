"""`manage.py inspect_artifact PATH [--declared-kind KIND] [--json]`: intake safety check of a local file or folder.

Thin wrapper over `compliance.engine.intake.artifact_inspect`. Exits 0 whatever
the verdict (the verdict field says it); exits 2 when PATH does not exist.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.engine.intake import ArtifactNotFoundError, artifact_inspect


class Command(BaseCommand):
    # Pure engine work: no database or URLs needed, so no system checks (the
    # command must run on a worker host with a minimal settings module).
    requires_system_checks: list[str] = []
    help = "Inspect an uploaded artifact (file or model folder) without loading or extracting it; print the verdict and findings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="file or Hugging Face model folder to inspect")
        parser.add_argument("--declared-kind", default=None, help="kind the vendor declared (weights, config, tokenizer, source_archive, ...); "
                                 "without it the file name's extension is the declared kind")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON (sorted keys)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = artifact_inspect(path=str(options["path"]), declared_kind=options["declared_kind"])  # type: ignore[arg-type]
        except ArtifactNotFoundError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        data = report.to_dict()
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
            return
        self.stdout.write(f"{data['name']}: {data['kind']}, {data['size']:,} bytes, sha256 {data['sha256']}")
        self.stdout.write(f"verdict: {data['verdict']}")
        for finding in data["findings"]:
            self.stdout.write(f"  [{finding['severity']}] {finding['code']}: {finding['message']}")

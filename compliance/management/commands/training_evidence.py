"""`manage.py training_evidence PATH [--reference P ...] [--model SUBMITTED] [--json]`: judge a
training-evidence/1 bundle (folder or zip/tar archive) as the portal does.

Thin wrapper over `compliance.engine.training_evidence.training_evidence_judge`. Without
--reference the registry's models (their stored fingerprint bundles) are the references; a
malformed or refused bundle exits with status 2 and says which file and why.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.engine.training_evidence import TrainingEvidenceError, training_evidence_judge
from compliance.engine.weights import WeightsFormatError


def registered_references(stack: ExitStack) -> dict[str, Path]:
    """The registry's fingerprint bundles, copied to temporary files (storage may be remote)."""
    from compliance.models import ReferenceModel

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="references-")))
    out: dict[str, Path] = {}
    for i, reference in enumerate(ReferenceModel.objects.exclude(bundle="").order_by("name")):
        target = folder / f"{i}.npz"
        with reference.bundle.open("rb") as source, open(target, "wb") as copy:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                copy.write(chunk)
        out[reference.name] = target
    return out


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = ("Judge a training-evidence/1 bundle: the first checkpoint an initialisation independent of the "
            "registry, each checkpoint derived from the previous, the submitted model from the last, the log consistent.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="bundle folder, or a zip / tar / tar.gz / tar.zst archive of one")
        parser.add_argument("--reference", action="append", default=[], metavar="P",
                            help="a reference model (folder, .safetensors, .gguf or fingerprint bundle); repeatable. "
                                 "Default: every registered reference model")
        parser.add_argument("--model", default=None, metavar="SUBMITTED",
                            help="the submitted model, tested as the last checkpoint or derived from it")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON (sorted keys)")

    def handle(self, *args: object, **options: object) -> None:
        with ExitStack() as stack:
            given = [Path(str(p)) for p in options["reference"]]
            references = {p.name: p for p in given} if given else registered_references(stack)
            try:
                report = training_evidence_judge(path=str(options["path"]), references=references,
                                                 submitted=options["model"])
            except (TrainingEvidenceError, WeightsFormatError) as exc:
                raise CommandError(f"malformed training evidence: {exc}", returncode=2) from exc
        data = report.to_dict()
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
            return
        self.stdout.write(f"{data['verdict']}: {data['reason']}")
        for finding in data["findings"]:
            self.stdout.write(f"  [{finding['severity']}] {finding['code']}: {finding['message']}")
        for checkpoint in data["checkpoints"]:
            tests = "; ".join(f"{t['kind']} {t['against']}: {t['verdict']} (p = {t['p_value']:.3g})"
                              for t in checkpoint["tests"])
            self.stdout.write(f"  step {checkpoint['step']}: {tests or 'no lineage test'}")

"""The check registry: which checks apply to which artifact, on which queue, within which limits.

A check is a module function ``run(ctx: CheckContext) -> CheckOutcome``. It reads
the artifact through ``ctx.local_path()``, reports progress through
``ctx.progress()`` (which also renews the run's lease) and returns findings as
plain dicts; ``compliance.services.runs.check_run_execute`` records them. Checks call
the engine for the analysis and stay thin.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.storage import default_storage
from django.utils.translation import gettext_lazy

from projects.models import Artifact
from projects.storage import stored_file_copy

LIGHT, HEAVY, DOSSIER = "light", "heavy", "dossier"


@dataclass
class CheckOutcome:
    """What a check concluded. ``state`` is succeeded or inconclusive (failures raise).

    ``incomplete`` tells the two kinds of inconclusive apart: set (to the reason) when the
    check could not reach a verdict for a technical reason (a file too large to read, no
    reference to compare with), empty when the analysis ran and its answer is "cannot
    tell" (a lineage test whose statistics decide neither way). A technical one becomes a
    "check could not complete" finding that blocks approval; a substantive one is a verdict.
    """

    verdict: str
    summary: dict
    findings: list[dict] = field(default_factory=list)
    state: str = "succeeded"
    engine_version: str = ""
    inputs: dict = field(default_factory=dict)
    incomplete: str = ""


class CheckFailed(Exception):
    """A failure a person can act on (the message is shown as the run's reason)."""


def storage_place(name: str, target: Path) -> Path:
    """Make a stored file available at ``target``: a symbolic link on local storage (nothing
    copied), a copy streamed from object storage by ranged reads (8 MiB at a time, never whole
    in memory; ``projects.storage``)."""
    try:
        os.symlink(default_storage.path(name), target)
    except NotImplementedError:
        stored_file_copy(stored_name=name, target=target)
    return target


@contextlib.contextmanager
def stored_local_path(name: str) -> Iterator[Path]:
    """A stored file as a local path: its own path on local storage, otherwise a temporary copy
    streamed from object storage (deleted afterwards)."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:
        pass
    with tempfile.TemporaryDirectory(prefix="artifact-") as tmp:
        yield storage_place(name, Path(tmp) / "artifact")


@dataclass
class CheckContext:
    artifact: Artifact
    progress: Callable[[float, str], None]

    def local_path(self) -> contextlib.AbstractContextManager[Path]:
        """The artifact as a local file (``stored_local_path``)."""
        return stored_local_path(self.artifact.file.name)


# A file-by-file check reports how far it has got at most this often: each report is one UPDATE
# of the run's row (it also renews the lease), and a 50,000-file licence scan runs for minutes.
SCAN_PROGRESS_SECONDS = 2.0


def archive_files_expected(artifact: Artifact) -> int | None:
    """How many regular files intake counted in this archive (its run's summary), or None when
    intake did not count them (not an archive, or a run from before it recorded the count)."""
    from compliance.models import CheckRun

    summary = (CheckRun.objects.filter(artifact_id=getattr(artifact, "pk", None), check_name="intake",
                                       state=CheckRun.State.SUCCEEDED)
               .order_by("-pk").values_list("summary", flat=True).first()) or {}
    files = summary.get("archive_files")
    return files if isinstance(files, int) and files > 0 else None


def scan_progress(ctx: CheckContext, *, step: str, start: float, end: float,
                  expected: int | None) -> Callable[[int, int], None]:
    """A file-by-file scan's `progress(files, reused)` for this run: "<step>: N of M files checked,
    R from earlier results" (M when intake counted the archive's files, the fraction then moving
    from `start` to `end` with N / M), reported at most every `SCAN_PROGRESS_SECONDS`. The words
    are translated where they are shown (`compliance.finding_texts.step_label`)."""
    import time

    due = [time.monotonic() + SCAN_PROGRESS_SECONDS]

    def report(files: int, reused: int) -> None:
        now = time.monotonic()
        if now < due[0]:
            return
        due[0] = now + SCAN_PROGRESS_SECONDS
        if expected:
            fraction = start + (end - start) * min(1.0, files / expected)
            ctx.progress(fraction, f"{step}: {files} of {expected} files checked, {reused} from earlier results")
        else:
            ctx.progress(start, f"{step}: {files} files checked, {reused} from earlier results")

    return report


class TooLargeToRead(Exception):
    """A single file beyond what a file-by-file check reads: the check says so (inconclusive)."""


def too_large_outcome(*, error: TooLargeToRead, check: str, sha256: str) -> CheckOutcome:
    """Inconclusive, with the reason and a finding a reviewer sees, rather than a silent 'nothing found'."""
    return CheckOutcome(
        verdict="inconclusive", state="inconclusive", summary={"reason": str(error)}, incomplete=str(error),
        findings=[{"severity": "medium", "category": "intake", "code": f"{check}_not_read",
                   "title": "File too large for this check", "explanation": str(error), "evidence": {},
                   "params": {"reason": str(error).rstrip(".")}}],
        inputs={"sha256": sha256})


# A single uploaded file (model card, SBOM, manifest, one source file) is read whole for the
# licence and code checks, up to the size an archive member is read (SourceLimits).
SINGLE_FILE_MAX_BYTES = 16 * 1024 * 1024


def scan_limits() -> dict:
    """How a licence or copied-code check splits its files (issue #16): up to
    `PORTAL_SCAN_PROCESSES` forked processes, each holding one of the host's
    `PORTAL_SCAN_SLOTS` (shared by every check of every worker on the host), each replaced once
    its private memory passes `PORTAL_SCAN_RECYCLE_MB`."""
    from django.conf import settings

    from compliance.engine.parallel import ScanSlots

    slots = (ScanSlots(folder=str(settings.PORTAL_SCAN_SLOTS_DIR), count=settings.PORTAL_SCAN_SLOTS)
             if settings.PORTAL_SCAN_SLOTS else None)
    recycle = settings.PORTAL_SCAN_RECYCLE_MB
    return {"processes": settings.PORTAL_SCAN_PROCESSES, "slots": slots,
            "recycle_bytes": int(recycle * 1024 * 1024) if recycle else None}


def artifact_members(*, path: Path, original_name: str) -> Iterable[tuple[str, bytes]] | str:
    """What the file-by-file checks should read: a directory's path, an archive's members
    (streamed, one at a time), or one (original name, bytes) pair for a single file.

    The stored name is not the vendor's: storage adds a suffix on a name collision
    ('README_Z3xBz9l.md', which no longer reads as a model card) and object storage
    gives the local copy no name at all. Archives are told by their content
    (`source_is_archive`), and single files keep the name the vendor gave them.
    """
    from compliance.engine.licenses.sources import archive_members_iter, source_is_archive

    if path.is_dir():
        return str(path)
    if source_is_archive(path=str(path), name=original_name):
        return archive_members_iter(path=str(path))
    with open(path, "rb") as fh:
        data = fh.read(SINGLE_FILE_MAX_BYTES + 1)
    if len(data) > SINGLE_FILE_MAX_BYTES:
        raise TooLargeToRead(
            f"{original_name} is a single file of more than {SINGLE_FILE_MAX_BYTES // (1024 * 1024)} MiB; "
            "licence and code checks read single files up to that size. Upload it inside an archive "
            "(each member is read up to that size) or split it.")
    name = original_name.replace("\\", "/").rsplit("/", 1)[-1] or "artifact"
    return [(name, data)]


def finding_text(*, code: str, evidence: dict) -> tuple[str, str] | None:
    """Title and reviewers' sentence, in the active language, of the findings the pipeline
    writes itself (a check that could not complete, a check blocked by intake), from their
    code and evidence (compliance.finding_texts); None for the others. The stored text is this
    in English."""
    from compliance.finding_texts import REVIEWER, finding_render

    if code not in ("check_incomplete", "check_blocked") or not isinstance(evidence, dict):
        return None
    text = finding_render(code=code, params={}, evidence=evidence, audience=REVIEWER)
    return text.title, text.text


def artifact_itself(artifact: Artifact) -> list[Artifact]:
    return [artifact]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    label: str
    queue: str
    soft_time_limit: int
    time_limit: int
    applies: Callable[[Artifact], bool]
    run: Callable[[CheckContext], CheckOutcome]
    # Checks this one waits for. Only "intake" exists: the check runs once intake has
    # accepted every artifact it reads (``reads``), and is blocked, with the reason, when
    # intake rejected or quarantined one (compliance.services.runs.check_runs_release).
    depends_on: tuple[str, ...] = ()
    # The artifacts the check reads: the artifact itself, or (lineage) its model folder.
    reads: Callable[[Artifact], list[Artifact]] = artifact_itself
    # Everything the check's result depends on besides its code, as plain JSON data: the files it
    # reads (names and SHA-256) and the declaration and policy parts it uses. Two runs with equal
    # inputs and engine version reach the same result, so a later version may reuse the earlier
    # one (compliance.services.reuse). None: never reused. Leaving out an input the check reads
    # would let a changed input go unnoticed (a wrong verdict): each check's function lists what
    # its ``run`` reads, next to it.
    reuse_inputs: Callable[[Artifact], dict] | None = None
    # The engine version the check records on its runs (``CheckOutcome.engine_version``).
    engine_version: Callable[[], str] | None = None


def _registry() -> dict[str, CheckSpec]:
    from compliance.checks import code, intake, licenses, lineage, training_evidence

    specs = [
        # Intake reads every byte once (hashing, archive walk): 10 GB at ~300 MB/s is ~35 s; allow 20 min.
        CheckSpec("intake", gettext_lazy("Intake safety"), LIGHT, 20 * 60, 25 * 60, lambda a: True, intake.run,
                  reuse_inputs=intake.reuse_inputs, engine_version=intake.engine_version),
        # Lineage reads a fixed sample of layers (<0.5 % of the bytes, ~6 s at 100B): 30 min is generous.
        CheckSpec("lineage", gettext_lazy("Model lineage"), HEAVY, 30 * 60, 35 * 60, lineage.applies, lineage.run,
                  depends_on=("intake",), reads=lineage.artifacts_read, reuse_inputs=lineage.reuse_inputs,
                  engine_version=lineage.engine_version),
        # Licences: ~60 source files/s with the fast path; a 50,000-file archive fits in 20 min.
        CheckSpec("licenses", gettext_lazy("Licences"), LIGHT, 20 * 60, 25 * 60, licenses.applies, licenses.run,
                  depends_on=("intake",), reuse_inputs=licenses.reuse_inputs, engine_version=licenses.engine_version),
        # Code matching: ~60 files/s against a 20,000-file index.
        CheckSpec("code", gettext_lazy("Code provenance"), HEAVY, 40 * 60, 45 * 60, code.applies, code.run,
                  depends_on=("intake",), reuse_inputs=code.reuse_inputs, engine_version=code.engine_version),
        # Training evidence: one lineage test per checkpoint link and per registered reference; 10
        # fingerprinted 7B checkpoints against 2 references take minutes (BENCHMARKS.md); weights
        # folders are fingerprinted first (seconds each). 30 min is generous.
        CheckSpec("training_evidence", gettext_lazy("Training evidence"), HEAVY, 30 * 60, 35 * 60,
                  training_evidence.applies, training_evidence.run, depends_on=("intake",),
                  reads=training_evidence.reads, reuse_inputs=training_evidence.reuse_inputs, engine_version=training_evidence.engine_version),
    ]
    return {spec.name: spec for spec in specs}


_REGISTRY: dict[str, CheckSpec] | None = None


def check_registry() -> dict[str, CheckSpec]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _registry()
    return _REGISTRY


def checks_for(artifact: Artifact) -> list[CheckSpec]:
    return [spec for spec in check_registry().values() if spec.applies(artifact)]

"""Intake safety for untrusted vendor uploads: hash, recognise, inspect, decide.

`artifact_inspect` is the one entry point for a local file or a Hugging Face
model directory. It never loads, unpickles or extracts anything:
- the SHA-256 is computed while streaming (`stream_hash_copy`, also used by
  web uploads), never reading a whole file into memory;
- the kind is recognised from bytes, not names (`kind_detect`), and a
  declared kind that does not match the content is a finding; the file
  name's extension is a declared kind when the vendor gives none, and
  weights whose content does not parse as their extension's format are
  rejected (`extension_kind`);
- safetensors and GGUF headers are validated strictly by
  `compliance.engine.weights`; archives by `archives` (including the
  safetensors, pickles and NumPy object arrays inside them); pickles and
  .npy object arrays by `pickles`; JSON/YAML/TOML/text by `structured`;
  PDFs for active content; any file for a zip appended to it (polyglots).
- Anything unexpected while inspecting becomes a critical finding
  (`inspection_failed`): an upload is never accepted because a check broke.
The verdict is `rejected` for any critical or high finding, `quarantined`
for medium ones and for compression bombs (a reviewer decides), `accepted`
otherwise.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from compliance.engine import archives, pickles, structured
from compliance.engine.intake_common import (
    Finding,
    json_ready,
    IntakeLimits,
    MiB,
    finding_sort_key,
    verdict_from_findings,
)

INTAKE_ENGINE_VERSION = "2"  # 2: extension as declared kind, compression bombs quarantined

KIND_MIME: dict[str, str] = {
    "safetensors": "application/x-safetensors",
    "gguf": "application/x-gguf",
    "pytorch_zip": "application/zip",
    "zip": "application/zip",
    "tar": "application/x-tar",
    "tar_gz": "application/gzip",
    "gzip": "application/gzip",
    "tar_zst": "application/zstd",
    "zstd": "application/zstd",
    "pickle": "application/x-python-pickle",
    "npy": "application/x-npy",
    "json": "application/json",
    "yaml": "application/yaml",
    "toml": "application/toml",
    "markdown": "text/markdown",
    "text": "text/plain",
    "pdf": "application/pdf",
    "directory": "inode/directory",
    "unknown": "application/octet-stream",
}
DETECTED_KINDS = tuple(KIND_MIME)

# What each artifact kind a vendor can declare (DESIGN.md, "The flow") may
# contain. A declared detected-kind name ("safetensors", "json") must match
# exactly (a PyTorch zip is also a zip).
DECLARED_KIND_COMPATIBLE: dict[str, frozenset[str]] = {
    "weights": frozenset({"safetensors", "gguf", "pytorch_zip", "pickle", "directory"}),
    "config": frozenset({"json", "yaml", "toml"}),
    # tokenizer.model (SentencePiece) is protobuf, which we do not recognise.
    "tokenizer": frozenset({"json", "text", "unknown", "directory"}),
    "source_archive": frozenset({"zip", "tar", "tar_gz", "tar_zst"}),
    # A Hugging Face folder uploaded as one archive (or inspected in place).
    "model_directory": frozenset({"zip", "tar", "tar_gz", "tar_zst", "directory"}),
    "model_card": frozenset({"markdown", "text", "pdf"}),
    # CycloneDX/SPDX BOMs are JSON, or XML/tag-value text.
    "sbom": frozenset({"json", "text", "yaml"}),
    "training_evidence": frozenset({"pdf", "json", "yaml", "toml", "text", "markdown", "zip", "tar", "tar_gz", "tar_zst", "directory", "npy"}),
    "other": frozenset(DETECTED_KINDS),
}
_KINDS_THAT_RUN_CODE = frozenset({"pickle", "pytorch_zip"})

# What a file name's extension claims, used as the declared kind when the vendor gives none
# (or "other"): suffix, what it calls the content, the detected kinds that honour it, and
# whether it names weights. Text-like suffixes accept any text kind, because telling YAML
# from Markdown from plain text is a heuristic: the mismatch worth a finding is binary
# content (a pickle, a zip) behind a name that promises text.
_TEXT_KINDS = frozenset({"json", "yaml", "toml", "markdown", "text"})
_EXTENSION_KINDS: tuple[tuple[str, str, frozenset[str], bool], ...] = (
    (".safetensors", "safetensors", frozenset({"safetensors"}), True),
    (".gguf", "gguf", frozenset({"gguf"}), True),
    (".pt", "pytorch", frozenset({"pickle", "pytorch_zip"}), True),
    (".pth", "pytorch", frozenset({"pickle", "pytorch_zip"}), True),
    (".ckpt", "pytorch", frozenset({"pickle", "pytorch_zip"}), True),
    (".tar.gz", "tar_gz", frozenset({"tar_gz"}), False),
    (".tgz", "tar_gz", frozenset({"tar_gz"}), False),
    (".tar.zst", "tar_zst", frozenset({"tar_zst"}), False),
    (".tar", "tar", frozenset({"tar"}), False),
    (".zip", "zip", frozenset({"zip", "pytorch_zip"}), False),
    (".npy", "npy", frozenset({"npy"}), False),
    (".pdf", "pdf", frozenset({"pdf"}), False),
    (".json", "json", _TEXT_KINDS, False),
    (".yaml", "yaml", _TEXT_KINDS, False),
    (".yml", "yaml", _TEXT_KINDS, False),
    (".toml", "toml", _TEXT_KINDS, False),
)
# `.bin` is the generic binary suffix (tools and our own tests use it for anything), so
# only the Hugging Face names of PyTorch checkpoints make it a weights claim.
_PYTORCH_BIN_NAME = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")
_NPY_HEAD_BYTES = 1024 * 1024 + 12  # the largest npy header we accept, plus its prefix

# Bytes read to recognise a file: enough for a tar header inside a gzip or
# zstd frame and for a protocol 0 pickle's first few opcodes.
_HEAD_BYTES = 64 * 1024
# What may follow "[" in a JSON array; a BERT vocab.txt starts "[PAD]" and is text, not JSON.
_JSON_VALUE_STARTS = frozenset('"{[]-0123456789tfn')
# Text files up to this size are tried as TOML/YAML when recognising kinds;
# larger ones are called text (configs are kilobytes).
_STRUCTURED_SNIFF_MAX = MiB
_MARKDOWN_LINE = re.compile(r"^(#{1,6} \S|```|\s*[-*+] \S|\|.*\|\s*$|.*\[[^\]]+\]\([^)]+\))", re.MULTILINE)
_TOML_TABLE_LINE = re.compile(r"\[\[?\s*[A-Za-z0-9_\-.\"' ]+\]\]?[ \t]*(#.*)?\r?\n")
_PDF_ACTIVE = re.compile(rb"/(JavaScript|Launch|EmbeddedFile)\b")


class IntakeError(ValueError):
    """An intake step cannot go on; the message says why and what to do."""


class UploadTooLargeError(IntakeError):
    """The upload passed `limit_bytes`; reading stopped there."""


class ArtifactNotFoundError(IntakeError):
    """The path to inspect does not exist."""


@dataclass(frozen=True)
class DetectedKind:
    """What a file's bytes say it is."""

    kind: str
    mime: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "mime": self.mime, "evidence": dict(self.evidence)}


@dataclass
class IntakeReport:
    """The outcome of `artifact_inspect`: identity, kind, verdict, findings."""

    name: str
    sha256: str | None
    size: int
    kind: str
    verdict: str
    findings: list[Finding]
    details: dict[str, Any] = field(default_factory=dict)
    files: list[IntakeReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "name": json_ready(self.name),
            "sha256": self.sha256,
            "size": self.size,
            "kind": self.kind,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "details": json_ready(self.details),
            "engine_version": INTAKE_ENGINE_VERSION,
        }
        if self.kind == "directory":
            result["files"] = [f.to_dict() for f in self.files]
        return result


# ---------------------------------------------------------------------------
# Hashing
# ---------------------------------------------------------------------------

def stream_hash_copy(*, src: BinaryIO, dst: BinaryIO | None, limit_bytes: int, chunk: int = MiB) -> tuple[str, int]:
    """Copy `src` to `dst` (if given) while computing SHA-256; return (hex digest, size).

    Reads `chunk` bytes at a time (1 MiB: large enough that Python overhead
    is under 1 % of hashing time, small enough to keep memory flat). Raises
    `UploadTooLargeError` before writing the chunk that would pass
    `limit_bytes`, so `dst` never holds more than the limit.
    """
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    readinto = getattr(src, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            data = view[:n] if n else b""
        else:
            data = src.read(chunk)
            n = len(data)
        if not n:
            break
        if size + n > limit_bytes:
            raise UploadTooLargeError(
                f"upload is larger than the {limit_bytes:,}-byte limit; stopped after {size + n:,} bytes. "
                "Split it (e.g. sharded safetensors) or ask the programme officer to raise the limit."
            )
        size += n
        digest.update(data)
        if dst is not None:
            dst.write(data)
    return digest.hexdigest(), size


def file_sha256(*, path: str | Path, limit_bytes: int) -> tuple[str, int]:
    """SHA-256 and size of a local file, streamed."""
    with Path(path).open("rb") as handle:
        return stream_hash_copy(src=handle, dst=None, limit_bytes=limit_bytes)


# ---------------------------------------------------------------------------
# Kind detection
# ---------------------------------------------------------------------------

def _detected(kind: str, **evidence: Any) -> DetectedKind:
    return DetectedKind(kind=kind, mime=KIND_MIME[kind], evidence=evidence)


def _text_head(head: bytes) -> str | None:
    """Decode a head as UTF-8 text, allowing a multi-byte character cut at the end."""
    if b"\x00" in head:
        return None
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:
                return None
    return None


def kind_detect(*, path: str | Path) -> DetectedKind:
    """Recognise a file (or a model directory) from its bytes, never its name."""
    path = Path(path)
    if path.is_dir():
        return _detected("directory")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
        if head[:4] == b"\x28\xb5\x2f\xfd":
            head += handle.read(archives.ZSTD_SNIFF_BYTES - len(head))
    if not head:
        return _detected("unknown", empty=True)
    if head[:4] == b"GGUF":
        return _detected("gguf")
    if head.startswith(pickles.NPY_MAGIC):
        return _detected("npy")
    if archives.safetensors_looks_like(head=head):
        return _detected("safetensors", header_length=int.from_bytes(head[:8], "little"))
    archive_kind = archives.archive_kind_sniff(head=head)
    if archive_kind == "zip":
        try:
            names = archives.zip_member_names(path=path)
        except archives.ArchiveError:
            return _detected("zip", directory_readable=False)
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return _detected("pytorch_zip", members=len(names))
        return _detected("zip", members=len(names))
    if archive_kind is not None:
        return _detected(archive_kind)
    if head[:1024].find(b"%PDF-") >= 0:
        return _detected("pdf")
    if pickles.pickle_looks_like(head=head):
        return _detected("pickle", protocol=head[1] if head[:1] == b"\x80" else 0)
    text = _text_head(head)
    if text is None:
        return _detected("unknown")
    body = text.lstrip("\ufeff \t\r\n")
    if body[:1] == "[" and _TOML_TABLE_LINE.match(body) and size <= _STRUCTURED_SNIFF_MAX:
        # "[project]" starts both a TOML table and (invalid) JSON: let TOML try.
        with path.open("rb") as handle:
            try:
                structured.toml_parse(data=handle.read(), name=path.name)
                return _detected("toml")
            except structured.StructuredError:
                pass
    if body[:1] == "{" or (body[:1] == "[" and body[1:].lstrip()[:1] in _JSON_VALUE_STARTS):
        return _detected("json")
    if body.startswith("---") and re.search(r"^---\s*$", body[3:], re.MULTILINE) and _MARKDOWN_LINE.search(body):
        return _detected("markdown", front_matter=True)  # a model card: YAML front matter + Markdown
    if size <= _STRUCTURED_SNIFF_MAX and body.strip():
        with path.open("rb") as handle:
            data = handle.read(_STRUCTURED_SNIFF_MAX + 1)
        try:
            parsed = structured.toml_parse(data=data, name=path.name)
            if isinstance(parsed.value, dict) and parsed.value:
                return _detected("toml")
        except structured.StructuredError:
            pass
        if not _MARKDOWN_LINE.search(body):
            try:
                parsed = structured.yaml_parse(data=data, name=path.name)
                if isinstance(parsed.value, (dict, list)) and parsed.value:
                    return _detected("yaml")
            except structured.StructuredError as exc:
                if exc.code in ("structured_too_deep", "yaml_too_many_aliases"):
                    return _detected("yaml")
    if _MARKDOWN_LINE.search(body):
        return _detected("markdown")
    return _detected("text")


def _declared_kind_findings(*, name: str, declared_kind: str | None, detected: str) -> list[Finding]:
    if not declared_kind:
        return []
    declared = declared_kind.strip().lower().replace("-", "_").replace(" ", "_")
    if declared in DECLARED_KIND_COMPATIBLE:
        compatible = DECLARED_KIND_COMPATIBLE[declared]
    elif declared in DETECTED_KINDS:
        compatible = frozenset({declared, "pytorch_zip"}) if declared == "zip" else frozenset({declared})
    else:
        return [
            Finding(
                "low",
                "declared_kind_unknown",
                f"{name}: declared kind {declared_kind!r} is not one the portal knows; the content was judged on its own",
                {"declared": declared_kind, "detected": detected},
            )
        ]
    if "text" in compatible:
        # Markdown, YAML and TOML are text too: a licence file that happens to
        # read as YAML ("Copyright: 2026 ...") is not a mismatch.
        compatible = compatible | {"markdown", "yaml", "toml"}
    if detected in compatible:
        return []
    runs_code = detected in _KINDS_THAT_RUN_CODE and not (compatible & _KINDS_THAT_RUN_CODE)
    return [
        Finding(
            "high" if runs_code else "medium",
            "declared_kind_mismatch",
            f"{name}: declared as {declared_kind!r} but the content is {detected!r}"
            + ("; a pickle disguised as another format is a common way to slip code past reviewers" if runs_code else ""),
            {"declared": declared_kind, "detected": detected, "expected": sorted(compatible)},
        )
    ]


def extension_kind(*, name: str) -> tuple[str, frozenset[str], bool] | None:
    """What the file name's extension claims: (kind, detected kinds that honour it, names weights), or None."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if _PYTORCH_BIN_NAME.match(base):
        return "pytorch", frozenset({"pickle", "pytorch_zip"}), True
    for suffix, kind, compatible, weights in _EXTENSION_KINDS:
        if base.endswith(suffix) and len(base) > len(suffix):
            return kind, compatible, weights
    return None


def _extension_findings(*, name: str, declared_kind: str | None, detected: str, size: int,
                        details: dict[str, Any]) -> list[Finding]:
    """The extension is a claim about the content. Weights that do not parse as the format their
    name gives are rejected (every loader would fail on them, or worse, try another format);
    other mismatches are a finding when the vendor declared no kind, the extension being the
    only declaration there is."""
    claim = extension_kind(name=name)
    vendor_declared = bool(declared_kind) and declared_kind.strip().lower() != "other"
    if claim is None or size == 0:
        return []
    kind, compatible, weights = claim
    if not vendor_declared:
        details["declared_kind"] = {"kind": kind, "declared_by": "extension"}
    if detected in compatible:
        return []
    evidence = {"file": name, "extension_kind": kind, "detected": detected, "expected": sorted(compatible)}
    if weights:
        return [Finding("critical", "weights_unparseable",
                        f"{name}: the name says {kind} weights but the content does not parse as {kind} "
                        f"(it reads as {detected}); weights that do not parse are rejected",
                        evidence)]
    if vendor_declared:
        return []
    return [Finding("medium", "extension_kind_mismatch",
                    f"{name}: the extension says {kind} but the content is {detected!r}; no other kind was declared",
                    evidence)]


# ---------------------------------------------------------------------------
# Per-kind inspection
# ---------------------------------------------------------------------------

def _weights_error_code(kind: str, message: str) -> str:
    """Stable finding codes for the weights readers' error messages."""
    lowered = message.lower()
    if kind == "gguf":
        return "gguf_invalid"
    for needle, code in (
        ("overlaps", "safetensors_overlapping_offsets"),
        ("header length", "safetensors_header_length_invalid"),
        ("truncated", "safetensors_truncated"),
        ("too short", "safetensors_truncated"),
        ("twice", "safetensors_duplicate_key"),
        ("belong to no tensor", "safetensors_unclaimed_bytes"),
    ):
        if needle in lowered:
            return code
    return "safetensors_invalid"


def _weights_inspect(*, path: Path | None = None, source: Any = None, kind: str) -> tuple[list[Finding], dict[str, Any]]:
    """The strict header check of safetensors or GGUF weights, on a local ``path`` or a byte-range
    ``source`` (``compliance.engine.weights.ByteSource``: object storage)."""
    from compliance.engine import weights  # the other helper's strict readers

    name = path.name if path is not None else source.name
    try:
        if kind == "safetensors":
            header = weights.safetensors_header_read(source if source is not None else weights.LocalFileSource(path))
            details = {"tensors": len(header.tensors), "header_length": getattr(header, "header_length", None)}
        else:
            header = weights.gguf_header_read(path) if source is None else weights.gguf_header_read_source(source)
            details = {"tensors": len(header.tensors), "architecture": header.architecture}
    except weights.WeightsFormatError as exc:
        message = str(exc)
        return [Finding("critical", _weights_error_code(kind, message), message, {"file": name})], {}
    return [], {k: v for k, v in details.items() if v is not None}


def _archive_summary(report: archives.ArchiveReport) -> dict[str, Any]:
    def nested_names(r: archives.ArchiveReport) -> list[str]:
        out = []
        for n in r.nested:
            out.append(n.name)
            out.extend(nested_names(n))
        return out

    def all_findings(r: archives.ArchiveReport) -> list[Finding]:
        found = list(r.findings)
        for n in r.nested:
            found.extend(all_findings(n))
        return found

    return {
        "format": report.format,
        "member_count": report.member_count,
        "declared_bytes": report.declared_bytes,
        "read_bytes": report.read_bytes,
        "member_kinds": dict(sorted(report.member_kinds.items())),
        "nested_archives": nested_names(report),
        "_findings": all_findings(report),
    }


def _structured_inspect(*, path: Path, kind: str, size: int, limits: IntakeLimits) -> tuple[list[Finding], dict[str, Any]]:
    if size > limits.max_json_bytes:
        return [
            Finding(
                "high",
                "structured_too_large",
                f"{path.name}: {kind.upper()} file is {size:,} bytes (limit {limits.max_json_bytes:,}); not parsed",
                {"file": path.name, "size": size, "limit": limits.max_json_bytes},
            )
        ], {}
    data = path.read_bytes()
    try:
        parsed = structured.structured_parse(data=data, kind=kind, name=path.name, limits=limits)
    except structured.StructuredError as exc:
        return [Finding("high", exc.code, str(exc), exc.evidence)], {}
    return parsed.findings, {"depth": parsed.depth}


def _text_inspect(*, path: Path, size: int, limits: IntakeLimits) -> tuple[list[Finding], dict[str, Any]]:
    with path.open("rb") as handle:
        data = handle.read(limits.max_json_bytes)
    report = structured.text_inspect(data=data, name=path.name)
    details = {"valid_utf8": report.valid_utf8, "inspected_bytes": len(data)}
    findings = list(report.findings)
    if size > len(data):
        findings.append(
            Finding("info", "text_partially_inspected", f"{path.name}: only the first {len(data):,} of {size:,} bytes were checked",
                    {"file": path.name, "inspected": len(data), "size": size})
        )
    return findings, details


def _pdf_inspect(*, path: Path) -> tuple[list[Finding], dict[str, Any]]:
    hits: Counter[str] = Counter()
    overlap = b""
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(MiB)
            if not chunk:
                break
            window = overlap + chunk
            hits.update(m.group(1).decode() for m in _PDF_ACTIVE.finditer(window))
            overlap = chunk[-32:]  # a keyword split across chunks may count twice; that only over-reports
    if not hits:
        return [], {}
    return [
        Finding(
            "medium",
            "pdf_active_content",
            f"{path.name}: the PDF declares {', '.join(sorted(hits))}; open it only in a sandboxed viewer",
            {"file": path.name, "keywords": dict(sorted(hits.items()))},
        )
    ], {}


def _file_inspect(*, path: Path, name: str, declared_kind: str | None, limits: IntakeLimits) -> IntakeReport:
    """Hash, recognise and inspect one regular file; every outcome is a report."""
    findings: list[Finding] = []
    details: dict[str, Any] = {}
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            target = os.readlink(path)
            findings.append(Finding("low", "artifact_symlink", f"{name}: is a symbolic link to '{target}'; its target was inspected",
                                    {"file": name, "target": target}))
            mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            # Reading a fifo or device would block or never end; do not open it.
            findings.append(Finding("critical", "artifact_not_regular_file", f"{name}: is not a regular file (device, fifo or socket); not read",
                                    {"file": name}))
            return _report(name=name, sha256=None, size=0, kind="unknown", findings=findings, details=details)
        size = path.stat().st_size
        if size > limits.max_bytes:
            findings.append(
                Finding("critical", "artifact_too_large", f"{name}: {size:,} bytes is above the {limits.max_bytes:,}-byte limit; not inspected",
                        {"file": name, "size": size, "limit": limits.max_bytes})
            )
            return _report(name=name, sha256=None, size=size, kind="unknown", findings=findings, details=details)
        try:
            sha256, size = file_sha256(path=path, limit_bytes=limits.max_bytes)
        except UploadTooLargeError as exc:  # the file grew while we read it
            findings.append(Finding("critical", "artifact_too_large", f"{name}: {exc}", {"file": name}))
            return _report(name=name, sha256=None, size=size, kind="unknown", findings=findings, details=details)
    except OSError as exc:
        # Permission denied, a file removed mid-scan, a symlink loop: say so
        # rather than crash the whole folder's report.
        findings.append(Finding("high", "artifact_unreadable", f"{name}: cannot be read ({exc.strerror or exc}); not inspected", {"file": name}))
        return _report(name=name, sha256=None, size=0, kind="unknown", findings=findings, details=details)

    kind = "unknown"
    try:
        kind = _content_inspect(path=path, name=name, size=size, declared_kind=declared_kind, limits=limits, findings=findings, details=details)
    except Exception as exc:  # noqa: BLE001 - defence in depth, see below
        # Each parser raises only its own error class (fuzzed in
        # tests/compliance/engine/test_fuzz_parsers.py); should one still
        # fail another way, the upload is rejected, never passed as clean.
        # The hash is kept: it identifies the bytes whatever happened after.
        findings.append(
            Finding(
                "critical",
                "inspection_failed",
                f"{name}: the inspection itself failed ({type(exc).__name__}: {exc}); rejected until a person looks at it",
                {"file": name, "error": type(exc).__name__},
            )
        )
    return _report(name=name, sha256=sha256, size=size, kind=kind, findings=findings, details=details)


def _content_inspect(*, path: Path, name: str, size: int, declared_kind: str | None, limits: IntakeLimits,
                     findings: list[Finding], details: dict[str, Any]) -> str:
    """Recognise the content and run the checks for its kind; append to findings/details; return the kind."""
    detected = kind_detect(path=path)
    kind = detected.kind
    details["mime"] = detected.mime
    findings.extend(_declared_kind_findings(name=name, declared_kind=declared_kind, detected=kind))
    findings.extend(_extension_findings(name=name, declared_kind=declared_kind, detected=kind, size=size, details=details))

    if kind not in ("zip", "pytorch_zip"):
        findings.extend(_hidden_zip_findings(path=path, name=name, size=size))
    if size == 0:
        findings.append(Finding("low", "artifact_empty", f"{name}: the file is empty", {"file": name}))
    elif kind in ("safetensors", "gguf"):
        more, extra = _weights_inspect(path=path, kind=kind)
        findings.extend(more)
        details.update(extra)
    elif kind in archives.ARCHIVE_KINDS:
        collector = _ArchiveIndexCollector(container=path.name, limits=limits)
        try:
            report = archives.archive_inspect(path=path, limits=limits, member_hook=collector)
        except archives.ArchiveError as exc:
            findings.append(Finding("high", "archive_corrupt", str(exc), {"file": name}))
        else:
            summary = _archive_summary(report)
            findings.extend(summary.pop("_findings"))
            details["archive"] = summary
            # A model directory uploaded as an archive gets the folder's shard check.
            findings.extend(hf_index_check(present=collector.present, indexes=collector.indexes, limits=limits))
    elif kind == "pickle":
        try:
            scan = pickles.pickle_scan_file(path=path, limits=limits)
        except pickles.PickleScanError as exc:
            findings.append(Finding("critical", "pickle_scan_failed", f"{exc}; an unreadable pickle is never treated as clean", {"file": name}))
        else:
            findings.extend(scan.findings)
            details["pickle"] = {"protocol": scan.protocol, "pickles": scan.pickle_count, "opcodes": scan.opcode_count,
                                 "torch_legacy": scan.torch_legacy}
    elif kind == "npy":
        findings.extend(_npy_inspect(path=path, name=name, limits=limits))
    elif kind in ("json", "yaml", "toml"):
        more, extra = _structured_inspect(path=path, kind=kind, size=size, limits=limits)
        findings.extend(more)
        details.update(extra)
    elif kind in ("text", "markdown"):
        more, extra = _text_inspect(path=path, size=size, limits=limits)
        findings.extend(more)
        details.update(extra)
    elif kind == "pdf":
        more, _ = _pdf_inspect(path=path)
        findings.extend(more)
    else:
        findings.append(Finding("low", "kind_unknown", f"{name}: content type not recognised; not inspected beyond its hash", {"file": name}))
    return kind


def _npy_inspect(*, path: Path, name: str, limits: IntakeLimits) -> list[Finding]:
    """A .npy of Python objects is a pickle behind a NumPy header: scan it as one."""
    with path.open("rb") as handle:
        head = handle.read(_NPY_HEAD_BYTES)
        try:
            offset = pickles.npy_object_data_offset(head=head)
            if offset is None:
                return []
            handle.seek(offset)
            scan = pickles.pickle_scan(stream=handle, name=name, limits=limits)
        except pickles.PickleScanError as exc:
            return [Finding("critical", "pickle_scan_failed", f"{name}: {exc}; an unreadable pickle is never treated as clean", {"file": name})]
    return [
        Finding("medium", "npy_object_dtype", f"{name}: NumPy array of Python objects; np.load needs allow_pickle=True, which runs code",
                {"file": name}),
        *scan.findings,
    ]


def _hidden_zip_findings(*, path: Path, name: str, size: int) -> list[Finding]:
    """A zip appended to another file (polyglot): zip readers that look from the end will open it."""
    with path.open("rb") as handle:
        handle.seek(max(0, size - 22 - 65535))
        tail = handle.read()
    if b"PK\x05\x06" not in tail:
        return []
    try:
        names = archives.zip_member_names(path=path)
    except archives.ArchiveError:
        return []
    if not names:
        return []
    return [
        Finding(
            "medium",
            "hidden_zip_archive",
            f"{name}: a zip archive with {len(names):,} member(s) is appended to this file; zip readers that read from the end will see it",
            {"file": name, "members": names[:20]},
        )
    ]


def _report(*, name: str, sha256: str | None, size: int, kind: str, findings: list[Finding], details: dict[str, Any], files: list[IntakeReport] | None = None) -> IntakeReport:
    unique: dict[tuple[str, str, str], Finding] = {}
    for finding in findings:
        unique.setdefault((finding.severity, finding.code, finding.message), finding)
    ordered = sorted(unique.values(), key=finding_sort_key)
    return IntakeReport(name=name, sha256=sha256, size=size, kind=kind, verdict=verdict_from_findings(ordered),
                        findings=ordered, details=details, files=files or [])


# ---------------------------------------------------------------------------
# Weights read by byte range (object storage)
# ---------------------------------------------------------------------------

# The tail a zip reader searches for its end record (22 bytes + the longest comment).
_ZIP_TAIL_BYTES = 22 + 65535


def weights_source_inspect(*, source: Any, declared_kind: str | None, sha256: str,
                           limits: IntakeLimits = IntakeLimits()) -> IntakeReport | None:
    """Intake of safetensors or GGUF weights read by byte range, never whole: the head (kind),
    the tail (a zip appended), the header (the strict readers of ``compliance.engine.weights``).

    ``source`` is a ``weights.ByteSource`` (``name``, ``size``, ``read``). The SHA-256 is not
    computed here: ``sha256`` is the caller's, established without reading the bytes (object
    storage's own identity of the object, compared with the one recorded at upload), and the
    report carries it. Returns None when the bytes are not weights by their head, or carry a zip
    end record in their tail: those are inspected whole, as a local file (``artifact_inspect``)."""
    name, size = source.name, source.size
    if size > limits.max_bytes:
        return _report(name=name, sha256=None, size=size, kind="unknown", details={}, findings=[
            Finding("critical", "artifact_too_large", f"{name}: {size:,} bytes is above the {limits.max_bytes:,}-byte "
                    "limit; not inspected", {"file": name, "size": size, "limit": limits.max_bytes})])
    if size == 0:
        return None
    head = source.read(0, min(size, _HEAD_BYTES))
    # The order of kind_detect: GGUF, then NumPy, then safetensors.
    if head[:4] == b"GGUF":
        kind = "gguf"
    elif head.startswith(pickles.NPY_MAGIC) or not archives.safetensors_looks_like(head=head):
        return None
    else:
        kind = "safetensors"
    tail_start = max(0, size - _ZIP_TAIL_BYTES)
    if b"PK\x05\x06" in source.read(tail_start, size - tail_start):
        return None  # a polyglot candidate: the zip reader needs the file
    findings: list[Finding] = []
    details: dict[str, Any] = {"mime": KIND_MIME[kind]}
    findings.extend(_declared_kind_findings(name=name, declared_kind=declared_kind, detected=kind))
    findings.extend(_extension_findings(name=name, declared_kind=declared_kind, detected=kind, size=size,
                                        details=details))
    try:
        more, extra = _weights_inspect(source=source, kind=kind)
    except OSError:
        raise  # the store could not be read (network, object changed mid-read): the run fails, nothing is judged
    except Exception as exc:  # noqa: BLE001 - defence in depth, as in _file_inspect
        more, extra = [Finding("critical", "inspection_failed",
                               f"{name}: the inspection itself failed ({type(exc).__name__}: {exc}); rejected until a "
                               "person looks at it", {"file": name, "error": type(exc).__name__})], {}
    findings.extend(more)
    details.update(extra)
    return _report(name=name, sha256=sha256, size=size, kind=kind, findings=findings, details=details)


# ---------------------------------------------------------------------------
# Model directories
# ---------------------------------------------------------------------------

def _directory_inspect(*, root: Path, declared_kind: str | None, limits: IntakeLimits) -> IntakeReport:
    findings: list[Finding] = []
    files: list[IntakeReport] = []
    relpaths: list[str] = []
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for link in [d for d in dirnames if (Path(current) / d).is_symlink()]:
            findings.append(Finding("medium", "directory_symlinked_folder", f"{root.name}: folder {link!r} is a symbolic link; not followed",
                                    {"file": str((Path(current) / link).relative_to(root))}))
        for filename in sorted(filenames):
            relpaths.append(str((Path(current) / filename).relative_to(root)))
            if len(relpaths) > limits.max_directory_files:
                break
    if len(relpaths) > limits.max_directory_files:
        findings.append(Finding("high", "directory_too_many_files",
                                f"{root.name}: more than {limits.max_directory_files:,} files; only the first were inspected",
                                {"limit": limits.max_directory_files}))
        relpaths = relpaths[: limits.max_directory_files]
    manifest = hashlib.sha256()
    total = 0
    kinds: Counter[str] = Counter()
    for relpath in relpaths:
        path = root / relpath
        if path.is_symlink():
            resolved = path.resolve()
            if not resolved.is_relative_to(root.resolve()) and "blobs" not in resolved.parts:
                # Hugging Face cache snapshots link into ../../blobs; anything
                # else pointing outside the model folder is suspicious.
                findings.append(Finding("high", "directory_symlink_outside", f"{root.name}/{relpath}: links outside the model folder to {str(resolved)!r}",
                                        {"file": relpath, "target": str(resolved)}))
                continue
        try:
            relpath.encode("utf-8")
        except UnicodeEncodeError:
            shown = relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            findings.append(Finding("medium", "directory_name_invalid_utf8",
                                    f"{root.name}/{shown}: file name is not valid UTF-8; tools will disagree on its name",
                                    {"file": shown}))
        report = _file_inspect(path=path, name=relpath, declared_kind=None, limits=limits)
        files.append(report)
        kinds[report.kind] += 1
        total += report.size
        manifest.update(f"{relpath}\0{report.sha256}\n".encode("utf-8", "surrogateescape"))
        for finding in report.findings:
            findings.append(Finding(finding.severity, finding.code, finding.message, {**finding.evidence, "file": relpath}))
    findings.extend(_hf_index_findings(root=root, relpaths=relpaths, limits=limits))
    findings.extend(_declared_kind_findings(name=root.name, declared_kind=declared_kind, detected="directory"))
    details = {"files": len(files), "kinds": dict(sorted(kinds.items())),
               "sha256_is": "SHA-256 of the sorted manifest lines 'relative path NUL file sha256'"}
    return _report(name=root.name, sha256=manifest.hexdigest(), size=total, kind="directory", findings=findings, details=details, files=files)


def _hf_index_findings(*, root: Path, relpaths: list[str], limits: IntakeLimits) -> list[Finding]:
    """Sharded checkpoints in a folder: every shard the index names must be present."""
    indexes: dict[str, bytes] = {}
    for index_name in [p for p in relpaths if p.endswith(".safetensors.index.json")]:
        path = root / index_name
        if path.stat().st_size <= limits.max_json_bytes:  # larger ones are reported by the file check
            indexes[index_name] = path.read_bytes()
    return hf_index_check(present=set(relpaths), indexes=indexes, limits=limits)


def hf_index_check(*, present: set[str], indexes: dict[str, bytes], limits: IntakeLimits = IntakeLimits()) -> list[Finding]:
    """Check `*.safetensors.index.json` files against the files present (folder or archive).

    `present` holds relative paths; `indexes` maps each index's relative path
    to its bytes. Missing shards are high (the model cannot load as declared);
    shard names that are paths are critical; unlisted shards are low.
    """
    findings: list[Finding] = []
    for index_name, data in sorted(indexes.items()):
        try:
            parsed = structured.json_parse(data=data, name=index_name, limits=limits)
        except structured.StructuredError:
            continue  # reported by the file's own check
        weight_map = parsed.value.get("weight_map") if isinstance(parsed.value, dict) else None
        if not isinstance(weight_map, dict):
            findings.append(Finding("high", "hf_index_invalid", f"{index_name}: has no 'weight_map' object", {"file": index_name}))
            continue
        folder = str(Path(index_name).parent)
        shards = {str(v) for v in weight_map.values()}
        missing = []
        for shard in sorted(shards):
            shard_path = shard if folder == "." else f"{folder}/{shard}"
            if "/" in shard or "\\" in shard or shard in ("", ".", ".."):
                findings.append(Finding("critical", "hf_index_path_traversal", f"{index_name}: shard name '{shard}' is a path, not a file name",
                                        {"file": index_name, "shard": shard}))
            elif shard_path not in present:
                missing.append(shard)
        if missing:
            findings.append(Finding("high", "hf_index_missing_shard",
                                    f"{index_name}: {len(missing)} of {len(shards)} shards it names are not present "
                                    f"(incomplete upload?), e.g. '{missing[0]}'",
                                    {"file": index_name, "missing": missing, "shards": len(shards)}))
        prefix = "" if folder == "." else f"{folder}/"
        stray = sorted(p for p in present if p.startswith(prefix) and p.endswith(".safetensors") and p[len(prefix):] not in shards and "/" not in p[len(prefix):])
        if stray:
            findings.append(Finding("low", "hf_index_unlisted_shard", f"{index_name}: safetensors files not in the index are ignored by loaders: {stray[:5]}",
                                    {"file": index_name, "unlisted": stray}))
    return findings


class _ArchiveIndexCollector:
    """Member hook: remember top-level member paths and read safetensors index files."""

    def __init__(self, *, container: str, limits: IntakeLimits) -> None:
        self._prefix = f"{container}/"
        self._limits = limits
        self.present: set[str] = set()
        self.indexes: dict[str, bytes] = {}

    def __call__(self, member_name: str, head: bytes, stream: BinaryIO) -> list[Finding]:
        if not member_name.startswith(self._prefix):
            return []
        relative = member_name[len(self._prefix):]
        if "/" in relative and relative.split("/", 1)[0].endswith((".zip", ".tar", ".gz", ".zst")):
            return []  # inside a nested archive
        self.present.add(relative)
        if relative.endswith(".safetensors.index.json"):
            data = stream.read(self._limits.max_json_bytes + 1)
            if len(data) <= self._limits.max_json_bytes:
                self.indexes[relative] = data
        return []


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

def artifact_inspect(*, path: str | Path, declared_kind: str | None = None, limits: IntakeLimits = IntakeLimits()) -> IntakeReport:
    """Hash, recognise and inspect a local file or model directory; never load or extract it.

    Raises `ArtifactNotFoundError` if nothing exists at `path`. Everything
    about the content itself, however hostile, comes back as findings.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ArtifactNotFoundError(f"{path}: no such file or directory")
    if path.is_dir() and not path.is_symlink():
        return _directory_inspect(root=path.resolve(), declared_kind=declared_kind, limits=limits)
    if path.is_symlink() and not path.exists():
        report = _report(name=path.name, sha256=None, size=0, kind="unknown",
                         findings=[Finding("high", "artifact_broken_symlink", f"{path.name}: is a symbolic link to nothing", {"file": path.name})],
                         details={})
        return report
    return _file_inspect(path=path, name=path.name, declared_kind=declared_kind, limits=limits)

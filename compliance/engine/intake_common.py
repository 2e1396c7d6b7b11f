"""Shared vocabulary of the intake-safety checks: findings, severities, limits.

Pure Python, no Django. Every intake module (archives, pickles, structured,
intake) reports in the same `Finding` shape so a Celery task, the
`inspect_artifact` command and the tests all read one format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Ordered from worst to mildest. The verdict rule in `verdict_from_findings`
# depends on this order.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")

VERDICT_ACCEPTED = "accepted"
VERDICT_QUARANTINED = "quarantined"
VERDICT_REJECTED = "rejected"

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Finding:
    """One observation about an uploaded artifact.

    `code` is a stable snake_case identifier that policies and dashboards key
    on (`archive_path_traversal`, `pickle_imports_callable`, ...); `message`
    is for people; `evidence` is JSON-ready detail (member names, offsets,
    byte counts).
    """

    severity: str
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; expected one of {SEVERITIES}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": json_ready(self.message),
            "evidence": json_ready(self.evidence),
        }


def finding_sort_key(finding: Finding) -> tuple[int, str, str]:
    """Worst first, then by code and message, so output order is stable."""
    return (SEVERITIES.index(finding.severity), finding.code, finding.message)


# Findings that hold an artifact for a reviewer's decision whatever their severity. A
# compression bomb is high (it blocks approval until someone decides) but not proof of
# malice: the file is intact and readable by our streaming reader; it is whoever
# downloads and extracts it next who may not survive it. A reviewer releases it (waiver)
# or rejects it (confirmation).
QUARANTINE_CODES: frozenset[str] = frozenset({"archive_compression_bomb"})


def verdict_from_findings(findings: list[Finding]) -> str:
    """Critical or high => rejected; medium, or a `QUARANTINE_CODES` finding => quarantined
    (a person decides); else accepted.

    Pickle-based weights are "medium" on their own: they may be genuine, but
    loading them can run code, so a reviewer must look before anyone uses them.
    """
    if any(f.severity in ("critical", "high") for f in findings if f.code not in QUARANTINE_CODES):
        return VERDICT_REJECTED
    if any(f.severity == "medium" or f.code in QUARANTINE_CODES for f in findings):
        return VERDICT_QUARANTINED
    return VERDICT_ACCEPTED


@dataclass(frozen=True)
class IntakeLimits:
    """Ceilings applied to untrusted uploads. Each number says why it is that size.

    Exceeding a ceiling is a finding (usually a rejection), never a crash.
    """

    # Largest single file we accept: a 70B model as one Q8_0 GGUF file is
    # about 75 GB; 128 GiB leaves headroom without allowing unbounded uploads.
    max_bytes: int = 128 * GiB
    # Members per archive: the Linux kernel source tree has about 90,000
    # files; 200,000 is twice the largest source drop we expect.
    max_members: int = 200_000
    # Total bytes after decompression across an archive (and its nested
    # archives): a full sharded 100B checkpoint in bf16 is about 200 GB, but
    # archives are for source and evidence; 32 GiB covers the largest source
    # archives (a few GB) with a wide margin while stopping zip bombs.
    max_expanded_bytes: int = 32 * GiB
    # Compression ratio of one member above which we flag it (low): text compresses
    # about 3-10x, deflate tops out near 1,032x on zeros, so >200x means
    # almost all of the member is repetition.
    max_compression_ratio: int = 200
    # Ratio above which an archive is a compression bomb, quarantined for a reviewer
    # (`archive_compression_bomb`, high). Deflate's ceiling is 1,032:1 (a 258-byte match
    # in ~2 bits), reached only when nearly every output byte repeats what came just
    # before: a run of one byte or a very short pattern. No file a vendor has reason to
    # send gets near it: source and text 3-10x, JSON configs 5-30x, a tokenizer.json
    # ~5x, fp16/bf16 weights 1.1-1.5x, even an all-zero tensor file's headers break the
    # run. Judged per member (declared size over compressed size, before decompressing)
    # and for the whole upload (bytes a recursive extraction would write, nested
    # archives included, over the upload's size), so a 42.zip-style nest whose every
    # level looks modest is caught by its total. Only from `bomb_min_bytes` expanded: a
    # 100 KB run of spaces is not a threat to anyone's disk.
    bomb_ratio: int = 1_000
    bomb_min_bytes: int = 1 * MiB
    # Archives inside archives: a source tarball holding a wheel holding a
    # zip is depth 2; deeper nesting is the signature of recursive bombs.
    max_depth: int = 3
    # Bytes of a JSON/YAML/TOML document: the largest real tokenizer.json we
    # know (Gemma 3, 262k vocab) is about 33 MB; 64 MiB doubles it.
    max_json_bytes: int = 64 * MiB
    # Nesting of JSON/YAML/TOML: configs nest 3-4 levels and tokenizer.json
    # about 6; 64 is far above real files and far below Python's recursion
    # limit of 1,000, which deep documents would otherwise hit.
    max_json_depth: int = 64
    # YAML aliases per document: real configs use a handful; "billion laughs"
    # documents need thousands to expand exponentially.
    max_yaml_aliases: int = 100
    # Nodes a YAML document would have once its aliases are expanded: 8
    # levels of 9 aliases is only 72 aliases yet 9**8 = 43 million nodes.
    # Real configs expand to a few thousand nodes.
    max_yaml_expanded_nodes: int = 1_000_000
    # Bytes of one archive member name: PATH_MAX on Linux is 4,096.
    max_name_bytes: int = 4096
    # A single metadata read inside a tar stream (pax or GNU long-name
    # header). Real ones hold one path (<= 4 KiB) and a few attributes;
    # 16 MiB stops a header that claims gigabytes from being read into memory.
    max_tar_header_bytes: int = 16 * MiB
    # Opcodes per pickle stream: a PyTorch data.pkl of a 1,000-tensor model
    # has about 30 opcodes per tensor (~30,000); 10 million bounds CPU time.
    max_pickle_opcodes: int = 10_000_000
    # Pickle arguments (strings/bytes) longer than this are skipped unread
    # rather than held in memory: module and attribute names are short.
    max_pickle_arg_bytes: int = 1 * MiB
    # Files in a model directory: a sharded 405B model has ~200 shards plus
    # a dozen configs; 10,000 bounds a directory walk.
    max_directory_files: int = 10_000

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def json_ready(value: Any) -> Any:
    """Convert evidence into plain JSON types (bytes become escaped text)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [json_ready(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, str):
        # Lone surrogates (from invalid UTF-8 names) cannot be encoded as JSON
        # text; show them as \\x escapes so the evidence stays printable.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


def display_name(raw: bytes) -> str:
    """Printable form of a raw name: valid UTF-8 as is, invalid bytes as \\xNN."""
    return raw.decode("utf-8", errors="backslashreplace")

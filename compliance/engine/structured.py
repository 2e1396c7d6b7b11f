"""Parse untrusted JSON, YAML and TOML with size and depth limits; decode text safely.

Deeply nested documents make Python's recursive parsers hit RecursionError
(or, for YAML aliases, make consumers expand exponentially), so every
document is measured before it is parsed:
- JSON: nesting is counted on the raw bytes with strings blanked out
  (numpy cumulative sum, no recursion), then `json.loads` runs with a
  duplicate-key check (duplicate keys are a classic parser differential:
  two tools read two different configs from one file).
- YAML: the event stream (no object construction) gives depth and alias
  count; then `yaml.safe_load` (never `yaml.load`) builds the value.
- TOML: `tomllib` (3.11 stdlib); its recursion is caught, depth measured after.
Every refusal raises `StructuredError` with a message a vendor can act on.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from compliance.engine.intake_common import Finding, IntakeLimits

STRUCTURED_KINDS = ("json", "yaml", "toml")

# A JSON string literal (with escapes), unrolled-loop form so the regex engine
# runs in linear time on long strings.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


class StructuredError(ValueError):
    """The document was refused (too big, too deep, invalid) with the reason."""

    def __init__(self, message: str, *, code: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.evidence = evidence or {}


@dataclass
class ParsedDocument:
    """A parsed document, its measured depth, and any non-fatal findings."""

    kind: str
    value: Any
    depth: int
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # The value itself can be large (tokenizer.json); callers take it
        # from `.value`. The JSON form carries only what was judged.
        return {"kind": self.kind, "depth": self.depth, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class TextReport:
    """How a byte string decodes as UTF-8 text."""

    size: int
    valid_utf8: bool
    invalid_sequences: int
    first_invalid_offset: int | None
    nul_bytes: int
    has_bom: bool
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "valid_utf8": self.valid_utf8,
            "invalid_sequences": self.invalid_sequences,
            "first_invalid_offset": self.first_invalid_offset,
            "nul_bytes": self.nul_bytes,
            "has_bom": self.has_bom,
            "findings": [f.to_dict() for f in self.findings],
        }


def _size_check(*, data: bytes, kind: str, name: str, limits: IntakeLimits) -> None:
    if len(data) > limits.max_json_bytes:
        raise StructuredError(
            f"{name}: {kind.upper()} document is {len(data):,} bytes (limit {limits.max_json_bytes:,}); refused before parsing",
            code="structured_too_large",
            evidence={"file": name, "size": len(data), "limit": limits.max_json_bytes},
        )


def _too_deep(*, name: str, kind: str, depth: int, limits: IntakeLimits) -> StructuredError:
    return StructuredError(
        f"{name}: {kind.upper()} nests {depth if depth >= 0 else 'too many'} levels deep (limit {limits.max_json_depth}); real configs nest fewer than 10",
        code="structured_too_deep",
        evidence={"file": name, "depth": depth, "limit": limits.max_json_depth},
    )


def json_depth_measure(*, data: bytes) -> int:
    """Maximum bracket nesting of a JSON text, ignoring brackets inside strings.

    Linear time, no recursion: strings are blanked by a regex, then a
    cumulative sum of +1 for '[{' and -1 for ']}' gives the depth at every byte.
    """
    stripped = _JSON_STRING.sub(b'""', data)
    deepest = 0
    running = 0
    # 4 MiB windows keep the int64 working arrays near 32 MiB even for a
    # 64 MiB tokenizer.json; the running depth carries across windows.
    window = 4 * 1024 * 1024
    for start in range(0, len(stripped), window):
        codes = np.frombuffer(stripped, dtype=np.uint8, count=min(window, len(stripped) - start), offset=start)
        steps = (
            (codes == ord("[")).astype(np.int64)
            + (codes == ord("{"))
            - (codes == ord("]"))
            - (codes == ord("}"))
        )
        depths = np.cumsum(steps) + running
        deepest = max(deepest, int(depths.max(initial=0)))
        running = int(depths[-1])
    return deepest


def _value_depth(value: Any) -> int:
    """Depth of a parsed value, iteratively (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if id(item) in seen:  # YAML aliases share objects; count each once
                continue
            seen.add(id(item))
            depth += 1
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


def _decode_utf8(*, data: bytes, name: str, kind: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StructuredError(
            f"{name}: {kind.upper()} is not valid UTF-8 at byte {exc.start}",
            code="structured_invalid_utf8",
            evidence={"file": name, "offset": exc.start},
        ) from exc
    return text[1:] if text.startswith("\ufeff") else text


def json_parse(*, data: bytes, name: str = "document.json", limits: IntakeLimits = IntakeLimits()) -> ParsedDocument:
    """Parse JSON with size, depth and duplicate-key checks."""
    _size_check(data=data, kind="json", name=name, limits=limits)
    depth = json_depth_measure(data=data)
    if depth > limits.max_json_depth:
        raise _too_deep(name=name, kind="json", depth=depth, limits=limits)
    text = _decode_utf8(data=data, name=name, kind="json")
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result and len(duplicates) < 20:
                duplicates.append(key)
            result[key] = value
        return result

    def constant_refuse(token: str) -> Any:
        raise ValueError(f"{token} is not valid JSON")

    try:
        value = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=constant_refuse)
    except RecursionError as exc:  # pragma: no cover - the depth pre-check prevents it
        raise _too_deep(name=name, kind="json", depth=-1, limits=limits) from exc
    except ValueError as exc:
        raise StructuredError(f"{name}: not valid JSON ({exc})", code="json_invalid", evidence={"file": name}) from exc
    findings = []
    if duplicates:
        findings.append(
            Finding(
                "medium",
                "json_duplicate_keys",
                f"{name}: keys {sorted(set(duplicates))} appear twice in one object; different tools keep different copies",
                {"file": name, "keys": sorted(set(duplicates))},
            )
        )
    return ParsedDocument(kind="json", value=value, depth=depth, findings=findings)


def yaml_parse(*, data: bytes, name: str = "document.yaml", limits: IntakeLimits = IntakeLimits()) -> ParsedDocument:
    """Parse one YAML document with the safe loader, after measuring depth and aliases."""
    _size_check(data=data, kind="yaml", name=name, limits=limits)
    text = _decode_utf8(data=data, name=name, kind="yaml")
    depth = 0
    deepest = 0
    aliases = 0
    documents = 0
    # Expanded node count per open collection and per anchor, so aliases are
    # costed at the size of what they repeat (billion laughs).
    open_counts: list[tuple[str | None, int]] = []
    anchored: dict[str, int] = {}
    expanded = 0

    def node_add(count: int, anchor: str | None) -> None:
        nonlocal expanded
        if anchor:
            anchored[anchor] = count
        if open_counts:
            parent_anchor, parent_count = open_counts[-1]
            open_counts[-1] = (parent_anchor, parent_count + count)
        else:
            expanded += count
        if expanded + sum(c for _, c in open_counts[-1:]) > limits.max_yaml_expanded_nodes:
            raise StructuredError(
                f"{name}: YAML aliases expand to more than {limits.max_yaml_expanded_nodes:,} nodes ('billion laughs'); refused",
                code="yaml_alias_expansion",
                evidence={"file": name, "limit": limits.max_yaml_expanded_nodes},
            )

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > limits.max_json_depth:
                    raise _too_deep(name=name, kind="yaml", depth=depth, limits=limits)
                deepest = max(deepest, depth)
                open_counts.append((event.anchor, 1))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                anchor, count = open_counts.pop()
                node_add(count, anchor)
            elif isinstance(event, yaml.ScalarEvent):
                node_add(1, event.anchor)
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > limits.max_yaml_aliases:
                    raise StructuredError(
                        f"{name}: more than {limits.max_yaml_aliases} YAML aliases; documents like this expand exponentially ('billion laughs')",
                        code="yaml_too_many_aliases",
                        evidence={"file": name, "limit": limits.max_yaml_aliases},
                    )
                node_add(anchored.get(event.anchor, 1), None)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
        if documents > 1:
            raise StructuredError(
                f"{name}: holds {documents} YAML documents; a config must be one",
                code="yaml_multiple_documents",
                evidence={"file": name, "documents": documents},
            )
        value = yaml.safe_load(text)
    except StructuredError:
        raise
    except RecursionError as exc:
        raise _too_deep(name=name, kind="yaml", depth=-1, limits=limits) from exc
    except yaml.YAMLError as exc:
        raise StructuredError(f"{name}: not valid YAML ({exc})", code="yaml_invalid", evidence={"file": name}) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # SafeLoader constructors raise these on e.g. out-of-range timestamps.
        raise StructuredError(f"{name}: YAML value cannot be built ({exc})", code="yaml_invalid", evidence={"file": name}) from exc
    return ParsedDocument(kind="yaml", value=value, depth=deepest, findings=[])


def toml_parse(*, data: bytes, name: str = "document.toml", limits: IntakeLimits = IntakeLimits()) -> ParsedDocument:
    """Parse TOML with size and depth limits."""
    _size_check(data=data, kind="toml", name=name, limits=limits)
    text = _decode_utf8(data=data, name=name, kind="toml")
    try:
        value = tomllib.loads(text)
    except RecursionError as exc:
        raise _too_deep(name=name, kind="toml", depth=-1, limits=limits) from exc
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise StructuredError(f"{name}: not valid TOML ({exc})", code="toml_invalid", evidence={"file": name}) from exc
    depth = _value_depth(value)
    if depth > limits.max_json_depth:
        raise _too_deep(name=name, kind="toml", depth=depth, limits=limits)
    return ParsedDocument(kind="toml", value=value, depth=depth, findings=[])


def structured_parse(*, data: bytes, kind: str, name: str = "document", limits: IntakeLimits = IntakeLimits()) -> ParsedDocument:
    """Dispatch to `json_parse`, `yaml_parse` or `toml_parse`."""
    if kind == "json":
        return json_parse(data=data, name=name, limits=limits)
    if kind == "yaml":
        return yaml_parse(data=data, name=name, limits=limits)
    if kind == "toml":
        return toml_parse(data=data, name=name, limits=limits)
    raise StructuredError(f"{name}: {kind!r} is not one of {STRUCTURED_KINDS}", code="structured_unknown_kind")


def text_inspect(*, data: bytes, name: str = "document.txt") -> TextReport:
    """Decode bytes as UTF-8, counting (not crashing on) invalid bytes and NULs."""
    has_bom = data.startswith(b"\xef\xbb\xbf")
    first_invalid: int | None = None
    try:
        data.decode("utf-8")
        invalid = 0
    except UnicodeDecodeError as exc:
        first_invalid = exc.start
        # Linear-time count: each invalid sequence becomes one U+FFFD; genuine
        # U+FFFD characters in the file (EF BF BD) are subtracted.
        invalid = data.decode("utf-8", errors="replace").count("\ufffd") - data.count(b"\xef\xbf\xbd")
    nul = data.count(b"\x00")
    findings: list[Finding] = []
    if invalid:
        findings.append(
            Finding(
                "low",
                "text_invalid_utf8",
                f"{name}: {invalid:,} byte sequence(s) are not valid UTF-8 (first at byte {first_invalid}); shown as replacement characters",
                {"file": name, "invalid_sequences": invalid, "first_offset": first_invalid},
            )
        )
    if nul:
        findings.append(
            Finding("low", "text_nul_bytes", f"{name}: contains {nul:,} NUL byte(s); not plain text", {"file": name, "nul_bytes": nul})
        )
    return TextReport(
        size=len(data),
        valid_utf8=invalid == 0,
        invalid_sequences=invalid,
        first_invalid_offset=first_invalid,
        nul_bytes=nul,
        has_bom=has_bom,
        findings=findings,
    )

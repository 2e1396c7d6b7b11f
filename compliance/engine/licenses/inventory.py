"""Per-submission licence inventory: what is detected, what is declared, where they part.

The inventory is the stored artefact: `to_dict()` is JSON, `from_dict()`
reads it back, and the policy evaluator works on it alone, so changing a
programme's policy re-evaluates every submission without rescanning a byte.
Categories (from ScanCode's licence data) are copied into the inventory for
the same reason.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

from license_expression import ExpressionError, Licensing, LicenseSymbol, LicenseWithExceptionSymbol

from compliance.engine.licenses.declared import DeclaredLicense
from compliance.engine.licenses.detect import ENGINE_VERSION, FileLicenseResult

_LICENSING = Licensing()

# ScanCode keys of model licences (licenses-and-code.md): SPDX lists none of them.
MODEL_LICENSE_KEY_PREFIXES = (
    "llama-", "gemma-", "qwen-", "tongyi-qianwen", "deepseek-la", "bigscience-", "bigcode-open-rail",
    "stable-diffusion-", "falcon-",
)

# Keys that never decide what a file is licensed under: ScanCode's markers for
# "a licence is mentioned here" or "warranty disclaimer". They stay in the
# per-file matches but are not inventory licences of their own.
NON_LICENSE_KEYS = frozenset({
    "LicenseRef-scancode-unknown-license-reference",
    "LicenseRef-scancode-warranty-disclaimer",
    "LicenseRef-scancode-free-unknown",
    "LicenseRef-scancode-generic-cla",
})


def expression_keys(*, expression: str | None) -> list[str]:
    """Licence ids in an SPDX expression (exceptions kept as 'X WITH Y')."""
    if not expression:
        return []
    return list(_expression_keys(expression))


# A tree's files repeat a few dozen expressions; parsing one took 50 us, and the inventory asks for
# every file's and every match's (3,893 parses, 0.2 of 2.2 s of version 2's licence check at 5,000
# files under cProfile; bench/v2_fixed_cost.py). The answer depends on the text alone.
@functools.lru_cache(maxsize=4096)
def _expression_keys(expression: str) -> tuple[str, ...]:
    try:
        parsed = _LICENSING.parse(expression)
    except ExpressionError:
        return (expression,)
    if parsed is None:
        return ()
    keys = []
    for symbol in _LICENSING.license_symbols(parsed, unique=True, decompose=False):
        if isinstance(symbol, LicenseWithExceptionSymbol):
            keys.append(f"{symbol.license_symbol.key} WITH {symbol.exception_symbol.key}")
        elif isinstance(symbol, LicenseSymbol):
            keys.append(symbol.key)
    return tuple(keys)


def license_key_is_model_license(*, key: str) -> bool:
    """True for LicenseRef-scancode keys of model licences (Llama, Gemma, Qwen, OpenRAIL...)."""
    scancode_key = key.removeprefix("LicenseRef-scancode-").lower()
    return key.startswith("LicenseRef-scancode-") and scancode_key.startswith(MODEL_LICENSE_KEY_PREFIXES)


def _category_normalise(category: str | None) -> str | None:
    return category.strip().lower().replace(" ", "-") if category else None


def license_facts_lookup(*, keys: list[str]) -> dict[str, dict]:
    """ScanCode name, key and category for SPDX ids / LicenseRef-scancode keys."""
    from compliance.engine.licenses.scancode_index import scancode_state_get

    db = scancode_state_get().licenses_db
    by_spdx = {}
    for scancode_key, lic in db.items():
        for spdx in [lic.spdx_license_key, *(lic.other_spdx_license_keys or [])]:
            if spdx:
                by_spdx.setdefault(spdx.lower(), scancode_key)
    facts = {}
    for key in keys:
        base = key.split(" WITH ")[0]
        scancode_key = base.removeprefix("LicenseRef-scancode-") if base.startswith("LicenseRef-scancode-") else by_spdx.get(base.lower())
        lic = db.get(scancode_key) if scancode_key else None
        facts[key] = {
            "scancode_key": scancode_key,
            "name": lic.name if lic else None,
            "category": _category_normalise(lic.category) if lic else None,
        }
    return facts


@dataclass
class InventoryLicense:
    """One distinct licence in the submission and where it appears."""

    key: str
    name: str | None
    category: str | None
    scancode_key: str | None
    is_model_license: bool
    files: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    declared_in: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InventoryConflict:
    """Declared and detected licences that do not agree."""

    kind: str  # declared-not-detected | detected-not-declared | declarations-disagree
    message: str
    declared: list[str] = field(default_factory=list)
    detected: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LicenseInventory:
    """Everything licence-related about one input (directory, archive, file)."""

    source: str
    engine_version: str
    rules_version: str
    files_scanned: int
    files_with_licenses: int
    expressions: dict[str, list[str]]
    licenses: list[InventoryLicense]
    declared: list[DeclaredLicense]
    declared_expression: str | None
    detected_expression: str | None
    conflicts: list[InventoryConflict]
    holders: dict[str, list[str]]
    legal_files: list[str]
    notice_files: list[str]
    errors: list[str]

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "engine_version": self.engine_version,
            "rules_version": self.rules_version,
            "files_scanned": self.files_scanned,
            "files_with_licenses": self.files_with_licenses,
            "expressions": {k: list(v) for k, v in sorted(self.expressions.items())},
            "licenses": [lic.to_dict() for lic in self.licenses],
            "declared": [d.to_dict() for d in self.declared],
            "declared_expression": self.declared_expression,
            "detected_expression": self.detected_expression,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "holders": {k: list(v) for k, v in sorted(self.holders.items())},
            "legal_files": list(self.legal_files),
            "notice_files": list(self.notice_files),
            "errors": list(self.errors),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "LicenseInventory":
        return cls(
            source=data["source"],
            engine_version=data["engine_version"],
            rules_version=data["rules_version"],
            files_scanned=data["files_scanned"],
            files_with_licenses=data["files_with_licenses"],
            expressions={k: list(v) for k, v in data["expressions"].items()},
            licenses=[InventoryLicense(**lic) for lic in data["licenses"]],
            declared=[DeclaredLicense.from_dict(d) for d in data["declared"]],
            declared_expression=data["declared_expression"],
            detected_expression=data["detected_expression"],
            conflicts=[InventoryConflict(**c) for c in data["conflicts"]],
            holders={k: list(v) for k, v in data["holders"].items()},
            legal_files=list(data["legal_files"]),
            notice_files=list(data["notice_files"]),
            errors=list(data["errors"]),
        )


def _and_join(expressions: list[str]) -> str | None:
    unique = []
    for expression in expressions:
        if expression and expression not in unique:
            unique.append(expression)
    if not unique:
        return None
    if len(unique) == 1:
        return unique[0]
    try:
        return str(_LICENSING.dedup(" AND ".join(f"({e})" for e in unique)))
    except ExpressionError:
        return " AND ".join(f"({e})" for e in unique)


def _is_notice_file(path: str) -> bool:
    base = path.rsplit("/", 1)[-1].upper()
    return base.startswith("NOTICE") or base.startswith("THIRD_PARTY_NOTICE") or base.startswith("THIRD-PARTY-NOTICE")


def license_inventory_build(
    *, files: list[FileLicenseResult], declared: list[DeclaredLicense], source: str, rules_version: str = ""
) -> LicenseInventory:
    """Summarise per-file results and declarations into one inventory."""
    expressions: dict[str, list[str]] = {}
    key_files: dict[str, set[str]] = {}
    key_rules: dict[str, set[str]] = {}
    holders: dict[str, set[str]] = {}
    errors = []
    legal_files = []
    notice_files = []
    for result in files:
        if result.error:
            errors.append(result.error)
        if result.is_legal_file:
            legal_files.append(result.path)
        if _is_notice_file(result.path):
            notice_files.append(result.path)
        for holder in result.holders:
            holders.setdefault(holder, set()).add(result.path)
        if not result.license_expression:
            continue
        expressions.setdefault(result.license_expression, []).append(result.path)
        for key in expression_keys(expression=result.license_expression):
            key_files.setdefault(key, set()).add(result.path)
        for match in result.matches:
            for key in expression_keys(expression=match.license_expression):
                key_rules.setdefault(key, set()).add(match.rule)

    declared_keys: dict[str, set[str]] = {}
    for declaration in declared:
        if declaration.error:
            errors.append(declaration.error)
        for key in expression_keys(expression=declaration.license_expression):
            declared_keys.setdefault(key, set()).add(declaration.path)

    all_keys = sorted((set(key_files) | set(declared_keys)) - NON_LICENSE_KEYS)
    facts = license_facts_lookup(keys=all_keys) if all_keys else {}
    licenses = [
        InventoryLicense(
            key=key,
            name=facts[key]["name"],
            category=facts[key]["category"],
            scancode_key=facts[key]["scancode_key"],
            is_model_license=license_key_is_model_license(key=key),
            files=sorted(key_files.get(key, ())),
            rules=sorted(key_rules.get(key, ()))[:20],
            declared_in=sorted(declared_keys.get(key, ())),
        )
        for key in all_keys
    ]

    declared_expression = _and_join([d.license_expression for d in declared if d.license_expression])
    detected_expression = _and_join(sorted(expressions))
    conflicts = _conflicts_find(files=files, declared=declared, key_files=key_files, declared_keys=declared_keys)
    return LicenseInventory(
        source=source,
        engine_version=ENGINE_VERSION,
        rules_version=rules_version,
        files_scanned=len(files),
        files_with_licenses=sum(1 for f in files if f.license_expression),
        expressions={k: sorted(v) for k, v in expressions.items()},
        licenses=licenses,
        declared=declared,
        declared_expression=declared_expression,
        detected_expression=detected_expression,
        conflicts=conflicts,
        holders={k: sorted(v) for k, v in holders.items()},
        legal_files=sorted(legal_files),
        notice_files=sorted(notice_files),
        errors=errors,
    )


def _conflicts_find(
    *, files: list[FileLicenseResult], declared: list[DeclaredLicense],
    key_files: dict[str, set[str]], declared_keys: dict[str, set[str]],
) -> list[InventoryConflict]:
    conflicts = []
    detected_keys = set(key_files) - NON_LICENSE_KEYS
    # Licences in LICENSE/COPYING/NOTICE files and model cards are the
    # project's own statement; a licence mentioned in one vendored source
    # file is the policy's business, not a mismatch.
    legal_keys: dict[str, set[str]] = {}
    for result in files:
        if result.is_legal_file and result.license_expression:
            for key in expression_keys(expression=result.license_expression):
                if key not in NON_LICENSE_KEYS:
                    legal_keys.setdefault(key, set()).add(result.path)
    for key, paths in sorted(declared_keys.items()):
        if key in NON_LICENSE_KEYS or key in detected_keys:
            continue
        if not files or not legal_keys:
            continue  # nothing detected to compare with: reported as missing licence text by the policy
        conflicts.append(InventoryConflict(
            kind="declared-not-detected",
            message=f"{', '.join(sorted(paths))} declares {key}, but no file carries that licence text "
                    f"(licence files say {', '.join(sorted(legal_keys)) or 'nothing'})",
            declared=[key], detected=sorted(legal_keys), files=sorted(paths),
        ))
    if declared_keys:
        for key, paths in sorted(legal_keys.items()):
            if key in declared_keys:
                continue
            conflicts.append(InventoryConflict(
                kind="detected-not-declared",
                message=f"{', '.join(sorted(paths))} carries {key}, which no declaration names "
                        f"(declared: {', '.join(sorted(declared_keys))})",
                declared=sorted(declared_keys), detected=[key], files=sorted(paths),
            ))
    by_component: dict[str, set[str]] = {}
    sources: dict[str, set[str]] = {}
    for declaration in declared:
        if declaration.license_expression and declaration.source in ("model-card", "cyclonedx", "spdx"):
            name = declaration.component or "(submission)"
            by_component.setdefault(name, set()).add(declaration.license_expression)
            sources.setdefault(name, set()).add(declaration.path)
    model_cards = {d.license_expression for d in declared if d.source == "model-card" and d.license_expression}
    sbom = {d.license_expression for d in declared if d.source in ("cyclonedx", "spdx") and d.license_expression}
    if model_cards and sbom and not (model_cards & sbom):
        conflicts.append(InventoryConflict(
            kind="declarations-disagree",
            message=f"the model card declares {', '.join(sorted(model_cards))} but the SBOM declares "
                    f"{', '.join(sorted(sbom))}",
            declared=sorted(model_cards | sbom),
            files=sorted({d.path for d in declared if d.source in ("model-card", "cyclonedx", "spdx")}),
        ))
    return conflicts

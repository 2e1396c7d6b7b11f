"""Scan a directory, file or archive for licences: per-file results plus the inventory."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from compliance.engine.licenses.declared import DeclaredLicense, license_declarations_extract
from compliance.engine.licenses.detect import FileLicenseResult, LicenseDetector
from compliance.engine.licenses.inventory import LicenseInventory, license_inventory_build
from compliance.engine.licenses.sources import members_from


@dataclass
class LicenseScanResult:
    """Per-file licence results and the inventory built from them."""

    files: list[FileLicenseResult]
    inventory: LicenseInventory
    stats: dict = field(default_factory=dict)

    def to_dict(self, *, include_empty_files: bool = True) -> dict:
        files = self.files if include_empty_files else [f for f in self.files if f.license_expression or f.copyrights]
        return {
            "files": [f.to_dict() for f in files],
            "inventory": self.inventory.to_dict(),
            "stats": dict(self.stats),
        }


def license_scan(
    *,
    source: str | Iterable[tuple[str, bytes]],
    cache_dir: str | None = None,
    detector: LicenseDetector | None = None,
    copyrights: bool = True,
    source_name: str | None = None,
) -> LicenseScanResult:
    """Detect licences, copyrights and declarations in every file of `source`.

    `source` is a path (directory, file, zip/tar archive) or an iterable of
    (relative path, bytes). `cache_dir` holds the per-content result cache;
    pass the same directory across scans so unchanged files cost nothing.
    """
    own_detector = detector is None
    detector = detector or LicenseDetector(cache_dir=cache_dir, copyrights=copyrights)
    results: list[FileLicenseResult] = []
    declared: list[DeclaredLicense] = []
    try:
        for path, data in members_from(source=source):
            results.append(detector.detect(path=path, data=data))
            declared.extend(license_declarations_extract(path=path, data=data))
        stats = dict(detector.stats)
        stats["index_load_seconds"] = round(detector.state.load_seconds, 2)
    finally:
        if own_detector:
            detector.close()
    name = source_name or (os.path.basename(os.path.normpath(source)) if isinstance(source, str) else "(members)")
    inventory = license_inventory_build(
        files=results, declared=declared, source=name, rules_version=detector.state.rules_version
    )
    return LicenseScanResult(files=results, inventory=inventory, stats=stats)

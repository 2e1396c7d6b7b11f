"""Model lineage: was candidate model B derived from reference model A? Pure Python, no Django.

Public API:
    fingerprint_build(*, path) -> Fingerprint
    fingerprint_save(fp, path) / fingerprint_load(path)
    lineage_compare(*, candidate, reference) -> LineageReport
    lineage_test_against(*, candidate, references) -> list[LineageReport]   (Holm across references;
        from 5 references on, the registry is screened first: screen.py)
    fingerprint_save writes compact bundles (format 3, ~19 MB at d = 4096); format 2 still loads.
"""

from compliance.engine.lineage.compare import LineageReport, lineage_compare, lineage_test_against
from compliance.engine.lineage.fingerprint import (
    ENGINE_VERSION,
    Fingerprint,
    fingerprint_build,
    fingerprint_is_bundle,
    fingerprint_load,
    fingerprint_save,
)

__all__ = [
    "ENGINE_VERSION",
    "Fingerprint",
    "LineageReport",
    "fingerprint_build",
    "fingerprint_is_bundle",
    "fingerprint_load",
    "fingerprint_save",
    "lineage_compare",
    "lineage_test_against",
]

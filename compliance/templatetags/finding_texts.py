"""Template tags for findings and check verdicts in the reader's language.

``{% finding_text f as ft %}`` gives ``ft.title`` and ``ft.text`` for the page's reader: the
reviewer's sentence (with what to check) for ministry users, the vendor's otherwise; pass an
audience to choose (``{% finding_text f "reviewer" as ft %}``). ``{{ run.verdict|verdict_label }}``
names a check's verdict.
"""

from __future__ import annotations

from django import template

from compliance.finding_texts import REVIEWER, VENDOR, RenderedText, verdict_label as _verdict_label

register = template.Library()


@register.simple_tag(takes_context=True)
def finding_text(context, finding, audience: str = "") -> RenderedText:
    if audience not in (VENDOR, REVIEWER):
        audience = REVIEWER if context.get("is_ministry") else VENDOR
    return finding.text(audience)


@register.filter
def verdict_label(verdict: str) -> str:
    return _verdict_label(verdict or "")


@register.filter
def check_label(name: str) -> str:
    """A check's name in the active language (the registry's gettext_lazy label)."""
    from compliance.checks import check_registry

    spec = check_registry().get(name or "")
    return str(spec.label) if spec else name


@register.filter
def error_label(error: str) -> str:
    """A failure the portal wrote (interrupted, over its time limit), in the active language."""
    from compliance.finding_texts import error_label as _error_label

    return _error_label(error or "")


@register.filter
def vendor_text(text: str) -> str:
    """A stored message without server paths, for vendors."""
    from compliance.finding_texts import text_for_vendor

    return text_for_vendor(text or "")


@register.simple_tag(takes_context=True)
def run_step(context, run) -> str:
    """Where a check run stands, in the reader's language (the retry's error for ministry users only)."""
    from compliance.finding_texts import step_label

    return step_label(run.step, internals=bool(context.get("is_ministry")))

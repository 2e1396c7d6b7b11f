"""What a check run reused, for the submission page's check-run table (compliance.services.reuse)."""

from __future__ import annotations

from django import template

from compliance.services.reuse import reuse_notes as _reuse_notes

register = template.Library()


@register.filter
def reuse_notes(run) -> list[str]:
    """The run's per-file or lineage-report reuse in words, in the reader's language."""
    return _reuse_notes(run=run, short=True)

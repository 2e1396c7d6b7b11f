"""Template helpers of the base layout: the operator's name and the one date format of pages.

Both work without a request (the 500 and CSRF failure pages are rendered with no context).
"""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.conf import settings
from django.utils import timezone, translation

register = template.Library()

# One format for every date and time shown on a page: ISO-like, 24 h, with the zone's
# abbreviation, so a reviewer in Seoul and an auditor abroad read the same instant the same way.
# The dossier keeps its own convention (UTC, stated on its pages).
WHEN_FORMAT = "%Y-%m-%d %H:%M"
WHEN_FORMAT_SECONDS = "%Y-%m-%d %H:%M:%S"


@register.filter
def when(value: datetime | date | None, precision: str = "") -> str:
    """``2026-12-06 17:42 KST``: an aware datetime in the active time zone with its abbreviation.

    ``{{ x|when:"seconds" }}`` adds seconds (the audit trail). A date alone is shown as a date;
    empty values render as an empty string, like Django's ``date`` filter.
    """
    if value in (None, ""):
        return ""
    if not isinstance(value, datetime):
        return value.isoformat() if isinstance(value, date) else str(value)
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    fmt = WHEN_FORMAT_SECONDS if precision == "seconds" else WHEN_FORMAT
    zone = value.tzname() or settings.TIME_ZONE
    return f"{value.strftime(fmt)} {zone}"


@register.simple_tag
def operator_name() -> str:
    """The operating ministry's name in the active language (``settings.PORTAL_OPERATOR_NAME``)."""
    names = settings.PORTAL_OPERATOR_NAME
    language = (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    return names.get(language) or names.get("en") or ""

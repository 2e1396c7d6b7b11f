"""Classes DRF's settings name (REST_FRAMEWORK in portal.settings), in a module of their own: DRF
imports them while loading its settings, before any view module could be.

Both make a malformed query parameter a 400 that names it, as the list filters answer
(portal.filters.IdFilter), where DRF answers 404.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    """DRF's page numbers, with a malformed ``?page=`` (``abc``, ``0``, ``-1``, ``1.5``) refused as a bad
    parameter (400); a page past the last stays DRF's 404 "Invalid page"."""

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        # Nine digits at most: int() of a 5,000-digit string raises, and no list has a billion pages.
        if raw is not None and raw not in self.last_page_strings and not (
                raw.isascii() and raw.isdigit() and len(raw) <= 9 and int(raw) > 0):
            raise exceptions.ValidationError({self.page_query_param: [_("A page is a whole number from 1.")]})
        return super().paginate_queryset(queryset, request, view)


class FormatParameterNegotiation(DefaultContentNegotiation):
    """``?format=`` naming no format the operation has (``/api/projects/export/?format=pdf``) is a bad
    parameter (400 with the formats it has), not DRF's 404; a ``.json`` URL suffix keeps the 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        requested = request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if not format_suffix and requested and not any(r.format == requested for r in renderers):
            formats = ", ".join(sorted({r.format for r in renderers}))
            raise exceptions.ValidationError({self.settings.URL_FORMAT_OVERRIDE: [_("One of: %(formats)s.") % {"formats": formats}]})
        return super().select_renderer(request, renderers, format_suffix)

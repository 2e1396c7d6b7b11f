"""What every list page and list endpoint shares: whitelisted sorting and the querystring.

A list's filters and its sort are one django-filter ``FilterSet`` per list (in the room that owns
the rows), used by the page and by the API alike, so ``?programme=3&sort=-waiting`` means the same
on ``/queue/`` and on ``/api/queue/``. The sort is a ``SortFilter`` named ``sort``: a column name
from a whitelist, ``-`` in front for descending; anything else is refused (400 on the API, ignored
on a page, which then shows its default order).
"""

from __future__ import annotations

from django.db.models import F, QuerySet
from django.http import QueryDict
from django_filters import OrderingFilter

# Parameters that say how to show a list, not which rows: never part of a saved filter.
NOT_FILTERS = ("page", "export", "format", "fragment")


class SortFilter(OrderingFilter):
    """``?sort=col`` / ``?sort=-col`` over named columns, each a tuple of model fields or annotations.

    The primary key ends every ordering so pages never repeat or skip a row; empty values sort
    last in both directions (a submission without open findings has no severity).
    """

    def __init__(self, *, columns: dict[str, tuple[str, ...]], default: tuple[str, ...], **kwargs):
        self.columns = columns
        self.default = default
        kwargs.setdefault("help_text", "Sort by one of: " + ", ".join(columns) + " (a leading '-' for descending).")
        super().__init__(fields={name: name for name in columns}, **kwargs)

    @staticmethod
    def _expressions(fields: tuple[str, ...], *, descending: bool) -> list:
        out = []
        for field in fields:
            field_descending = descending != field.startswith("-")
            expression = F(field.lstrip("-"))
            out.append(expression.desc(nulls_last=True) if field_descending else expression.asc(nulls_last=True))
        return out

    def filter(self, qs: QuerySet, value) -> QuerySet:
        for param in value or ():
            name = param.lstrip("-")
            if name in self.columns:
                return qs.order_by(*self._expressions(self.columns[name], descending=param.startswith("-")), "pk")
        return qs.order_by(*self._expressions(self.default, descending=False), "pk")


def sort_current(query: QueryDict, columns) -> str:
    """The sort the list is shown in, if it is one of ``columns`` ("" for the default order)."""
    value = (query.get("sort") or "").split(",")[0]
    return value if value.lstrip("-") in columns else ""


def querystring_filters(query: QueryDict) -> str:
    """The querystring of the filters and sort alone (no page, export or format), for links and saved filters."""
    kept = query.copy()
    for name in NOT_FILTERS:
        kept.pop(name, None)
    for name in list(kept.keys()):
        if not any(value.strip() for value in kept.getlist(name)):
            kept.pop(name)
    return kept.urlencode()

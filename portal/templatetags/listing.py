"""Template tags every list page uses: sortable column headers, export links, saved filters."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from portal.audit_actions import audit_action_label, audit_object_type_label
from portal.listing import querystring_filters, sort_current

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context, column: str, label: str):
    """A column header whose link sorts by ``column``; ``aria-sort`` tells assistive technology the
    current order. Activating the sorted column's link reverses it."""
    request = context["request"]
    current = sort_current(request.GET, {column})
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    query["sort"] = f"-{column}" if current == column else column
    if current == column:
        state, arrow, hint = "ascending", "▲", _("sorted ascending; activate to sort descending")
    elif current == f"-{column}":
        state, arrow, hint = "descending", "▼", _("sorted descending; activate to sort ascending")
    else:
        state, arrow, hint = "none", "", _("activate to sort")
    return format_html('<th scope="col" aria-sort="{}"><a class="sort" href="?{}">{}'
                       '<span aria-hidden="true">{}</span><span class="visually-hidden"> ({})</span></a></th>',
                       state, query.urlencode(), label, f" {arrow}" if arrow else "", hint)


@register.simple_tag(takes_context=True)
def export_links(context):
    """"Export CSV" and "Export XLSX" links carrying the list's current filters and sort."""
    filters = querystring_filters(context["request"].GET)
    prefix = f"?{filters}&" if filters else "?"
    return format_html('<p class="exports"><a class="button" href="{}export=csv" download>{}</a> '
                       '<a class="button" href="{}export=xlsx" download>{}</a></p>',
                       prefix, _("Export CSV"), prefix, _("Export XLSX"))


@register.inclusion_tag("portal/_saved_filters.html", takes_context=True)
def saved_filters(context, page: str):
    """The user's saved filters of this page as links, with "Save this filter" and delete buttons."""
    from portal.selectors import saved_filters_for

    request = context["request"]
    return {"saved": saved_filters_for(user=request.user, page=page), "page": page,
            "querystring": querystring_filters(request.GET), "csrf_token": context.get("csrf_token"),
            "path": request.path}


register.filter("audit_action_label", audit_action_label)
register.filter("audit_object_type_label", audit_object_type_label)

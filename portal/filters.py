"""List filters: the audit trail's filters (who, what object, when, which action), and the API's
foreign-key filters that answer the same whether an id exists, belongs to someone else, or not.

django-filter turns a filter on a foreign key into a choice among *every* row of the related table:
a missing id answers 400 "Select a valid choice" while another vendor's id answers 200 with no
rows, which tells a caller which ids exist. Here every such filter becomes a plain id filter with
the range of a database id: any well-formed id answers 200 (rows only where the caller may see
them, since the list is already scoped), and anything else (`abc`, `-1`, a number past 2^63) a
clear 400 instead of a database error.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from portal.audit_actions import audit_action_choices, audit_object_type_choices
from portal.listing import SortFilter
from portal.models import AuditEvent

MAX_DATABASE_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_DATABASE_ID)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_DATABASE_ID})
class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class ScopedIdFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose foreign-key filters are id filters (see the module docstring)."""

    def get_filterset_class(self, view, queryset=None):
        base = super().get_filterset_class(view, queryset)
        if base is None:
            return None
        replaced = {name: IdFilter(field_name=f.field_name, lookup_expr=f.lookup_expr or "exact",
                                   label=f.label, method=getattr(f, "_method", None),
                                   distinct=f.distinct, exclude=f.exclude)
                    for name, f in base.base_filters.items()
                    if isinstance(f, (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter))}
        if not replaced:
            return base
        cls = type(f"Scoped{base.__name__}", (base,), {})
        cls.base_filters = {**base.base_filters, **replaced}
        return cls



class AuditEventFilterSet(django_filters.FilterSet):
    person = django_filters.CharFilter(field_name="actor_label", lookup_expr="iexact", label=_("Person (username)"))
    object_type = django_filters.ChoiceFilter(choices=audit_object_type_choices(), label=_("Object type"))
    object_id = django_filters.CharFilter(field_name="object_id", label=_("Object id"))
    date_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte", label=_("From"))
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte", label=_("To"))
    action = django_filters.ChoiceFilter(choices=audit_action_choices(), label=_("Action"))
    sort = SortFilter(columns={"id": ("id",), "when": ("created_at",), "person": ("actor_label",),
                               "action": ("action",), "object": ("object_type", "object_id")},
                      default=("-id",))

    class Meta:
        model = AuditEvent
        fields: list[str] = []

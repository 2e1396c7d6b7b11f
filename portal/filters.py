"""API list filters that answer the same whether an id exists, belongs to someone else, or not.

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
from django_filters.rest_framework import DjangoFilterBackend

MAX_DATABASE_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_DATABASE_ID)
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class ScopedIdFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose foreign-key filters are id filters (see the module docstring)."""

    def get_filterset_class(self, view, queryset=None):
        base = super().get_filterset_class(view, queryset)
        if base is None:
            return None
        replaced = {name: IdFilter(field_name=f.field_name, lookup_expr=f.lookup_expr or "exact",
                                   label=f.label, help_text=getattr(f, "extra", {}).get("help_text"))
                    for name, f in base.base_filters.items()
                    if isinstance(f, (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter))}
        if not replaced:
            return base
        cls = type(f"Scoped{base.__name__}", (base,), {})
        cls.base_filters = {**base.base_filters, **replaced}
        return cls

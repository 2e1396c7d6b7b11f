"""Filters of the audit trail (who, what object, when, which action), for the page."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from portal.audit_actions import audit_action_choices, audit_object_type_choices
from portal.listing import SortFilter
from portal.models import AuditEvent


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

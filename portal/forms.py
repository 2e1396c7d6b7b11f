"""Forms of the portal room."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from portal.models import Notification


class NotificationPreferencesForm(forms.Form):
    """One e-mail choice per kind of notification, and the language of the e-mails."""

    language = forms.ChoiceField(label=_("Language of e-mails"), choices=settings.LANGUAGES)

    def __init__(self, *args, modes: dict[str, str], language: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].initial = language
        for kind, label in Notification.Kind.choices:
            self.fields[f"email_{kind}"] = forms.ChoiceField(
                label=label, choices=Notification.EmailMode.choices, initial=modes.get(kind),
                widget=forms.RadioSelect)

    def email_modes(self) -> dict[str, str]:
        return {kind: self.cleaned_data[f"email_{kind}"] for kind in Notification.Kind.values}

    def kind_fields(self):
        return [self[f"email_{kind}"] for kind in Notification.Kind.values]

"""Forms of the compliance room: decisions, replies, policies."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from compliance.models import FindingDecision, FindingMessage, ProgrammePolicy, SubmissionDecision
from projects.limits import MESSAGE_ATTACHMENT_BYTES, text_field_kwargs

LICENSE_CATEGORIES = [
    ("permissive", _("Permissive")),
    ("copyleft", _("Copyleft")),
    ("copyleft-limited", _("Copyleft (limited)")),
    ("proprietary-free", _("Proprietary free")),
    ("source-available", _("Source-available")),
    ("non-commercial", _("Non-commercial")),
    ("public-domain", _("Public domain")),
    ("commercial", _("Commercial")),
    ("unstated", _("Unstated")),
]


# Decisions start with nothing chosen: a preselected "Confirmed" once turned a reviewer's second
# click (after a refused waiver) into the opposite of what they meant. The empty option is
# required, so the server refuses a form sent without a choice.
CHOOSE = ("", _("Choose…"))


class FindingDecisionForm(forms.Form):
    decision = forms.ChoiceField(label=_("Decision"), choices=[CHOOSE, *FindingDecision.Decision.choices],
                                 error_messages={"required": _("Choose a decision.")})
    justification = forms.CharField(label=_("Justification"), required=False,
                                    widget=forms.Textarea(attrs={"rows": 2}), **text_field_kwargs("justification"))


class FindingMessageForm(forms.Form):
    """One message on a finding. The vendor replies; a reviewer asks the vendor or adds a note
    (the button pressed, ``kind``). The service decides the side and checks everything again."""

    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 3}),
                           max_length=text_field_kwargs("message")["max_length"],
                           error_messages={**text_field_kwargs("message")["error_messages"],
                                           "required": _("Write a message.")})
    kind = forms.ChoiceField(required=False, choices=[("", "")] + [
        (k.value, k.label) for k in (FindingMessage.Kind.QUESTION, FindingMessage.Kind.NOTE)])
    attachment = forms.FileField(label=_("Attach a file (optional)"), required=False)

    def clean_attachment(self):
        upload = self.cleaned_data.get("attachment")
        if upload is not None and upload.size > MESSAGE_ATTACHMENT_BYTES:
            raise forms.ValidationError(_("An attachment is at most %(limit)s MiB; upload larger files as "
                                          "artifacts of a new version.")
                                        % {"limit": f"{MESSAGE_ATTACHMENT_BYTES // (1024 * 1024):,}"})
        return upload


class SubmissionDecisionForm(forms.Form):
    decision = forms.ChoiceField(label=_("Decision"), choices=[CHOOSE, *SubmissionDecision.Decision.choices],
                                 error_messages={"required": _("Choose a decision.")})
    justification = forms.CharField(label=_("Justification"), required=False,
                                    widget=forms.Textarea(attrs={"rows": 3}), **text_field_kwargs("justification"))


class PolicyForm(forms.ModelForm):
    denied_categories = forms.MultipleChoiceField(label=_("Denied licence categories"), required=False,
                                                  choices=LICENSE_CATEGORIES, widget=forms.CheckboxSelectMultiple)
    review_categories = forms.MultipleChoiceField(label=_("Licence categories needing review"), required=False,
                                                  choices=LICENSE_CATEGORIES, widget=forms.CheckboxSelectMultiple)
    allowed_categories = forms.MultipleChoiceField(label=_("Allowed licence categories"), required=False,
                                                   choices=LICENSE_CATEGORIES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ProgrammePolicy
        fields = ["allowed_licenses", "denied_licenses", "review_licenses", "allowed_categories",
                  "denied_categories", "review_categories", "outbound_license", "require_declared_license",
                  "accept_model_use_restrictions", "expected_monthly_users", "from_scratch_required",
                  "challenge_reply_days", "reference_models", "code_corpora"]
        widgets = {
            "allowed_licenses": forms.Textarea(attrs={"rows": 4}),
            "denied_licenses": forms.Textarea(attrs={"rows": 4}),
            "review_licenses": forms.Textarea(attrs={"rows": 4}),
            "reference_models": forms.CheckboxSelectMultiple,
            "code_corpora": forms.CheckboxSelectMultiple,
        }
        help_texts = {
            "allowed_licenses": _("One SPDX expression per line, e.g. Apache-2.0 or MIT. "
                                  "LicenseRef-scancode-… keys name model licences SPDX lacks."),
            "outbound_license": _("The licence the funded work is released under, e.g. Apache-2.0: licences that "
                                  "cannot be combined with it are reported (OSADL matrix). Blank: the submission's "
                                  "own declared licence."),
            "accept_model_use_restrictions": _("Unticked, a model licence with use restrictions (Llama, Gemma, "
                                               "OpenRAIL...) needs a reviewer's decision."),
            "challenge_reply_days": _("Days the vendor has to reply to an accepted public challenge. Blank: the "
                                      "portal's default (the PORTAL_CHALLENGE_REPLY_DAYS setting)."),
            "expected_monthly_users": _("Model licences with a lower user threshold (Llama: 700 million) are "
                                        "reported as needing a separate licence."),
        }

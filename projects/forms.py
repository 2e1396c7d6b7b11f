"""Forms of the registry and of vendor intake. They validate input; services do the writing."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from portal.models import Organisation, Role
from projects import limits
from projects.models import Artifact, Declaration, Programme, Project


def _field_errors(exc, field: str) -> forms.ValidationError:
    """A service's ``{field: [...]}`` error as the errors of one form field."""
    return forms.ValidationError(exc.message_dict.get(field) or exc.messages)


class ProgrammeForm(forms.ModelForm):
    class Meta:
        model = Programme
        fields = ["name", "name_ko", "code", "ministry", "budget_krw", "starts_on", "ends_on", "max_artifact_bytes",
                  "review_sla_days", "vendor_second_factor_required"]
        widgets = {"starts_on": forms.DateInput(attrs={"type": "date"}),
                   "ends_on": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ministry"].queryset = Organisation.objects.filter(kind=Organisation.Kind.MINISTRY)
        # Left empty, the programme takes the default service level (DEFAULT_REVIEW_SLA_DAYS).
        self.fields["review_sla_days"].required = False

    def clean(self):
        data = super().clean()
        if data.get("starts_on") and data.get("ends_on") and data["ends_on"] < data["starts_on"]:
            self.add_error("ends_on", _("The programme must end after it starts."))
        return data


class ProjectForm(forms.ModelForm):
    consortium = forms.CharField(label=_("Consortium members (one per line)"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 3}))
    milestones = forms.CharField(
        label=_("Milestones (one per line: YYYY-MM-DD title)"), required=False,
        widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = Project
        fields = ["programme", "code", "title", "title_ko", "vendor", "funding_krw", "phase"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vendor"].queryset = Organisation.objects.filter(kind=Organisation.Kind.VENDOR)

    def clean_milestones(self):
        import datetime

        parsed = []
        for n, line in enumerate(self.cleaned_data.get("milestones", "").splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            date_text, _sep, title = line.partition(" ")
            try:
                due = datetime.date.fromisoformat(date_text)
            except ValueError:
                raise forms.ValidationError(_("Line %(n)d: start with a date as YYYY-MM-DD.") % {"n": n}) from None
            if not title.strip():
                raise forms.ValidationError(_("Line %(n)d: give the milestone a title.") % {"n": n})
            parsed.append((title.strip(), due))
        return parsed

    def clean_consortium(self):
        return [line.strip() for line in self.cleaned_data.get("consortium", "").splitlines() if line.strip()]


class ReviewerAssignForm(forms.Form):
    reviewer = forms.ModelChoiceField(label=_("Reviewer"), queryset=get_user_model().objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = get_user_model().objects.filter(
            profile__role=Role.REVIEWER).order_by("username")


class VendorInviteForm(forms.Form):
    username = forms.SlugField(label=_("Username"), max_length=150)
    email = forms.EmailField(label=_("Email"))
    display_name = forms.CharField(label=_("Full name"), max_length=200, required=False)


class SubmissionOpenForm(forms.Form):
    CARRY_OVER, EMPTY = "carry_over", "empty"

    note = forms.CharField(label=_("Note to reviewers"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                           **limits.text_field_kwargs("note"))
    # Left out (an older form, a script): carry over, the default.
    start = forms.ChoiceField(label=_("Start from"), required=False,
                              choices=[(CARRY_OVER, _("the previous version")), (EMPTY, _("an empty submission"))])


class ArtifactUploadForm(forms.Form):
    """The no-JavaScript upload path; the page's script uses chunked, resumable uploads instead."""

    kind = forms.ChoiceField(label=_("Kind"), choices=Artifact.UPLOAD_KIND_CHOICES)
    file = forms.FileField(label=_("File"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            limits.limit_filename(value=upload.name)
        except forms.ValidationError as exc:
            raise _field_errors(exc, "filename") from None
        return upload


class DeclarationForm(forms.Form):
    from_scratch = forms.BooleanField(label=_("The backbone was trained from scratch (random initialisation)"),
                                      required=False)
    base_models = forms.CharField(
        label=_("Base models used (one per line: component | name | source | licence)"), required=False,
        help_text=_("Components: backbone, vision_encoder, tokenizer, other."),
        widget=forms.Textarea(attrs={"rows": 4}))
    third_party_code = forms.CharField(
        label=_("Third-party code used (one per line: name | version | licence | use | source)"), required=False,
        help_text=_("Open code you took on purpose, such as an inference engine or a training framework. "
                    "Use: training, inference or other. Copies of code not listed here are reported as "
                    "undeclared."),
        widget=forms.Textarea(attrs={"rows": 3}))
    gpu_hours = forms.DecimalField(label=_("Training compute (GPU-hours)"), required=False, min_value=0,
                                   max_digits=14, decimal_places=1)
    training_flops = forms.FloatField(label=_("Training compute (FLOPs)"), required=False, min_value=0)
    data_summary = forms.CharField(label=_("Training data summary"), required=False,
                                   widget=forms.Textarea(attrs={"rows": 4}), **limits.text_field_kwargs("data_summary"))

    def clean_base_models(self):
        from projects.services import base_models_clean

        entries = []
        valid = {c.value for c in Declaration.Component}
        for n, line in enumerate(self.cleaned_data.get("base_models", "").splitlines(), start=1):
            if not line.strip():
                continue
            if len(entries) == limits.BASE_MODEL_ROWS:
                raise forms.ValidationError(limits.too_many_message("base_models"))
            parts = [p.strip() for p in line.split("|")]
            parts += [""] * (4 - len(parts))
            component, name, source, license_ = parts[:4]
            if component not in valid:
                raise forms.ValidationError(_("Line %(n)d: the component must be one of %(c)s.")
                                            % {"n": n, "c": ", ".join(sorted(valid))})
            if not name:
                raise forms.ValidationError(_("Line %(n)d: name the base model.") % {"n": n})
            entries.append({"component": component, "name": name, "source": source, "license": license_})
        try:
            return base_models_clean(entries)
        except forms.ValidationError as exc:  # the service raises Django's ValidationError, the same class
            raise _field_errors(exc, "base_models") from None

    def clean_third_party_code(self):
        from projects.services import third_party_code_clean

        entries = []
        for line in self.cleaned_data.get("third_party_code", "").splitlines():
            if not line.strip():
                continue
            if len(entries) == limits.THIRD_PARTY_CODE_ROWS:
                raise forms.ValidationError(limits.too_many_message("third_party_code"))
            parts = [p.strip() for p in line.split("|")] + [""] * 5
            entries.append({"name": parts[0], "version": parts[1], "license": parts[2],
                            "use": parts[3] or "other", "source": parts[4]})
        try:
            return third_party_code_clean(entries)
        except forms.ValidationError as exc:  # the service raises Django's ValidationError, the same class
            raise _field_errors(exc, "third_party_code") from None

    @staticmethod
    def initial_from(declaration: Declaration) -> dict:
        lines = [" | ".join([e.get("component", ""), e.get("name", ""), e.get("source", ""), e.get("license", "")])
                 for e in declaration.base_models]
        code_lines = [" | ".join([e.get("name", ""), e.get("version", ""), e.get("license", ""), e.get("use", ""),
                                  e.get("source", "")]).rstrip(" |")
                      for e in declaration.third_party_code or []]
        return {"from_scratch": declaration.from_scratch, "base_models": "\n".join(lines),
                "third_party_code": "\n".join(code_lines),
                "gpu_hours": declaration.gpu_hours, "training_flops": declaration.training_flops,
                "data_summary": declaration.data_summary}


class DeclarationSignForm(forms.Form):
    signatory_name = forms.CharField(label=_("Your full name"), **limits.text_field_kwargs("signatory_name"))
    attest = forms.BooleanField(label=_("I declare that this declaration is true and complete."), required=True)

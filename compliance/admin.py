from django.contrib import admin

from compliance.models import (CheckRun, CodeCorpus, Dossier, Finding, FindingDecision, FindingMessage,
                               ProgrammePolicy, ReferenceModel, SubmissionDecision)


@admin.register(ReferenceModel)
class ReferenceModelAdmin(admin.ModelAdmin):
    list_display = ["name", "publisher", "license_expression", "architecture", "parameters", "bundle_sha256"]
    search_fields = ["name", "publisher", "license_expression"]


@admin.register(CodeCorpus)
class CodeCorpusAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "license_expression", "files", "fingerprints", "indexed_at"]
    search_fields = ["name", "license_expression"]


@admin.register(ProgrammePolicy)
class ProgrammePolicyAdmin(admin.ModelAdmin):
    list_display = ["programme", "from_scratch_required", "challenge_reply_days", "updated_at"]
    filter_horizontal = ["reference_models", "code_corpora"]


@admin.register(CheckRun)
class CheckRunAdmin(admin.ModelAdmin):
    list_display = ["id", "check_name", "state", "progress", "verdict", "worker", "attempts", "artifact",
                    "queued_at", "finished_at"]
    list_filter = ["check_name", "state"]
    search_fields = ["artifact__original_name", "worker", "error"]
    list_select_related = ["artifact"]


class FindingDecisionInline(admin.TabularInline):
    model = FindingDecision
    extra = 0
    readonly_fields = ["decision", "justification", "decided_by", "decided_at"]


class FindingMessageInline(admin.TabularInline):
    """Messages are a record: shown, never added, changed or removed here (compliance.services.threads)."""

    model = FindingMessage
    extra = 0
    fields = readonly_fields = ["created_at", "author", "side", "kind", "body", "attachment"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Finding)
class FindingAdmin(admin.ModelAdmin):
    list_display = ["id", "severity", "status", "code", "title", "submission"]
    list_filter = ["severity", "status", "category"]
    search_fields = ["title", "code", "explanation"]
    list_select_related = ["submission__project"]
    # Legacy column, moved into messages (Finding.vendor_reply): nothing writes it any more.
    readonly_fields = ["vendor_reply"]
    inlines = [FindingDecisionInline, FindingMessageInline]


@admin.register(FindingMessage)
class FindingMessageAdmin(admin.ModelAdmin):
    """Read-only: a message is never edited in place nor removed."""

    list_display = ["id", "finding", "side", "kind", "author", "created_at"]
    list_filter = ["side", "kind"]
    search_fields = ["body"]
    list_select_related = ["author"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SubmissionDecision)
class SubmissionDecisionAdmin(admin.ModelAdmin):
    list_display = ["submission", "decision", "decided_by", "decided_at"]
    list_filter = ["decision"]


@admin.register(Dossier)
class DossierAdmin(admin.ModelAdmin):
    list_display = ["number", "submission", "lang", "state", "sha256", "size", "created_at"]
    list_filter = ["state", "lang"]
    search_fields = ["number", "sha256"]

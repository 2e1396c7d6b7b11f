from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.models import ApiToken, AuditCheckpoint, AuditEvent, Notification, Organisation, Profile


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the portal appends and nobody edits: listed and shown, never added, changed or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "name_ko", "kind", "registration_number", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "name_ko", "registration_number"]


@admin.action(description=_("Reset the second factor (they set up a new one at next sign-in)"))
def second_factor_reset_action(modeladmin, request, queryset):
    from portal.second_factor import second_factor_reset

    for profile in queryset.select_related("user"):
        second_factor_reset(actor=request.user, user=profile.user)
    modeladmin.message_user(request, _("Second factor reset for %(n)s people; each reset is in the audit trail.")
                            % {"n": queryset.count()})


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    actions = [second_factor_reset_action]
    list_display = ["user", "display_name", "role", "organisation", "language"]
    list_filter = ["role", "organisation__kind"]
    search_fields = ["user__username", "display_name", "organisation__name"]
    list_select_related = ["user", "organisation"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only."""

    list_display = ["id", "seq", "created_at", "actor_label", "action", "object_type", "object_id", "object_label"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "action", "object_label", "entry_hash"]
    date_hierarchy = "created_at"


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    """Read-only: checkpoints are signed and append-only."""

    list_display = ["number", "created_at", "reason", "event_count", "head_hash", "signer_fingerprint"]
    list_filter = ["reason"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Administrators see every token (never its secret) and can revoke one; revocation is audited."""

    list_display = ["name", "user", "token_key", "created", "expiry", "last_used_at"]
    search_fields = ["name", "user__username", "token_key"]
    readonly_fields = ["name", "user", "token_key", "created", "expiry", "last_used_at"]
    exclude = ["digest"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False  # owners make their own tokens (/account/tokens/); the secret is shown to them alone

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        from portal.tokens import token_revoke

        token_revoke(user=request.user, token=obj)

    def delete_queryset(self, request, queryset):
        from portal.tokens import token_revoke

        for token in queryset:
            token_revoke(user=request.user, token=token)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only: notifications are written by portal.notifications.notify and read by their recipient."""

    list_display = ["id", "created_at", "recipient", "kind", "url", "read_at", "email_mode", "emailed_at"]
    list_filter = ["kind", "email_mode"]
    search_fields = ["recipient__username", "url"]
    list_select_related = ["recipient"]
    date_hierarchy = "created_at"

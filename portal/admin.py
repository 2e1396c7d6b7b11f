from django.contrib import admin

from portal.models import AuditCheckpoint, AuditEvent, Notification, Organisation, Profile


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "name_ko", "kind", "registration_number", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "name_ko", "registration_number"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "display_name", "role", "organisation", "language"]
    list_filter = ["role", "organisation__kind"]
    search_fields = ["user__username", "display_name", "organisation__name"]
    list_select_related = ["user", "organisation"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only."""

    list_display = ["id", "seq", "created_at", "actor_label", "action", "object_type", "object_id", "object_label"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "action", "object_label", "entry_hash"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(admin.ModelAdmin):
    """Read-only: checkpoints are signed and append-only."""

    list_display = ["number", "created_at", "reason", "event_count", "head_hash", "signer_fingerprint"]
    list_filter = ["reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Read-only: notifications are written by portal.notifications.notify and read by their recipient."""

    list_display = ["id", "created_at", "recipient", "kind", "url", "read_at", "email_mode", "emailed_at"]
    list_filter = ["kind", "email_mode"]
    search_fields = ["recipient__username", "url"]
    list_select_related = ["recipient"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

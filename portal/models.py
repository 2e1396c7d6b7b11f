"""People, organisations, roles and the append-only audit trail."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    """A ministry, an agency or a vendor company (a consortium lead or member)."""

    class Kind(models.TextChoices):
        MINISTRY = "ministry", _("Ministry or agency")
        VENDOR = "vendor", _("Vendor")

    name = models.CharField(_("name"), max_length=200, unique=True)
    name_ko = models.CharField(_("Korean name"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    registration_number = models.CharField(_("business registration number"), max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """What a person does on the portal. Reviewers are assigned per project on top of this."""

    ADMIN = "admin", _("Ministry administrator")
    OFFICER = "officer", _("Programme officer")
    REVIEWER = "reviewer", _("Reviewer")
    AUDITOR = "auditor", _("Auditor")
    VENDOR = "vendor", _("Vendor member")


# Roles that see every programme and project (auditors only read).
MINISTRY_WIDE_ROLES = {Role.ADMIN, Role.OFFICER, Role.AUDITOR}
MINISTRY_ROLES = {Role.ADMIN, Role.OFFICER, Role.REVIEWER, Role.AUDITOR}


class Profile(models.Model):
    """A user's organisation and role; one per user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="members")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.organisation})"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: D401 - append-only
        raise PermissionError("the audit log is append-only")

    def delete(self):
        raise PermissionError("the audit log is append-only")


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit trail.

    ``entry_hash`` is SHA-256 over the previous entry's hash and this entry's
    canonical JSON, so changing, removing or reordering any entry breaks every
    hash after it; ``python manage.py audit_verify`` walks the chain.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Username at the time, kept if the user is deleted.")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_label = models.CharField(max_length=300, blank=True)
    # Which submission (if any) the event belongs to, for the dossier's excerpt.
    submission_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    project_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id} by {self.actor_label}"

    def canonical(self) -> bytes:
        """The bytes the hash covers: every field but the hashes, in a fixed order."""
        payload = {
            "created_at": self.created_at.isoformat(),
            "actor": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_label": self.object_label,
            "submission_id": self.submission_id,
            "project_id": self.project_id,
            "data": self.data,
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.prev_hash.encode() + b"\n" + self.canonical()).hexdigest()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log is append-only")

"""People, organisations, roles and the append-only audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken

from portal.audit_chain import CHECKPOINT_SCHEMA, HASH_VERSION, event_hash, utc_iso


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
    # The language of the e-mails this person receives (pages follow the browser or the switcher).
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES,
                                default=settings.LANGUAGE_CODE)

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.organisation})"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: D401 - append-only
        raise PermissionError("the audit log is append-only")

    def delete(self):
        raise PermissionError("the audit log is append-only")

    def _seal(self, *, pk: int, seq: int, prev_hash: str, entry_hash: str) -> int:
        """Fill the chain fields of a row not yet sealed; a sealed row is never touched again.

        Only ``portal.services.audit_chain_seal`` calls this, under the chain lock.
        """
        return models.QuerySet.update(self.filter(pk=pk, seq__isnull=True), seq=seq, prev_hash=prev_hash,
                                      entry_hash=entry_hash)


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit trail.

    An event is inserted in its caller's transaction with its chain fields unset
    (``seq``, ``prev_hash``, ``entry_hash``), and sealed after that transaction
    commits: ``portal.services.audit_chain_seal`` gives it the next position and
    ``entry_hash`` = SHA-256 over the previous entry's hash and this entry's
    canonical JSON (``portal.audit_chain``, version ``hash_version``). Changing,
    removing or reordering an entry breaks every hash after it; signed
    ``AuditCheckpoint`` rows catch truncation and wholesale rewrites;
    ``python manage.py audit_verify`` checks both.
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
    # Position in the chain (1, 2, ...), given when sealed; commit order, not id order.
    seq = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    hash_version = models.PositiveSmallIntegerField(default=HASH_VERSION)
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    entry_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id} by {self.actor_label}"

    def hash_fields(self) -> dict:
        """The columns ``portal.audit_chain`` hashes, by name."""
        return {
            "id": self.pk, "seq": self.seq, "hash_version": self.hash_version, "created_at": self.created_at,
            "actor_id": self.actor_id, "actor_label": self.actor_label, "action": self.action,
            "object_type": self.object_type, "object_id": self.object_id, "object_label": self.object_label,
            "submission_id": self.submission_id, "project_id": self.project_id, "data": self.data,
        }

    def compute_hash(self) -> str:
        return event_hash(row=self.hash_fields(), prev_hash=self.prev_hash)

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log is append-only")


class AuditCheckpointQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("audit checkpoints are append-only")

    def delete(self):
        raise PermissionError("audit checkpoints are append-only")


class AuditCheckpoint(models.Model):
    """A signed statement "the audit chain held ``event_count`` events ending in ``head_hash``".

    Signed (detached CMS) with the portal's signing identity, the one that signs
    dossiers, over ``portal.audit_chain.checkpoint_payload``. Taken by beat, at
    every dossier issue (the dossier embeds it) and on demand
    (``audit_checkpoint``); exported as JSON for an outside witness. A chain that
    no longer reproduces a checkpoint's count and head hash was truncated or
    rewritten.
    """

    class Reason(models.TextChoices):
        BEAT = "beat", _("Periodic (beat)")
        DOSSIER = "dossier", _("Dossier issued")
        MANUAL = "manual", _("Operator request")

    number = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    event_count = models.PositiveBigIntegerField()
    head_event_id = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64)
    # DER of a detached CMS SignedData over the payload, base64; it carries the signer's certificate.
    signature = models.TextField()
    signer_fingerprint = models.CharField(max_length=64)
    certificate_pem = models.TextField()

    objects = AuditCheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"checkpoint {self.number}: {self.event_count} events, head {self.head_hash[:12]}"

    def signed_fields(self) -> dict:
        return {
            "schema": CHECKPOINT_SCHEMA, "number": self.number, "created_at": utc_iso(self.created_at),
            "reason": self.reason, "event_count": self.event_count, "head_event_id": self.head_event_id,
            "head_hash": self.head_hash,
        }

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit checkpoints are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit checkpoints are append-only")


class ApiToken(AbstractAuthToken):
    """A named API token (django-rest-knox): only a SHA-512 digest of the secret is stored; the
    secret is shown once, when it is made. Expiry is chosen by its owner; revoking deletes it."""

    name = models.CharField(_("name"), max_length=100)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…, {self.user})"
class Notification(models.Model):
    """Something that happened which one person should know about.

    The text is never stored: it is rendered from ``kind`` and ``params`` in the reader's
    language (``portal.notifications.notification_text``), so the same row reads in English on
    one page and in Korean in an e-mail. The row is also the e-mail's outbox: ``email_mode`` is
    the recipient's preference when it was created, ``emailed_at`` is set once it went out.
    """

    class Kind(models.TextChoices):
        SUBMISSION_RECEIVED = "submission_received", _("Submission received")
        CHECKS_FINISHED = "checks_finished", _("Checks finished")
        FINDING_RAISED = "finding_raised", _("Findings raised")
        REPLY_RECEIVED = "reply_received", _("Reply received on a finding")
        QUESTION_RECEIVED = "question_received", _("Question asked on a finding")
        FINDING_DECIDED = "finding_decided", _("Finding decided")
        SUBMISSION_DECIDED = "submission_decided", _("Submission decided")
        DOSSIER_ISSUED = "dossier_issued", _("Dossier issued")
        MILESTONE_DUE = "milestone_due", _("Milestone due soon")
        MILESTONE_OVERDUE = "milestone_overdue", _("Milestone overdue")
        CHALLENGE_RECEIVED = "challenge_received", _("Public challenge to reply to")
        CHALLENGE_FILED = "challenge_filed", _("Public challenge to triage or decide")

    class EmailMode(models.TextChoices):
        IMMEDIATELY = "immediately", _("Immediately")
        DIGEST = "digest", _("Daily digest")
        NEVER = "never", _("Never")

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    # A path on this portal ("/submissions/12/"); e-mails prefix it with PORTAL_BASE_URL.
    url = models.CharField(max_length=500)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email_mode = models.CharField(max_length=16, choices=EmailMode.choices, default=EmailMode.NEVER)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        # The header's unread count and the list page read by recipient, unread first.
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id} ({self.url})"


class NotificationPreference(models.Model):
    """How one person wants to be e-mailed about one kind of notification (absent: the default,
    ``portal.notifications.EMAIL_DEFAULTS``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notification_preferences")
    kind = models.CharField(max_length=32, choices=Notification.Kind.choices)
    email = models.CharField(_("e-mail"), max_length=16, choices=Notification.EmailMode.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {self.email}"
class SavedFilter(models.Model):
    """A user's named filter of a list page: the querystring of its filters and sort.

    Private: only its owner sees, follows and deletes it. It holds no permission: following it
    shows what the list shows its owner anyway.
    """

    class Page(models.TextChoices):
        PROJECTS = "projects", _("Projects")
        QUEUE = "queue", _("Review queue")
        DASHBOARD = "dashboard", _("Dashboard")
        FINDINGS = "findings", _("Findings")
        AUDIT = "audit", _("Audit trail")

    # The URL name of each page, for the links (portal names the URL, never imports the view).
    PAGE_URL_NAMES = {Page.PROJECTS: "project-list", Page.QUEUE: "review-queue", Page.DASHBOARD: "dashboard",
                      Page.FINDINGS: "finding-list", Page.AUDIT: "audit-log"}

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters")
    page = models.CharField(_("page"), max_length=20, choices=Page.choices)
    name = models.CharField(_("name"), max_length=80)
    # 1,000 characters: every filter of the longest list (audit) with long values fits in a third of it.
    querystring = models.CharField(_("filters"), max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["page", "name", "id"]
        verbose_name = _("saved filter")
        constraints = [models.UniqueConstraint(fields=["user", "page", "name"], name="saved_filter_name_per_page")]

    def __str__(self) -> str:
        return f"{self.name} ({self.page})"

    @property
    def url(self) -> str:
        from django.urls import reverse

        path = reverse(self.PAGE_URL_NAMES[self.page])
        return f"{path}?{self.querystring}" if self.querystring else path

"""The registry and intake: programmes, funded projects, submissions, artifacts, declarations."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from portal.models import Organisation
from projects import limits

# 50 GiB: room for a sharded 20B-parameter checkpoint in bf16 per artifact.
DEFAULT_MAX_ARTIFACT_BYTES = 50 * 1024**3
# Two weeks: the review turnaround the programme rules promise vendors unless a programme says otherwise.
DEFAULT_REVIEW_SLA_DAYS = 14


class Programme(models.Model):
    """A national funding programme, e.g. a sovereign foundation-model programme."""

    name = models.CharField(_("name"), max_length=200)
    name_ko = models.CharField(_("Korean name"), max_length=200, blank=True)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    ministry = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="programmes")
    budget_krw = models.DecimalField(_("budget (KRW)"), max_digits=20, decimal_places=0)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    max_artifact_bytes = models.BigIntegerField(_("largest artifact (bytes)"), default=DEFAULT_MAX_ARTIFACT_BYTES)
    # The service level for reviews: a submission waiting longer than this (since it was submitted
    # or since the vendor last answered a finding) is shown as overdue in the review queue.
    review_sla_days = models.PositiveSmallIntegerField(
        _("review service level (days)"), default=DEFAULT_REVIEW_SLA_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("How many days a submitted submission may wait for review before it is overdue."))
    vendor_second_factor_required = models.BooleanField(
        _("vendors must use a second factor"), default=False,
        help_text=_("Vendor members of this programme's projects must set up and use a second factor at sign-in."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "code"]
        verbose_name = _("programme")
        constraints = [models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="programme_period")]

    def __str__(self) -> str:
        return f"{self.code}: {self.name}"


class Project(models.Model):
    """A funded project of one vendor consortium under a programme."""

    class Phase(models.IntegerChoices):
        ONE = 1, _("Phase 1")
        TWO = 2, _("Phase 2")
        THREE = 3, _("Phase 3")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        UNDER_REVIEW = "under_review", _("Under review")
        SUSPENDED = "suspended", _("Suspended")
        ELIMINATED = "eliminated", _("Eliminated")
        COMPLETED = "completed", _("Completed")

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="projects")
    code = models.SlugField(_("code"), max_length=60)
    title = models.CharField(_("title"), max_length=300)
    title_ko = models.CharField(_("Korean title"), max_length=300, blank=True)
    vendor = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="projects")
    consortium_members = models.JSONField(_("consortium members"), default=list, blank=True)
    funding_krw = models.DecimalField(_("funding (KRW)"), max_digits=20, decimal_places=0)
    phase = models.PositiveSmallIntegerField(_("phase"), choices=Phase.choices, default=Phase.ONE)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)


    class Meta:
        ordering = ["programme_id", "code"]
        verbose_name = _("project")
        constraints = [models.UniqueConstraint(fields=["programme", "code"], name="project_code_per_programme")]
        permissions = [
            ("submit_project", "Can submit artifacts for the project"),
            ("review_project", "Can review the project's submissions"),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK object permissions (guardian's generic FK casts text ids and is slow at scale)."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class Milestone(models.Model):
    """A deliverable of a project with a due date."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="milestones")
    title = models.CharField(_("title"), max_length=300)
    due_on = models.DateField(_("due on"))
    completed_on = models.DateField(_("completed on"), null=True, blank=True)

    class Meta:
        ordering = ["due_on"]

    def __str__(self) -> str:
        return f"{self.title} ({self.due_on})"

    @property
    def is_overdue(self) -> bool:
        return self.completed_on is None and self.due_on < timezone.localdate()


class Submission(models.Model):
    """One numbered version of what a vendor hands in for a project."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        CHECKING = "checking", _("Checks running")
        CHECKED = "checked", _("Checked, awaiting review")
        APPROVED = "approved", _("Approved")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        REJECTED = "rejected", _("Rejected")

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="submissions")
    number = models.PositiveIntegerField(_("version"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    note = models.TextField(_("note to reviewers"), blank=True, validators=[limits.validate_note])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="submission_number_per_project"),
            # At most one open draft per project: a second "open submission" is refused.
            models.UniqueConstraint(fields=["project"], condition=Q(status="draft"), name="one_draft_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.code} v{self.number}"


class Artifact(models.Model):
    """A file a vendor submitted, stored once with its SHA-256."""

    class Kind(models.TextChoices):
        WEIGHTS = "weights", _("Model weights")
        CONFIG = "config", _("Model config")
        TOKENIZER = "tokenizer", _("Tokenizer")
        SOURCE_ARCHIVE = "source_archive", _("Source archive")
        MODEL_CARD = "model_card", _("Model card")
        SBOM = "sbom", _("SBOM")
        TRAINING_EVIDENCE = "training_evidence", _("Training evidence")
        MODEL_DIRECTORY = "model_directory", _("Model directory (archive)")
        OTHER = "other", _("Other")
        # A file attached to a message on a finding (compliance.FindingMessage), after submission:
        # stored, hashed and checked by intake like any artifact, read by no other check.
        CORRESPONDENCE = "correspondence", _("Correspondence (attached to a message)")

    # What a vendor may choose when uploading a deliverable: correspondence arrives only with a message.
    UPLOAD_KIND_CHOICES = [(value, label) for value, label in Kind.choices if value != "correspondence"]
    UPLOAD_KINDS = [value for value, _label in UPLOAD_KIND_CHOICES]

    class Status(models.TextChoices):
        QUARANTINED = "quarantined", _("Quarantined until intake passes")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected by intake")

    submission = models.ForeignKey(Submission, on_delete=models.PROTECT, related_name="artifacts")
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    original_name = models.CharField(_("file name"), max_length=500, validators=[limits.validate_filename])
    file = models.FileField(upload_to="artifacts/%Y/%m/", max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    detected_kind = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUARANTINED)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Set when a new version took this file over from the previous one: the row points at the same
    # stored object (same ``file`` name, SHA-256, size, detected kind and intake state); no byte was
    # copied or uploaded again. Several rows may then share one stored object, so storage deletes
    # it only when no row refers to it any more (projects.storage.stored_artifact_file_release).
    carried_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="carried_to", verbose_name=_("carried over from"))
    # What object storage said identifies the stored bytes when the upload was moved there (ETag,
    # VersionId, its SHA-256 checksum; projects.storage.stored_object_put), so intake can tell the
    # object is unchanged with a HEAD instead of downloading it. Empty on local storage.
    stored_identity = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["uploaded_at", "id"]
        constraints = [models.UniqueConstraint(fields=["submission", "sha256"], name="artifact_once_per_submission")]
        # Deleting a stored file asks whether another row still uses its name.
        indexes = [models.Index(fields=["file"], name="artifact_stored_name")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_kind_display()})"


class UploadSession(models.Model):
    """A resumable chunked upload in progress; becomes an Artifact when complete."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="upload_sessions")
    kind = models.CharField(max_length=24, choices=Artifact.Kind.choices)
    filename = models.CharField(max_length=500)
    size = models.BigIntegerField()
    received = models.BigIntegerField(default=0)
    # The running SHA-256 of the first `received` bytes (projects.hashstate), written in the same
    # locked transaction as `received`, so a chunk landing on any process resumes the hash.
    sha256_state = models.BinaryField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    artifact = models.OneToOneField(Artifact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.filename} {self.received}/{self.size}"

    @property
    def complete(self) -> bool:
        return self.artifact_id is not None


class Declaration(models.Model):
    """What the vendor declares and signs about a submission: base models, from-scratch claim, compute, data."""

    class Component(models.TextChoices):
        BACKBONE = "backbone", _("Language backbone")
        VISION_ENCODER = "vision_encoder", _("Vision encoder")
        TOKENIZER = "tokenizer", _("Tokenizer")
        OTHER = "other", _("Other")

    class CodeUse(models.TextChoices):
        TRAINING = "training", _("Training")
        INFERENCE = "inference", _("Inference")
        OTHER = "other", _("Other")

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="declaration")
    from_scratch = models.BooleanField(_("trained from scratch"), default=False)
    # [{"component": "backbone", "name": "...", "source": "...", "license": "..."}]
    base_models = models.JSONField(_("base models"), default=list, blank=True, validators=[limits.validate_base_models])
    # Open code the vendor took on purpose: [{"name": "vllm", "version": "0.33.0", "license": "Apache-2.0",
    # "use": "inference", "source": "https://..."}]. The copied-code check tells declared copies
    # from undeclared ones by this list.
    third_party_code = models.JSONField(_("third-party code used"), default=list, blank=True,
                                        validators=[limits.validate_third_party_code])
    gpu_hours = models.DecimalField(_("training compute (GPU-hours)"), max_digits=14, decimal_places=1, null=True,
                                    blank=True)
    training_flops = models.FloatField(_("training compute (FLOPs)"), null=True, blank=True)
    data_summary = models.TextField(_("training data summary"), blank=True, validators=[limits.validate_data_summary])
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    signatory_name = models.CharField(_("signatory's full name"), max_length=200, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the canonical JSON of the declaration as signed.
    signed_sha256 = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"declaration for {self.submission}"

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

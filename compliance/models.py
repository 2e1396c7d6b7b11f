"""Everything that judges: policies, references, check runs, findings, decisions, dossiers."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from projects import limits
from projects.models import Artifact, Programme, Submission


class ReferenceModel(models.Model):
    """A known open model the lineage check compares submissions against."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    publisher = models.CharField(_("publisher"), max_length=200)
    license_expression = models.CharField(_("licence (SPDX)"), max_length=300, blank=True)
    source_url = models.URLField(_("source"), blank=True)
    architecture = models.CharField(_("architecture"), max_length=100, blank=True)
    parameters = models.BigIntegerField(_("parameters"), null=True, blank=True)
    bundle = models.FileField(_("fingerprint bundle"), upload_to="references/", max_length=500, blank=True)
    bundle_sha256 = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("reference model")

    def __str__(self) -> str:
        return self.name


class CodeCorpus(models.Model):
    """A known open code base indexed for copied-code matching."""

    name = models.CharField(_("name"), max_length=200)
    version = models.CharField(_("version"), max_length=60)
    license_expression = models.CharField(_("licence (SPDX)"), max_length=300)
    origin = models.CharField(_("origin"), max_length=500, blank=True)
    files = models.PositiveIntegerField(default=0)
    fingerprints = models.PositiveIntegerField(default=0)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "version"]
        verbose_name = _("code corpus")
        verbose_name_plural = _("code corpora")
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="corpus_name_version")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ProgrammePolicy(models.Model):
    """A programme's compliance policy: licences, references, and the from-scratch rule."""

    programme = models.OneToOneField(Programme, on_delete=models.CASCADE, related_name="policy")
    # One SPDX expression per line.
    allowed_licenses = models.TextField(_("allowed licences"), blank=True)
    denied_licenses = models.TextField(_("denied licences"), blank=True)
    review_licenses = models.TextField(_("licences needing review"), blank=True)
    denied_categories = models.JSONField(_("denied licence categories"), default=list, blank=True)
    review_categories = models.JSONField(_("licence categories needing review"), default=list, blank=True)
    allowed_categories = models.JSONField(_("allowed licence categories"), default=list, blank=True)
    # Model-licence rules (Llama, Gemma, Qwen, DeepSeek, OpenRAIL...): their use restrictions make a
    # model licence 'needs review' unless the programme accepts them; a licence whose monthly-user
    # threshold is below the programme's expected reach needs a separate licence from the owner.
    accept_model_use_restrictions = models.BooleanField(_("accept model licences' use restrictions"), default=False)
    expected_monthly_users = models.PositiveBigIntegerField(_("expected monthly users of the funded model"),
                                                            null=True, blank=True)
    require_declared_license = models.BooleanField(_("a licence must be declared or shipped"), default=True)
    # SPDX expression the funded work is distributed under, for OSADL compatibility; blank: the
    # submission's own declared licence when it names exactly one.
    outbound_license = models.CharField(_("outbound licence of the funded work"), max_length=200, blank=True)
    from_scratch_required = models.BooleanField(_("from-scratch training required"), default=True)
    # Days the vendor has to reply to an accepted public challenge; blank: the portal's default
    # (settings.PORTAL_CHALLENGE_REPLY_DAYS). A programme with a fast publication cycle sets fewer.
    challenge_reply_days = models.PositiveSmallIntegerField(
        _("days to reply to a public challenge"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Blank: the portal's default."))
    reference_models = models.ManyToManyField(ReferenceModel, blank=True, related_name="policies")
    code_corpora = models.ManyToManyField(CodeCorpus, blank=True, related_name="policies")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("programme policy")
        verbose_name_plural = _("programme policies")

    def __str__(self) -> str:
        return f"policy of {self.programme.code}"

    @staticmethod
    def _lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip()]

    def as_engine_policy(self) -> dict:
        """The policy as plain data for the engine."""
        return {
            "allowed": self._lines(self.allowed_licenses),
            "denied": self._lines(self.denied_licenses),
            "review_required": self._lines(self.review_licenses),
            "denied_categories": list(self.denied_categories),
            "review_categories": list(self.review_categories),
            "allowed_categories": list(self.allowed_categories),
            "accept_model_use_restrictions": self.accept_model_use_restrictions,
            "expected_monthly_users": self.expected_monthly_users,
            "require_declared_license": self.require_declared_license,
            "outbound_license": self.outbound_license or None,
        }


class CheckRun(models.Model):
    """One check of one artifact: the source of truth for its state, progress and outcome."""

    class State(models.TextChoices):
        # Created but not sent: the check reads an artifact whose intake has not ended
        # (CheckSpec.depends_on). Intake's end sends it, or blocks it.
        WAITING = "waiting", _("Waiting for intake")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        INCONCLUSIVE = "inconclusive", _("Inconclusive")
        # Ended without running: intake rejected or quarantined what the check would read.
        # A reviewer's release of the artifact sends it again.
        BLOCKED = "blocked", _("Not run: intake did not accept the file")

    FINISHED_STATES = {State.SUCCEEDED, State.FAILED, State.INCONCLUSIVE, State.BLOCKED}

    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="check_runs")
    # Denormalised so dashboards and submission pages need no join through artifacts.
    submission = models.ForeignKey(Submission, on_delete=models.PROTECT, related_name="check_runs")
    check_name = models.CharField(max_length=40)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    verdict = models.CharField(max_length=40, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    engine_version = models.CharField(max_length=40, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts made before staff last re-ran it: attempt numbers only grow (a re-run
    # supersedes the running attempt), and the interrupted-attempt budget counts from here.
    attempt_base = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A running check renews this at every progress report; past it, the reconciler requeues.
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # When its task was last handed to the broker; null while the broker could not take it
    # (down at submit time): the row is the outbox, and the reconciler sends such runs (issue #11).
    sent_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 over the check's name, its engine version and every input it reads (the file, and the
    # declaration and policy parts the check uses: compliance.checks.CheckSpec.reuse_inputs), taken
    # when the run succeeded; blank when unknown or when an input changed while it ran. A later
    # version of the same project whose run has the same key reuses this result (compliance.services.reuse).
    reuse_key = models.CharField(max_length=64, blank=True, db_index=True)
    # The earlier run (same project, same key) whose result this run took over without running.
    reused_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="reused_by")
    # Lineage only: SHA-256 of what the engine's report depends on (the model files' SHA-256s, the
    # reference set with its bundles' SHA-256s, the engine version), and the report itself when this
    # run computed it. A later lineage check of the same weights against the same references, in any
    # project, derives its findings from this report instead of running the engine again
    # (compliance.checks.lineage); only the figures are reused, never this run's findings or names.
    report_key = models.CharField(max_length=64, blank=True, db_index=True)
    report = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["artifact_id", "check_name"]
        constraints = [models.UniqueConstraint(fields=["artifact", "check_name"], name="one_run_per_artifact_check")]

    def __str__(self) -> str:
        return f"{self.check_name} on artifact {self.artifact_id}: {self.state}"

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Finding(models.Model):
    """One thing a check found, with the evidence a reviewer can follow."""

    class Severity(models.TextChoices):
        CRITICAL = "critical", _("Critical")
        HIGH = "high", _("High")
        MEDIUM = "medium", _("Medium")
        LOW = "low", _("Low")
        INFO = "info", _("Information")

    SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"]

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CONFIRMED = "confirmed", _("Confirmed")
        WAIVED = "waived", _("Waived")
        FALSE_POSITIVE = "false_positive", _("False positive")

    # What counts as an open risk, said once for the submission page and the dossier: a finding
    # nobody has ruled on yet, or one a reviewer confirmed (a risk the reviewer agreed exists).
    # Waived and false-positive findings are ruled out, and so is any state added later unless
    # it is listed here. Information findings record facts, not risks (a declared base model
    # confirmed, a declared copy that agrees with the declaration).
    OPEN_RISK_STATUSES = (Status.OPEN, Status.CONFIRMED)
    OPEN_RISK_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)

    check_run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="findings")
    submission = models.ForeignKey(Submission, on_delete=models.PROTECT, related_name="findings")
    severity = models.CharField(max_length=10, choices=Severity.choices, db_index=True)
    category = models.CharField(max_length=40)
    code = models.CharField(max_length=80)
    title = models.CharField(max_length=300)
    explanation = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    # The values the finding's sentence needs (reference name, layer counts, file...): the words
    # come from compliance.finding_texts in the reader's language; title and explanation keep the
    # English written when it was found (the record, and the fallback for an unknown code).
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    # Legacy: the vendor's single reply, before conversations (FindingMessage). Migration
    # 0011_vendor_replies_to_messages moved every non-empty one into a first message; nothing writes or reads
    # it any more. Kept one release so a rollback still finds its data; drop it in the next one.
    vendor_reply = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The finding of an earlier version this one repeats, when its check run was reused: the new
    # finding is open, and the earlier one's decisions are shown beside it as context.
    carried_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="carried_to")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["submission", "severity"])]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"

    @property
    def is_open_risk(self) -> bool:
        """Open or confirmed, and more than information (see OPEN_RISK_STATUSES)."""
        return self.status in self.OPEN_RISK_STATUSES and self.severity in self.OPEN_RISK_SEVERITIES

    def text(self, audience: str = "vendor"):
        """Title and sentence in the active language for ``audience`` ("vendor" or "reviewer"),
        from compliance.finding_texts; the stored English for a code it does not know."""
        from compliance.finding_texts import finding_render

        return finding_render(code=self.code, params=self.params, evidence=self.evidence, title=self.title,
                              explanation=self.explanation, audience=audience)

    class WaitingOn(models.TextChoices):
        VENDOR = "vendor", _("Waiting for the vendor")
        REVIEWER = "reviewer", _("Waiting for a reviewer")
        NOBODY = "nobody", _("Decided: nobody is waiting")

    @property
    def waiting_on(self) -> str:
        """Who must act next (Finding.WaitingOn), from the status and the conversation: see
        ``FindingMessage.waiting_on_after``. Reads ``messages`` (prefetch it for lists; the
        review queue uses ``compliance.selectors.findings_with_waiting_on`` instead, one query)."""
        kinds = [m.kind for m in self.messages.all()]
        return FindingMessage.waiting_on_after(status=self.status, last_turn=FindingMessage.last_turn(kinds))


class FindingMessage(models.Model):
    """One message of the conversation on a finding, between the vendor and the ministry's reviewers.

    Messages are appended, never edited or removed (no service updates one; the admin is
    read-only): the thread is a record, each message an audit event. A file attached to a
    message is an artifact of kind correspondence of the same submission, checked by intake."""

    class Side(models.TextChoices):
        VENDOR = "vendor", _("Vendor")
        MINISTRY = "ministry", _("Ministry")

    class Kind(models.TextChoices):
        # The vendor's turn ends with a reply; a reviewer's question hands the turn to the vendor;
        # a note (visible to both sides) hands it to nobody.
        REPLY = "reply", _("Reply")
        QUESTION = "question", _("Question to the vendor")
        NOTE = "note", _("Note")

    # Kinds that pass the turn; notes do not.
    TURN_KINDS = (Kind.REPLY, Kind.QUESTION)

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    side = models.CharField(_("side"), max_length=10, choices=Side.choices)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    body = models.TextField(_("message"), validators=[limits.validate_message])
    attachment = models.ForeignKey(Artifact, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="finding_messages")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("message on a finding")
        verbose_name_plural = _("messages on findings")

    def __str__(self) -> str:
        return f"{self.side} message on finding {self.finding_id}"

    @classmethod
    def last_turn(cls, kinds) -> str | None:
        """The kind of the last message that passed the turn (a reply or a question), or None."""
        turns = [kind for kind in kinds if kind in cls.TURN_KINDS]
        return turns[-1] if turns else None

    @staticmethod
    def waiting_on_after(*, status: str, last_turn: str | None) -> str:
        """Who must act next on a finding. Decided (any status but open): nobody. Open: the
        vendor after a reviewer's question, a reviewer after the vendor's reply, and a
        reviewer while nobody has written (deciding it is the next step)."""
        if status != Finding.Status.OPEN:
            return Finding.WaitingOn.NOBODY
        if last_turn == FindingMessage.Kind.QUESTION:
            return Finding.WaitingOn.VENDOR
        return Finding.WaitingOn.REVIEWER


class FindingDecision(models.Model):
    """A reviewer's decision on a finding; the latest one stands, earlier ones stay for the record."""

    class Decision(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        WAIVED = "waived", _("Waived")
        FALSE_POSITIVE = "false_positive", _("False positive")

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    justification = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["decided_at", "id"]


class SubmissionDecision(models.Model):
    """A reviewer's decision on a whole submission."""

    class Decision(models.TextChoices):
        APPROVED = "approved", _("Approved")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        REJECTED = "rejected", _("Rejected")

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    justification = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["decided_at", "id"]


class Dossier(models.Model):
    """A rendered, signed compliance dossier; never overwritten, regenerating makes a new number."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RENDERING = "rendering", _("Rendering")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    submission = models.ForeignKey(Submission, on_delete=models.PROTECT, related_name="dossiers")
    number = models.CharField(max_length=40, unique=True)
    lang = models.CharField(max_length=5, default="en")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    file = models.FileField(upload_to="dossiers/", max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Null when an operator rendered it with the dossier_render command.
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    rendered_at = models.DateTimeField(null=True, blank=True)
    # Rendering is leased like a check run (compliance.services.leases): claimed with one
    # conditional UPDATE that increments ``attempts``, every write fenced by it, the lease
    # renewed while the worker lives, requeued by the reconciler when it lapses.
    attempts = models.PositiveIntegerField(default=0)
    # Attempts made before staff last retried a failed dossier; the budget counts from here.
    attempt_base = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number


class Challenge(models.Model):
    """A public challenge against a funded project's model (issue #15): anyone, without an
    account, claims the model derives from another, copies code or breaches a licence.

    Only a confirmed challenge (its contact address answered the e-mailed link) reaches officers;
    only a decided one is public, and then only its published summary and the portal's own figures,
    never the vendor's unpublished artifacts."""

    class Claim(models.TextChoices):
        DERIVED_FROM_MODEL = "derived_from_model", _("Derived from another model")
        COPIED_CODE = "copied_code", _("Copied code")
        LICENCE_BREACH = "licence_breach", _("Licence breach")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", _("Awaiting e-mail confirmation")
        FILED = "filed", _("Filed, awaiting triage")
        ACCEPTED = "accepted", _("Accepted, under examination")
        MERGED = "merged", _("Merged into another challenge")
        REJECTED = "rejected", _("Rejected as unfounded")
        UPHELD = "upheld", _("Upheld")
        NOT_UPHELD = "not_upheld", _("Not upheld")

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="challenges")
    model_named = models.CharField(_("model challenged"), max_length=300)
    claim = models.CharField(_("claim"), max_length=24, choices=Claim.choices)
    claimed_source = models.CharField(_("claimed source"), max_length=500, blank=True)
    statement = models.TextField(_("statement"), max_length=limits.CHALLENGE_STATEMENT_CHARS)
    figures = models.TextField(_("challenger's figures"), blank=True, max_length=limits.CHALLENGE_FIGURES_CHARS)
    contact_email = models.EmailField(_("contact e-mail"), max_length=254)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.UNCONFIRMED)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged")
    officer_reasons = models.TextField(_("officer's reasons"), blank=True,
                                       max_length=limits.JUSTIFICATION_CHARS)
    # The portal's own re-test, as the engine reported it (verdict, p-value, raw and centred
    # norm statistics) or the reason it could not run; shown beside the challenger's figures.
    retest = models.JSONField(_("portal re-test"), default=dict, blank=True)
    vendor_reply = models.TextField(_("vendor's reply"), blank=True, max_length=limits.REPLY_CHARS)
    vendor_replied_at = models.DateTimeField(null=True, blank=True)
    reply_due_on = models.DateField(_("reply due on"), null=True, blank=True)
    # Reminders sent once each (compliance.challenge_reply_reminders, beat): the vendor two days
    # before the reply is due, the officers once it is overdue.
    reply_reminded_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    # The registered reference an officer chose (or registered from an uploaded bundle) for the
    # re-test of a derived-from-model claim; blank: matched by the names the challenge gives.
    reference = models.ForeignKey(ReferenceModel, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="challenges", verbose_name=_("reference model tested against"))
    published_summary = models.TextField(_("published summary"), blank=True, max_length=limits.NOTE_CHARS)
    client_address = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    triaged_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("challenge")
        indexes = [models.Index(fields=["status", "-decided_at"], name="challenge_status_decided")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.project}"

    @property
    def decided(self) -> bool:
        return self.status in {self.Status.UPHELD, self.Status.NOT_UPHELD, self.Status.REJECTED}


class ChallengeFile(models.Model):
    """Evidence attached to a challenge by the challenger or by the vendor's reply. Stored
    outside public media, hashed, bounded by ``projects.limits.MESSAGE_ATTACHMENT_BYTES``, and
    served (compliance.challenge_views.challenge_file_download) only once intake accepted it: to
    officers, auditors and the project's assigned reviewers, to the project's vendor, and to the
    public only when the decision published it."""

    class Side(models.TextChoices):
        CHALLENGER = "challenger", _("Challenger")
        VENDOR = "vendor", _("Vendor")

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="files")
    side = models.CharField(max_length=16, choices=Side.choices)
    original_name = models.CharField(max_length=255)
    file = models.FileField(upload_to="challenges/", max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # The artifact intake's judgement (compliance.engine.intake.artifact_inspect, light queue):
    # quarantined until it has looked; rejected files are kept as evidence but marked.
    intake_status = models.CharField(max_length=16, default="quarantined")
    intake_findings = models.JSONField(default=list, blank=True)
    # Set by the decision: the file may be downloaded by anyone from the public register. Only a
    # challenger's file that intake accepted can be published; the vendor's never are.
    published = models.BooleanField(_("published with the decision"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]


class FileResult(models.Model):
    """An engine's answer for one file's bytes, reused by every later scan (issue #16).

    ``namespace`` names the engine, its version and whatever else the answer depends on (rule
    set, code index, corpora); ``key`` is the SHA-256 of the content and of the part of its name
    the engine reads (``compliance.engine.filecache.content_key``). Rows are only ever added:
    a new engine or index is a new namespace. Written by ``compliance.services.filecache``."""

    namespace = models.CharField(max_length=200)
    key = models.CharField(max_length=64)
    value = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "key"], name="file_result_namespace_key")]

    def __str__(self) -> str:
        return f"{self.namespace} {self.key[:12]}"

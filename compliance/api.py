"""REST API of the compliance room: check runs, findings, decisions."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from compliance.checks import check_registry
from compliance.finding_texts import (REVIEWER, VENDOR, evidence_for_vendor, text_for_vendor,
                                      verdict_label)
from compliance.services import decisions, runs, threads
from compliance.services.reuse import reuse_notes
from compliance.dossiers import dossier_request, dossier_retry, dossier_verify_file, dossier_verify_hash
from compliance.models import CheckRun, Dossier, Finding, FindingDecision, FindingMessage, SubmissionDecision
from compliance.filters import FindingFilterSet, QueueFilterSet
from compliance.selectors import (check_run_get_for_user, check_runs_visible_to, dossier_get_for_user,
                                  dossiers_visible_to, finding_export_columns, finding_get_for_user, finding_messages,
                                  findings_list, findings_with_waiting_on, queue_export_columns, review_queue,
                                  submission_waiting)
from portal.exports import export_action
from portal.schema import VALIDATION_ERROR_SCHEMA, ApiErrorSerializer
from portal.selectors import user_is_ministry
from projects import limits
from projects.limits import text_field_kwargs
from projects.models import Artifact, Submission
from projects.selectors import get_or_404, submission_get_for_user


def _internals_shown(serializer: serializers.Serializer) -> bool:
    """Ministry users see our machinery (engine versions, worker host names, raw evidence);
    vendors, and any caller whose request is unknown, do not."""
    request = serializer.context.get("request")
    return bool(request is not None and user_is_ministry(user=request.user))


# Check-run fields about our machinery rather than the vendor's files: hidden from vendors.
CHECK_RUN_INTERNAL_FIELDS = ("engine_version", "worker", "inputs")


class CheckRunReuseSerializer(serializers.Serializer):
    """What a check run reused instead of computing (issue #16)."""

    reused_from_version = serializers.IntegerField(
        allow_null=True, help_text="The earlier version of this project whose whole result this run took over "
                                   "(same file, engine version and inputs); null when it ran.")
    cache = serializers.DictField(
        help_text='The run\'s result-cache figures: {"files", "reused", "computed", "engine_version"} for the '
                  'licence and code checks (per-file results), {"reused", "key", "from"} for lineage (the '
                  "engine's report for the same weights and references); empty when none.")
    notes = serializers.ListField(child=serializers.CharField(),
                                  help_text="The same in words, in the request's language.")


class CheckRunSerializer(serializers.ModelSerializer):
    artifact_name = serializers.CharField(source="artifact.original_name", read_only=True)
    check_label = serializers.SerializerMethodField()
    verdict_label = serializers.SerializerMethodField()
    reuse = serializers.SerializerMethodField()

    class Meta:
        model = CheckRun
        fields = ["id", "submission", "artifact", "artifact_name", "check_name", "check_label", "state", "progress",
                  "step", "verdict", "verdict_label", "summary", "error", "engine_version", "inputs", "worker",
                  "attempts", "queued_at", "started_at", "finished_at", "reused_from", "reuse"]
        read_only_fields = fields

    @extend_schema_field(CheckRunReuseSerializer)
    def get_reuse(self, run: CheckRun) -> dict:
        version = run.reused_from.submission.number if run.reused_from_id else None
        if not _internals_shown(self):  # vendors: only their own project's earlier version (see to_representation)
            return {"reused_from_version": version, "cache": {}, "notes": []}
        cache = (run.summary or {}).get("cache") if not run.reused_from_id else None
        return {"reused_from_version": version,
                "cache": cache if isinstance(cache, dict) else {}, "notes": reuse_notes(run=run)}

    def get_check_label(self, run: CheckRun) -> str:
        spec = check_registry().get(run.check_name)
        return str(spec.label) if spec else run.check_name

    def get_verdict_label(self, run: CheckRun) -> str:
        return verdict_label(run.verdict)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not _internals_shown(self):
            for name in CHECK_RUN_INTERNAL_FIELDS:
                data.pop(name, None)
            summary = evidence_for_vendor(data.get("summary") or {})
            # Result caches are shared across projects (same bytes, same answer): whether a result was
            # computed or reused says something of other vendors' submissions, so vendors are not told.
            data["summary"] = {k: v for k, v in summary.items() if k != "cache"} if isinstance(summary, dict) else summary
            data["error"] = text_for_vendor(data.get("error") or "")
        return data


class CheckRunSerializerSchema(OpenApiSerializerExtension):
    """In the schema, the internal fields are optional: vendors' answers leave them out."""

    target_class = "compliance.api.CheckRunSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["required"] = [name for name in schema.get("required", []) if name not in CHECK_RUN_INTERNAL_FIELDS]
        for name in CHECK_RUN_INTERNAL_FIELDS:
            schema["properties"][name]["description"] = "Ministry users only."
        return schema


class FindingDecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username", read_only=True)
    justification = serializers.CharField(required=False, allow_blank=True, **text_field_kwargs("justification"))

    class Meta:
        model = FindingDecision
        fields = ["decision", "justification", "decided_by", "decided_at"]
        read_only_fields = ["decided_by", "decided_at"]


class FindingMessageAttachmentSerializer(serializers.ModelSerializer):
    """The attached file as intake sees it: served only once ``status`` is accepted."""

    class Meta:
        model = Artifact
        fields = ["id", "original_name", "size", "sha256", "status"]
        read_only_fields = fields


class FindingMessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)
    attachment = FindingMessageAttachmentSerializer(read_only=True, allow_null=True)

    class Meta:
        model = FindingMessage
        fields = ["id", "finding", "author", "side", "kind", "body", "attachment", "created_at"]
        read_only_fields = fields


class FindingMessagePostSerializer(serializers.Serializer):
    """A message on a finding. ``kind`` is for reviewers: question (the vendor's turn, default) or
    note; the vendor's messages are replies. ``attachment``: an optional file (multipart)."""

    body = serializers.CharField(**text_field_kwargs("message"))
    kind = serializers.ChoiceField(required=False, allow_blank=True,
                                   choices=[FindingMessage.Kind.QUESTION.value, FindingMessage.Kind.NOTE.value])
    attachment = serializers.FileField(required=False, allow_null=True, max_length=limits.FILENAME_BYTES)


class FindingSerializer(serializers.ModelSerializer):
    """A finding; ``display_title`` and ``display_text`` are its words in the request's language
    for the caller (the reviewer's sentence for ministry users, the vendor's otherwise)."""

    decisions = FindingDecisionSerializer(many=True, read_only=True)
    check_name = serializers.CharField(source="check_run.check_name", read_only=True)
    artifact = serializers.IntegerField(source="check_run.artifact_id", read_only=True)
    display_title = serializers.SerializerMethodField()
    display_text = serializers.SerializerMethodField()
    waiting_on = serializers.SerializerMethodField(
        help_text="Who must act next: vendor after a reviewer's question, reviewer otherwise while open, "
                  "nobody once decided.")

    class Meta:
        model = Finding
        fields = ["id", "submission", "check_run", "check_name", "artifact", "severity", "category", "code",
                  "title", "explanation", "display_title", "display_text", "evidence", "params", "status",
                  "waiting_on", "decisions", "created_at"]
        read_only_fields = fields

    def _text(self, finding: Finding):
        return finding.text(REVIEWER if _internals_shown(self) else VENDOR)

    def get_display_title(self, finding: Finding) -> str:
        return self._text(finding).title

    def get_display_text(self, finding: Finding) -> str:
        return self._text(finding).text

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not _internals_shown(self):
            data["evidence"] = evidence_for_vendor(data.get("evidence") or {})
            data["explanation"] = text_for_vendor(data.get("explanation") or "")
        return data

    @extend_schema_field(serializers.ChoiceField(choices=Finding.WaitingOn.values))
    def get_waiting_on(self, finding) -> str:
        # Lists annotate it in their one query (findings_with_waiting_on); a single finding reads its thread.
        return getattr(finding, "waiting_on_value", None) or finding.waiting_on


class FindingReplySerializer(serializers.Serializer):
    reply = serializers.CharField(**text_field_kwargs("message"))


class SubmissionDecisionSerializer(serializers.ModelSerializer):
    # A plain id, looked up through the user's scope: a related field would tell "does not exist"
    # apart from "not yours" and let callers probe ids.
    submission = serializers.IntegerField(source="submission_id")
    decided_by = serializers.CharField(source="decided_by.username", read_only=True)
    justification = serializers.CharField(required=False, allow_blank=True, **text_field_kwargs("justification"))

    class Meta:
        model = SubmissionDecision
        fields = ["id", "submission", "decision", "justification", "decided_by", "decided_at"]
        read_only_fields = ["id", "decided_by", "decided_at"]


class CheckRunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CheckRunSerializer
    filterset_fields = ["submission", "artifact", "check_name", "state"]

    def get_queryset(self):
        return (check_runs_visible_to(user=self.request.user)
                .select_related("artifact", "reused_from__submission").order_by("id"))

    def get_object(self):
        return check_run_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=None, responses=CheckRunSerializer)
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Staff: run the check again (its findings are replaced when it ends)."""
        run = runs.check_run_rerun(user=request.user, run=self.get_object())
        return Response(CheckRunSerializer(run, context=self.get_serializer_context()).data)


class FindingViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = FindingSerializer
    # The findings page's filters and ?sort= (compliance.filters), besides the exact ones it had.
    filterset_class = FindingFilterSet
    search_fields = ["title", "explanation"]
    ordering_fields = ["id", "severity", "created_at"]

    def get_queryset(self):
        findings = findings_list(user=self.request.user)
        if self.action == "export":
            return findings
        return findings_with_waiting_on(findings.select_related("check_run").prefetch_related("decisions__decided_by"))

    def get_object(self):
        return finding_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    export = export_action(columns=finding_export_columns, filename="findings",
                           description="The findings the caller may see (a vendor: those of their own "
                                       "submissions), with the list's filters, as CSV or XLSX.")

    @extend_schema(request=FindingDecisionSerializer, responses=FindingSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Reviewer: confirmed, waived (with a justification) or false_positive."""
        finding = self.get_object()
        serializer = FindingDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decisions.finding_decide(user=request.user, finding=finding, **serializer.validated_data)
        return Response(FindingSerializer(self.get_object(), context=self.get_serializer_context()).data)

    @extend_schema(methods=["GET"], request=None, responses=FindingMessageSerializer(many=True), filters=False)
    @extend_schema(methods=["POST"], request={"application/json": FindingMessagePostSerializer,
                                              "multipart/form-data": FindingMessagePostSerializer},
                   responses={201: FindingMessageSerializer})
    # The whole conversation, unpaginated and unfiltered: the list's filters and pages are not its own.
    @action(detail=True, methods=["get", "post"], parser_classes=[JSONParser, MultiPartParser],
            pagination_class=None, filter_backends=[])
    def messages(self, request, pk=None):
        """The conversation on a finding, oldest first (GET); post a message (POST): the vendor
        replies, a reviewer asks the vendor (``kind=question``) or adds a note (``kind=note``)."""
        finding = self.get_object()
        if request.method == "GET":
            return Response(FindingMessageSerializer(finding_messages(finding=finding), many=True).data)
        serializer = FindingMessagePostSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data.get("attachment")
        message = threads.message_post(user=request.user, finding=finding, body=data["body"],
                                       kind=data.get("kind", ""), attachment_name=upload.name if upload else "",
                                       attachment_file=upload)
        return Response(FindingMessageSerializer(message).data, status=201)

    @extend_schema(request=FindingReplySerializer, responses=FindingSerializer, deprecated=True)
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        """Deprecated: post to ``messages`` instead. Vendor: answer a finding (appended as a message)."""
        finding = self.get_object()
        serializer = FindingReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        threads.message_post(user=request.user, finding=finding, body=serializer.validated_data["reply"])
        return Response(FindingSerializer(self.get_object(), context=self.get_serializer_context()).data)


class QueueSubmissionSerializer(serializers.ModelSerializer):
    """A submission as the review queue shows it: how long it has waited against its programme's
    service level, and its most severe open finding."""

    project = serializers.IntegerField(source="project_id", read_only=True)
    project_code = serializers.CharField(source="project.code", read_only=True)
    programme = serializers.CharField(source="project.programme.code", read_only=True)
    vendor = serializers.CharField(source="project.vendor.name", read_only=True)
    waiting_since = serializers.DateTimeField(read_only=True)
    waiting_days = serializers.SerializerMethodField()
    sla_days = serializers.IntegerField(source="project.programme.review_sla_days", read_only=True)
    overdue = serializers.SerializerMethodField()
    highest_open_severity = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = ["id", "project", "project_code", "programme", "vendor", "number", "status", "submitted_at",
                  "waiting_since", "waiting_days", "sla_days", "overdue", "highest_open_severity"]
        read_only_fields = fields

    def get_waiting_days(self, obj) -> int:
        return submission_waiting(obj, now=self.context["now"])[0]

    def get_overdue(self, obj) -> bool:
        return submission_waiting(obj, now=self.context["now"])[2]

    def get_highest_open_severity(self, obj) -> str | None:
        rank = getattr(obj, "top_severity_rank", None)
        return Finding.SEVERITY_ORDER[rank] if rank is not None else None


class QueueViewSet(viewsets.ReadOnlyModelViewSet):
    """The review queue: submissions waiting for a decision that the caller may decide (administrators
    and officers: all; reviewers: their assigned projects'; others: none), with the page's filters."""

    serializer_class = QueueSubmissionSerializer
    filterset_class = QueueFilterSet
    ordering_fields: list[str] = []

    def get_queryset(self):
        return review_queue(user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def get_object(self):
        return get_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    export = export_action(columns=queue_export_columns, filename="review-queue",
                           description="The review queue, with the list's filters, as CSV or XLSX.")


class SubmissionDecisionViewSet(viewsets.GenericViewSet):
    """Reviewer decisions on whole submissions."""

    serializer_class = SubmissionDecisionSerializer

    def get_queryset(self):
        return SubmissionDecision.objects.none()

    def create(self, request):
        serializer = SubmissionDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        submission = submission_get_for_user(user=request.user, pk=data["submission_id"])
        record = decisions.submission_decide(user=request.user, submission=submission, decision=data["decision"],
                                            justification=data.get("justification", ""))
        return Response(SubmissionDecisionSerializer(record).data, status=201)


class DossierSerializer(serializers.ModelSerializer):
    submission = serializers.IntegerField(source="submission_id")

    class Meta:
        model = Dossier
        fields = ["id", "number", "submission", "lang", "state", "sha256", "size", "error", "attempts", "created_at",
                  "rendered_at"]
        read_only_fields = ["id", "number", "state", "sha256", "size", "error", "attempts", "created_at",
                            "rendered_at"]


class DossierVerifySerializer(serializers.Serializer):
    file = serializers.FileField(required=False)
    sha256 = serializers.CharField(required=False, max_length=64)


class DossierVerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    issued = serializers.BooleanField()
    unaltered = serializers.BooleanField()
    signature_valid = serializers.BooleanField(allow_null=True)
    submission = serializers.IntegerField(allow_null=True)
    dossier_number = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())


class DossierViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Issued dossiers (ministry only), a request for a new one, and verification (anyone)."""

    serializer_class = DossierSerializer
    filterset_fields = ["submission", "state", "lang"]

    def get_queryset(self):
        return dossiers_visible_to(user=self.request.user).order_by("-id")

    def get_object(self):
        return dossier_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def perform_create(self, serializer):
        submission = submission_get_for_user(user=self.request.user, pk=serializer.validated_data["submission_id"])
        serializer.instance = dossier_request(user=self.request.user, submission=submission,
                                              lang=serializer.validated_data.get("lang", "en"))

    @extend_schema(request=None, responses=DossierSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Staff: render a failed dossier again under the same number (it never issued a file)."""
        return Response(DossierSerializer(dossier_retry(user=request.user, dossier=self.get_object())).data)

    @extend_schema(request={"multipart/form-data": DossierVerifySerializer}, responses={
        200: DossierVerifyResultSerializer,
        400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="Neither `file` nor `sha256`, a malformed "
                                                                  "`sha256`, or a file over the cap."),
        413: OpenApiResponse(ApiErrorSerializer, description="The body (by its Content-Length) is larger than any "
                                                              "dossier; refused before it is read."),
        429: OpenApiResponse(ApiErrorSerializer, description="Too many uploads from your address; the "
                                                              "Retry-After header says when to try again. "
                                                              "Verification by `sha256` is not limited.")})
    @action(detail=False, methods=["post"], permission_classes=[AllowAny], authentication_classes=[],
            parser_classes=[MultiPartParser, JSONParser])
    def verify(self, request):
        """Upload a dossier PDF (``file``) or give its ``sha256``: issued, unaltered, signature valid?"""
        from compliance.views import MAX_VERIFY_UPLOAD_BYTES, VERIFY_FORM_OVERHEAD_BYTES
        from portal.throttles import request_body_length, verify_upload_allowed
        from portal.upload_handlers import hashing_upload_handlers

        if request_body_length(request) > MAX_VERIFY_UPLOAD_BYTES + VERIFY_FORM_OVERHEAD_BYTES:
            return Response({"detail": "This file is larger than any dossier the portal issues."}, status=413)
        allowed, wait = verify_upload_allowed(request._request)
        if not allowed:
            raise Throttled(wait=wait, detail="Too many dossiers were checked from your address; "
                                             "verification by `sha256` is not limited.")
        # Streamed to a temporary file and hashed on the way, never held in memory (set before
        # DRF's parser reads the body; this action has no authentication, so nothing read it yet).
        request._request.upload_handlers = hashing_upload_handlers(request._request)
        upload = request.FILES.get("file")
        if upload is not None:
            try:
                if upload.size > MAX_VERIFY_UPLOAD_BYTES:
                    return Response({"detail": "This file is larger than any dossier the portal issues."}, status=400)
                return Response(dossier_verify_file(pdf_file=upload.file, sha256=getattr(upload, "sha256", None)))
            finally:
                upload.close()
        if request.data.get("sha256"):
            return Response(dossier_verify_hash(sha256=str(request.data["sha256"])))
        return Response({"detail": "Send the dossier as `file`, or its `sha256`."}, status=400)

"""REST API of the registry and intake. Same selectors and services as the pages, so the
same object permissions: an object the caller may not see answers 404."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from portal.exports import export_action
from portal.models import Organisation
from projects import limits, services, uploads
from projects.filters import ProjectFilterSet
from projects.models import Artifact, Declaration, Milestone, Programme, Project, Submission, UploadSession
from projects.selectors import (artifact_get_for_user, artifacts_visible_to, programme_get_for_user,
                                programmes_visible_to, project_export_columns, project_get_for_user,
                                projects_visible_to,
                                submission_get_for_user, submissions_visible_to, upload_session_get_for_user)


class ProgrammeSerializer(serializers.ModelSerializer):
    ministry = serializers.SlugRelatedField(slug_field="name", queryset=Organisation.objects.filter(kind="ministry"))

    class Meta:
        model = Programme
        fields = ["id", "code", "name", "name_ko", "ministry", "budget_krw", "starts_on", "ends_on",
                  "max_artifact_bytes", "review_sla_days", "vendor_second_factor_required", "created_at"]
        read_only_fields = ["id", "created_at"]


class MilestoneSerializer(serializers.ModelSerializer):
    class Meta:
        model = Milestone
        fields = ["id", "title", "due_on", "completed_on", "is_overdue"]


class ProjectSerializer(serializers.ModelSerializer):
    # Plain ids looked up through the caller's scope (a related field would reveal which ids exist).
    programme = serializers.IntegerField(source="programme_id")
    vendor = serializers.SlugRelatedField(slug_field="name", queryset=Organisation.objects.filter(kind="vendor"))
    milestones = MilestoneSerializer(many=True, read_only=True)

    class Meta:
        model = Project
        fields = ["id", "programme", "code", "title", "title_ko", "vendor", "consortium_members", "funding_krw",
                  "phase", "status", "milestones", "created_at"]
        read_only_fields = ["id", "status", "created_at", "milestones"]


class DeclarationSerializer(serializers.ModelSerializer):
    # Limits from projects.limits (README "Limits"); the service checks them again.
    base_models = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True, **limits.row_text_kwargs())),
        required=False, **limits.rows_field_kwargs("base_models"))
    third_party_code = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True, **limits.row_text_kwargs())),
        required=False, **limits.rows_field_kwargs("third_party_code"),
        help_text="Open code used on purpose: [{name, version, license, use: training|inference|other, source}]. "
                  "Copies of code not listed are reported as undeclared.")
    data_summary = serializers.CharField(required=False, allow_blank=True, **limits.text_field_kwargs("data_summary"))

    class Meta:
        model = Declaration
        fields = ["from_scratch", "base_models", "third_party_code", "gpu_hours", "training_flops", "data_summary",
                  "signatory_name", "signed_at", "signed_sha256"]
        read_only_fields = ["signatory_name", "signed_at", "signed_sha256"]


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        # carried_from: the previous version's artifact this row took over by reference (same stored file).
        fields = ["id", "submission", "kind", "original_name", "size", "sha256", "detected_kind", "status",
                  "uploaded_at", "carried_from"]
        read_only_fields = fields


class DeclarationSignSerializer(serializers.Serializer):
    """Signing takes a real yes and a real name, form-encoded or JSON alike: ``attest=false`` is
    not a signature and a null name is not the text "None" (issue #10)."""

    signatory_name = serializers.CharField(**limits.text_field_kwargs("signatory_name"))
    attest = serializers.BooleanField(default=False)  # left out: not attested, and told so

    def validate_attest(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError(_("Confirm that the declaration is true and complete to sign it."))
        return value


class SubmissionSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id")
    note = serializers.CharField(required=False, allow_blank=True, **limits.text_field_kwargs("note"))
    declaration = DeclarationSerializer(read_only=True)
    carry_over = serializers.BooleanField(
        write_only=True, required=False, default=True,
        help_text="Start from the latest version (its files by reference, its declaration unsigned); "
                  "false starts empty.")

    class Meta:
        model = Submission
        fields = ["id", "project", "number", "status", "note", "created_at", "submitted_at", "declaration",
                  "carry_over"]
        read_only_fields = ["id", "number", "status", "created_at", "submitted_at", "declaration"]


class SubmittedSerializer(SubmissionSerializer):
    """The answer to submitting. Accepted means recorded: the checks wait in the database for a
    worker (and, if the task queue is down, for it to come back; issue #11), so it says so."""

    message = serializers.SerializerMethodField()

    class Meta(SubmissionSerializer.Meta):
        fields = [*SubmissionSerializer.Meta.fields, "message"]

    def get_message(self, obj) -> str:
        return gettext("Submitted. The checks start when workers are available.")


class UploadSessionSerializer(serializers.ModelSerializer):
    submission = serializers.IntegerField(write_only=True)
    artifact = ArtifactSerializer(read_only=True, allow_null=True)  # null until the last chunk

    class Meta:
        model = UploadSession
        fields = ["id", "submission", "kind", "filename", "size", "received", "artifact", "created_at"]
        read_only_fields = ["id", "received", "artifact", "created_at"]

    def validate_filename(self, value: str) -> str:
        try:
            return limits.limit_filename(value=value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["filename"]) from None


class ProgrammeViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ProgrammeSerializer
    search_fields = ["code", "name", "name_ko"]
    ordering_fields = ["code", "starts_on"]

    def get_queryset(self):
        return programmes_visible_to(user=self.request.user).select_related("ministry").order_by("code")

    def get_object(self):
        return programme_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def perform_create(self, serializer):
        serializer.instance = services.programme_create(user=self.request.user, **serializer.validated_data)


class ProjectViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer
    # The page's filters and ?sort= (projects.filters), so a saved page filter works here too.
    filterset_class = ProjectFilterSet
    search_fields = ["code", "title", "title_ko", "vendor__name"]
    ordering_fields = ["code", "funding_krw", "created_at"]

    def get_queryset(self):
        return (projects_visible_to(user=self.request.user).select_related("programme", "vendor")
                .prefetch_related("milestones").order_by("programme_id", "code"))

    def get_object(self):
        return project_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    export = export_action(columns=project_export_columns, filename="projects",
                           description="The projects the caller may see, with the list's filters, as CSV or XLSX.")

    def perform_create(self, serializer):
        data = serializer.validated_data
        programme = programme_get_for_user(user=self.request.user, pk=data["programme_id"])
        serializer.instance = services.project_create(
            user=self.request.user, programme=programme, code=data["code"], title=data["title"],
            title_ko=data.get("title_ko", ""), vendor=data["vendor"], funding_krw=data["funding_krw"],
            phase=data.get("phase", 1), consortium_members=data.get("consortium_members", []))


class SubmissionViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = SubmissionSerializer
    filterset_fields = ["project", "status"]
    ordering_fields = ["created_at", "number"]

    def get_queryset(self):
        return (submissions_visible_to(user=self.request.user).select_related("project", "declaration")
                .order_by("-created_at"))

    def get_object(self):
        return submission_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def perform_create(self, serializer):
        project = project_get_for_user(user=self.request.user, pk=serializer.validated_data["project_id"])
        serializer.instance = services.submission_open(user=self.request.user, project=project,
                                                       note=serializer.validated_data.get("note", ""),
                                                       carry_over=serializer.validated_data.get("carry_over", True))

    @extend_schema(request=DeclarationSerializer, responses=DeclarationSerializer)
    @action(detail=True, methods=["get", "put"])
    def declaration(self, request, pk=None):
        """Read or fill in the declaration (filling it in removes an earlier signature)."""
        submission = self.get_object()
        if request.method == "PUT":
            serializer = DeclarationSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            services.declaration_update(user=request.user, submission=submission,
                                        from_scratch=data.get("from_scratch", False),
                                        base_models=data.get("base_models", []), gpu_hours=data.get("gpu_hours"),
                                        training_flops=data.get("training_flops"),
                                        data_summary=data.get("data_summary", ""),
                                        third_party_code=data.get("third_party_code", []))
            submission.declaration.refresh_from_db()
        return Response(DeclarationSerializer(submission.declaration).data)

    @extend_schema(request=DeclarationSignSerializer, responses=DeclarationSerializer)
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        """Sign the declaration as it stands."""
        submission = self.get_object()
        serializer = DeclarationSignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        declaration = services.declaration_sign(user=request.user, submission=submission,
                                                signatory_name=serializer.validated_data["signatory_name"],
                                                attest=serializer.validated_data["attest"])
        return Response(DeclarationSerializer(declaration).data)

    @extend_schema(request=None, responses=SubmittedSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Hand the submission in; its checks start when workers are available (``message``)."""
        submission = services.submission_submit(user=request.user, submission=self.get_object())
        return Response(SubmittedSerializer(submission).data)


class ArtifactViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ArtifactSerializer
    filterset_fields = ["submission", "kind", "status"]
    search_fields = ["original_name", "sha256"]

    def get_queryset(self):
        return artifacts_visible_to(user=self.request.user).order_by("id")

    def get_object(self):
        return artifact_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def perform_destroy(self, instance):
        uploads.artifact_delete(user=self.request.user, artifact=instance)


class RawBodyParser(BaseParser):
    """Leaves the body unread so the view can stream it (DRF would otherwise read it whole)."""

    media_type = "application/offset+octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


class OctetStreamParser(RawBodyParser):
    media_type = "application/octet-stream"


class UploadViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    viewsets.GenericViewSet):
    """Chunked, resumable uploads (tus-style): POST a session, then PATCH chunks at ``Upload-Offset``.
    GET the session to learn where to resume."""

    serializer_class = UploadSessionSerializer
    # For the schema only (a UUID path parameter); every request goes through get_queryset/get_object.
    queryset = UploadSession.objects.none()

    def get_queryset(self):
        return UploadSession.objects.filter(created_by=self.request.user)

    def get_object(self):
        return upload_session_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def perform_create(self, serializer):
        data = serializer.validated_data
        submission = submission_get_for_user(user=self.request.user, pk=data["submission"])
        serializer.instance = uploads.upload_session_create(user=self.request.user, submission=submission,
                                                            kind=data["kind"], filename=data["filename"],
                                                            size=data["size"])

    def perform_destroy(self, instance):
        uploads.upload_session_abort(user=self.request.user, session=instance)

    @extend_schema(
        request={"application/offset+octet-stream": {"type": "string", "format": "binary"}},
        parameters=[OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True,
                                     description="Byte offset of this chunk; must equal the session's 'received'.")],
        responses={200: UploadSessionSerializer, 409: inline_serializer("UploadConflict", {
            "detail": serializers.CharField(), "received": serializers.IntegerField()})})
    @action(detail=True, methods=["patch"], parser_classes=[RawBodyParser, OctetStreamParser])
    def chunk(self, request, pk=None):
        """Append one chunk; the last one turns the upload into an artifact (SHA-256 in the answer)."""
        session = self.get_object()
        try:
            offset = int(request.headers.get("Upload-Offset", ""))
        except ValueError:
            return Response({"detail": "Send the chunk's byte offset in the Upload-Offset header."},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            length = int(request.headers["Content-Length"]) if request.headers.get("Content-Length") else None
        except ValueError:
            return Response({"detail": "Content-Length is not a number."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            uploads.upload_chunk_write(user=request.user, session=session, offset=offset,
                                       stream=request._request, length=length)
        except uploads.UploadConflict as exc:
            return Response({"detail": str(exc), "received": exc.expected}, status=status.HTTP_409_CONFLICT,
                            headers={"Upload-Offset": str(exc.expected)})
        session.refresh_from_db()
        return Response(UploadSessionSerializer(session).data, headers={"Upload-Offset": str(session.received)})


"""REST API of public challenges (issue #15), beside the pages of ``compliance.challenge_views``.

Two doors, as on the pages:

- ``/api/public-challenges/`` is anyone's, without an account: ``POST`` files a challenge (the
  web form's fields, limits, body cap and rate limit, evidence files as multipart; it reaches
  officers only once the e-mailed link is followed), ``GET`` reads the public register (decided
  outcomes only: the published summary and the portal's own figures, never the challenger's
  address, statement or exhibits, nor anything of the vendor's).
- ``/api/challenges/`` is the case, for signed-in callers: officers and administrators list,
  filter and act on every confirmed challenge (accept, reject, merge, re-test, decide); auditors
  and the project's assigned reviewers read; the project's vendor members read the case once it is
  accepted (never the challenger's address) and post their reply with files. Anyone else gets 404.

Every write goes through ``compliance.services.challenges``; nothing here changes a row itself.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from compliance.models import Challenge, ChallengeFile
from compliance.services import challenges as services
from portal import permissions as perms
from portal.filters import IdFilter
from portal.models import Role
from portal.schema import VALIDATION_ERROR_SCHEMA, ApiErrorSerializer
from portal.selectors import user_can_manage, user_role, user_sees_everything
from portal.throttles import ChallengeThrottle, client_address, request_body_length
from projects import limits
from projects.limits import text_field_kwargs
from projects.models import Project
from projects.selectors import get_or_404, project_ids_with_perm, projects_visible_to

FUNDED = (Project.Status.ACTIVE, Project.Status.UNDER_REVIEW, Project.Status.COMPLETED)
# What the public register lists (as the register page): decided, with a published summary.
PUBLIC = (Challenge.Status.UPHELD, Challenge.Status.NOT_UPHELD, Challenge.Status.REJECTED)
# What the project's vendor sees: the case once an officer accepted it (not a filed claim still
# under triage, nor one merged away), as on the challenge page.
VENDOR_VISIBLE = (Challenge.Status.ACCEPTED, *PUBLIC)
# The portal's re-test, as the public register shows it: the comparison and its statistics only.
RETEST_PUBLIC_KEYS = ("state", "reference", "verdict", "p_value")
RETEST_PUBLIC_NORM_KEYS = ("mean_raw_cosine", "mean_raw_cosine_shuffled", "mean_pearson")


# --- who sees which challenge -----------------------------------------------------------------

def challenges_visible_to(*, user) -> QuerySet:
    """Confirmed challenges for administrators, officers and auditors; once put to the vendor
    (accepted, then decided or rejected), those against their assigned projects for reviewers and
    those against their organisation's projects for vendor members; nothing for anyone else. The
    case page (``challenge_views.challenge_get_for_user``) and the evidence downloads follow the
    same rule: a challenge under the officers' triage is theirs alone."""
    confirmed = Challenge.objects.exclude(status=Challenge.Status.UNCONFIRMED)
    if user_sees_everything(user=user):
        return confirmed
    role = user_role(user=user)
    if role == Role.REVIEWER:
        return confirmed.filter(status__in=VENDOR_VISIBLE, project__in=projects_visible_to(user=user))
    if role == Role.VENDOR:
        return confirmed.filter(status__in=VENDOR_VISIBLE,
                                project__in=project_ids_with_perm(user=user, perm=perms.PROJECT_SUBMIT))
    return confirmed.none()


def challenge_get_for_user(*, user, pk) -> Challenge:
    """One challenge in the caller's scope, or the same 404 for missing and forbidden ids."""
    return get_or_404(challenges_visible_to(user=user).select_related("project", "project__programme",
                                                                      "merged_into"), pk=pk)


def public_challenges() -> QuerySet:
    return Challenge.objects.filter(status__in=PUBLIC).select_related("project", "project__programme")


def retest_public(retest: dict) -> dict:
    """The re-test as the public may read it: which reference, the verdict and the statistics."""
    shown = {key: retest[key] for key in RETEST_PUBLIC_KEYS if key in (retest or {})}
    norms = (retest or {}).get("norms") or {}
    if isinstance(norms, dict) and norms:
        shown["norms"] = {key: norms[key] for key in RETEST_PUBLIC_NORM_KEYS if key in norms}
    return shown


# --- serializers --------------------------------------------------------------------------------

class ChallengeFileSerializer(serializers.ModelSerializer):
    """An exhibit as listed on the case: its name, size, hash and what intake said of it."""

    class Meta:
        model = ChallengeFile
        fields = ["id", "side", "original_name", "size", "sha256", "intake_status", "created_at"]
        read_only_fields = fields


class ChallengeSerializer(serializers.ModelSerializer):
    """A challenge as its case is read. ``contact_email`` is the challenger's address, shown to
    administrators and programme officers only."""

    project_code = serializers.CharField(source="project.code", read_only=True)
    project_title = serializers.CharField(source="project.title", read_only=True)
    programme = serializers.IntegerField(source="project.programme_id", read_only=True)
    claim_label = serializers.CharField(source="get_claim_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    files = ChallengeFileSerializer(many=True, read_only=True)
    contact_email = serializers.EmailField(read_only=True, required=False,
                                           help_text="Administrators and programme officers only.")

    class Meta:
        model = Challenge
        fields = ["id", "project", "project_code", "project_title", "programme", "model_named", "claim",
                  "claim_label", "claimed_source", "statement", "figures", "status", "status_label", "merged_into",
                  "officer_reasons", "retest", "vendor_reply", "vendor_replied_at", "reply_due_on",
                  "published_summary", "created_at", "confirmed_at", "triaged_at", "decided_at", "files",
                  "contact_email"]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not user_can_manage(user=request.user):
            data.pop("contact_email", None)
        return data


class ChallengeSerializerSchema(OpenApiSerializerExtension):
    """In the schema ``contact_email`` is optional: only officers' and administrators' answers
    carry it."""

    target_class = "compliance.challenge_api.ChallengeSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["required"] = [name for name in schema.get("required", []) if name != "contact_email"]
        return schema


class PublicChallengeSerializer(serializers.ModelSerializer):
    """A decided challenge on the public register."""

    project_code = serializers.CharField(source="project.code", read_only=True)
    project_title = serializers.CharField(source="project.title", read_only=True)
    programme_name = serializers.CharField(source="project.programme.name", read_only=True)
    claim_label = serializers.CharField(source="get_claim_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    retest = serializers.SerializerMethodField(
        help_text="The portal's own re-test: the reference compared with, the verdict, the permutation "
                  "p-value and the norm-gain statistics (raw cosine, with the pairing shuffled, centred).")

    class Meta:
        model = Challenge
        fields = ["id", "project", "project_code", "project_title", "programme_name", "model_named", "claim",
                  "claim_label", "claimed_source", "status", "status_label", "published_summary", "retest",
                  "confirmed_at", "decided_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_retest(self, challenge: Challenge) -> dict:
        return retest_public(challenge.retest)


class ChallengeFileSerializerMixin(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(max_length=limits.FILENAME_BYTES), required=False,
                                  max_length=services.CHALLENGE_FILES_MAX,
                                  help_text=f"Up to {services.CHALLENGE_FILES_MAX} evidence files (multipart), "
                                            f"each at most {limits.MESSAGE_ATTACHMENT_BYTES // (1024 * 1024)} MiB.")


class ChallengeFileRequestSerializer(ChallengeFileSerializerMixin):
    """A public challenge, as the web form files it. The challenger confirms ``contact_email`` by
    the e-mailed link before officers see it."""

    project = serializers.IntegerField(help_text="Id of a funded project (active, under review or completed).")
    model_named = serializers.CharField(max_length=300)
    claim = serializers.ChoiceField(choices=Challenge.Claim.choices)
    claimed_source = serializers.CharField(max_length=500, required=False, allow_blank=True)
    statement = serializers.CharField(**text_field_kwargs("challenge_statement"))
    figures = serializers.CharField(required=False, allow_blank=True, **text_field_kwargs("challenge_figures"))
    contact_email = serializers.EmailField(max_length=254)


class ChallengeFiledSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    detail = serializers.CharField()


class ReasonsSerializer(serializers.Serializer):
    reasons = serializers.CharField(required=False, allow_blank=True, **text_field_kwargs("justification"))


class RejectSerializer(serializers.Serializer):
    reasons = serializers.CharField(**text_field_kwargs("justification"))


class MergeSerializer(ReasonsSerializer):
    into = serializers.IntegerField(help_text="Id of another open challenge against the same project.")


class DecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[(v, Challenge.Status(v).label) for v in services.DECIDED])
    reasons = serializers.CharField(**text_field_kwargs("justification"))
    summary = serializers.CharField(**text_field_kwargs("note"),
                                    help_text="What the public register shows.")


class ReplySerializer(ChallengeFileSerializerMixin):
    body = serializers.CharField(**text_field_kwargs("reply"))


def _files(data) -> list[tuple[str, object]]:
    return [(upload.name, upload) for upload in data.get("files") or []]


# --- views ---------------------------------------------------------------------------------------

class ChallengeFilterSet(django_filters.FilterSet):
    programme = IdFilter(field_name="project__programme_id", label="Programme")
    project = IdFilter(field_name="project_id", label="Project")
    status = django_filters.ChoiceFilter(choices=Challenge.Status.choices)
    claim = django_filters.ChoiceFilter(choices=Challenge.Claim.choices)

    class Meta:
        model = Challenge
        fields: list[str] = []


class PublicChallengeViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The public door: file a challenge (no account) and read the register of decided ones."""

    serializer_class = PublicChallengeSerializer
    permission_classes = [AllowAny]
    # Anonymous by design: no session, so no CSRF to owe, and nothing about the caller is used.
    authentication_classes: list = []
    parser_classes = [MultiPartParser, JSONParser]
    filterset_class = ChallengeFilterSet
    search_fields = ["model_named", "claimed_source", "published_summary"]
    ordering_fields = ["decided_at", "id"]

    def get_queryset(self):
        return public_challenges().order_by("-decided_at", "-pk")

    def get_object(self):
        return get_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    @extend_schema(
        request={"multipart/form-data": ChallengeFileRequestSerializer,
                 "application/json": ChallengeFileRequestSerializer},
        responses={
            201: ChallengeFiledSerializer,
            400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="A field is missing or over its limit, "
                                                                      "the project is not funded, or a file is "
                                                                      "empty or too large."),
            413: OpenApiResponse(ApiErrorSerializer, description="The body (by its Content-Length) is larger than "
                                                                 "any challenge; refused before it is read."),
            429: OpenApiResponse(ApiErrorSerializer, description="Too many challenges from your address (the "
                                                                 "web form's budget too); the Retry-After header "
                                                                 "says when to try again.")})
    def create(self, request, *args, **kwargs):
        """File a public challenge against a funded project. It reaches the programme's officers once
        the challenger follows the link e-mailed to ``contact_email``."""
        if request_body_length(request) > services.CHALLENGE_BODY_MAX_BYTES:
            return Response({"detail": _("A challenge with its files is at most %(limit)s MiB.") % {
                "limit": f"{services.CHALLENGE_BODY_MAX_BYTES // (1024 * 1024):,}"}}, status=413)
        # The web form's throttle, so a caller cannot switch doors to double the budget.
        throttle = ChallengeThrottle()
        if not throttle.allow_request(request, self):
            raise Throttled(wait=throttle.wait())
        serializer = ChallengeFileRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = Project.objects.filter(pk=data["project"], status__in=FUNDED).first()
        if project is None:
            return Response({"project": [_("Choose a funded project.")]}, status=400)
        challenge = services.challenge_file(
            project=project, model_named=data["model_named"], claim=data["claim"],
            claimed_source=data.get("claimed_source", ""), statement=data["statement"],
            figures=data.get("figures", ""), contact_email=data["contact_email"],
            client_address=client_address(request), files=_files(data),
            confirm_base_url=request.build_absolute_uri("/").rstrip("/"))
        return Response({"id": challenge.pk, "status": challenge.status,
                         "detail": _("Follow the link we e-mailed to confirm your challenge.")}, status=201)


class ChallengeViewSet(viewsets.ReadOnlyModelViewSet):
    """The case: read per role, officers' steps and the vendor's reply (compliance.services.challenges)."""

    serializer_class = ChallengeSerializer
    filterset_class = ChallengeFilterSet
    search_fields = ["model_named", "claimed_source", "statement"]
    ordering_fields = ["id", "created_at", "confirmed_at", "decided_at"]

    def get_queryset(self):
        return (challenges_visible_to(user=self.request.user).select_related("project")
                .prefetch_related("files").order_by("-confirmed_at", "-pk"))

    def get_object(self):
        return challenge_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def _officer_object(self) -> Challenge:
        """The challenge an officer's step names. Other readers are refused before their body is
        read, so a non-officer's malformed body is a 403, not a 400 that would invite a retry (the
        service checks the role again)."""
        challenge = self.get_object()
        if not user_can_manage(user=self.request.user):
            raise PermissionDenied(_("Only administrators and programme officers triage and decide challenges."))
        return challenge

    def _answer(self, challenge: Challenge, status: int = 200) -> Response:
        fresh = challenge_get_for_user(user=self.request.user, pk=challenge.pk)
        return Response(ChallengeSerializer(fresh, context=self.get_serializer_context()).data, status=status)

    @extend_schema(request=ReasonsSerializer, responses=ChallengeSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Officers: accept a filed challenge for examination (the vendor is told and given the reply
        period; a derived-from-model claim is re-tested)."""
        challenge = self._officer_object()
        serializer = ReasonsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(services.challenge_accept(user=request.user, challenge=challenge,
                                                      reasons=serializer.validated_data.get("reasons", "")))

    @extend_schema(request=RejectSerializer, responses=ChallengeSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Officers: reject a filed challenge as unfounded; the reasons are published."""
        challenge = self._officer_object()
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(services.challenge_reject(user=request.user, challenge=challenge,
                                                      reasons=serializer.validated_data["reasons"]))

    @extend_schema(request=MergeSerializer, responses=ChallengeSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Officers: merge a filed challenge into another open one against the same project."""
        challenge = self._officer_object()
        serializer = MergeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        into = challenges_visible_to(user=request.user).filter(pk=data["into"]).first()
        if into is None:
            return Response({"into": [_("Choose the challenge to merge into.")]}, status=400)
        return self._answer(services.challenge_merge(user=request.user, challenge=challenge, into=into,
                                                     reasons=data.get("reasons", "")))

    @extend_schema(request=None, responses=ChallengeSerializer)
    @action(detail=True, methods=["post"])
    def retest(self, request, pk=None):
        """Officers: run the portal's re-test of a derived-from-model claim again."""
        return self._answer(services.challenge_retest_request(user=request.user, challenge=self._officer_object()))

    @extend_schema(request=DecideSerializer, responses=ChallengeSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Officers: decide an accepted challenge, upheld or not, with reasons and the published summary."""
        challenge = self._officer_object()
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return self._answer(services.challenge_decide(user=request.user, challenge=challenge,
                                                      outcome=data["outcome"], reasons=data["reasons"],
                                                      summary=data["summary"]))

    @extend_schema(request={"multipart/form-data": ReplySerializer, "application/json": ReplySerializer},
                   responses=ChallengeSerializer)
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, JSONParser])
    def reply(self, request, pk=None):
        """The project's vendor: reply to an accepted challenge, with evidence files (multipart)."""
        challenge = self.get_object()
        serializer = ReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return self._answer(services.challenge_reply(user=request.user, challenge=challenge, body=data["body"],
                                                     files=_files(data)))


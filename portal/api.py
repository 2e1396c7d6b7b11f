"""API plumbing shared by every app (service errors become clear 400/403 answers), and the
portal room's own endpoints: the reader's API tokens and notifications."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.models import ApiToken, Notification
from portal.tokens import EXPIRY_CHOICES_DAYS, token_create, token_revoke, tokens_of


def exception_handler(exc, context):
    """Services raise Django's ValidationError and PermissionDenied; answer them like DRF's own."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(detail=str(exc) or None)
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, list):
        # DRF answers a validation error raised outside a serializer's fields (SearchFilter's "Null
        # characters are not allowed.") as a bare list; the schema's 400 is one object, so it reads
        # {"detail": [...]} like a service's error without a field.
        exc = exceptions.ValidationError(detail={"detail": exc.detail})
    return drf_exception_handler(exc, context)


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it afterwards: never the secret."""

    class Meta:
        model = ApiToken
        fields = ["token_key", "name", "created", "expiry", "last_used_at"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.ChoiceField(choices=[(d, f"{d} days") for d in EXPIRY_CHOICES_DAYS])


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    secret = serializers.CharField(help_text="The token itself. Shown in this answer only; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your own API tokens: list them (never their secrets), make one (its secret is in the answer,
    once), revoke one. Another person's token answers 404."""

    serializer_class = ApiTokenSerializer
    lookup_field = "token_key"
    queryset = ApiToken.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return tokens_of(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = token_create(user=request.user, name=data.validated_data["name"],
                                     expires_in_days=int(data.validated_data["expires_in_days"]))
        body = ApiTokenSerializer(token).data | {"secret": secret}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    def perform_destroy(self, instance):
        token_revoke(user=self.request.user, token=instance)
# --- notifications ------------------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    """A notification with its sentence in the request's language."""

    text = serializers.SerializerMethodField(help_text="The notification's sentence, in the request's language.")
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    # Null when nobody signed in caused it (a public challenge confirmed by its e-mailed link).
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "kind_display", "text", "url", "params", "actor", "created_at", "read_at", "is_read"]
        read_only_fields = fields

    def get_text(self, obj) -> str:
        from portal.notifications import notification_text

        return notification_text(kind=obj.kind, params=obj.params)

    def get_is_read(self, obj) -> bool:
        return obj.read_at is not None


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your own notifications, newest first (``?unread=1``: unread only). Another person's
    notification answers 404, like a missing one."""

    serializer_class = NotificationSerializer
    filter_backends = []

    def get_queryset(self):
        from portal.selectors import notifications_for

        queryset = notifications_for(user=self.request.user).select_related("actor").order_by("-created_at", "-id")
        if self.request.query_params.get("unread") == "1":
            queryset = queryset.filter(read_at__isnull=True)
        return queryset

    def get_object(self):
        from portal.selectors import notification_get_for_user

        return notification_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=None, responses=NotificationSerializer,
                   description="Mark one of your notifications as read (already read: unchanged).")
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        from portal.notifications import notification_mark_read

        notification = notification_mark_read(user=request.user, notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=inline_serializer("NotificationsMarkedRead",
                                                             {"marked": serializers.IntegerField()}),
                   description="Mark all your unread notifications as read; answers how many were.")
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        from portal.notifications import notifications_mark_all_read

        return Response({"marked": notifications_mark_all_read(user=request.user)})

"""API plumbing shared by every app (service errors become clear 400/403 answers), and API tokens."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.models import ApiToken
from portal.tokens import EXPIRY_CHOICES_DAYS, token_create, token_revoke, tokens_of


def exception_handler(exc, context):
    """Services raise Django's ValidationError and PermissionDenied; answer them like DRF's own."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(detail=str(exc) or None)
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

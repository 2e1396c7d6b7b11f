"""API tokens people make for themselves: named, shown once, stored hashed, expiring, revocable.

django-rest-knox does the cryptography (a random secret, only its SHA-512 digest stored, constant-
time comparison) and the expiry; this module adds what the portal needs around it: a name, the
last use, limits, and an audit event for every token made, revoked or expired.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.signals import token_expired

from portal.models import ApiToken
from portal.services import audit_record

# What an owner may choose; a token that never expires is a standing credential nobody reviews.
EXPIRY_CHOICES_DAYS = (7, 30, 90, 365)
MAX_TOKENS_PER_USER = 20
# Writing the last use on every request would turn each API call into a write; once a minute is
# precise enough for "is this token still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def tokens_of(*, user):
    return ApiToken.objects.filter(user=user).order_by("-created")


def token_get_for_user(*, user, digest: str) -> ApiToken:
    """The caller's own token; anyone else's answers the same as a missing one (404 upstream)."""
    return ApiToken.objects.get(user=user, digest=digest)


@transaction.atomic
def token_create(*, user, name: str, expires_in_days: int) -> tuple[ApiToken, str]:
    """Make a token; returns (token, secret). The secret exists only in this return value."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name, so you can tell your tokens apart.")})
    if len(name) > 100:
        raise ValidationError({"name": _("A token name has at most 100 characters.")})
    if expires_in_days not in EXPIRY_CHOICES_DAYS:
        raise ValidationError({"expires_in_days": _("Choose an expiry of 7, 30, 90 or 365 days.")})
    if tokens_of(user=user).filter(expiry__gt=timezone.now()).count() >= MAX_TOKENS_PER_USER:
        raise ValidationError({"name": _("You have %(n)s tokens; revoke one you no longer use first.")
                               % {"n": MAX_TOKENS_PER_USER}})
    token, secret = ApiToken.objects.create(user=user, expiry=timedelta(days=expires_in_days), name=name)
    audit_record(actor=user, action="token.created", object_type="api_token", object_id=token.token_key,
                 object_label=name, data={"expires_at": token.expiry.isoformat(), "days": expires_in_days})
    return token, secret


@transaction.atomic
def token_revoke(*, user, token: ApiToken) -> None:
    audit_record(actor=user, action="token.revoked", object_type="api_token", object_id=token.token_key,
                 object_label=token.name, data={"owner": token.user.get_username()})
    token.delete()


@receiver(token_expired, dispatch_uid="portal-token-expired")
def _token_expired(sender, username, source, **kwargs) -> None:
    """knox deletes an expired token when it meets it; the record keeps that it happened."""
    audit_record(actor="system", action="token.expired", object_type="api_token", object_id=username[:150],
                 object_label=username[:150], data={"owner": username})


class ApiTokenAuthentication(TokenAuthentication):
    """knox's token check, recording when each token was last used (to the minute)."""

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme for these tokens (registered by being defined)."""

    target_class = "portal.tokens.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <secret>`: make a token at /account/tokens/ or POST /api/tokens/."}

"""Rate limits on what anonymous callers can make the portal compute.

DRF's ``AnonRateThrottle`` keeps its counters in Django's default cache, which every web process
shares (settings.CACHES: files under var/ on one host, Redis across hosts). The same throttle
guards the HTML page and the API endpoint, so a caller cannot switch doors to get twice the budget.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle

# A body this small cannot be a dossier worth throttling: the hash form and tiny files pass freely.
THROTTLE_FREE_BODY_BYTES = 64 * 1024


class VerifyUploadThrottle(AnonRateThrottle):
    """Anonymous dossier uploads for verification, per client address (settings.PORTAL_VERIFY_UPLOAD_RATE)."""

    scope = "verify-upload"

    def get_rate(self) -> str:
        return settings.PORTAL_VERIFY_UPLOAD_RATE

    def get_ident(self, request) -> str:
        """The client address as django-axes reads it (settings.PORTAL_CLIENT_IP_HEADERS). DRF's own
        ``get_ident`` takes any X-Forwarded-For the client sends when NUM_PROXIES is unset, so each
        forged header value got a fresh budget."""
        return client_address(request)


class ChallengeThrottle(AnonRateThrottle):
    """Anonymous public challenges per client address (settings.PORTAL_CHALLENGE_RATE): each one
    sends an e-mail and, once confirmed, lands in an officer's list."""

    scope = "challenge"

    def get_rate(self) -> str:
        return settings.PORTAL_CHALLENGE_RATE

    def get_ident(self, request) -> str:
        return client_address(request)


def client_address(request) -> str:
    """The caller's address: the header the operator trusts (PORTAL_CLIENT_IP_HEADERS, REMOTE_ADDR by
    default), never one the client may choose."""
    from axes.helpers import get_client_ip_address

    return (get_client_ip_address(request) or request.META.get("REMOTE_ADDR") or "")[:64]


def request_body_length(request) -> int:
    """The body length the client announced (0 when absent or unreadable)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except (TypeError, ValueError):
        return 0


def verify_upload_allowed(request) -> tuple[bool, int | None]:
    """(allowed, seconds to wait) for an anonymous upload; small bodies and signed-in users pass."""
    if request_body_length(request) <= THROTTLE_FREE_BODY_BYTES:
        return True, None
    throttle = VerifyUploadThrottle()
    if throttle.allow_request(request, None):
        return True, None
    wait = throttle.wait()
    return False, int(wait) + 1 if wait is not None else None

"""Response headers that keep vendor-supplied content inert in the browser."""

from django.http import HttpRequest, HttpResponse

# No CDN, no inline script and no inline style on the portal's own pages: every script and
# stylesheet is served from /static/ (KRDS included), the charts draw with attributes, and
# templates auto-escape all vendor text.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
# Django's admin and the vendored Swagger UI / ReDoc pages set inline styles of their own; only
# they get 'unsafe-inline' for style (scripts stay 'self' everywhere).
THIRD_PARTY_UI_PREFIXES = ("/admin/", "/api/docs/", "/api/redoc/")
CONTENT_SECURITY_POLICY_THIRD_PARTY_UI = CONTENT_SECURITY_POLICY.replace("style-src 'self'",
                                                                         "style-src 'self' 'unsafe-inline'")

# No page of the portal uses a device or sensor; deny them all, for embedded frames too.
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), fullscreen=(self), geolocation=(), "
    "gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(self), "
    "screen-wake-lock=(), usb=(), xr-spatial-tracking=()"
)


class SecurityHeadersMiddleware:
    """Adds a strict Content-Security-Policy, a referrer policy and a permissions policy to every
    response (Cross-Origin-Opener-Policy, HSTS and nosniff come from Django's SecurityMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = (CONTENT_SECURITY_POLICY_THIRD_PARTY_UI if request.path.startswith(THIRD_PARTY_UI_PREFIXES)
                  else CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class SecondFactorMiddleware:
    """Sends a signed-in person who must pass a second factor (portal.second_factor) to set one up
    or to enter a code, before any other page. Runs after django-otp's OTPMiddleware, which tells
    whether this session passed one. API calls with a token are not sessions and pass: tokens are
    made by people who already passed."""

    # Reachable before the second factor: the two pages that give it, signing out, the language.
    OPEN_PREFIXES = ("/account/two-factor/", "/accounts/logout/", "/i18n/", "/static/", "/favicon")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and not request.path.startswith(self.OPEN_PREFIXES)
                and not user.is_verified()):
            from portal.second_factor import user_has_second_factor, user_requires_second_factor

            if user_requires_second_factor(user=user):
                from urllib.parse import urlencode

                from django.shortcuts import redirect

                target = "two-factor-verify" if user_has_second_factor(user=user) else "two-factor-setup"
                if request.path.startswith("/api/"):
                    from django.http import JsonResponse

                    return JsonResponse({"detail": "Second factor required: sign in on the portal's pages first."},
                                        status=403)
                from django.urls import reverse

                return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
class LanguagePreferenceMiddleware:
    """The header's language switcher (Django's ``set_language``) also becomes the language of a
    signed-in person's e-mails (``Profile.language``), so choosing 한국어 once is enough."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._path = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method == "POST" and response.status_code in (302, 204):
            if self._path is None:
                from django.urls import reverse

                self._path = reverse("set_language")
            user = getattr(request, "user", None)
            if request.path == self._path and getattr(user, "is_authenticated", False):
                from portal.notifications import user_language_save

                user_language_save(user=user, language=request.POST.get("language", ""))
        return response


def session_clock() -> float:
    """Seconds since the epoch; one name so tests can move time without sleeping."""
    import time

    return time.time()


class IdleSessionMiddleware:
    """Signs out a session left without a request for longer than its role's idle limit.

    Ministry staff (administrators, officers, reviewers, auditors, and Django superusers) get
    settings.PORTAL_STAFF_IDLE_TIMEOUT_MINUTES (30 by default: a reviewer's screen left unlocked
    in an office stops acting for them); vendors get PORTAL_VENDOR_IDLE_TIMEOUT_MINUTES (8 hours
    by default, a working day: they work from their own premises and hold long upload sessions,
    whose every chunk is a request anyway); 0 turns a limit off, leaving Django's
    SESSION_COOKIE_AGE (two weeks) as the only bound. The next request after the limit signs
    out: a page is redirected to the sign-in page with a message saying why; an API call goes on
    as an anonymous one (401/403). API calls with a token never have a session and pass
    untouched.

    The last request's time is kept in the session, rewritten at most once a minute so a
    signed-in person's every request does not write the session row.
    """

    SESSION_KEY = "portal_last_request_at"
    # Whether the session is a staff one, decided at sign-in (signin_idle_clock_start), so a
    # request costs no query for the person's profile (list pages pin their query counts).
    STAFF_KEY = "portal_idle_staff"
    WRITE_EVERY_S = 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            limit_s = self._limit_seconds(request, user)
            now = session_clock()
            last = request.session.get(self.SESSION_KEY)
            if limit_s and isinstance(last, (int, float)) and now - last > limit_s:
                return self._sign_out(request, minutes=int(limit_s // 60))
            if not isinstance(last, (int, float)) or now - last >= self.WRITE_EVERY_S:
                request.session[self.SESSION_KEY] = int(now)
        return self.get_response(request)

    @classmethod
    def session_start(cls, request: HttpRequest, user) -> None:
        """At sign-in: the idle clock starts now, and whether this is a staff session is noted."""
        request.session[cls.SESSION_KEY] = int(session_clock())
        request.session[cls.STAFF_KEY] = cls.user_is_staff(user)

    @staticmethod
    def user_is_staff(user) -> bool:
        from portal.models import MINISTRY_ROLES

        profile = getattr(user, "profile", None)
        return bool(user.is_superuser or (profile is not None and profile.role in MINISTRY_ROLES))

    def _limit_seconds(self, request: HttpRequest, user) -> float:
        from django.conf import settings

        staff = request.session.get(self.STAFF_KEY)
        if staff is None:  # a session from before this middleware: decided once, then remembered
            staff = request.session[self.STAFF_KEY] = self.user_is_staff(user)
        minutes = settings.PORTAL_STAFF_IDLE_TIMEOUT_MINUTES if staff else settings.PORTAL_VENDOR_IDLE_TIMEOUT_MINUTES
        return max(0.0, float(minutes)) * 60

    def _sign_out(self, request: HttpRequest, *, minutes: int) -> HttpResponse:
        from urllib.parse import urlencode

        from django.contrib import messages
        from django.contrib.auth import logout
        from django.shortcuts import redirect
        from django.urls import reverse
        from django.utils.translation import ngettext

        logout(request)
        if request.path.startswith("/api/"):
            return self.get_response(request)  # now anonymous: DRF answers as it does to anyone unsigned
        messages.warning(request, ngettext(
            "You were signed out after %(minutes)d minute without activity. Sign in again to go on.",
            "You were signed out after %(minutes)d minutes without activity. Sign in again to go on.",
            minutes) % {"minutes": minutes})
        target = reverse("login")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)

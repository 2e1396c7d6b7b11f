"""Response headers that keep vendor-supplied content inert in the browser."""

from django.http import HttpRequest, HttpResponse

# No CDN and no inline script: every script is served from /static/. Inline style
# attributes are allowed (SVG charts use them); templates auto-escape all vendor text.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    """Adds a strict Content-Security-Policy and a referrer policy to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


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

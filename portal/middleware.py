"""Response headers that keep vendor-supplied content inert in the browser."""

from django.http import HttpRequest, HttpResponse

# No CDN and no inline script: every script is served from /static/. Inline style
# attributes are allowed (SVG charts use them); templates auto-escape all vendor text.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)

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
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response

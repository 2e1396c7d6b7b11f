"""The WebAuthn ceremony endpoints (JSON, called by django-otp-webauthn's own static scripts).

django-otp-webauthn's views do the cryptography (py_webauthn: challenge kept in the session and
used once, origin and RP ID checked, signature counter updated); these subclasses add the portal's
rules and are mounted under ``/account/two-factor/passkey/`` in the library's ``otp_webauthn``
namespace, so its template tags find them:

- registering a passkey needs a session that already passed a second factor (the library asks
  that only of people who have a device; the portal asks it of everyone, so a passkey is always
  added beside the authenticator app and its recovery codes, and a stolen password alone never
  registers one), and each registration is audited;
- after a passkey passes at sign-in, the person goes where they were going, by the same rule for
  a safe ``next`` as the code form.
"""

from __future__ import annotations

import json

from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn.views import (BeginCredentialAuthenticationView, BeginCredentialRegistrationView,
                                       CompleteCredentialAuthenticationView, CompleteCredentialRegistrationView)


class _VerifiedSessionOnly:
    def check_can_register(self):
        from django.utils.translation import gettext as _

        super().check_can_register()
        if not self.request.user.is_verified():
            raise exceptions.NotVerified(detail=_(
                "Set up an authenticator app and sign in with it before you add a passkey."))


class PasskeyRegistrationBegin(_VerifiedSessionOnly, BeginCredentialRegistrationView):
    pass


class PasskeyRegistrationComplete(_VerifiedSessionOnly, CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        from portal.second_factor import passkey_registered

        response = super().post(*args, **kwargs)
        if response.status_code == 200:
            passkey_registered(user=self.request.user, device_id=json.loads(response.content)["id"])
        return response


class PasskeyAuthenticationBegin(BeginCredentialAuthenticationView):
    pass


class PasskeyAuthenticationComplete(CompleteCredentialAuthenticationView):
    def get_success_url(self):
        from portal.views import _safe_next

        return _safe_next(self.request)


app_name = "otp_webauthn"
urlpatterns = [
    path("registration/begin/", PasskeyRegistrationBegin.as_view(), name="credential-registration-begin"),
    path("registration/complete/", PasskeyRegistrationComplete.as_view(), name="credential-registration-complete"),
    path("authentication/begin/", PasskeyAuthenticationBegin.as_view(), name="credential-authentication-begin"),
    path("authentication/complete/", PasskeyAuthenticationComplete.as_view(),
         name="credential-authentication-complete"),
    # The library's scripts call gettext(); their Korean lives in locale/ko/LC_MESSAGES/djangojs.po.
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]), name="js-i18n-catalog"),
]

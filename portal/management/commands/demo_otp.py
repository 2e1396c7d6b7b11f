"""Print the current second-factor code of a demo staff login (the embedded demo only).

The demo's staff must pass a second factor like real ministry staff; this stands in for the
authenticator app a visitor does not want to set up. It refuses outside the embedded demo and for
anyone the demo did not create, so it is no way around a real deployment's second factor.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Print the current one-time code of a demo staff login (embedded demo only)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        from django_otp.oath import TOTP
        from django_otp.plugins.otp_totp.models import TOTPDevice

        if not settings.PORTAL_DEMO_COMMANDS:
            raise CommandError("demo_otp works only in the demo (the embedded default, or PORTAL_DEMO_COMMANDS=1).")
        device = TOTPDevice.objects.filter(user__username=username, name="demo authenticator", confirmed=True).first()
        if device is None:
            raise CommandError(f"{username!r} is not a demo staff login with a demo authenticator.")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.stdout.write(f"{totp.token():0{device.digits}d}")

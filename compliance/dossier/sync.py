"""Run pyHanko's synchronous API safely from any caller (the helper lives with the signing
identity in ``portal.signing``; kept here so existing imports still work)."""

from __future__ import annotations

from portal.signing import run_outside_event_loop

__all__ = ["run_outside_event_loop"]

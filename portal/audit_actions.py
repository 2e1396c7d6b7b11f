"""Readable names of the audit trail's action codes and object types, in the reader's language.

The trail stores the code (``dossier.issue``) because the hash chain covers it and it must never
change; people read the label. Every code the services record has a label here:
``tests/portal/test_audit_labels.py`` reads the code of every room for ``audit_record(action=...)``
and fails on a code without one, so a new action cannot reach the trail unnamed. A code the
catalogue does not know (an old or foreign event) is shown as it is.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

AUDIT_ACTION_LABELS = {
    # Registry (projects.services)
    "programme.create": _("Programme registered"),
    "project.create": _("Project registered"),
    "project.reviewer_assign": _("Reviewer assigned"),
    "project.reviewer_unassign": _("Reviewer removed"),
    "user.invite": _("Vendor member invited"),
    # Vendor intake (projects.services, projects.uploads)
    "submission.open": _("Submission opened"),
    "declaration.update": _("Declaration updated"),
    "declaration.sign": _("Declaration signed"),
    "submission.submit": _("Submission submitted"),
    "artifact.upload": _("Artifact uploaded"),
    "artifact.delete": _("Artifact removed"),
    # Check runs (compliance.services.runs: "check.<state>" for every state a run ends in)
    "check.succeeded": _("Check succeeded"),
    "check.failed": _("Check failed"),
    "check.inconclusive": _("Check inconclusive"),
    "check.blocked": _("Check not run (intake did not accept the file)"),
    "check.rerun": _("Check re-run requested"),
    "check.superseded": _("Check attempt superseded"),
    # Judgement (compliance.services.decisions, policy)
    "finding.decide": _("Finding decided"),
    "finding.reply": _("Vendor replied to a finding"),
    "finding.message": _("Message posted on a finding"),
    "challenge.filed": _("Public challenge filed"),
    "challenge.confirmed": _("Public challenge confirmed by e-mail"),
    "challenge.accepted": _("Public challenge accepted"),
    "challenge.rejected": _("Public challenge rejected as unfounded"),
    "challenge.merged": _("Public challenge merged into another"),
    "challenge.replied": _("Vendor replied to a public challenge"),
    "challenge.retested": _("Public challenge re-tested"),
    "challenge.retest_requested": _("Public challenge re-test requested"),
    "challenge.decided": _("Public challenge decided"),
    "challenge.reference_chosen": _("Reference model chosen for a public challenge's re-test"),
    "challenge.reply_reminded": _("Vendor reminded of a public challenge's reply date"),
    "challenge.reply_overdue": _("Officers told a public challenge's reply is overdue"),
    "challenge.file_downloaded": _("Public challenge evidence file downloaded"),
    "submission.decide": _("Submission decided"),
    "artifact.rejected": _("Quarantined artifact rejected"),
    "artifact.released": _("Quarantined artifact released"),
    "policy.update": _("Programme policy updated"),
    "reference.fingerprint": _("Reference model fingerprinted"),
    # Dossiers (compliance.dossiers)
    "dossier.request": _("Dossier requested"),
    "dossier.issue": _("Dossier issued"),
    "dossier.fail": _("Dossier rendering failed"),
    "dossier.retry": _("Dossier retried"),
    "dossier.download": _("Dossier downloaded"),
    # New versions built on the last (projects.services, compliance.services.reuse)
    "artifact.carry_over": _("Artifact carried over from the previous version"),
    "declaration.carry_over": _("Declaration carried over as an unsigned draft"),
    "check.reused": _("Check result reused from an earlier version"),
    # Sign-in and credentials (portal.signin, portal.second_factor, portal.tokens, portal.password_reset)
    "signin.locked_out": _("Sign-in paused after repeated failures"),
    "signin.unlocked": _("Sign-in pause lifted by an administrator"),
    "second_factor.enrolled": _("Second factor set up"),
    "second_factor.recovery_code_used": _("Recovery code used to sign in"),
    "second_factor.reset": _("Second factor reset by an administrator"),
    "second_factor.passkey_registered": _("Passkey registered"),
    "second_factor.passkey_removed": _("Passkey removed"),
    "password.reset_requested": _("Password reset link sent by e-mail"),
    "password.reset_completed": _("Password reset by e-mail link"),
    "token.created": _("API token made"),
    "token.revoked": _("API token revoked"),
    "token.expired": _("API token expired"),
}

AUDIT_OBJECT_TYPE_LABELS = {
    "programme": _("Programme"),
    "project": _("Project"),
    "submission": _("Submission"),
    "artifact": _("Artifact"),
    "check_run": _("Check run"),
    "finding": _("Finding"),
    "dossier": _("Dossier"),
    "reference_model": _("Reference model"),
    "user": _("User"),
    "signin": _("Sign-in"),
    "api_token": _("API token"),
}


def audit_action_label(code: str) -> str:
    """The label of an action code in the active language, or the code itself when unknown."""
    label = AUDIT_ACTION_LABELS.get(code)
    return str(label) if label is not None else code


def audit_object_type_label(object_type: str) -> str:
    label = AUDIT_OBJECT_TYPE_LABELS.get(object_type)
    return str(label) if label is not None else object_type


def audit_action_choices() -> list[tuple[str, str]]:
    """(code, label) for a select, in the order above (grouped by room)."""
    return [(code, label) for code, label in AUDIT_ACTION_LABELS.items()]


def audit_object_type_choices() -> list[tuple[str, str]]:
    return list(AUDIT_OBJECT_TYPE_LABELS.items())

"""Signals the registry sends; the compliance room answers them (intake never imports the judge)."""

from django.dispatch import Signal

# Sent inside the transaction that marks a submission submitted; receivers
# must defer broker work with transaction.on_commit. Arguments: submission, user.
submission_submitted = Signal()

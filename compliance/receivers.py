"""The compliance room's answers to the registry's signals."""

from django.dispatch import receiver

from projects.signals import submission_submitted


@receiver(submission_submitted, dispatch_uid="compliance.enqueue_checks")
def enqueue_checks_on_submit(sender, submission, user, **kwargs) -> None:
    """Create the submission's check runs; their tasks are sent after the transaction commits."""
    from compliance.services.runs import check_runs_create_for_submission

    check_runs_create_for_submission(submission=submission)

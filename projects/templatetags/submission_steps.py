"""The KRDS step indicator of a vendor's submission: artifacts, declaration, submit, checks, decision."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

from projects.models import Declaration, Submission

register = template.Library()

STEPS = (
    ("artifacts", _("Artifacts")),
    ("declaration", _("Declaration")),
    ("submit", _("Submit")),
    ("checks", _("Checks")),
    ("decision", _("Decision")),
)
# After submission the status alone says where the submission stands; a decided submission has
# every step done (changes requested opens a new draft, a new version with its own steps).
_STEP_OF_STATUS = {
    Submission.Status.SUBMITTED: 3,
    Submission.Status.CHECKING: 3,
    Submission.Status.CHECKED: 4,
    Submission.Status.APPROVED: 5,
    Submission.Status.CHANGES_REQUESTED: 5,
    Submission.Status.REJECTED: 5,
}


def submission_step_index(submission: Submission, *, files_missing: bool | None = None) -> int:
    """Index (0-4) of the current step; 5 when every step is done. ``files_missing``: whether a
    sharded or split model of the draft misses a file, when the caller knows already (the draft
    page's next steps read the shard indexes once); None reads them here."""
    if submission.status in _STEP_OF_STATUS:
        return _STEP_OF_STATUS[submission.status]
    if not submission.artifacts.exists():
        return 0
    if files_missing is None:
        from projects.selectors import gguf_splits_missing, shards_missing

        files_missing = bool(shards_missing(submission=submission) or gguf_splits_missing(submission=submission))
    if files_missing:
        return 0  # the artifacts step is not done
    try:
        signed = submission.declaration.is_signed
    except Declaration.DoesNotExist:
        signed = False
    return 2 if signed else 1


@register.inclusion_tag("projects/_submission_steps.html")
def submission_steps(submission: Submission, files_missing: bool | None = None) -> dict:
    current = submission_step_index(submission, files_missing=files_missing)
    steps = [
        {"number": i + 1, "key": key, "label": label, "state": "done" if i < current else "active" if i == current else ""}
        for i, (key, label) in enumerate(STEPS)
    ]
    return {"steps": steps, "status_label": submission.get_status_display()}

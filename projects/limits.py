"""How much a vendor may send, field by field (issue #10), and the one check services run.

A declaration with a 1 MB data summary and 1,000 base-model rows was accepted, and its dossier
then hit the render time limit on every retry. Every vendor-controlled field therefore has a
limit here; forms and serializers take their ``max_length`` / row counts from these constants,
and services check again (the API, the admin and the commands all go through services), so no
door lets more in. Errors name the field and the limit. The table in README.md ("Limits") lists
the same numbers; change both together.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# A data summary is a description of sources, sizes and filtering, not the data: the longest in the
# demo and the programme's template is ~3,000 characters; 20,000 (about 8 printed pages) leaves room
# for a detailed one and keeps the dossier's declaration section to a few pages.
DATA_SUMMARY_CHARS = 20_000
# A model is built from a handful of components (backbone, vision encoder, tokenizer...); 100 rows
# covers merges of many checkpoints and keeps the dossier's table to ~3 pages.
BASE_MODEL_ROWS = 100
# Open projects taken on purpose (inference engine, training framework, kernels): 100 is several
# times a large stack's direct dependencies; the SBOM artifact carries the full tree.
THIRD_PARTY_CODE_ROWS = 100
# Any one text of a row (name, version, licence, source URL, use): 500 holds a long URL or an SPDX
# expression with a dozen terms.
ROW_TEXT_CHARS = 500
# The column's width (Declaration.signatory_name).
SIGNATORY_NAME_CHARS = 200
# A submission's note to reviewers: a cover note, not a report (reports are artifacts).
NOTE_CHARS = 5_000
# A vendor's reply to a finding and a reviewer's justification: about four printed pages each.
REPLY_CHARS = 10_000
JUSTIFICATION_CHARS = 10_000
# One message of a finding's conversation (vendor or reviewer): the size of a reply. A longer
# answer is a report, which goes in as the message's attachment.
MESSAGE_CHARS = 10_000
# A public challenge (issue #15): a statement as long as a message, figures as long as a note.
CHALLENGE_STATEMENT_CHARS = 10_000
CHALLENGE_FIGURES_CHARS = 5_000
# A message's attachment is correspondence (a log excerpt, a scanned letter, a short report),
# not a deliverable: 100 MiB holds a few thousand scanned pages and is read by intake in under a
# second; deliverables go in as artifacts of a new submission version.
MESSAGE_ATTACHMENT_BYTES = 100 * 1024 * 1024
# File names are stored under their own name: 255 bytes is the file-name limit of ext4, XFS and
# most file systems, and a common object-storage key-part limit. Bytes, not characters: a
# Korean character takes 3 bytes in UTF-8, so 85 Korean characters.
FILENAME_BYTES = 255
# One chunk of a resumable upload. The upload session's lock is held while a chunk is appended
# and hashed (~0.3 s for 64 MiB at this machine's ~300 MB/s), and on SQLite every writer of the
# portal waits for that lock; the page's script sends 8 MB chunks.
UPLOAD_CHUNK_BYTES = 64 * 1024 * 1024
# The column holds 14 digits with one decimal (Declaration.gpu_hours).
GPU_HOURS_MAX = Decimal("9999999999999.9")
# 1e32 FLOPs is a million times the largest published training run (~5e26); beyond it is a typo.
TRAINING_FLOPS_MAX = 1e32

LABELS = {
    "data_summary": _("Training data summary"),
    "base_models": _("Base models"),
    "third_party_code": _("Third-party code"),
    "signatory_name": _("Your full name"),
    "note": _("Note to reviewers"),
    "reply": _("Your reply"),
    "justification": _("Justification"),
    "message": _("Message"),
    "challenge_statement": _("Statement"),
    "challenge_figures": _("Figures"),
    "filename": _("file name"),
}
TEXT_LIMITS = {
    "data_summary": DATA_SUMMARY_CHARS,
    "signatory_name": SIGNATORY_NAME_CHARS,
    "note": NOTE_CHARS,
    "reply": REPLY_CHARS,
    "justification": JUSTIFICATION_CHARS,
    "message": MESSAGE_CHARS,
    "challenge_statement": CHALLENGE_STATEMENT_CHARS,
    "challenge_figures": CHALLENGE_FIGURES_CHARS,
}
ROW_LIMITS = {"base_models": BASE_MODEL_ROWS, "third_party_code": THIRD_PARTY_CODE_ROWS}


def _number(n) -> str:
    return f"{n:,}"


def _too_long(field: str) -> str:
    return gettext("%(field)s: at most %(limit)s characters.") % {
        "field": LABELS[field], "limit": _number(TEXT_LIMITS[field])}


def _too_many(field: str) -> str:
    return gettext("%(field)s: at most %(limit)s entries.") % {"field": LABELS[field],
                                                               "limit": _number(ROW_LIMITS[field])}


def _row_text_too_long() -> str:
    return gettext("Each text of an entry: at most %(limit)s characters.") % {"limit": _number(ROW_TEXT_CHARS)}


# Lazy: forms and serializers are built at import, the language is chosen per request.
too_long_message = lazy(_too_long, str)
too_many_message = lazy(_too_many, str)
row_text_too_long_message = lazy(_row_text_too_long, str)


def text_field_kwargs(field: str) -> dict:
    """``max_length`` and its error for a form or serializer CharField (Django and DRF take the
    same two arguments; the message holds no placeholder either formats)."""
    return {"max_length": TEXT_LIMITS[field], "error_messages": {"max_length": too_long_message(field)}}


def rows_field_kwargs(field: str) -> dict:
    """``max_length`` and its error for a serializer ListField of rows."""
    return {"max_length": ROW_LIMITS[field], "error_messages": {"max_length": too_many_message(field)}}


def row_text_kwargs() -> dict:
    return {"max_length": ROW_TEXT_CHARS, "error_messages": {"max_length": row_text_too_long_message()}}


def limit_text(*, field: str, value: str) -> str:
    """The service-side check of one text field; returns the value."""
    limit = TEXT_LIMITS[field]
    if value is not None and len(value) > limit:
        raise ValidationError({field: gettext("%(field)s: at most %(limit)s characters (this one has %(size)s).")
                               % {"field": LABELS[field], "limit": _number(limit), "size": _number(len(value))}})
    return value


def limit_rows(*, field: str, rows: list) -> list:
    """The service-side check of a list of rows: how many, and each text in them."""
    limit = ROW_LIMITS[field]
    if len(rows) > limit:
        raise ValidationError({field: gettext("%(field)s: at most %(limit)s entries (this one has %(size)s).")
                               % {"field": LABELS[field], "limit": _number(limit), "size": _number(len(rows))}})
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            continue  # the caller says what a row must be
        for key, value in row.items():
            if isinstance(value, str) and len(value) > ROW_TEXT_CHARS:
                raise ValidationError({field: gettext(
                    "%(field)s, entry %(n)s, %(key)s: at most %(limit)s characters (this one has %(size)s).")
                    % {"field": LABELS[field], "n": n, "key": key, "limit": _number(ROW_TEXT_CHARS),
                       "size": _number(len(value))}})
    return rows


def limit_filename(*, value: str) -> str:
    """File names are bounded in UTF-8 bytes (see FILENAME_BYTES)."""
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > FILENAME_BYTES:
        raise ValidationError({"filename": gettext(
            "%(field)s: at most %(limit)s bytes in UTF-8 (this one has %(size)s).")
            % {"field": LABELS["filename"], "limit": _number(FILENAME_BYTES), "size": _number(size)}})
    return value


def limit_compute(*, gpu_hours=None, training_flops=None) -> None:
    """The declared compute: numbers the columns hold and a finite, plausible FLOP count."""
    import math

    if gpu_hours is not None and Decimal(gpu_hours) > GPU_HOURS_MAX:
        raise ValidationError({"gpu_hours": gettext("Training compute (GPU-hours): at most %(limit)s.")
                               % {"limit": _number(GPU_HOURS_MAX)}})
    if training_flops is not None and (not math.isfinite(float(training_flops))
                                       or float(training_flops) > TRAINING_FLOPS_MAX):
        raise ValidationError({"training_flops": gettext("Training compute (FLOPs): at most %(limit)s.")
                               % {"limit": f"{TRAINING_FLOPS_MAX:.0e}"}})


def _as_field_error(check, field: str, value) -> None:
    """Run a service check as a model-field validator (which must raise a list, not a dict)."""
    try:
        check()
    except ValidationError as exc:
        raise ValidationError(exc.message_dict.get(field) or exc.messages) from None


# Model-field validators: the Django admin saves models through ModelForms, not services, so the
# same limits are attached to the fields it edits (referenced by name in migrations).
def validate_data_summary(value) -> None:
    _as_field_error(lambda: limit_text(field="data_summary", value=value), "data_summary", value)


def validate_note(value) -> None:
    _as_field_error(lambda: limit_text(field="note", value=value), "note", value)


def validate_message(value) -> None:
    _as_field_error(lambda: limit_text(field="message", value=value), "message", value)


def validate_base_models(value) -> None:
    if isinstance(value, list):
        _as_field_error(lambda: limit_rows(field="base_models", rows=value), "base_models", value)


def validate_third_party_code(value) -> None:
    if isinstance(value, list):
        _as_field_error(lambda: limit_rows(field="third_party_code", rows=value), "third_party_code", value)


def validate_filename(value) -> None:
    _as_field_error(lambda: limit_filename(value=value), "filename", value)

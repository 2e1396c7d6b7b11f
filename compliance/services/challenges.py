"""Public challenges (issue #15): anyone files one against a funded project, officers triage it,
the portal re-tests the claim, the vendor replies, an officer decides, the outcome is published.

Every write is here so the pages, a command or an API behave the same: each checks who may act,
applies the limits of ``projects.limits`` (refused, never cut) and leaves an audit entry. The
challenger has no account: they are known by a confirmed e-mail address, and what they file
reaches officers only once the signed link in that e-mail is followed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from compliance.models import Challenge, ChallengeFile
from portal.selectors import user_can_manage
from portal.services import audit_record
from projects.limits import MESSAGE_ATTACHMENT_BYTES, limit_text
from projects.models import Project
from projects.selectors import user_can_submit
from projects.uploads import filename_clean

CONFIRM_SALT = "compliance.challenge.confirm"
# A challenge carries a handful of exhibits; each bounded like a message attachment.
CHALLENGE_FILES_MAX = 5
CHUNK = 1024 * 1024
# The whole filing: every file at its limit plus 1 MiB for the texts and the form's framing.
CHALLENGE_BODY_MAX_BYTES = CHALLENGE_FILES_MAX * MESSAGE_ATTACHMENT_BYTES + 1024 * 1024
DECIDED = (Challenge.Status.UPHELD, Challenge.Status.NOT_UPHELD)
# The claims the portal re-tests itself on the heavy queue (compliance.services.challenge_retest).
RETESTED_CLAIMS = (Challenge.Claim.DERIVED_FROM_MODEL, Challenge.Claim.COPIED_CODE, Challenge.Claim.LICENCE_BREACH)
# The vendor is reminded this many days before the reply is due.
REPLY_REMINDER_DAYS = 2
# A fingerprint bundle uploaded from the web: a compact bundle of a 70B-shaped model is about
# 60 MB (19 MB at d = 4096, BENCHMARKS.md), so 256 MiB leaves room without inviting weights.
REFERENCE_BUNDLE_MAX_BYTES = 256 * 1024 * 1024


def _label(challenge: Challenge) -> str:
    return f"#{challenge.pk} {challenge.project.code}"


def _limited(field: str, value: str, form_field: str) -> str:
    value = (value or "").strip()
    try:
        limit_text(field=field, value=value)
    except ValidationError as exc:
        raise ValidationError({form_field: next(iter(exc.message_dict.values()))}) from None
    return value


def _file_store(*, challenge: Challenge, side: str, name: str, fileobj: BinaryIO) -> ChallengeFile:
    """Stream one exhibit into storage while hashing it; refused past the attachment limit."""
    digest = hashlib.sha256()
    size = 0
    settings.UPLOAD_PARTIAL_DIR.mkdir(parents=True, exist_ok=True)
    path = settings.UPLOAD_PARTIAL_DIR / f"challenge-{os.getpid()}-{os.urandom(6).hex()}.part"
    try:
        with open(path, "wb") as out:
            while block := fileobj.read(CHUNK):
                size += len(block)
                if size > MESSAGE_ATTACHMENT_BYTES:
                    raise ValidationError({"files": _("An evidence file is at most %(limit)s MiB.") % {
                        "limit": f"{MESSAGE_ATTACHMENT_BYTES // (1024 * 1024):,}"}})
                out.write(block)
                digest.update(block)
        if size == 0:
            raise ValidationError({"files": _("The file is empty.")})
        row = ChallengeFile(challenge=challenge, side=side, original_name=filename_clean(name), size=size,
                            sha256=digest.hexdigest())
        with open(path, "rb") as stored:
            row.file.save(f"{challenge.pk}/{digest.hexdigest()}", File(stored), save=False)
        row.save()
        pk = row.pk
        transaction.on_commit(lambda: _intake_send(file_id=pk))
        return row
    finally:
        path.unlink(missing_ok=True)


def _intake_send(*, file_id: int) -> None:
    from compliance.broker import task_send
    from compliance.tasks import challenge_file_intake_task

    task_send(task=challenge_file_intake_task, args=[file_id], label=f"challenge file {file_id} intake")


def challenge_file_intake(*, file_id: int) -> str:
    """The artifact intake on one evidence file: the same engine and verdicts as a vendor's
    artifact, no declared kind (type against name, archive tricks, pickled code). Claimed with one
    conditional UPDATE so a second delivery does nothing."""
    from compliance.engine.intake import artifact_inspect
    from compliance.engine.intake_common import IntakeLimits

    if not ChallengeFile.objects.filter(pk=file_id, intake_status="quarantined").update(intake_status="checking"):
        return "skipped"
    row = ChallengeFile.objects.get(pk=file_id)
    try:
        with tempfile.TemporaryDirectory(prefix="challenge-intake-") as tmp:
            # Under its own name: the engine judges the content against the name's extension. A
            # copy (at most MESSAGE_ATTACHMENT_BYTES), not storage_place's symbolic link, which the
            # engine reports with the server's media path, shown to officers and the vendor.
            path = Path(tmp) / (Path(row.original_name).name or "evidence")
            with row.file.open("rb") as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target, CHUNK)
            report = artifact_inspect(path=path, declared_kind=None,
                                      limits=IntakeLimits(max_bytes=MESSAGE_ATTACHMENT_BYTES)).to_dict()
        status = report["verdict"] if report["verdict"] in {"accepted", "rejected"} else "quarantined_held"
        findings = [{"severity": f["severity"], "code": f["code"], "message": f["message"][:500]}
                    for f in report.get("findings", [])][:20]
    except Exception as exc:  # recorded: an officer sees the file was not judged, and why
        status, findings = "failed", [{"severity": "info", "code": "intake_failed",
                                       "message": f"{type(exc).__name__}: {exc}"[:500]}]
    ChallengeFile.objects.filter(pk=file_id).update(intake_status=status, intake_findings=findings)
    return status


def challenge_confirm_token(*, challenge: Challenge) -> str:
    return signing.dumps({"c": challenge.pk, "e": challenge.contact_email}, salt=CONFIRM_SALT)


def challenge_file(*, project: Project, model_named: str, claim: str, claimed_source: str, statement: str,
                   figures: str, contact_email: str, client_address: str = "",
                   files: list[tuple[str, BinaryIO]] = (), confirm_base_url: str = "") -> Challenge:
    """Record an anonymous challenge, unconfirmed, and e-mail its signed confirmation link.

    Only funded projects (active, under review or completed) can be challenged; the caller's
    rate limit (portal.throttles) runs before this."""
    if project.status in {Project.Status.ELIMINATED, Project.Status.SUSPENDED}:
        raise ValidationError({"project": _("Choose a funded project.")})
    if claim not in Challenge.Claim.values:
        raise ValidationError({"claim": _("Choose what is claimed.")})
    model_named = (model_named or "").strip()[:300]
    if not model_named:
        raise ValidationError({"model_named": _("Name the model you challenge.")})
    statement = _limited("challenge_statement", statement, "statement")
    if not statement:
        raise ValidationError({"statement": _("Say what you claim and why.")})
    figures = _limited("challenge_figures", figures, "figures")
    contact_email = (contact_email or "").strip()
    validate_email(contact_email)
    if len(files) > CHALLENGE_FILES_MAX:
        raise ValidationError({"files": _("At most %(n)s evidence files.") % {"n": CHALLENGE_FILES_MAX}})
    with transaction.atomic():
        challenge = Challenge.objects.create(
            project=project, model_named=model_named, claim=claim, claimed_source=(claimed_source or "").strip()[:500],
            statement=statement, figures=figures, contact_email=contact_email, client_address=client_address[:64])
        for name, fileobj in files:
            _file_store(challenge=challenge, side=ChallengeFile.Side.CHALLENGER, name=name, fileobj=fileobj)
        audit_record(actor=None, action="challenge.filed", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=project.pk,
                     data={"claim": claim, "model": model_named, "source": challenge.claimed_source,
                           "statement_sha256": hashlib.sha256(statement.encode()).hexdigest(),
                           "files": [f.sha256 for f in challenge.files.all()], "client": client_address[:64]})
        link = confirm_base_url + reverse("challenge-confirm", kwargs={"token": challenge_confirm_token(
            challenge=challenge)})
        days = settings.PORTAL_CHALLENGE_CONFIRM_SECONDS // 86400
        body = _("You filed challenge #%(id)s against %(project)s on the governance portal.\n\n"
                 "Confirm your address within %(days)s days to send it to the programme's officers:\n%(link)s\n\n"
                 "If you did not file it, ignore this message.") % {
            "id": challenge.pk, "project": project.title, "days": days, "link": link}
        transaction.on_commit(lambda: send_mail(_("Confirm your challenge #%(id)s") % {"id": challenge.pk}, body,
                                                settings.DEFAULT_FROM_EMAIL, [contact_email]))
    return challenge


def challenge_confirm(*, token: str) -> Challenge:
    """Follow the e-mailed link: an unconfirmed challenge becomes filed (officers see it)."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=settings.PORTAL_CHALLENGE_CONFIRM_SECONDS)
    except signing.SignatureExpired:
        raise ValidationError(_("This confirmation link has expired; file the challenge again.")) from None
    except signing.BadSignature:
        raise ValidationError(_("This confirmation link is not valid.")) from None
    with transaction.atomic():
        challenge = Challenge.objects.select_for_update().select_related("project").filter(
            pk=data.get("c"), contact_email=data.get("e")).first()
        if challenge is None:
            raise ValidationError(_("This confirmation link is not valid."))
        if challenge.status != Challenge.Status.UNCONFIRMED:
            return challenge  # a second click changes nothing
        challenge.status = Challenge.Status.FILED
        challenge.confirmed_at = timezone.now()
        challenge.save(update_fields=["status", "confirmed_at"])
        _officers_notify(challenge=challenge, event="Confirmed by the challenger, awaiting triage")
        audit_record(actor=None, action="challenge.confirmed", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=challenge.project_id, data={})
    return challenge


def _officer_only(user) -> None:
    if not user_can_manage(user=user):
        raise PermissionDenied(_("Only administrators and programme officers triage and decide challenges."))


def _locked(challenge: Challenge, allowed: tuple) -> Challenge:
    row = Challenge.objects.select_for_update().select_related("project").get(pk=challenge.pk)
    if row.status not in allowed:
        raise ValidationError(_("This challenge is %(status)s; that step is no longer open.") % {
            "status": row.get_status_display()})
    return row


def challenge_reply_days_for(*, programme_id: int) -> int:
    """Days the vendor has to reply: the programme policy's figure, else the portal's default."""
    from compliance.models import ProgrammePolicy

    days = ProgrammePolicy.objects.filter(programme_id=programme_id).values_list(
        "challenge_reply_days", flat=True).first()
    return days or settings.PORTAL_CHALLENGE_REPLY_DAYS


def challenge_accept(*, user, challenge: Challenge, reasons: str = "") -> Challenge:
    """Accept a filed challenge for examination: the vendor is told and given the programme's
    reply period; a derived-from-model, copied-code or licence claim is re-tested on the heavy
    queue."""
    _officer_only(user)
    reasons = _limited("justification", reasons, "reasons")
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.FILED,))
        challenge.status = Challenge.Status.ACCEPTED
        challenge.officer_reasons = reasons
        challenge.triaged_at = timezone.now()
        days = challenge_reply_days_for(programme_id=challenge.project.programme_id)
        challenge.reply_due_on = (timezone.localtime() + timedelta(days=days)).date()
        if challenge.claim in RETESTED_CLAIMS:
            challenge.retest = {"state": "queued"}
        challenge.save(update_fields=["status", "officer_reasons", "triaged_at", "reply_due_on", "retest"])
        audit_record(actor=user, action="challenge.accepted", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=challenge.project_id,
                     data={"reasons": reasons, "reply_due_on": challenge.reply_due_on.isoformat(),
                           "reply_days": days})
        _vendor_notify(user=user, challenge=challenge)
        if challenge.claim in RETESTED_CLAIMS:
            _retest_send(challenge_id=challenge.pk)
    return challenge


def _retest_send(*, challenge_id: int) -> None:
    """Send the re-test after commit; a broker that cannot take it leaves it queued, and the
    officer's "re-test" button sends it again."""
    from compliance.broker import task_send
    from compliance.tasks import challenge_retest_task

    transaction.on_commit(lambda: task_send(task=challenge_retest_task, args=[challenge_id],
                                            label=f"challenge {challenge_id} re-test", queue="heavy"))


def challenge_retest_request(*, user, challenge: Challenge) -> Challenge:
    """Run the re-test again: after an officer registered the named model, after a failure, or
    when the first send never reached a worker."""
    _officer_only(user)
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.ACCEPTED,))
        if challenge.claim not in RETESTED_CLAIMS:
            raise ValidationError(_("Only derived-from-model, copied-code and licence claims are re-tested by the "
                                    "portal."))
        if challenge.retest.get("state") == "running":
            raise ValidationError(_("The re-test is running."))
        challenge.retest = {"state": "queued"}
        challenge.save(update_fields=["retest"])
        audit_record(actor=user, action="challenge.retest_requested", object_type="challenge",
                     object_id=challenge.pk, object_label=_label(challenge), project_id=challenge.project_id,
                     data={})
        _retest_send(challenge_id=challenge.pk)
    return challenge


def _vendor_notify(*, user, challenge: Challenge) -> None:
    from portal.notifications import notify
    from projects.selectors import project_vendor_member_ids

    notify(kind="challenge_received", recipients=project_vendor_member_ids(project=challenge.project),
           url=reverse("challenge-detail", kwargs={"pk": challenge.pk}), actor=user,
           params={"project": challenge.project.title, "challenge": challenge.pk,
                   "due_on": challenge.reply_due_on.isoformat()})


def _officers_notify(*, challenge: Challenge, event: str, actor=None) -> None:
    """Programme officers are told when a challenge awaits them (confirmed, or the vendor
    replied). ``event`` is an English msgid, translated when the notification is shown."""
    from portal.notifications import notify
    from projects.selectors import programme_officer_ids

    notify(kind="challenge_filed", recipients=programme_officer_ids(), actor=actor,
           url=reverse("challenge-detail", kwargs={"pk": challenge.pk}),
           params={"project": challenge.project.title, "challenge": challenge.pk, "event_label": event})


# The events' msgids, for makemessages (the notification translates them when shown).
_EVENT_MSGIDS = (gettext_noop("Confirmed by the challenger, awaiting triage"), gettext_noop("The vendor replied"),
                 gettext_noop("The vendor's reply is overdue"))


def challenge_reject(*, user, challenge: Challenge, reasons: str) -> Challenge:
    """Reject a filed challenge as unfounded; the reasons are published on the register."""
    _officer_only(user)
    reasons = _limited("justification", reasons, "reasons")
    if not reasons:
        raise ValidationError({"reasons": _("Give the reasons for rejecting the challenge.")})
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.FILED,))
        challenge.status = Challenge.Status.REJECTED
        challenge.officer_reasons = reasons
        challenge.published_summary = reasons
        challenge.triaged_at = challenge.decided_at = timezone.now()
        challenge.save(update_fields=["status", "officer_reasons", "published_summary", "triaged_at", "decided_at"])
        audit_record(actor=user, action="challenge.rejected", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=challenge.project_id, data={"reasons": reasons})
    return challenge


def challenge_merge(*, user, challenge: Challenge, into: Challenge, reasons: str = "") -> Challenge:
    """Merge a filed challenge into another open one about the same project (the same claim
    made twice is examined once)."""
    _officer_only(user)
    reasons = _limited("justification", reasons, "reasons")
    if into.pk == challenge.pk or into.project_id != challenge.project_id:
        raise ValidationError({"into": _("Merge only into another challenge against the same project.")})
    if into.status not in (Challenge.Status.FILED, Challenge.Status.ACCEPTED):
        raise ValidationError({"into": _("Merge only into an open challenge.")})
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.FILED,))
        challenge.status = Challenge.Status.MERGED
        challenge.merged_into = into
        challenge.officer_reasons = reasons
        challenge.triaged_at = timezone.now()
        challenge.save(update_fields=["status", "merged_into", "officer_reasons", "triaged_at"])
        audit_record(actor=user, action="challenge.merged", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=challenge.project_id,
                     data={"into": into.pk, "reasons": reasons})
    return challenge


def challenge_reply(*, user, challenge: Challenge, body: str, files: list[tuple[str, BinaryIO]] = ()) -> Challenge:
    """The vendor's reply to an accepted challenge, with its evidence; it joins the case."""
    if not user_can_submit(user=user, project=challenge.project):
        raise PermissionDenied(_("Only the project's vendor members reply to a challenge."))
    body = _limited("reply", body, "body")
    if not body:
        raise ValidationError({"body": _("Write a reply.")})
    if len(files) > CHALLENGE_FILES_MAX:
        raise ValidationError({"files": _("At most %(n)s evidence files.") % {"n": CHALLENGE_FILES_MAX}})
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.ACCEPTED,))
        # A later reply is appended under its date, never replacing what the case already holds.
        if challenge.vendor_reply:
            body = f"{challenge.vendor_reply}\n\n— {timezone.localtime():%Y-%m-%d %H:%M}\n{body}"
            body = _limited("reply", body, "body")
        challenge.vendor_reply = body
        challenge.vendor_replied_at = timezone.now()
        challenge.save(update_fields=["vendor_reply", "vendor_replied_at"])
        stored = [_file_store(challenge=challenge, side=ChallengeFile.Side.VENDOR, name=n, fileobj=f)
                  for n, f in files]
        _officers_notify(challenge=challenge, event="The vendor replied", actor=user)
        audit_record(actor=user, action="challenge.replied", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=challenge.project_id,
                     data={"body_sha256": hashlib.sha256(body.encode()).hexdigest(),
                           "files": [f.sha256 for f in stored]})
    return challenge


def challenge_decide(*, user, challenge: Challenge, outcome: str, reasons: str, summary: str,
                     publish_files=()) -> Challenge:
    """Decide an accepted challenge: upheld or not, with reasons and the summary the public
    register shows. ``publish_files`` (ids) are the challenger's evidence files the public may
    download from the register; only files intake accepted, never the vendor's."""
    _officer_only(user)
    publish_ids = {int(pk) for pk in publish_files}
    if outcome not in DECIDED:
        raise ValidationError({"outcome": _("Choose upheld or not upheld.")})
    reasons = _limited("justification", reasons, "reasons")
    summary = _limited("note", summary, "summary")
    if not reasons or not summary:
        raise ValidationError({"summary": _("Give the reasons and the summary to publish.")})
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.ACCEPTED,))
        challenge.status = outcome
        challenge.officer_reasons = reasons
        challenge.published_summary = summary
        challenge.decided_at = timezone.now()
        challenge.save(update_fields=["status", "officer_reasons", "published_summary", "decided_at"])
        publishable = challenge.files.filter(side=ChallengeFile.Side.CHALLENGER, intake_status="accepted")
        if publish_ids - set(publishable.filter(pk__in=publish_ids).values_list("pk", flat=True)):
            raise ValidationError({"publish_files": _(
                "Only the challenger's evidence files that intake accepted can be published.")})
        published = list(publishable.filter(pk__in=publish_ids).values_list("sha256", flat=True))
        publishable.filter(pk__in=publish_ids).update(published=True)
        audit_record(actor=user, action="challenge.decided", object_type="challenge", object_id=challenge.pk,
                     object_label=_label(challenge), project_id=challenge.project_id,
                     data={"outcome": outcome, "reasons": reasons, "summary": summary, "published_files": published})
    return challenge


def challenge_file_downloaded(*, user, file: ChallengeFile) -> None:
    """Every download of evidence is on the record (the public's too: actor none)."""
    audit_record(actor=user if getattr(user, "is_authenticated", False) else None, action="challenge.file_downloaded",
                 object_type="challenge", object_id=file.challenge_id,
                 object_label=f"#{file.challenge_id} {file.original_name}"[:200],
                 project_id=file.challenge.project_id, data={"file": file.pk, "sha256": file.sha256})


def challenge_reference_register(*, user, challenge: Challenge, reference=None, bundle: BinaryIO | None = None,
                                 bundle_name: str = "", name: str = "", publisher: str = "",
                                 license_expression: str = "") -> Challenge:
    """Name the registered reference a derived-from-model claim is tested against: an existing
    one, or a new one from an uploaded fingerprint bundle (made by ``manage.py fingerprint``;
    weights are not taken from the web), stored by the same service as the
    ``add_reference_model`` command. An accepted challenge is re-tested at once."""
    from compliance.engine.lineage import fingerprint_is_bundle
    from compliance.models import ReferenceModel
    from compliance.references import reference_bundle_attach
    from compliance.spdx import spdx_expression_problem

    _officer_only(user)
    if challenge.claim != Challenge.Claim.DERIVED_FROM_MODEL:
        raise ValidationError(_("Only a derived-from-model claim is tested against a reference model."))
    if challenge.status not in (Challenge.Status.FILED, Challenge.Status.ACCEPTED):
        raise ValidationError(_("This challenge is %(status)s; that step is no longer open.") % {
            "status": challenge.get_status_display()})
    if (reference is None) == (bundle is None):
        raise ValidationError({"reference": _("Choose a registered reference or upload a fingerprint bundle.")})
    if bundle is not None:
        name, publisher = (name or "").strip()[:200], (publisher or "").strip()[:200]
        license_expression = (license_expression or "").strip()[:300]
        if not name or not publisher:
            raise ValidationError({"name": _("Give the reference model's name and publisher.")})
        if ReferenceModel.objects.filter(name__iexact=name).exists():
            raise ValidationError({"name": _("A reference model of that name is registered: choose it instead.")})
        if license_expression and (problem := spdx_expression_problem(license_expression)):
            raise ValidationError({"license_expression": problem})
        settings.UPLOAD_PARTIAL_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.UPLOAD_PARTIAL_DIR, prefix="bundle-") as tmp:
            path = Path(tmp) / "bundle.npz"
            size = 0
            with open(path, "wb") as out:
                while block := bundle.read(CHUNK):
                    size += len(block)
                    if size > REFERENCE_BUNDLE_MAX_BYTES:
                        raise ValidationError({"bundle": _("A fingerprint bundle is at most %(limit)s MiB.") % {
                            "limit": REFERENCE_BUNDLE_MAX_BYTES // (1024 * 1024)}})
                    out.write(block)
            if not fingerprint_is_bundle(path):
                raise ValidationError({"bundle": _(
                    "%(name)s is not a fingerprint bundle: make one with `python manage.py fingerprint`.") % {
                    "name": filename_clean(bundle_name or "the file")}})
            with transaction.atomic():
                reference = ReferenceModel.objects.create(name=name, publisher=publisher,
                                                          license_expression=license_expression)
                try:
                    reference_bundle_attach(reference=reference, model_path=path, actor=user)
                except Exception as exc:  # the engine's reason, and no half-made reference
                    raise ValidationError({"bundle": _("The bundle could not be read: %(reason)s") % {
                        "reason": str(exc)[:300]}}) from None
    with transaction.atomic():
        challenge = _locked(challenge, (Challenge.Status.FILED, Challenge.Status.ACCEPTED))
        challenge.reference = reference
        fields = ["reference"]
        if challenge.status == Challenge.Status.ACCEPTED and challenge.retest.get("state") != "running":
            challenge.retest = {"state": "queued"}
            fields.append("retest")
            _retest_send(challenge_id=challenge.pk)
        challenge.save(update_fields=fields)
        audit_record(actor=user, action="challenge.reference_chosen", object_type="challenge",
                     object_id=challenge.pk, object_label=_label(challenge), project_id=challenge.project_id,
                     data={"reference": reference.name, "reference_id": reference.pk,
                           "bundle_sha256": reference.bundle_sha256, "uploaded": bundle is not None})
    return challenge


def challenge_reply_reminders(*, today=None) -> dict:
    """The beat task's body: remind the vendor ``REPLY_REMINDER_DAYS`` before an unanswered
    accepted challenge's reply is due, and tell the officers once it is overdue. Each is sent
    once: the row is claimed by one conditional UPDATE of its timestamp, so a second run (or two
    beat schedulers) sends nothing more."""
    from portal.notifications import notify
    from projects.selectors import project_vendor_member_ids

    today = today or timezone.localdate()
    open_rows = Challenge.objects.filter(status=Challenge.Status.ACCEPTED, vendor_replied_at__isnull=True,
                                         reply_due_on__isnull=False)
    sent = {"reminded": 0, "overdue": 0}
    due_soon = open_rows.filter(reply_reminded_at__isnull=True, reply_due_on__gte=today,
                                reply_due_on__lte=today + timedelta(days=REPLY_REMINDER_DAYS))
    for pk in list(due_soon.values_list("pk", flat=True)):
        with transaction.atomic():
            if not Challenge.objects.filter(pk=pk, reply_reminded_at__isnull=True).update(
                    reply_reminded_at=timezone.now()):
                continue
            challenge = Challenge.objects.select_related("project").get(pk=pk)
            notify(kind="challenge_received", recipients=project_vendor_member_ids(project=challenge.project),
                   url=reverse("challenge-detail", kwargs={"pk": pk}),
                   params={"project": challenge.project.title, "challenge": pk,
                           "due_on": challenge.reply_due_on.isoformat(), "reminder": True})
            audit_record(actor=None, action="challenge.reply_reminded", object_type="challenge", object_id=pk,
                         object_label=_label(challenge), project_id=challenge.project_id,
                         data={"due_on": challenge.reply_due_on.isoformat()})
            sent["reminded"] += 1
    overdue = open_rows.filter(overdue_notified_at__isnull=True, reply_due_on__lt=today)
    for pk in list(overdue.values_list("pk", flat=True)):
        with transaction.atomic():
            if not Challenge.objects.filter(pk=pk, overdue_notified_at__isnull=True).update(
                    overdue_notified_at=timezone.now()):
                continue
            challenge = Challenge.objects.select_related("project").get(pk=pk)
            _officers_notify(challenge=challenge, event="The vendor's reply is overdue")
            audit_record(actor=None, action="challenge.reply_overdue", object_type="challenge", object_id=pk,
                         object_label=_label(challenge), project_id=challenge.project_id,
                         data={"due_on": challenge.reply_due_on.isoformat()})
            sent["overdue"] += 1
    return sent

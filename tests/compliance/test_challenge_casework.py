"""Public challenges, the casework left open in issue #15: the reply period a programme sets,
reminders before and after it, evidence files downloadable by those allowed, a decided case whose
re-test is still pending, the named model registered from the web, and the portal's own re-test
of copied-code and licence claims."""

from __future__ import annotations

import io
import tarfile
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance.models import Challenge, ChallengeFile, ReferenceModel
from compliance.services import challenges as services
from compliance.services.challenge_retest import challenge_named_code, challenge_retest_execute
from compliance.services.challenges import challenge_file_intake
from compliance.services.policy import programme_policy_update
from portal.models import AuditEvent, Notification
from portal.notifications import notification_text
from tests.factories import build_world, signed_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def _confirmed(world, files=(), **extra) -> Challenge:
    kwargs = {"project": world.project, "model_named": "Alpha 7B", "claim": "derived_from_model",
              "claimed_source": "Open Base 7B", "statement": "Its norm gains match Open Base 7B.",
              "figures": "raw cosine of LayerNorm gains 0.989", "contact_email": "critic@example.net",
              "files": list(files)}
    kwargs.update(extra)
    challenge = services.challenge_file(**kwargs)
    for row in challenge.files.all():
        challenge_file_intake(file_id=row.pk)
    return services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _submitted_and_accepted(world, files: dict) -> None:
    """A submitted version whose files intake accepted (the worker's part, done here)."""
    from projects.models import Artifact

    submission = signed_submission(world=world, submit=True, files=files)
    submission.artifacts.update(status=Artifact.Status.ACCEPTED)


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- the reply period ---------------------------------------------------------------------

def test_the_reply_period_is_the_programmes_else_the_portals(world, settings):
    settings.PORTAL_CHALLENGE_REPLY_DAYS = 14
    first = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    assert first.reply_due_on == timezone.localdate() + timedelta(days=14)
    # The officer sets 5 days on the programme's policy form.
    response = _client(world.officer).post(reverse("policy-edit", kwargs={"pk": world.programme.pk}), {
        "require_declared_license": "on", "from_scratch_required": "on", "challenge_reply_days": "5"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert world.programme.policy.challenge_reply_days == 5
    second = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    assert second.reply_due_on == timezone.localdate() + timedelta(days=5)
    note = Notification.objects.filter(recipient=world.vendor_user, kind="challenge_received").latest("pk")
    assert note.params["due_on"] == second.reply_due_on.isoformat()
    # The form shows the field; an impossible figure is refused with a reason.
    page = _client(world.officer).get(reverse("policy-edit", kwargs={"pk": world.programme.pk})).content.decode()
    assert 'name="challenge_reply_days"' in page and "Days the vendor has to reply" in page
    with pytest.raises(ValidationError):
        programme_policy_update(user=world.officer, programme=world.programme, allowed="", denied="", review="",
                                from_scratch_required=True, challenge_reply_days=0)


# --- reminders ----------------------------------------------------------------------------

def test_the_vendor_is_reminded_before_the_due_date_and_officers_told_when_overdue_once_each(world):
    from compliance.tasks import challenge_reply_reminders_task

    soon = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    late = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    answered = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    services.challenge_reply(user=world.vendor_user, challenge=answered, body="Trained from scratch.")
    today = timezone.localdate()
    Challenge.objects.filter(pk=soon.pk).update(reply_due_on=today + timedelta(days=2))
    Challenge.objects.filter(pk__in=[late.pk, answered.pk]).update(reply_due_on=today - timedelta(days=1))
    Notification.objects.all().delete()

    assert challenge_reply_reminders_task() == {"reminded": 1, "overdue": 1}
    assert challenge_reply_reminders_task() == {"reminded": 0, "overdue": 0}  # beat runs daily: once each
    reminder = Notification.objects.get(recipient=world.vendor_user)
    assert reminder.url == reverse("challenge-detail", kwargs={"pk": soon.pk})
    assert notification_text(kind=reminder.kind, params=reminder.params) == (
        f"Reminder: your reply to public challenge #{soon.pk} against {world.project.title} is due on "
        f"{(today + timedelta(days=2)).isoformat()}")
    overdue = Notification.objects.get(recipient=world.officer)
    assert overdue.url == reverse("challenge-detail", kwargs={"pk": late.pk})
    assert "reply is overdue" in notification_text(kind=overdue.kind, params=overdue.params)
    assert not Notification.objects.filter(url=reverse("challenge-detail", kwargs={"pk": answered.pk})).exists()
    assert set(AuditEvent.objects.filter(action__in=["challenge.reply_reminded", "challenge.reply_overdue"])
               .values_list("action", "object_id")) == {("challenge.reply_reminded", str(soon.pk)),
                                                        ("challenge.reply_overdue", str(late.pk))}


def test_the_reminders_are_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["challenge-reply-reminders"]
    assert entry["task"] == "compliance.challenge_reply_reminders"
    from portal.celery import app

    assert "compliance.challenge_reply_reminders" in app.tasks


# --- evidence files -----------------------------------------------------------------------

def test_evidence_files_are_served_to_those_allowed_and_published_ones_to_anyone(world):
    challenge = _confirmed(world, files=[("figures.csv", io.BytesIO(b"layer,cosine\n0,0.989\n")),
                                         ("notes.csv", io.BytesIO(b"a,b\n1,2\n"))])
    figures, notes = challenge.files.order_by("pk")
    # Judged on a copy: no finding about a link to the server's media folder reaches the page.
    assert figures.intake_status == "accepted" and figures.intake_findings == [], figures.intake_findings
    url = reverse("challenge-file", kwargs={"pk": challenge.pk, "file_pk": figures.pk})

    def status(user):
        return _client(user).get(url).status_code

    # Filed, awaiting triage: officers and auditors only.
    assert [status(u) for u in (world.officer, world.auditor, world.vendor_user, world.reviewer, None)] == [
        200, 200, 404, 404, 404]
    services.challenge_accept(user=world.officer, challenge=challenge)
    response = _client(world.vendor_user).get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="figures.csv"')
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/octet-stream"
    assert b"".join(response.streaming_content) == b"layer,cosine\n0,0.989\n"
    assert [status(u) for u in (world.reviewer, world.reviewer_unassigned, world.other_vendor_user, None)] == [
        200, 404, 404, 404]
    # The vendor's own reply file is never published, even when asked.
    services.challenge_reply(user=world.vendor_user, challenge=challenge, body="Our log.",
                             files=[("log.csv", io.BytesIO(b"step,loss\n1,10.4\n"))])
    vendor_file = challenge.files.get(side=ChallengeFile.Side.VENDOR)
    challenge_file_intake(file_id=vendor_file.pk)
    with pytest.raises(ValidationError):
        services.challenge_decide(user=world.officer, challenge=challenge, outcome="not_upheld", reasons="r",
                                  summary="s", publish_files=[vendor_file.pk])
    challenge.refresh_from_db()
    assert challenge.status == Challenge.Status.ACCEPTED  # the refused decision changed nothing
    services.challenge_decide(user=world.officer, challenge=challenge, outcome="not_upheld", reasons="r",
                              summary="Not upheld.", publish_files=[figures.pk])
    assert status(None) == 200 and status(world.other_vendor_user) == 200
    # Unpublished files stay with those allowed; the vendor's file is not the public's.
    for row in (notes, vendor_file):
        other = reverse("challenge-file", kwargs={"pk": challenge.pk, "file_pk": row.pk})
        assert _client().get(other).status_code == 404
        assert _client(world.other_vendor_user).get(other).status_code == 404
        assert _client(world.officer).get(other).status_code == 200
    register = _client().get(reverse("challenge-register")).content.decode()
    assert url in register and "notes.csv" not in register and "log.csv" not in register
    downloads = AuditEvent.objects.filter(action="challenge.file_downloaded", object_id=str(challenge.pk))
    assert downloads.filter(actor__isnull=True).exists() and downloads.filter(actor=world.vendor_user).exists()


def test_a_file_intake_has_not_accepted_is_served_to_nobody(world):
    challenge = services.challenge_file(
        project=world.project, model_named="Alpha", claim="other", claimed_source="", statement="x",
        figures="", contact_email="critic@example.net", files=[("model.safetensors", io.BytesIO(b"\xff" * 64))])
    challenge = services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))
    row = challenge.files.get()
    url = reverse("challenge-file", kwargs={"pk": challenge.pk, "file_pk": row.pk})
    assert _client(world.officer).get(url).status_code == 404  # quarantined
    challenge_file_intake(file_id=row.pk)
    row.refresh_from_db()
    assert row.intake_status != "accepted"
    assert _client(world.officer).get(url).status_code == 404
    # Nor under another challenge's id.
    elsewhere = _confirmed(world)
    assert _client(world.officer).get(reverse("challenge-file", kwargs={"pk": elsewhere.pk,
                                                                        "file_pk": row.pk})).status_code == 404


# --- a decided case with a pending re-test ------------------------------------------------

def test_a_decided_case_whose_retest_is_pending_does_not_read_as_open(world):
    challenge = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    assert challenge.retest == {"state": "queued"}
    page = _client(world.officer).get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "Re-test running" in page
    services.challenge_decide(user=world.officer, challenge=challenge, outcome="not_upheld", reasons="r",
                              summary="Not upheld on the centred figures.")
    page = _client(world.officer).get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "Re-test result pending; the decision stands" in page and "Re-test running" not in page
    register = _client().get(reverse("challenge-register")).content.decode()
    assert "Re-test result pending; the decision stands" in register and "Not re-tested" not in register


# --- the named model registered from the web ----------------------------------------------

def test_an_officer_registers_the_named_model_from_a_fingerprint_bundle(world, tmp_path, capsys):
    from tests.compliance.engine.lineage import tinymodels

    tinymodels.model_write(tinymodels.llama_make(seed=31), tmp_path / "named")
    call_command("fingerprint", str(tmp_path / "named"), "-o", str(tmp_path / "named.npz"))
    capsys.readouterr()
    challenge = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    assert challenge_retest_execute(challenge_id=challenge.pk) == "not_registered"
    detail = reverse("challenge-detail", kwargs={"pk": challenge.pk})
    act = reverse("challenge-act", kwargs={"pk": challenge.pk})
    officer = _client(world.officer)
    assert "Fingerprint bundle" in officer.get(detail).content.decode()
    # Not a bundle: refused with the command to make one, nothing registered.
    with open(tmp_path / "named" / "config.json", "rb") as fh:
        response = officer.post(act, {"action": "reference", "name": "Open Base 7B", "publisher": "Open Lab",
                                      "bundle": fh}, follow=True)
    assert "is not a fingerprint bundle" in response.content.decode()
    assert not ReferenceModel.objects.exists()
    # The vendor cannot.
    with open(tmp_path / "named.npz", "rb") as fh:
        assert _client(world.vendor_user).post(act, {"action": "reference", "name": "x", "publisher": "y",
                                                     "bundle": fh}).status_code == 403
    with open(tmp_path / "named.npz", "rb") as fh:
        response = officer.post(act, {"action": "reference", "name": "Open Base 7B", "publisher": "Open Lab",
                                      "license_expression": "Apache-2.0", "bundle": fh}, follow=True)
    assert response.status_code == 200
    reference = ReferenceModel.objects.get()
    assert (reference.name, reference.publisher, reference.license_expression) == (
        "Open Base 7B", "Open Lab", "Apache-2.0")
    assert reference.bundle and len(reference.bundle_sha256) == 64
    challenge.refresh_from_db()
    assert challenge.reference == reference and challenge.retest == {"state": "queued"}
    assert "Tested against the registered reference Open Base 7B." in response.content.decode()
    assert AuditEvent.objects.filter(action="challenge.reference_chosen", object_id=str(challenge.pk)).exists()
    assert AuditEvent.objects.filter(action="reference.fingerprint", object_id=str(reference.pk)).exists()
    # The re-test now finds the reference (the project has no model yet: said so).
    assert challenge_retest_execute(challenge_id=challenge.pk) == "no_model"
    challenge.refresh_from_db()
    assert challenge.retest["reference"] == "Open Base 7B"
    # A model submitted but not yet through intake is not read: said so, to be run again.
    tinymodels.model_write(tinymodels.llama_make(seed=32), tmp_path / "vendor")
    kinds = {"config.json": "config", "tokenizer.json": "tokenizer", "model.safetensors": "weights"}
    signed_submission(world=world, submit=True, files={
        f"model/{p.name}": (kinds[p.name], p.read_bytes()) for p in sorted((tmp_path / "vendor").iterdir())})
    services.challenge_retest_request(user=world.officer, challenge=challenge)
    assert challenge_retest_execute(challenge_id=challenge.pk) == "not_checked"
    challenge.refresh_from_db()
    assert "intake has not yet accepted" in challenge.retest["reason"] and challenge.retest["reference"] == "Open Base 7B"
    # Picking an existing reference for another challenge whose names match nothing.
    other = _confirmed(world, claimed_source="something else", model_named="Alpha")
    officer.post(reverse("challenge-act", kwargs={"pk": other.pk}), {"action": "reference",
                                                                     "reference": reference.pk})
    other.refresh_from_db()
    assert other.reference == reference and other.retest == {}  # filed: tested once accepted


# --- re-tests of copied-code and licence claims -------------------------------------------

COPIED = (b'def rotary_embedding(q, k, cos, sin):\n'
          b'    """Apply rotary position embeddings to the query and key tensors."""\n'
          b'    q_rot = (q * cos) + (rotate_half(q) * sin)\n'
          b'    k_rot = (k * cos) + (rotate_half(k) * sin)\n'
          b'    for index in range(len(q_rot)):\n'
          b'        if q_rot[index] is None or k_rot[index] is None:\n'
          b'            raise ValueError("missing rotary position " + str(index))\n'
          b'    return q_rot, k_rot\n\n\n'
          b'def rotate_half(x):\n'
          b'    half = x.shape[-1] // 2\n'
          b'    first, second = x[..., :half], x[..., half:]\n'
          b'    return torch.cat((-second, first), dim=-1)\n')
OWN = (b'def train_loop(model, batches, optimiser):\n'
       b'    for step, batch in enumerate(batches):\n'
       b'        loss = model(batch).mean()\n'
       b'        loss.backward()\n'
       b'        optimiser.step()\n'
       b'        print("step", step, "loss", float(loss))\n')


def test_the_named_project_is_read_from_the_claim():
    class C:
        model_named = "Alpha"

    for text, expected in [("vllm 0.6.3", ("vllm", "0.6.3")), ("vllm==0.6.3", ("vllm", "0.6.3")),
                           ("https://github.com/vllm-project/vllm", ("vllm", "")), ("vllm@v0.6.3", ("vllm", "0.6.3"))]:
        C.claimed_source = text
        assert challenge_named_code(challenge=C) == expected


def test_a_copied_code_claim_is_retested_against_the_challengers_archive_of_the_named_code(world, settings,
                                                                                          tmp_path):
    from projects.models import Artifact

    settings.CODE_INDEX_DIR = tmp_path / "no-index"
    submission = signed_submission(world=world, submit=True, files={"src.tar.gz": ("source_archive", _tar({
        "alpha/layers.py": COPIED, "alpha/train.py": OWN}))})
    challenge = _confirmed(world, claim="copied_code", claimed_source="fastrope 0.6.3", model_named="Alpha",
                           figures="about 12 lines of layers.py are fastrope's rotary code")
    services.challenge_accept(user=world.officer, challenge=challenge)
    # The vendor's archive has not passed intake: not read, and said so.
    assert challenge_retest_execute(challenge_id=challenge.pk) == "not_checked"
    challenge.refresh_from_db()
    assert "intake has not yet accepted src.tar.gz" in challenge.retest["reason"]
    submission.artifacts.update(status=Artifact.Status.ACCEPTED)
    services.challenge_retest_request(user=world.officer, challenge=challenge)
    # Nothing of fastrope is available yet: inconclusive, and why.
    assert challenge_retest_execute(challenge_id=challenge.pk) == "no_code"
    challenge.refresh_from_db()
    assert challenge.retest["verdict"] == "inconclusive" and "fastrope 0.6.3" in challenge.retest["reason"]
    page = _client(world.officer).get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "Inconclusive" in page and "neither an indexed code corpus" in page

    # A challenge that comes with an archive of the named project.
    challenge = _confirmed(world, claim="copied_code", claimed_source="fastrope 0.6.3", model_named="Alpha",
                           figures="about 12 lines of layers.py are fastrope's rotary code",
                           files=[("fastrope-0.6.3.tar.gz", io.BytesIO(_tar({"fastrope/rope.py": COPIED})))])
    assert challenge.files.get().intake_status == "accepted"
    services.challenge_accept(user=world.officer, challenge=challenge)
    assert challenge_retest_execute(challenge_id=challenge.pk) == "done"
    challenge.refresh_from_db()
    result = challenge.retest
    assert (result["verdict"], result["code_source"], result["evidence_file"]) == (
        "copied", "challenger_evidence", "fastrope-0.6.3.tar.gz")
    assert result["files"] == 1 and result["regions"] >= 1 and result["lines"] >= 8
    assert {m["path"] for m in result["shown"]} == {"alpha/layers.py"}
    assert {m["origin_path"] for m in result["shown"]} == {"fastrope/rope.py"}
    page = _client(world.officer).get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "about 12 lines of layers.py" in page  # the challenger's figure, beside the portal's
    assert "Copied code found" in page and "alpha/layers.py" in page
    # The challenger's archive never joins the registry of code corpora.
    from compliance.models import CodeCorpus

    assert not CodeCorpus.objects.exists()
    # Decided and on the public register: the counts, not the vendor's file names.
    services.challenge_decide(user=world.officer, challenge=challenge, outcome="upheld", reasons="r",
                              summary="Upheld: the rotary code is copied.")
    register = _client().get(reverse("challenge-register")).content.decode()
    assert "Copied code found" in register and "alpha/layers.py" not in register


def test_a_copied_code_claim_is_retested_against_an_indexed_corpus(world, settings, tmp_path):
    from compliance.engine.codematch import code_index_add
    from compliance.references import code_corpus_record

    settings.CODE_INDEX_DIR = tmp_path / "index"
    (tmp_path / "fastrope").mkdir()
    (tmp_path / "fastrope" / "rope.py").write_bytes(COPIED)
    code_corpus_record(summary=code_index_add(index_dir=str(settings.CODE_INDEX_DIR), source=str(tmp_path / "fastrope"),
                                              name="fastrope", version="0.6.3",
                                              license_expression="Apache-2.0").to_dict())
    _submitted_and_accepted(world, {"src.tar.gz": ("source_archive", _tar({
        "alpha/layers.py": COPIED, "alpha/train.py": OWN}))})
    challenge = _confirmed(world, claim="copied_code", claimed_source="FastRope==0.6.3", model_named="Alpha")
    services.challenge_accept(user=world.officer, challenge=challenge)
    assert challenge_retest_execute(challenge_id=challenge.pk) == "done"
    challenge.refresh_from_db()
    assert (challenge.retest["compared_with"], challenge.retest["code_source"], challenge.retest["files"]) == (
        "fastrope 0.6.3", "index", 1)


def test_a_licence_claim_is_answered_by_the_programmes_policy_on_the_latest_inventory(world):
    programme_policy_update(user=world.officer, programme=world.programme, allowed="Apache-2.0\nMIT",
                            denied="GPL-3.0-only\nGPL-3.0-or-later", review="", from_scratch_required=True)
    challenge = _confirmed(world, claim="licence_breach", claimed_source="GPL-3.0", model_named="Alpha",
                           statement="The inference server ships GPL-3.0 code.")
    services.challenge_accept(user=world.officer, challenge=challenge)
    assert challenge_retest_execute(challenge_id=challenge.pk) == "no_source"
    challenge.refresh_from_db()
    assert challenge.retest["verdict"] == "inconclusive"
    assert "no submitted file the licence check reads" in challenge.retest["reason"]

    _submitted_and_accepted(world, {"src.tar.gz": ("source_archive", _tar({
        "server/serve.py": b"# SPDX-License-Identifier: GPL-3.0-only\nprint('serve')\n",
        "alpha/train.py": b"# SPDX-License-Identifier: Apache-2.0\n" + OWN,
        "LICENSE": b"Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n"}))})
    services.challenge_retest_request(user=world.officer, challenge=challenge)
    assert challenge_retest_execute(challenge_id=challenge.pk) == "done"
    challenge.refresh_from_db()
    result = challenge.retest
    assert result["verdict"] == "denied" and result["submission"] == 1
    [line] = [x for x in result["lines"] if "GPL-3.0" in x["expression"]]
    assert line["status"] == "denied" and line["cited"] and line["files"] == ["server/serve.py"]
    assert not [x for x in result["lines"] if x["expression"] == "Apache-2.0"]  # allowed and not cited
    page = _client(world.vendor_user).get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "A denied licence is present" in page and "server/serve.py" in page and "cited by the challenger" in page


# --- the dossier's challenge section, rendered ---------------------------------------------

def test_the_dossier_prints_each_challenge_with_its_source_status_date_and_the_portals_retest(world, tmp_path):
    """Real WeasyPrint and poppler: the section states the facts in both languages and its table
    stays inside the page (its column widths once ran past the right edge)."""
    import re
    import subprocess

    from compliance.dossier.context import dossier_context_build
    from compliance.dossier.render import dossier_render

    decided = services.challenge_accept(user=world.officer, challenge=_confirmed(world))
    Challenge.objects.filter(pk=decided.pk).update(retest={
        "state": "done", "kind": "lineage", "reference": "open-lab/base-7b", "verdict": "independent",
        "p_value": 0.41, "norms": {"mean_raw_cosine": 0.991, "mean_raw_cosine_shuffled": 0.987,
                                   "mean_pearson": 0.03}})
    services.challenge_decide(user=world.officer, challenge=decided, outcome="not_upheld", reasons="r",
                              summary="Not upheld: the centred statistics show no correspondence.")
    open_case = services.challenge_accept(user=world.officer, challenge=_confirmed(
        world, claim="copied_code", claimed_source="vllm 0.6.3", model_named="Alpha"))
    submission = signed_submission(world=world)
    for lang, facts in (
            ("en", ["Open Base 7B", "decided", "Not upheld: the centred statistics show no correspondence.",
                    "permutation p = 0.410", "centred correlation 0.030", "vllm 0.6.3", "Re-test running.",
                    f"the vendor's reply is due on {open_case.reply_due_on.isoformat()}", "Portal's re-test"]),
            ("ko", ["포털의 재검사", "불인용", "순열 검정 p = 0.410", "재검사 진행 중.",
                    f"답변 기한은 {open_case.reply_due_on.isoformat()}입니다", "결정"])):
        pdf = dossier_render(context=dossier_context_build(submission=submission, lang=lang), isolation="none")
        path = tmp_path / f"{lang}.pdf"
        path.write_bytes(pdf.pdf_bytes)
        pages = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True,
                               text=True).stdout.split("\f")
        heading = "Public challenges" if lang == "en" else "공개 이의 제기"
        number = next(i for i, page in enumerate(pages, 1) if i > 2 and heading in page and "#" in page)
        flat = re.sub(r"\s+", "", pages[number - 1])
        for fact in facts:
            assert re.sub(r"\s+", "", fact) in flat, (lang, fact)
        bbox = subprocess.run(["pdftotext", "-bbox", "-f", str(number), "-l", str(number), str(path), "-"],
                              capture_output=True, check=True, text=True).stdout
        width = float(re.search(r'<page width="([\d.]+)"', bbox).group(1))
        right = max(float(x) for x in re.findall(r'xMax="([\d.]+)"', bbox))
        assert right < width - 14 * 72 / 25.4, (lang, right, width)  # inside a 14 mm right margin

"""A derived-from-model challenge re-tested by a real worker on the heavy queue: the challenger's
raw cosine of norm gains is answered with the centred statistics and the permutation test on the
same layers (issue #15)."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from compliance.models import Challenge
from compliance.services import challenges as services
from tests.compliance.engine.lineage import tinymodels
from tests.compliance.test_checks import _model_files, _wait
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _retested(challenge: Challenge, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        challenge.refresh_from_db()
        if challenge.retest.get("state") not in {"queued", "running"}:
            return challenge.retest
        time.sleep(0.5)
    raise AssertionError(challenge.retest)


def test_a_raw_cosine_claim_is_answered_with_centred_statistics(celery_worker, tmp_path, capsys):
    world = build_world()
    world.programme.max_artifact_bytes = 64 * 1024 * 1024
    world.programme.save()
    # Two independently initialised and trained models: their norm gains sit near 1 in both, so
    # the raw cosine is high whatever the lineage; the centred figure and the p-value are not.
    tinymodels.model_write(tinymodels.llama_make(seed=21), tmp_path / "base")
    call_command("add_reference_model", str(tmp_path / "base"), "--name", "open-lab/other", "--publisher", "Lab")
    capsys.readouterr()
    tinymodels.model_write(tinymodels.llama_make(seed=22), tmp_path / "vendor")
    submission = signed_submission(world=world, files=_model_files(tmp_path / "vendor"), submit=True)
    _wait(submission.pk)
    challenge = services.challenge_file(
        project=world.project, model_named="Alpha", claim="derived_from_model", claimed_source="open-lab/other",
        statement="The norm gains are nearly identical.", figures="raw cosine of LayerNorm gains 0.989",
        contact_email="critic@example.net", files=[("figures.csv", io.BytesIO(b"layer,raw_cosine\n0,0.989\n"))])
    challenge = services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))
    services.challenge_accept(user=world.officer, challenge=challenge)
    result = _retested(challenge)
    assert result["state"] == "done", result
    assert result["reference"] == "open-lab/other" and result["verdict"] != "derived"
    norms = result["norms"]
    assert norms["mean_raw_cosine"] > 0.9  # what the accusation quoted: high for any pair
    assert abs(norms["mean_pearson"]) < 0.5  # centred: no correspondence
    assert result["norm_rows"] > 0
    # The evidence file went through the artifact intake on the light queue.
    evidence = challenge.files.get()
    deadline = time.monotonic() + 60
    while evidence.intake_status in {"quarantined", "checking"} and time.monotonic() < deadline:
        time.sleep(0.5)
        evidence.refresh_from_db()
    assert evidence.intake_status == "accepted", evidence.intake_findings
    client = Client()
    client.force_login(world.officer)
    page = client.get(reverse("challenge-detail", kwargs={"pk": challenge.pk})).content.decode()
    assert "raw cosine of LayerNorm gains 0.989" in page  # the challenger's figure
    assert str(norms["mean_pearson"]) in page and "Centred correlation of norm gains" in page
    assert "intake passed" in page


def test_a_copied_code_claim_is_retested_on_the_worker_against_the_challengers_archive(celery_worker, settings,
                                                                                      tmp_path):
    """Accepting the claim sends the re-test to the heavy queue; the worker reads the submitted
    archive and the challenger's archive of the named code from storage and stores the figures."""
    from tests.compliance.test_challenge_casework import COPIED, OWN, _tar

    settings.CODE_INDEX_DIR = tmp_path / "no-index"
    world = build_world()
    submission = signed_submission(world=world, submit=True, files={"src.tar.gz": ("source_archive", _tar({
        "alpha/layers.py": COPIED, "alpha/train.py": OWN}))})
    _wait(submission.pk)  # intake accepted the archive (the re-test reads only accepted bytes)
    challenge = services.challenge_file(
        project=world.project, model_named="Alpha", claim="copied_code", claimed_source="fastrope 0.6.3",
        statement="layers.py copies fastrope's rotary code.", figures="12 lines copied",
        contact_email="critic@example.net",
        files=[("fastrope-0.6.3.tar.gz", io.BytesIO(_tar({"fastrope/rope.py": COPIED})))])
    evidence = challenge.files.get()
    deadline = time.monotonic() + 60
    while evidence.intake_status in {"quarantined", "checking"} and time.monotonic() < deadline:
        time.sleep(0.5)
        evidence.refresh_from_db()
    assert evidence.intake_status == "accepted", evidence.intake_findings
    challenge = services.challenge_confirm(token=services.challenge_confirm_token(challenge=challenge))
    services.challenge_accept(user=world.officer, challenge=challenge)
    result = _retested(challenge)
    assert (result["state"], result["verdict"], result["code_source"]) == ("done", "copied", "challenger_evidence")
    assert result["files"] == 1 and result["lines"] >= 8

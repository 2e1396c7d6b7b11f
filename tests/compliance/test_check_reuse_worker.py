"""With a real worker: v1's checks run; v2, carried over unchanged, is checked at once by reuse."""

from __future__ import annotations

import pytest

from compliance.models import CheckRun, Finding
from projects import services
from projects.models import Submission
from tests.compliance.test_pipeline import _all_runs_finished, wait_for
from tests.factories import build_world, signed_submission

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

MODEL_CARD = b"---\nlicense: apache-2.0\n---\n# Our model\nTrained by us.\n"


def test_an_unchanged_new_version_is_checked_at_once_by_reuse(celery_worker):
    world = build_world()
    v1 = signed_submission(world=world, files={"README.md": ("model_card", MODEL_CARD),
                                               "config.json": ("config", b'{"model_type": "llama"}')}, submit=True)
    wait_for(lambda: _all_runs_finished(v1.pk), timeout=180, what="v1's checks")
    first = {(r.artifact.original_name, r.check_name): r for r in CheckRun.objects.filter(submission=v1)
             .select_related("artifact")}
    assert {r.state for r in first.values()} == {CheckRun.State.SUCCEEDED}
    assert ("README.md", "licenses") in first

    v2 = services.submission_open(user=world.vendor_user, project=world.project)  # carry-over: the default
    services.declaration_sign(user=world.vendor_user, submission=v2, signatory_name="Vendor A Signer", attest=True)
    services.submission_submit(user=world.vendor_user, submission=v2)

    # At once: no worker is waited for.
    v2.refresh_from_db()
    assert v2.status == Submission.Status.CHECKED
    second = {(r.artifact.original_name, r.check_name): r for r in CheckRun.objects.filter(submission=v2)
              .select_related("artifact")}
    assert set(second) == set(first)
    for key, run in second.items():
        assert run.state == CheckRun.State.SUCCEEDED and run.reused_from_id == first[key].pk, key
        assert run.verdict == first[key].verdict and run.worker == "" and run.attempts == 0
        assert Finding.objects.filter(check_run=run).count() == Finding.objects.filter(check_run=first[key]).count()

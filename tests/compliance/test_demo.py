"""The demo that `make run` loads shows what the portal is for: a derived model called out,
copied code found (declared and undeclared), licences judged. Checks run in-process here."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from compliance.models import CheckRun, CodeCorpus, Finding
from compliance.services.runs import check_run_execute

pytestmark = pytest.mark.django_db


def test_the_demo_shows_a_derived_model_and_copied_code(settings, tmp_path, capsys):
    settings.CODE_INDEX_DIR = tmp_path / "code-index"
    call_command("seed_demo", "--quiet")
    call_command("seed_demo", "--quiet")  # idempotent
    assert "nothing changed" in capsys.readouterr().out
    assert CodeCorpus.objects.get(name="gguf-py").license_expression == "MIT"
    for intake in CheckRun.objects.filter(check_name="intake"):  # the other checks wait for intake to accept
        assert check_run_execute(run_id=intake.pk, worker="test") == CheckRun.State.SUCCEEDED, intake.error
    assert not CheckRun.objects.filter(state__in=[CheckRun.State.WAITING, CheckRun.State.BLOCKED]).exists(), list(
        CheckRun.objects.exclude(state="queued").exclude(check_name="intake").values("check_name", "error"))
    runs = CheckRun.objects.filter(check_name__in=["code", "licenses", "lineage"]).select_related("submission__project")
    for run in runs:
        assert check_run_execute(run_id=run.pk, worker="test") in (CheckRun.State.SUCCEEDED,
                                                                      CheckRun.State.INCONCLUSIVE), run.error

    def findings(project: str, code: str):
        return list(Finding.objects.filter(submission__project__code=project, code=code))

    (undeclared,) = findings("saebyeok", "undeclared_third_party_code")
    assert undeclared.evidence["origin"] == "gguf-py" and undeclared.evidence["license_expression"] == "MIT"
    assert undeclared.evidence["lines"] >= 80
    (declared,) = findings("gureum", "declared_third_party_code")
    assert declared.severity == "info" and not findings("gureum", "undeclared_third_party_code")
    for project in ("hanbit", "mirae", "doran"):
        assert not findings(project, "undeclared_third_party_code") and not findings(project, "declared_third_party_code")
    # The vendors' own notices ('The saebyeok-lm authors') are not another holder's.
    assert not Finding.objects.filter(code="copyright-other-holder").exists()
    # The headline: hanbit's model is a renamed, noised copy of all-MiniLM-L6-v2, with from-scratch claimed.
    lineage = Finding.objects.filter(submission__project__code="hanbit", check_run__check_name="lineage",
                                     severity="critical")
    assert lineage.exists(), list(Finding.objects.filter(submission__project__code="hanbit").values("code", "title"))


def test_demo_staff_sign_in_with_the_printed_second_factor(settings, tmp_path, capsys):
    """The demo's staff pass a second factor like real staff: seed_demo prints a key for each, and
    demo_otp gives the current code, which the real verify page accepts."""
    import io
    import re

    from django.test import Client

    settings.CODE_INDEX_DIR = tmp_path / "code-index"
    settings.PORTAL_SECOND_FACTOR_ENFORCED = True
    settings.PORTAL_DEMO_COMMANDS = True  # the embedded default's value; CI also runs on PostgreSQL
    call_command("seed_demo", "--no-submit")
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if ln.strip().startswith("officer "))
    password = line.split()[1]
    assert re.search(r"second factor: key [A-Z2-7]{32}", line)
    client = Client()
    assert client.post("/accounts/login/", {"username": "officer", "password": password}).status_code == 302
    assert client.get("/dashboard/").headers["Location"].startswith("/account/two-factor/verify/")
    out = io.StringIO()
    call_command("demo_otp", "officer", stdout=out)
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    assert client.post("/account/two-factor/verify/", {"code": code, "next": "/dashboard/"}).status_code == 302
    assert client.get("/dashboard/").status_code == 200
    # Outside the demo the command refuses: it is no way around a real deployment's second factor.
    settings.PORTAL_DEMO_COMMANDS = False
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="only in the demo"):
        call_command("demo_otp", "officer", stdout=io.StringIO())
    # Vendors of the demo are not asked (the demo programme does not require it of them).
    assert "second factor" not in next(ln for ln in printed.splitlines() if "-vendor " in ln)

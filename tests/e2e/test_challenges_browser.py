"""A public challenge end to end in Chromium, under the real CSP: an anonymous person files it,
confirms it through the e-mailed link, an officer accepts it and registers the named model from
a fingerprint bundle, the vendor replies, the officer decides and publishes the challenger's
evidence file, and the anonymous public register shows the outcome and serves that file. Screenshots
of each step go to var/screenshots/challenge-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from playwright.sync_api import expect

from compliance.models import Challenge, ReferenceModel
from compliance.services.challenges import challenge_file_intake
from tests.compliance.engine.lineage import tinymodels
from tests.e2e.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
FIGURES = b"layer,raw_cosine\n0,0.989\n"


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"challenge-{name}.png"), full_page=True)


def test_a_public_challenge_from_filing_to_the_register(new_page, world, settings, tmp_path, capsys):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    public, public_errors = new_page()
    public.goto("/challenges/new/")
    expect(public.get_by_role("heading", level=1)).to_have_text("File a public challenge")
    public.get_by_label("Project").select_option(label=f"{world.project.title} ({world.programme.name})")
    public.get_by_label("Model challenged").fill("Alpha 7B")
    public.get_by_label("Claim", exact=True).select_option("derived_from_model")
    public.get_by_label("Claimed source (a model name or address)").fill("open-lab/base-7b")
    public.get_by_label("Statement").fill("Its LayerNorm gains match open-lab/base-7b.")
    public.get_by_label("Your figures (optional)").fill("raw cosine of LayerNorm gains 0.989")
    public.get_by_label("Your e-mail address").fill("critic@example.net")
    public.locator("input[type=file]").set_input_files(files=[
        {"name": "figures.csv", "mimeType": "text/csv", "buffer": FIGURES}])
    _shot(public, "1-file")
    public.get_by_role("button", name="File the challenge").click()
    expect(public.get_by_role("heading", level=1)).to_have_text("Confirm your challenge")
    [message] = mail.outbox
    link = re.search(r"https?://\S+(/challenges/confirm/\S+/)", message.body).group(1)
    public.goto(link)
    public.get_by_role("button", name="Confirm and send to the officers").click()
    expect(public.get_by_role("status")).to_contain_text("is confirmed")
    _shot(public, "2-confirmed")
    challenge = Challenge.objects.get()
    evidence = challenge.files.get()
    assert challenge_file_intake(file_id=evidence.pk) == "accepted"  # the light queue's work, done here
    # The named model is in no registry yet: its fingerprint bundle, made by the command.
    tinymodels.model_write(tinymodels.llama_make(seed=41), tmp_path / "named")
    call_command("fingerprint", str(tmp_path / "named"), "-o", str(tmp_path / "base-7b.npz"))

    officer, officer_errors = new_page()
    login(officer, username=world.officer.username, password=PASSWORD)
    officer.goto("/challenges/")
    officer.get_by_role("link", name=f"#{challenge.pk}").click()
    expect(officer.locator("#challenge-status")).to_have_text("Filed, awaiting triage")
    officer.locator("#t-reasons").fill("A derivation claim against a registered programme model: examine it.")
    officer.get_by_role("button", name="Accept").click()
    expect(officer.locator("#challenge-status")).to_have_text("Accepted, under examination")
    # A derived-from-model claim is queued for the portal's own re-test on the heavy queue.
    expect(officer.locator("main")).to_contain_text("Re-test running")
    # The officer registers the named model from its bundle, without the command line.
    officer.get_by_label("Reference name").fill("open-lab/base-7b")
    officer.get_by_label("Publisher").fill("Open Lab")
    officer.get_by_label("Fingerprint bundle").set_input_files(str(tmp_path / "base-7b.npz"))
    officer.get_by_role("button", name="Register and test against it").click()
    expect(officer.locator("#challenge-reference")).to_have_text(
        "Tested against the registered reference open-lab/base-7b.")
    assert ReferenceModel.objects.get().name == "open-lab/base-7b"
    # The evidence intake accepted is a download for the officer.
    with officer.expect_download() as download:
        officer.get_by_role("link", name="figures.csv").click()
    assert Path(download.value.path()).read_bytes() == FIGURES
    _shot(officer, "3-accepted")

    vendor, vendor_errors = new_page()
    login(vendor, username=world.vendor_user.username, password=PASSWORD)
    vendor.goto(f"/challenges/{challenge.pk}/")
    vendor.get_by_label("Your reply").fill("Trained from scratch; our training evidence is on file.")
    vendor.get_by_role("button", name="Send the reply").click()
    expect(vendor.locator("#vendor-reply")).to_contain_text("Trained from scratch")
    _shot(vendor, "4-replied")

    officer.reload()
    expect(officer.locator("#vendor-reply")).to_contain_text("Trained from scratch")
    officer.get_by_label("Outcome").select_option("not_upheld")
    officer.locator("#d-reasons").fill("The raw cosine of norm gains is about 0.99 for any two models.")
    officer.get_by_label("Summary to publish").fill("Not upheld: the quoted figure does not indicate derivation.")
    officer.get_by_label("figures.csv").check()  # the challenger's figures may be published
    officer.get_by_role("button", name="Decide").click()
    expect(officer.locator("#challenge-status")).to_have_text("Not upheld")
    # No worker ran the re-test: the page does not pretend the case is still open.
    expect(officer.locator(".retest-pending")).to_have_text("Re-test result pending; the decision stands")
    _shot(officer, "5-decided")

    public.goto("/challenges/register/")
    row = public.get_by_role("row").filter(has_text=f"#{challenge.pk}")
    expect(row).to_contain_text("Not upheld: the quoted figure does not indicate derivation.")
    expect(row).to_contain_text(world.project.title)
    assert "critic@example.net" not in public.content()
    expect(row).to_contain_text("Re-test result pending; the decision stands")
    with public.expect_download() as download:
        row.get_by_role("link", name="figures.csv").click()
    assert Path(download.value.path()).read_bytes() == FIGURES
    _shot(public, "6-register")
    assert not (public_errors or officer_errors or vendor_errors), (public_errors, officer_errors, vendor_errors)

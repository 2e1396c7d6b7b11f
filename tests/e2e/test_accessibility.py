"""Automated accessibility checks (axe-core 4.14.1, vendored in tests/e2e/vendor/) on the pages each
role uses, plus the keyboard path and the language switcher. axe catches roughly a third to a half
of WCAG failures (Deque's own estimate is 57 % of issues by volume); the rest still needs people."""

from __future__ import annotations

import pickle
import re

import pytest
from playwright.sync_api import expect

from compliance.models import CheckRun, Finding
from compliance.services.runs import check_run_execute
from projects import services
from tests.e2e.conftest import AXE_JS, login
from tests.factories import PASSWORD, signed_submission, upload_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Serious and critical are the impacts that block people (missing names, contrast below 4.5:1,
# keyboard traps); moderate and minor are reported by axe but not failed here.
BLOCKING = ("serious", "critical")


class _Pickle:
    def __reduce__(self):  # never loaded: intake only reads the opcodes
        return (print, ("hello",))


def axe_violations(page) -> list[dict]:
    """Run axe-core on the page as it stands; return the serious and critical violations."""
    # Open every <details> (the no-JavaScript upload form, finding evidence): axe skips hidden content.
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def violations_describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} — {v['helpUrl']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node.get('failureSummary', '').splitlines()[-1:]}")
            lines.append(f"      {node['html'][:200]}")
    return "\n".join(lines)


def submitted_with_findings(world):
    """A submitted submission whose intake ran in-process, so the page shows findings and forms."""
    submission = signed_submission(world=world, files={
        "config.json": ("weights", b'{"model_type": "llama", "hidden_size": 64}'),
        "model.bin": ("weights", pickle.dumps(_Pickle(), protocol=2)),
    }, submit=True)
    for run in CheckRun.objects.filter(submission=submission):
        check_run_execute(run_id=run.pk, worker="e2e-inline")
    assert Finding.objects.filter(check_run__submission=submission).exists()
    return submission


def draft_with_an_artifact(world):
    """A draft that is not signed yet, so the upload, declaration and signing forms all show."""
    submission = services.submission_open(user=world.vendor_user, project=world.project)
    upload_bytes(user=world.vendor_user, submission=submission, name="config.json",
                 data=b'{"model_type": "llama"}', kind="config")
    return submission


def stored_passkey(user):
    """A passkey row as registration leaves it (the key itself is never used on these pages)."""
    from django_otp_webauthn.models import WebAuthnCredential

    return WebAuthnCredential.objects.create(user=user, name="Office laptop", credential_id=b"a11y" * 8,
                                             public_key=b"k", aaguid="00000000-0000-0000-0000-000000000000")


# (test id, who looks, how to build the URL from the world, browser language)
PAGES = [
    ("login", None, lambda world: "/accounts/login/", "en-GB"),
    ("dashboard", "officer", lambda world: "/dashboard/", "en-GB"),
    ("project-list", "vendor_user", lambda world: "/projects/", "en-GB"),
    ("project-detail", "admin", lambda world: f"/projects/{world.project.pk}/", "en-GB"),
    ("submission-edit", "vendor_user", lambda world: f"/submissions/{draft_with_an_artifact(world).pk}/edit/", "en-GB"),
    ("review-queue", "reviewer", lambda world: "/queue/", "en-GB"),
    ("submission-detail", "reviewer", lambda world: f"/submissions/{submitted_with_findings(world).pk}/", "en-GB"),
    ("programme-create", "admin", lambda world: "/programmes/new/", "en-GB"),
    ("audit-log", "auditor", lambda world: "/audit/", "en-GB"),
    ("programme-list", "officer", lambda world: "/programmes/", "en-GB"),
    ("programme-detail", "admin", lambda world: f"/programmes/{world.programme.pk}/", "en-GB"),
    ("policy-edit", "admin", lambda world: f"/programmes/{world.programme.pk}/policy/", "en-GB"),
    ("project-create", "admin", lambda world: "/projects/new/", "en-GB"),
    ("reference-list", "reviewer", lambda world: "/references/", "en-GB"),
    ("workers", "admin", lambda world: "/workers/", "en-GB"),
    # Lists with rows, a sort, saved filters and export links (issue #13).
    ("review-queue-sorted", "officer", lambda world: (submitted_with_findings(world), "/queue/?sort=-waiting")[1],
     "en-GB"),
    ("finding-list", "officer", lambda world: (submitted_with_findings(world), "/findings/?sort=-severity")[1],
     "en-GB"),
    ("audit-log-ko", "auditor", lambda world: "/audit/?action=project.create&sort=id", "ko-KR"),
    # Korean text is longer and wraps differently; the browser's Accept-Language picks it.
    ("submission-edit-ko", "vendor_user", lambda world: f"/submissions/{draft_with_an_artifact(world).pk}/edit/",
     "ko-KR"),
    ("submission-detail-ko", "reviewer", lambda world: f"/submissions/{submitted_with_findings(world).pk}/", "ko-KR"),
    # Account pages (issue #12): API tokens and the second factor, for a vendor and for staff.
    ("api-tokens", "vendor_user", lambda world: "/account/tokens/", "en-GB"),
    ("api-tokens-ko", "officer", lambda world: "/account/tokens/", "ko-KR"),
    ("two-factor-setup", "vendor_user", lambda world: "/account/two-factor/setup/", "en-GB"),
    ("notifications", "reviewer", lambda world: "/notifications/", "ko-KR"),
    # Passkeys (issue #12): the list with a row, the add button, in both languages.
    ("passkeys", "officer", lambda world: (stored_passkey(world.officer), "/account/passkeys/")[1], "en-GB"),
    ("passkeys-ko", "officer", lambda world: (stored_passkey(world.officer), "/account/passkeys/")[1], "ko-KR"),
    # Public challenges (issue #15): the anonymous form and register, the officer's case page.
    ("challenge-new-ko", None, lambda world: "/challenges/new/", "ko-KR"),
    ("challenge-register", None, lambda world: (accepted_challenge(world, decide=True), "/challenges/register/")[1],
     "en-GB"),
    ("challenge-detail", "officer", lambda world: f"/challenges/{accepted_challenge(world).pk}/", "en-GB"),
]


def accepted_challenge(world, *, decide: bool = False):
    """A confirmed, accepted challenge against the world's project (decided when asked)."""
    from compliance.services import challenges

    challenge = challenges.challenge_file(
        project=world.project, model_named="Alpha", claim="derived_from_model", claimed_source="open-lab/base",
        statement="The norm gains match.", figures="raw cosine 0.989", contact_email="critic@example.net")
    challenge = challenges.challenge_confirm(token=challenges.challenge_confirm_token(challenge=challenge))
    challenges.challenge_accept(user=world.officer, challenge=challenge)
    if decide:
        challenges.challenge_decide(user=world.officer, challenge=challenge, outcome="not_upheld", reasons="r",
                                    summary="Not upheld.")
    return challenge


@pytest.mark.parametrize(("user_attr", "url_for", "locale"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES])
def test_page_has_no_serious_accessibility_violations(new_page, world, user_attr, url_for, locale):
    page, _ = new_page(bypass_csp=True, locale=locale)
    if user_attr:
        login(page, username=getattr(world, user_attr).username, password=PASSWORD)
    url = url_for(world)
    response = page.goto(url)
    assert response.status == 200, f"{url} answered {response.status}"
    expect(page.locator("html")).to_have_attribute("lang", locale[:2])
    violations = axe_violations(page)
    assert not violations, f"{url} ({locale}):\n{violations_describe(violations)}"


def test_a_failed_login_is_announced_and_stays_accessible(new_page, world):
    page, _ = new_page(bypass_csp=True)
    page.goto("/accounts/login/")
    page.locator("main input[name=username]").fill(world.vendor_user.username)
    page.locator("main input[name=password]").fill("not-the-password")
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("alert")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, f"login with an error:\n{violations_describe(violations)}"


def test_the_axe_guard_catches_a_missing_label_and_poor_contrast(new_page):
    """The checks above pass only because axe ran and found nothing, not because it never ran."""
    page, _ = new_page(bypass_csp=True)
    page.goto("/accounts/login/")
    page.evaluate("""() => document.querySelector('main').insertAdjacentHTML('beforeend',
        '<input id="unlabelled"><p style="color:#bbb;background:#fff">Grey on white is 1.9:1</p>')""")
    rules = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= rules, rules


def test_the_skip_link_is_the_first_tab_stop_and_moves_focus_to_main(new_page, world):
    page, _ = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto("/projects/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => ({cls: document.activeElement.className, text: document.activeElement.textContent,"
                            " visible: document.activeElement.getBoundingClientRect().left >= 0})")
    assert focused["cls"] == "skip-link" and focused["text"].strip() == "Skip to content"
    assert focused["visible"], "the skip link must come on screen when focused"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # The next Tab continues inside main, not back in the header.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")


def test_the_language_switcher_turns_the_page_korean(new_page, world):
    page, errors = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.goto("/projects/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Language").select_option("ko")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    assert page.url.endswith("/projects/"), "the switcher returns to the same page"
    # The switch sticks for the next page of the session.
    page.goto(f"/projects/{world.project.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    assert re.search(r"[\uac00-\ud7a3]", page.locator("header nav").inner_text()), "the menu is in Hangul"
    assert errors == []

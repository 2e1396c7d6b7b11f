"""The portal in the look of a Korean government service (KRDS, issue #17) and usable on a phone
(issue #13): every main page of every role, in English and Korean, carries the government-site
identifier and the KRDS stylesheet, never scrolls sideways at 390 px, and passes axe. Screenshots
at 390 and 1280 px go to var/screenshots/ for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_accessibility import (axe_violations, draft_with_an_artifact, stored_passkey, submitted_with_findings,
                                          violations_describe)
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}   # iPhone 12-15 CSS viewport, the narrowest common phone width
DESKTOP = {"width": 1280, "height": 900}
OPERATOR = {"en": "Ministry of Digital Sovereignty (demo)", "ko": "디지털주권부 (데모)"}

# (id, who looks, how to build the URL from the world)
PAGES = [
    ("login", None, lambda world: "/accounts/login/"),
    ("verify", None, lambda world: "/verify/"),
    ("vendor-projects", "vendor_user", lambda world: "/projects/"),
    ("vendor-project-detail", "vendor_user", lambda world: f"/projects/{world.project.pk}/"),
    ("vendor-submission-edit", "vendor_user", lambda world: f"/submissions/{draft_with_an_artifact(world).pk}/edit/"),
    ("reviewer-queue", "reviewer", lambda world: "/queue/"),
    ("reviewer-submission", "reviewer", lambda world: f"/submissions/{submitted_with_findings(world).pk}/"),
    ("reviewer-references", "reviewer", lambda world: "/references/"),
    ("officer-dashboard", "officer", lambda world: "/dashboard/"),
    ("officer-programmes", "officer", lambda world: "/programmes/"),
    ("officer-programme-detail", "officer", lambda world: f"/programmes/{world.programme.pk}/"),
    ("officer-project-create", "officer", lambda world: "/projects/new/"),
    ("auditor-audit-log", "auditor", lambda world: "/audit/"),
    ("admin-workers", "admin", lambda world: "/workers/"),
    ("officer-passkeys", "officer", lambda world: (stored_passkey(world.officer), "/account/passkeys/")[1]),
]
LANGUAGES = [("en", "en-GB"), ("ko", "ko-KR")]


def page_width(page) -> int:
    """The document's width once its web fonts have loaded (a fallback font lays text out differently)."""
    return page.evaluate("async () => { await document.fonts.ready; return document.documentElement.scrollWidth; }")


def widest_elements(page) -> list[str]:
    """The elements that stick out past the viewport, to say what to fix when the width test fails."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 8).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
            (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
            ' right=' + Math.round(el.getBoundingClientRect().right))""")


@pytest.mark.parametrize(("lang", "locale"), LANGUAGES, ids=[lang for lang, _ in LANGUAGES])
@pytest.mark.parametrize(("user_attr", "url_for"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES])
def test_page_has_the_krds_layout_fits_a_phone_and_passes_axe(new_page, world, user_attr, url_for, lang, locale,
                                                               request):
    page, errors = new_page(bypass_csp=True, locale=locale)
    if user_attr:
        login(page, username=getattr(world, user_attr).username, password=PASSWORD)
    url = url_for(world)
    page.set_viewport_size(PHONE)
    response = page.goto(url)
    assert response.status == 200, f"{url} answered {response.status}"
    expect(page.locator("html")).to_have_attribute("lang", lang)

    # The government-site identifier names the operating ministry in the page's language.
    identifier = page.locator(".krds-identifier")
    expect(identifier).to_be_visible()
    expect(identifier).to_contain_text(OPERATOR[lang])
    stylesheets = page.evaluate("() => [...document.styleSheets].map(s => s.href || '')")
    assert any(re.search(r"/static/vendor/krds/css/component/output(\.[0-9a-f]+)?\.css$", h) for h in stylesheets), stylesheets
    # The KRDS stylesheet really applied (its reset sets 1rem = 10px) and PretendardGOV is the face.
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "10px"
    assert "Pretendard GOV" in page.evaluate("() => getComputedStyle(document.body).fontFamily")
    expect(page.locator("nav.krds-breadcrumb-wrap .breadcrumb li.home a")).to_have_attribute("href", "/")

    width = page_width(page)
    assert width <= PHONE["width"], f"{url} ({lang}) is {width} px wide at 390 px: {widest_elements(page)}"
    name = f"{request.node.callspec.id.replace('[', '-').rstrip(']')}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-390.png"), full_page=True)

    violations = axe_violations(page)
    assert not violations, f"{url} ({lang}, 390 px):\n{violations_describe(violations)}"

    page.set_viewport_size(DESKTOP)
    assert page_width(page) <= DESKTOP["width"]
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280.png"), full_page=True)
    assert errors == []


@pytest.mark.parametrize(("lang", "locale"), LANGUAGES, ids=[lang for lang, _ in LANGUAGES])
def test_the_404_page_has_the_layout_and_a_way_home(new_page, world, lang, locale):
    page, _ = new_page(locale=locale)
    login(page, username=world.vendor_user.username, password=PASSWORD)
    page.set_viewport_size(PHONE)
    response = page.goto("/projects/999999/")
    assert response.status == 404
    expect(page.locator(".krds-identifier")).to_contain_text(OPERATOR[lang])
    expect(page.locator("header form.logout-form")).to_be_visible()
    home = page.locator("main a[href='/']")
    expect(home).to_be_visible()
    assert page_width(page) <= PHONE["width"]
    home.click()
    expect(page).to_have_url(re.compile(r"/projects/$"))  # a vendor's home is the project list


def test_the_step_indicator_follows_the_submission(new_page, world):
    page, _ = new_page()
    login(page, username=world.vendor_user.username, password=PASSWORD)
    draft = draft_with_an_artifact(world)
    page.goto(f"/submissions/{draft.pk}/edit/")
    steps = page.locator("ol.submission-steps > li")
    expect(steps).to_have_count(5)
    # One artifact uploaded, declaration not signed: step 2 (declaration) is current.
    expect(page.locator("ol.submission-steps > li[aria-current=step] .step-tit")).to_have_text("Declaration")
    expect(page.locator("ol.submission-steps > li.done")).to_have_count(1)


def test_a_submitted_submission_shows_the_checks_step_to_the_reviewer(new_page, world):
    submission = submitted_with_findings(world)
    page, _ = new_page(locale="ko-KR")
    login(page, username=world.reviewer.username, password=PASSWORD)
    page.goto(f"/submissions/{submission.pk}/")
    current = page.locator("ol.submission-steps > li[aria-current=step]")
    # Intake ran in-process: every run ended, so the submission awaits the reviewer's decision
    # (5단계 결정) unless a check is still waiting on intake (4단계 점검).
    expect(current.locator(".step")).to_have_text(re.compile(r"^[45]단계$"))
    expect(page.locator("ol.submission-steps > li.done")).to_have_count(3 if "4" in current.locator(".step").inner_text() else 4)


def test_long_unbroken_vendor_text_and_the_pager_fit_a_phone(new_page, world):
    """The worst a vendor can type: a 255-byte file name with no space, a 300-character title with
    no space, Korean without spaces; 30 projects, so the dashboard shows the KRDS pager."""
    from decimal import Decimal

    from projects import services
    from tests.factories import upload_bytes

    long_title = "초거대멀티모달모델" * 20 + "X" * 120
    for n in range(30):
        services.project_create(user=world.admin, programme=world.programme, code=f"p{n:02d}", title=long_title,
                                vendor=world.vendor_a, funding_krw=Decimal("1"))
    draft = services.submission_open(user=world.vendor_user, project=world.project)
    long_name = "model-" + "a" * 240 + ".json"
    upload_bytes(user=world.vendor_user, submission=draft, name=long_name, data=b"{}", kind="config")

    page, _ = new_page(bypass_csp=True, locale="ko-KR")
    login(page, username=world.officer.username, password=PASSWORD)
    page.set_viewport_size(PHONE)
    page.goto("/dashboard/")
    pager = page.locator("nav.krds-pagination")
    expect(pager).to_be_visible()
    expect(pager.locator(".page-link.active")).to_have_text("2쪽 중 1쪽")
    # The "page n of N" box is as wide as its text (KRDS sizes page links for one number).
    assert page.evaluate("async () => { await document.fonts.ready;"
                         " const el = document.querySelector('.krds-pagination .page-link.active');"
                         " return el.scrollWidth <= el.clientWidth; }"), "the page counter is clipped"
    assert page_width(page) <= PHONE["width"], widest_elements(page)
    violations = axe_violations(page)
    assert not violations, violations_describe(violations)
    pager.get_by_role("link", name="다음").click()
    expect(page.locator("nav.krds-pagination .page-link.active")).to_have_text("2쪽 중 2쪽")
    assert page_width(page) <= PHONE["width"], widest_elements(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "long-text-dashboard-ko-390.png"), full_page=True)

    vendor, _ = new_page(locale="ko-KR")
    login(vendor, username=world.vendor_user.username, password=PASSWORD)
    vendor.set_viewport_size(PHONE)
    vendor.goto(f"/submissions/{draft.pk}/edit/")
    expect(vendor.locator("#artifact-table")).to_contain_text(long_name[:40])
    assert page_width(vendor) <= PHONE["width"], widest_elements(vendor)
    vendor.screenshot(path=str(SCREENSHOTS / "long-text-submission-edit-ko-390.png"), full_page=True)

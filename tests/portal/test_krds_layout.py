"""The KRDS layout without a browser: the one date format, the operator's name, the error pages
(500 and CSRF failure are rendered with no request context) and hashed static names."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.utils import timezone, translation
from django.views.defaults import server_error

ROOT = Path(settings.BASE_DIR)
TEMPLATES = ROOT / "templates"


def render(source: str, **context) -> str:
    return Template("{% load portal_tags %}" + source).render(Context(context))


def test_when_shows_the_instant_in_the_portals_zone_with_its_name(settings):
    settings.TIME_ZONE = "Asia/Seoul"
    instant = datetime.datetime(2026, 12, 6, 8, 42, 7, tzinfo=datetime.UTC)
    with timezone.override(ZoneInfo("Asia/Seoul")):
        assert render("{{ t|when }}", t=instant) == "2026-12-06 17:42 KST"
        assert render('{{ t|when:"seconds" }}', t=instant) == "2026-12-06 17:42:07 KST"
    with timezone.override(ZoneInfo("Europe/Paris")):  # PORTAL_TIME_ZONE elsewhere: the zone says so
        assert render("{{ t|when }}", t=instant) == "2026-12-06 09:42 CET"
    assert render("{{ d|when }}", d=datetime.date(2026, 2, 1)) == "2026-02-01"
    assert render("[{{ t|when }}]", t=None) == "[]"


def test_no_page_template_formats_dates_its_own_way():
    """Every date-time on a page goes through |when; the dossier keeps its own (UTC) convention."""
    offenders = [str(p.relative_to(ROOT)) for p in TEMPLATES.rglob("*.html")
                 if "dossier" not in p.parts and re.search(r"\|date:", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_every_page_template_fills_the_breadcrumbs():
    pages = [p for p in TEMPLATES.rglob("*.html") if '{% extends "base.html" %}' in p.read_text(encoding="utf-8")]
    assert len(pages) >= 20
    missing = [str(p.relative_to(ROOT)) for p in pages if "{% block breadcrumbs %}" not in p.read_text(encoding="utf-8")]
    assert missing == []
    assert not [p for p in pages if 'class="crumbs"' in p.read_text(encoding="utf-8")], "the old .crumbs moved into the block"


@pytest.mark.parametrize(("lang", "operator", "home"), [("en", "Ministry of Digital Sovereignty (demo)", "Go to the home page"),
                                                       ("ko", "디지털주권부 (데모)", "홈으로 가기")])
def test_the_500_page_renders_in_the_layout_without_a_request_context(lang, operator, home):
    with translation.override(lang):
        response = server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert 'class="krds-identifier"' in html and operator in html
    assert re.search(r'<a class="button primary" href="/">' + re.escape(home) + "</a>", html)
    assert "vendor/krds/css/component/output" in html


@pytest.mark.django_db
def test_the_operator_name_comes_from_the_setting(client, settings):
    settings.PORTAL_OPERATOR_NAME = {"en": "Ministry of Science and ICT", "ko": "과학기술정보통신부"}
    html = client.get("/accounts/login/").content.decode()
    assert "This is the official website of the Ministry of Science and ICT." in html
    html = client.get("/accounts/login/", headers={"accept-language": "ko"}).content.decode()
    assert "이 누리집은 과학기술정보통신부 누리집입니다." in html


@pytest.mark.django_db
def test_a_csrf_failure_explains_itself_in_the_layout():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    html = response.content.decode()
    assert response.status_code == 403
    assert 'class="krds-identifier"' in html and "The form expired" in html and 'href="/"' in html


@pytest.mark.django_db
def test_a_missing_page_answers_404_in_the_layout(client):
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'class="krds-identifier"' in html and "Page not found" in html and 'href="/"' in html


def test_collectstatic_gives_css_and_fonts_hashed_names(settings, tmp_path):
    """The manifest storage production uses: every url() in the KRDS and portal CSS resolves
    (collectstatic fails otherwise) and the stylesheet names the fonts by their hashed names."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    settings.STATICFILES_DIRS = [ROOT / "static"]
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a not in {"django.contrib.admin", "drf_spectacular_sidecar", "rest_framework"}]
    call_command("collectstatic", interactive=False, verbosity=0)
    hashed = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    portal_css = [n for n in hashed if re.fullmatch(r"css/portal\.[0-9a-f]{12}\.css", n)]
    krds_css = [n for n in hashed if re.fullmatch(r"vendor/krds/css/component/output\.[0-9a-f]{12}\.css", n)]
    assert len(portal_css) == 1 and len(krds_css) == 1
    css = (tmp_path / portal_css[0]).read_text(encoding="utf-8")
    assert re.search(r"PretendardGOV-Regular\.subset\.[0-9a-f]{12}\.woff2", css)
    krds = (tmp_path / krds_css[0]).read_text(encoding="utf-8")
    assert re.search(r"@import url\(\"?\.\./token/krds_tokens\.[0-9a-f]{12}\.css|krds_tokens\.[0-9a-f]{12}\.css", krds)


@pytest.mark.django_db
def test_the_403_page_is_in_the_layout_with_a_way_home():
    from django.core.exceptions import PermissionDenied
    from django.views.defaults import permission_denied

    with translation.override("ko"):
        response = permission_denied(RequestFactory().get("/somewhere/"), PermissionDenied())
    html = response.content.decode()
    assert response.status_code == 403
    assert "이 누리집은 디지털주권부 (데모) 누리집입니다." in html
    assert "허용되지 않은 요청" in html and '<a class="button primary" href="/">홈으로 가기</a>' in html

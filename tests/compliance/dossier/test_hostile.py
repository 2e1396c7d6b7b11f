"""A vendor who types HTML, CSS and URLs into every field gets them printed, never fetched."""

from __future__ import annotations

import re

from weasyprint import HTML

from compliance.dossier.fetcher import StaticOnlyFetcher
from compliance.dossier.render import dossier_html_render
from compliance.dossier.sample import HOSTILE_STRINGS, sample_context_build
from tests.compliance.dossier.conftest import poppler


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_hostile_fields_fetch_nothing_outside_static(dossier_hostile):
    assert dossier_hostile.render.refused == []
    assert sorted(dossier_hostile.render.fetched) == ["fonts/NanumGothic.ttf", "fonts/NanumGothicBold.ttf",
                                                      "vendor/krds/fonts/PretendardGOV-Bold.subset.ttf",
                                                      "vendor/krds/fonts/PretendardGOV-Regular.subset.ttf"]


def test_hostile_fields_are_shown_literally(dossier_hostile, tmp_path):
    flat = _flat(poppler("pdftotext", dossier_hostile.signed, tmp_path))
    for payload in HOSTILE_STRINGS:
        assert _flat(payload) in flat, f"payload not shown literally: {payload}"


def test_hostile_fields_never_become_markup():
    html = dossier_html_render(context=sample_context_build(hostile=True))
    assert "attacker.invalid" in html  # present, as text
    assert "<img" not in html and "<script" not in html and "<link" not in html
    assert "<image" not in html  # the SVG payload did not reach any chart as markup
    assert "&lt;img src=&quot;http://attacker.invalid/pixel.png&quot;&gt;" in html
    # Template syntax typed by a vendor is not evaluated.
    assert "{{ secret }} {% debug %}" in html


def test_the_fetcher_refuses_what_a_page_asks_for_outside_static(tmp_path):
    # Belt and braces: even markup that does reach WeasyPrint fetches nothing.
    fetcher = StaticOnlyFetcher()
    html = (
        '<img src="http://attacker.invalid/a.png"><img src="https://attacker.invalid/b.png">'
        '<img src="file:///etc/passwd"><link rel="stylesheet" href="file:///etc/ssl/openssl.cnf">'
        '<div style="background: url(ftp://attacker.invalid/c)">x</div>'
        '<img src="data:image/png;base64,iVBORw0KGgo=">'
    )
    HTML(string=html, base_url=fetcher.base_url, url_fetcher=fetcher).write_pdf()
    refused = {r.url for r in fetcher.refused}
    assert {"http://attacker.invalid/a.png", "https://attacker.invalid/b.png", "file:///etc/passwd", "file:///etc/ssl/openssl.cnf"} <= refused
    assert fetcher.fetched == []

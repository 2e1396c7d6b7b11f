"""The portal in Korean: a ministry officer who picks 한국어 sees Korean navigation and headings,
and the Korean catalogue is complete (every string translated, placeholders kept, .mo compiled).

Fix for a failing catalogue test: run
    .venv/bin/python manage.py makemessages -l ko --ignore=.venv --ignore=var --ignore=bench --ignore=tests
translate the new entries in locale/ko/LC_MESSAGES/django.po, then
    .venv/bin/python manage.py compilemessages -l ko --ignore=.venv
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
PO_PATH = ROOT / "locale" / "ko" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")
HOWTO = "run makemessages -l ko, translate the new entries, then compilemessages (see this module's docstring)"

# printf-style placeholders (%(name)s, %(n)d, %(kind)r, bare %s/%d) and str.format ones ({name}).
PLACEHOLDER = re.compile(r"%\(\w+\)[sdirf]|%[sdirf]|\{\w*\}")
HTML_LANG = re.compile(r'<html[^>]*\blang="([^"]+)"')


# ---------------------------------------------------------------- the pages


def _html_lang(response) -> str:
    match = HTML_LANG.search(response.content.decode())
    assert match, "the page has no <html lang> attribute; screen readers need it to pick a voice"
    return match.group(1)


def _set_language(client, code: str) -> None:
    """Choose a language the way the header's switcher does (POST /i18n/setlang/)."""
    response = client.post(reverse("set_language"), {"language": code, "next": "/dashboard/"})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == code


@pytest.mark.django_db
def test_dashboard_in_korean_after_choosing_it_in_the_switcher(client, world):
    client.force_login(world.admin)
    _set_language(client, "ko")
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert _html_lang(response) == "ko"
    html = response.content.decode()
    # Navigation, heading and table headers an officer reads first.
    for korean in ["소버린 AI 거버넌스 포털", "대시보드", "검토 대기 목록", "사업", "과제", "감사 기록",
                   "로그아웃", "본문 바로가기", "미처리 발견 사항", "수행기관", "기한이 지난 마일스톤"]:
        assert korean in html, f"{korean!r} missing from the Korean dashboard"
    assert ">Dashboard<" not in html
    assert ">Review queue<" not in html
    assert ">Log out<" not in html
    # Model choices are translated too: the world's project is in phase 1.
    assert "1단계" in html


@pytest.mark.django_db
def test_project_page_in_korean(client, world):
    client.force_login(world.admin)
    _set_language(client, "ko")
    response = client.get(reverse("project-detail", args=[world.project.pk]))
    assert response.status_code == 200
    assert _html_lang(response) == "ko"
    html = response.content.decode()
    for korean in ["마일스톤", "제출본", "지원금(원)", "컨소시엄", "배정된 검토위원", "아직 제출본이 없습니다.",
                   "기한 경과"]:  # the world's 2026-02-01 checkpoint is overdue
        assert korean in html, f"{korean!r} missing from the Korean project page"
    assert ">Milestones<" not in html
    # User data is never translated: the project's own title stays as entered.
    assert world.project.title in html


@pytest.mark.django_db
def test_submission_page_in_korean_keeps_the_live_progress_placeholders(client, world):
    """portal.js fills %(done)s and %(total)s into the translated progress line while checks run."""
    from tests.factories import signed_submission

    submission = signed_submission(world=world)
    client.force_login(world.admin)
    _set_language(client, "ko")
    response = client.get(reverse("submission-detail", args=[submission.pk]))
    assert response.status_code == 200
    assert _html_lang(response) == "ko"
    html = response.content.decode()
    for korean in ["신고서", "산출물", "점검", "발견 사항", "반입 검사 통과 전 격리", "준수 보고서"]:
        assert korean in html, f"{korean!r} missing from the Korean submission page"
    progress = re.search(r'data-progress-text="([^"]*)"', html)
    if progress:  # the live-progress line is optional in the template
        assert "%(done)s" in progress.group(1) and "%(total)s" in progress.group(1)
        assert "%%" not in progress.group(1)
        assert "점검" in progress.group(1)


@pytest.mark.django_db
def test_login_page_in_korean_from_the_browser_language(client):
    """An anonymous visitor whose browser asks for Korean gets the Korean login page."""
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9,en;q=0.5")
    assert response.status_code == 200
    assert _html_lang(response) == "ko"
    html = response.content.decode()
    assert "<h1>로그인</h1>" in html
    assert "언어" in html and "변경" in html  # the language switcher
    assert "비밀번호" in html  # Django's own auth form labels come from Django's Korean catalogue
    assert "한국어" in html  # the switcher names each language in its own script


@pytest.mark.django_db
def test_pages_stay_english_by_default(client, world):
    response = client.get(reverse("login"))
    assert _html_lang(response) == "en"
    assert "<h1>Log in</h1>" in response.content.decode()

    client.force_login(world.admin)
    dashboard = client.get(reverse("dashboard"))
    assert _html_lang(dashboard) == "en"
    html = dashboard.content.decode()
    assert ">Dashboard<" in html and "Review queue" in html and "Log out" in html
    assert "대시보드" not in html

    project = client.get(reverse("project-detail", args=[world.project.pk])).content.decode()
    assert "Milestones" in project and "마일스톤" not in project


@pytest.mark.django_db
def test_switching_back_to_english(client, world):
    client.force_login(world.admin)
    _set_language(client, "ko")
    assert "대시보드" in client.get(reverse("dashboard")).content.decode()
    _set_language(client, "en")
    response = client.get(reverse("dashboard"))
    assert _html_lang(response) == "en"
    assert ">Dashboard<" in response.content.decode()


# ---------------------------------------------------------------- the catalogue


@dataclass
class PoEntry:
    """One entry of a .po file, as far as these tests need it."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: str = ""
    msgstr_plural: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0


def po_parse(*, path: Path) -> tuple[PoEntry, list[PoEntry]]:
    """Parse a gettext .po file into (header entry, message entries); obsolete (#~) entries are skipped.

    A small parser instead of polib, which the portal does not otherwise need.
    """
    entries: list[PoEntry] = []
    current = PoEntry()
    target: tuple[str, int | None] | None = None

    def flush() -> None:
        nonlocal current, target
        if target is not None:
            entries.append(current)
        current, target = PoEntry(), None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            if target is not None and target[0].startswith("msgstr"):
                flush()
            current.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            if target is not None and target[0].startswith("msgstr"):
                flush()
            continue
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            text = ast.literal_eval(line)
        else:
            if keyword in {"msgctxt", "msgid"} and target is not None and target[0].startswith("msgstr"):
                flush()
            if not current.line:
                current.line = number
            text = ast.literal_eval(rest)
            plural = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            target = ("msgstr_plural", int(plural.group(1))) if plural else (keyword, None)
            if target[0] == "msgstr_plural":
                current.msgstr_plural[target[1]] = ""
            elif target[0] in {"msgid_plural", "msgctxt"}:
                setattr(current, target[0], "")
        assert target is not None, f"{path}:{number}: text outside any entry"
        name, index = target
        if name == "msgstr_plural":
            current.msgstr_plural[index] += text
        else:
            setattr(current, name, getattr(current, name) + text)
    flush()
    header = next(e for e in entries if e.msgid == "" and e.msgctxt is None)
    return header, [e for e in entries if e is not header]


@pytest.fixture(scope="module")
def catalogue() -> tuple[PoEntry, list[PoEntry]]:
    assert PO_PATH.exists(), f"{PO_PATH} is missing: {HOWTO}"
    return po_parse(path=PO_PATH)


def test_catalogue_header_declares_korean_with_one_plural_form(catalogue):
    header, entries = catalogue
    assert "fuzzy" not in header.flags, "a fuzzy header makes msgfmt drop the charset and plural rule"
    assert "Language: ko\n" in header.msgstr
    assert "Plural-Forms: nplurals=1; plural=0;" in header.msgstr  # Korean nouns do not inflect for number
    assert "charset=UTF-8" in header.msgstr
    assert len(entries) > 300  # the whole portal, not a sample


def test_every_string_is_translated_and_none_is_fuzzy(catalogue):
    _, entries = catalogue
    untranslated = [e.msgid for e in entries
                    if not (e.msgstr_plural if e.msgid_plural else e.msgstr)
                    or any(not s for s in e.msgstr_plural.values())]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert not untranslated, f"{len(untranslated)} untranslated, e.g. {untranslated[:5]}: {HOWTO}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy entries (guessed by msgmerge, shown in English): {fuzzy[:5]}"


def test_plural_entries_have_exactly_one_korean_form(catalogue):
    _, entries = catalogue
    plurals = [e for e in entries if e.msgid_plural]
    assert plurals, "the audit log's 'Chain intact: N entries verified' is a plural entry"
    for entry in plurals:
        assert sorted(entry.msgstr_plural) == [0], f"line {entry.line}: {entry.msgid!r} needs msgstr[0] only"


def test_translations_keep_every_placeholder(catalogue):
    """A dropped or renamed %(name)s raises KeyError, or silently loses the value, at render time."""
    _, entries = catalogue
    problems = []
    for entry in entries:
        if entry.msgid_plural:
            wanted = sorted(set(PLACEHOLDER.findall(entry.msgid)) | set(PLACEHOLDER.findall(entry.msgid_plural)))
            for index, text in entry.msgstr_plural.items():
                if sorted(set(PLACEHOLDER.findall(text))) != wanted:
                    problems.append(f"line {entry.line} [{index}]: {entry.msgid!r} -> {text!r}")
        elif sorted(PLACEHOLDER.findall(entry.msgstr)) != sorted(PLACEHOLDER.findall(entry.msgid)):
            problems.append(f"line {entry.line}: {entry.msgid!r} -> {entry.msgstr!r}")
    assert not problems, "placeholders differ:\n" + "\n".join(problems)


YESNO_ARGUMENT = re.compile(r"^[^,\s][^,]*(,[^,\s][^,]*){1,2}$")


def test_yesno_arguments_keep_their_comma_separated_shape(catalogue):
    """`|yesno:_("yes,no,not checked")` splits the translation on commas: a lost comma shows the wrong word."""
    _, entries = catalogue
    for entry in entries:
        if YESNO_ARGUMENT.match(entry.msgid) and ", " not in entry.msgid:
            assert entry.msgstr.count(",") == entry.msgid.count(","), f"line {entry.line}: {entry.msgstr!r}"
            assert ", " not in entry.msgstr, f"line {entry.line}: no space after the commas in {entry.msgstr!r}"


def test_translations_read_as_korean(catalogue):
    """Every translation that is not a proper name or acronym contains Hangul."""
    _, entries = catalogue
    hangul = re.compile(r"[\uac00-\ud7a3]")
    kept_as_is = {"API", "/"}  # "/" is the dossier's "page 3 / 10" separator
    english = [e.msgid for e in entries
               if e.msgstr not in kept_as_is and not hangul.search(e.msgstr or "".join(e.msgstr_plural.values()))]
    assert not english, f"translations without Korean text: {english[:5]}"


def test_glossary_terms_are_used_consistently(catalogue):
    """The ministry's glossary: one Korean term per concept across the whole portal."""
    _, entries = catalogue
    by_id = {e.msgid: e.msgstr for e in entries}
    glossary = {"Dashboard": "대시보드", "Programme": "사업", "Project": "과제", "Submission": "제출본",
                "Artifact": "산출물", "Findings": "발견 사항", "Reviewer": "검토위원", "Auditor": "감사인",
                "Vendor": "수행기관", "Declaration": "신고서", "Check": "점검", "Licence": "라이선스",
                "Audit trail": "감사 기록", "Dossier": "준수 보고서"}
    for english, korean in glossary.items():
        if english in by_id:
            assert by_id[english] == korean, f"{english!r} is {by_id[english]!r}, the glossary says {korean!r}"


def test_compiled_catalogue_matches_the_po(catalogue):
    """Django reads the .mo, not the .po: a forgotten compilemessages ships English."""
    _, entries = catalogue
    assert MO_PATH.exists(), f"{MO_PATH} is missing: run compilemessages -l ko"
    with MO_PATH.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in entries:
        if entry.msgid_plural:
            got = compiled.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 2) if entry.msgctxt \
                else compiled.ngettext(entry.msgid, entry.msgid_plural, 2)
            want = entry.msgstr_plural.get(0)
        else:
            got = compiled.pgettext(entry.msgctxt, entry.msgid) if entry.msgctxt else compiled.gettext(entry.msgid)
            want = entry.msgstr
        if got != want:
            stale.append(entry.msgid)
    assert not stale, f"{len(stale)} strings differ between .po and .mo, e.g. {stale[:3]}: run compilemessages -l ko"


# Literal {% translate "..." %} / {% trans '...' %} in templates, and _("...")/gettext("...") calls in Python.
TEMPLATE_STRING = re.compile(r"""\{%\s*(?:translate|trans)\s+(?P<q>["'])(?P<s>.*?)(?P=q)(?:\s+[^%]*)?\s*%\}""")
PYTHON_STRING = re.compile(
    r"""\b(?:_|gettext|gettext_lazy)\(\s*(?P<q>["'])(?P<s>(?:(?!(?P=q)).|\\.)*?)(?P=q)\s*[,)]""")


def _source_strings() -> dict[str, str]:
    """Each translatable literal in the portal's own sources, with where it was found."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for match in TEMPLATE_STRING.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(match.group("s"), str(path.relative_to(ROOT)))
    for package in ("portal", "projects", "compliance"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for match in PYTHON_STRING.finditer(path.read_text(encoding="utf-8")):
                text = match.group("s")
                if "\\" in text:  # escapes: compare the decoded string
                    text = ast.literal_eval(match.group("q") + text + match.group("q"))
                found.setdefault(text, str(path.relative_to(ROOT)))
    return found


def test_catalogue_covers_every_string_in_the_sources(catalogue):
    """A string added to a template or a view after the last makemessages would show in English."""
    _, entries = catalogue
    known = {e.msgid for e in entries}
    # makemessages doubles a literal % in template strings ("50%" is stored as "50%%").
    missing = {text: where for text, where in _source_strings().items()
               if text and text not in known and text.replace("%", "%%") not in known}
    assert not missing, f"{len(missing)} strings not in the Korean catalogue, e.g. {list(missing.items())[:5]}: {HOWTO}"

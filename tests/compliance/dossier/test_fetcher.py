"""The static-only URL fetcher: serves files under its root, refuses everything else."""

from __future__ import annotations

import os

import pytest

from compliance.dossier.fetcher import STATIC_ROOT, StaticOnlyFetcher


@pytest.fixture
def root(tmp_path):
    (tmp_path / "static" / "fonts").mkdir(parents=True)
    (tmp_path / "static" / "fonts" / "a.ttf").write_bytes(b"font")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", tmp_path / "static" / "link.txt")
    return tmp_path / "static"


def test_serves_a_file_under_the_root(root):
    fetcher = StaticOnlyFetcher(root=root)
    response = fetcher.fetch((root / "fonts" / "a.ttf").as_uri())
    assert response.read() == b"font" and response.content_type == "font/ttf"
    assert fetcher.fetched == ["fonts/a.ttf"] and fetcher.refused == []


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://example.invalid/x.png", "scheme 'http' is not allowed"),
        ("https://example.invalid/x.png", "scheme 'https' is not allowed"),
        ("data:text/plain,hi", "scheme 'data' is not allowed"),
        ("ftp://example.invalid/x", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "outside the static folder"),
        ("file://evil.invalid/share/x", "names host 'evil.invalid'"),
    ],
)
def test_refuses_other_urls(root, url, reason):
    fetcher = StaticOnlyFetcher(root=root)
    with pytest.raises(PermissionError):
        fetcher.fetch(url)
    assert fetcher.refused[0].url == url and reason in fetcher.refused[0].reason


def test_refuses_dot_dot_and_symlink_escapes(root):
    fetcher = StaticOnlyFetcher(root=root)
    for url in (root.as_uri() + "/../secret.txt", root.as_uri() + "/%2e%2e/secret.txt", (root / "link.txt").as_uri()):
        with pytest.raises(PermissionError):
            fetcher.fetch(url)
    assert all("outside the static folder" in r.reason or "no such file" in r.reason for r in fetcher.refused)
    assert len(fetcher.refused) == 3


def test_refuses_directories_and_missing_files(root):
    fetcher = StaticOnlyFetcher(root=root)
    for url in ((root / "fonts").as_uri(), (root / "nope.css").as_uri()):
        with pytest.raises(PermissionError):
            fetcher.fetch(url)
    assert [r.reason for r in fetcher.refused] == ["not a regular file", "no such file under the static folder"]


def test_bundled_fonts_and_licence_ship_with_the_project():
    for name in ("NanumGothic.ttf", "NanumGothicBold.ttf", "OFL.txt"):
        assert (STATIC_ROOT / "fonts" / name).is_file()
    assert "SIL OPEN FONT LICENSE" in (STATIC_ROOT / "fonts" / "OFL.txt").read_text()

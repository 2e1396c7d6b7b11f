"""The only URL fetcher WeasyPrint gets while rendering a dossier.

It serves files from one folder (the bundled ``static/``) and refuses
everything else: http(s), ftp, data:, file:// outside the folder, paths that
escape through ``..`` or symlinks, directories, and missing files. Nothing is
redirected (there is no network code path at all). Every refusal is appended
to ``refused`` (url and reason) so the caller can log it, fail a test on it,
or show it to an operator.

The templates auto-escape every vendor string, so a vendor's
``<img src="http://...">`` never becomes an element and never reaches this
fetcher; this is the second wall, not the first.
"""

from __future__ import annotations

import mimetypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse

__all__ = ["FetchRefusal", "StaticOnlyFetcher", "STATIC_ROOT"]

# static/ at the repository root (compliance/dossier/fetcher.py -> ../../static).
STATIC_ROOT = Path(__file__).resolve().parents[2] / "static"
# Fonts are the largest bundled files (NanumGothic is 4.7 MB); 32 MB leaves room
# for images while stopping a mistaken multi-GB file from being read whole.
_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class FetchRefusal:
    """A URL the renderer asked for and did not get, and why."""

    url: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "reason": self.reason}


class StaticOnlyFetcher(URLFetcher):
    """WeasyPrint URL fetcher restricted to files under ``root``.

    ``fetched`` lists the files served, ``refused`` the URLs refused (both
    thread-safe lists of plain values).
    """

    def __init__(self, *, root: Path | str = STATIC_ROOT) -> None:
        # allow_redirects=False and no handlers are ever used: fetch() below
        # never calls urllib. fail_on_errors=False: a refused URL is a warning
        # for WeasyPrint (the resource is left out) and a record for us.
        super().__init__(allowed_protocols=("file",), allow_redirects=False, fail_on_errors=False)
        self.root = Path(root).resolve()
        self.refused: list[FetchRefusal] = []
        self.fetched: list[str] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """file:// URL of the root, with a trailing slash, for templates and base_url."""
        return self.root.as_uri() + "/"

    def _refuse(self, url: str, reason: str) -> None:
        with self._lock:
            self.refused.append(FetchRefusal(url=url[:2000], reason=reason))
        raise PermissionError(f"dossier renderer refused {url[:200]!r}: {reason}")

    def path_for(self, url: str) -> Path:
        """The file under ``root`` that ``url`` names; raises PermissionError otherwise."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "file":
            self._refuse(url, f"scheme {scheme or '(none)'!r} is not allowed; only bundled static files are served")
        if parts.netloc not in ("", "localhost"):
            self._refuse(url, f"file URL names host {parts.netloc!r}; only local static files are served")
        raw = unquote(parts.path)
        if "\x00" in raw:
            self._refuse(url, "NUL byte in path")
        path = Path(url2pathname(parts.path))
        try:
            # resolve() follows symlinks, so a link inside static/ that points
            # to /etc is refused as well.
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            self._refuse(url, "no such file under the static folder")
        if os.path.commonpath([str(resolved), str(self.root)]) != str(self.root):
            self._refuse(url, f"outside the static folder {self.root}")
        if not resolved.is_file():
            self._refuse(url, "not a regular file")
        if resolved.stat().st_size > _MAX_BYTES:
            self._refuse(url, f"larger than {_MAX_BYTES // (1024 * 1024)} MB")
        return resolved

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:  # noqa: ARG002
        """Serve ``url`` if it is a file under ``root``; raise otherwise."""
        path = self.path_for(url)
        body = path.read_bytes()
        mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix.lower() in (".ttf", ".otf"):
            mime_type = "font/ttf" if path.suffix.lower() == ".ttf" else "font/otf"
        with self._lock:
            self.fetched.append(str(path.relative_to(self.root)))
        return URLFetcherResponse(path.as_uri(), body, {"Content-Type": mime_type})

    def open(self, url, data=None, timeout=None):  # noqa: ARG002
        """urllib entry point, routed through the same checks (never hits the network)."""
        full_url = getattr(url, "full_url", url)
        return self.fetch(full_url)

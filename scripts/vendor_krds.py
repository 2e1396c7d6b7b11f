"""Refresh static/vendor/krds/ from the krds-uiux package on the npm registry.

    python scripts/vendor_krds.py            # the pinned version
    python scripts/vendor_krds.py 1.2.0      # another version (then update README.md there)

It runs ``npm pack krds-uiux@VERSION`` in a temporary folder, extracts the tarball and copies
only what the portal uses:

- ``resources/css/component/output.css`` (KRDS common + components; it @imports the tokens)
  and ``resources/css/token/krds_tokens.css``, at the same relative places so the @import and
  the ``url(../../img/...)`` references keep working;
- the icons those two files reference (``resources/img/component/icon/*.svg``), nothing else,
  so ManifestStaticFilesStorage finds every ``url()`` it hashes;
- the PretendardGOV web fonts (woff2 for browsers, woff as their fallback), and TrueType copies
  of Regular and Bold for the dossier: WeasyPrint reads WOFF but converts it with fontTools on
  every render, stamping the current time into the font's ``head.modified``, so a re-rendered
  dossier would no longer match the archived one byte for byte. The copies here are decoded once,
  with the package's own timestamp kept.

``/*# sourceMappingURL=... */`` comments are removed: the maps are not vendored (1.2 MB) and
ManifestStaticFilesStorage refuses a CSS file whose map it cannot find.

No KRDS JavaScript is vendored: the portal's header, navigation and upload component work
without it (ui-script.js drives carousels, modals and the mobile menu we do not use).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "krds-uiux"
VERSION = "1.1.0"
ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "static" / "vendor" / "krds"
CSS_FILES = ("css/component/output.css", "css/token/krds_tokens.css")
FONT_FILES = tuple(
    f"PretendardGOV-{weight}.subset.{ext}" for weight in ("Regular", "Medium", "Bold") for ext in ("woff2", "woff")
)
_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
_SOURCE_MAP = re.compile(r"/\*#\s*sourceMappingURL=[^*]*\*/")


DOSSIER_TTF = ("PretendardGOV-Regular.subset.woff", "PretendardGOV-Bold.subset.woff")


def woff_to_ttf(source: Path, dest: Path) -> None:
    """Decode a WOFF file to TrueType, keeping its head.modified (reproducible bytes)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(source), recalcTimestamp=False)
    font.flavor = None
    font.save(str(dest), reorderTables=True)


def css_local_urls(css: str) -> set[str]:
    """Relative url() targets of a stylesheet (data: URIs and absolute URLs excluded)."""
    return {u for u in _URL.findall(css) if not u.startswith(("data:", "http:", "https:", "//", "#"))}


def vendor(version: str = VERSION) -> list[str]:
    """Download, extract and copy; return the copied paths relative to TARGET."""
    copied: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"{PACKAGE}@{version}", "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tarball = next(Path(tmp).glob(f"{PACKAGE}-*.tgz"))
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        resources = Path(tmp) / "package" / "resources"
        if TARGET.exists():
            for sub in ("css", "img"):
                shutil.rmtree(TARGET / sub, ignore_errors=True)
            for old_font in [*(TARGET / "fonts").glob("*.woff*"), *(TARGET / "fonts").glob("*.ttf")]:  # README, LICENSE, fonts/OFL.txt stay
                old_font.unlink()
        for rel in CSS_FILES:
            source = resources / rel
            css = _SOURCE_MAP.sub("", source.read_text(encoding="utf-8"))
            dest = TARGET / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(css, encoding="utf-8")
            copied.append(rel)
            for url in sorted(css_local_urls(css)):
                asset = (source.parent / url).resolve()
                if not asset.is_relative_to(resources.resolve()):
                    raise SystemExit(f"{rel}: url({url}) points outside the package")
                if not asset.exists():
                    raise SystemExit(f"{rel}: url({url}) names a file the package does not ship")
                asset_rel = asset.relative_to(resources.resolve()).as_posix()
                (TARGET / asset_rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(asset, TARGET / asset_rel)
                copied.append(asset_rel)
        for name in FONT_FILES:
            (TARGET / "fonts").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(resources / "fonts" / name, TARGET / "fonts" / name)
            copied.append(f"fonts/{name}")
        for name in DOSSIER_TTF:
            ttf_name = name.removesuffix(".woff") + ".ttf"
            woff_to_ttf(resources / "fonts" / name, TARGET / "fonts" / ttf_name)
            copied.append(f"fonts/{ttf_name}")
    return sorted(set(copied))


def main(argv: list[str]) -> int:
    version = argv[1] if len(argv) > 1 else VERSION
    copied = vendor(version)
    for rel in copied:
        digest = hashlib.sha256((TARGET / rel).read_bytes()).hexdigest()[:16]
        print(f"{digest}  {rel}")
    print(f"{len(copied)} files from {PACKAGE}@{version} into {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

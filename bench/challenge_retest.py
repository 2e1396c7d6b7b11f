"""Cost of a copied-code challenge's re-test when the named code arrives as the challenger's
archive: it is indexed into a temporary index for that re-test alone (never the registry), then
the submitted source is scanned against it. Both steps are what
``compliance.services.challenge_retest.copied_code_retest`` calls (``code_index_add`` into a
temporary folder, ``code_scan`` restricted to that package).

    .venv/bin/python bench/challenge_retest.py

Named code: installed packages of this virtualenv, as a challenger would send them (a tar.gz of
the package folder): kombu, rest_framework, celery, django, growing in size. Vendor source: a
tar.gz of the first 200 entries of the standard library's *.py glob (not in any of them) with one module of the named package
pasted in, so each run must find one file. Prints one JSON line per package and a Markdown table.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compliance.engine.codematch import code_index_add, code_scan  # noqa: E402
from compliance.engine.licenses.sources import archive_members_iter  # noqa: E402

PACKAGES = ("kombu", "rest_framework", "celery", "django")


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _package_members(name: str) -> list[tuple[str, bytes]]:
    root = Path(importlib.util.find_spec(name).submodule_search_locations[0])
    return [(f"{name}/{p.relative_to(root)}", p.read_bytes()) for p in sorted(root.rglob("*.py"))]


def _vendor_members(pasted: tuple[str, bytes]) -> list[tuple[str, bytes]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = sorted(p for p in stdlib.glob("*.py"))[:200]
    return [(f"vendor/{p.name}", p.read_bytes()) for p in modules] + [("vendor/pasted.py", pasted[1])]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-challenge-") as tmp:
        tmp = Path(tmp)
        for name in PACKAGES:
            members = _package_members(name)
            # A mid-sized module of the package (200-800 lines) is the copied one.
            pasted = next(m for m in members if 200 <= m[1].count(b"\n") <= 800)
            named = _tar(tmp / f"{name}.tar.gz", members)
            vendor = _tar(tmp / f"vendor-{name}.tar.gz", _vendor_members(pasted))
            index_dir = tmp / f"index-{name}"
            started = time.perf_counter()
            summary = code_index_add(index_dir=str(index_dir), source=archive_members_iter(path=str(named)),
                                     name=name, version="bench")
            indexed = time.perf_counter() - started
            started = time.perf_counter()
            result = code_scan(source=archive_members_iter(path=str(vendor)), index_dir=str(index_dir),
                               packages=[(name, "bench")])
            scanned = time.perf_counter() - started
            found = sorted({m.path for m in result.matches})
            row = {"package": name, "files_indexed": summary.files, "lines_indexed": sum(
                d.count(b"\n") for _n, d in members), "archive_bytes": named.stat().st_size,
                "index_s": round(indexed, 2), "scan_s": round(scanned, 2), "vendor_files": result.files_scanned,
                "files_with_matches": found, "pasted_from": pasted[0]}
            rows.append(row)
            print(json.dumps(row))
    print(f"\n| named code | files indexed | lines | index (s) | scan of {rows[0]['vendor_files']} vendor files (s) | "
          "total (s) | found |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['package']} | {r['files_indexed']:,} | {r['lines_indexed']:,} | {r['index_s']} | {r['scan_s']} | "
              f"{round(r['index_s'] + r['scan_s'], 2)} | {', '.join(r['files_with_matches']) or 'nothing'} |")


if __name__ == "__main__":
    main()

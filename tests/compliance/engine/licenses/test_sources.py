"""What the licence and code scanners read from a path: archives by content or suffix."""

from __future__ import annotations

import io
import tarfile

import pytest
import zstandard

from compliance.engine.archives import ArchiveError
from compliance.engine.licenses.sources import source_members_iter


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_tar_zst_and_a_nameless_tar_are_read_member_by_member(tmp_path):
    files = {"pkg/LICENSE": b"MIT License\n", "pkg/a.py": b"x = 1\n"}
    zst = tmp_path / "src.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(_tar(files)))
    nameless = tmp_path / "artifact"
    nameless.write_bytes(_tar(files))
    for path in (zst, nameless):
        assert dict(source_members_iter(path=str(path))) == files


def test_an_archive_format_we_do_not_open_says_so(tmp_path):
    bz2 = tmp_path / "src.tar.bz2"
    with tarfile.open(bz2, mode="w:bz2") as tar:
        info = tarfile.TarInfo("a.py")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"x\n"))
    with pytest.raises(ArchiveError, match="not a zip, tar"):
        list(source_members_iter(path=str(bz2)))


def test_a_plain_file_is_one_member_under_its_own_name(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(b"---\nlicense: mit\n---\n")
    assert list(source_members_iter(path=str(path))) == [("README.md", b"---\nlicense: mit\n---\n")]

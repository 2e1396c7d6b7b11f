"""Stored files read by byte range (projects.storage) on local storage; tests/s3 does the same on S3."""

from __future__ import annotations

import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from projects.storage import StoredFileReadError, stored_file_copy, stored_file_is_local, stored_range_reader


def range_reader_contract(tmp_path) -> None:
    """What any storage must give: exact ranges, counted; a range past the end refused; a faithful copy."""
    data = os.urandom(3 * 1024 * 1024 + 5)
    name = default_storage.save("artifacts/blob.bin", ContentFile(data))
    reader = stored_range_reader(stored_name=name, name="blob.bin")
    assert reader.size == len(data)
    assert reader.read(0, 8) == data[:8]
    assert reader.read(len(data) - 5, 5) == data[-5:]
    assert reader.read(1_000_000, 0) == b""
    assert (reader.bytes_read, reader.reads) == (13, 2)
    with pytest.raises(StoredFileReadError, match="holds 3145733 bytes"):
        reader.read(len(data) - 4, 5)
    copy = stored_file_copy(stored_name=name, target=tmp_path / "copy.bin")
    assert copy.read_bytes() == data


def test_local_storage_reads_ranges_and_copies(db, tmp_path):
    range_reader_contract(tmp_path)
    assert stored_file_is_local(stored_name="artifacts/blob.bin")


def test_a_missing_stored_file_is_a_read_error_naming_it(db):
    with pytest.raises(StoredFileReadError, match="weights.safetensors"):
        stored_range_reader(stored_name="artifacts/nothing-here.bin", name="weights.safetensors")

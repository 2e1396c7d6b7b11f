"""The shared reference data is found where CI lays it out or where PORTAL_SHARED_DATA says, and a
test that needs it and cannot find it fails saying where it looked (it never skips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.inputs import SHARED_DATA_ENV, ROOT
from tests.shared import shared_data


def test_shared_data_is_read_from_the_folder_the_environment_names(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "model-configs").mkdir()
    (tmp_path / "model-configs" / "config.json").write_text("{}")
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    assert shared_data("model-configs", "config.json") == tmp_path / "model-configs" / "config.json"


def test_without_the_environment_variable_it_is_looked_for_beside_the_project(monkeypatch) -> None:
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception) as failure:
        shared_data("no-such-folder")
    message = str(failure.value)
    assert str(ROOT.parent / "shared" / "data" / "no-such-folder") in message
    assert "../shared/data beside the project" in message and SHARED_DATA_ENV in message


def test_a_missing_file_fails_the_test_naming_the_folder_that_was_searched(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(pytest.fail.Exception) as failure:
        shared_data("solar-vs-glm", "layernorm_sanity_shuffle.csv")
    message = str(failure.value)
    assert f"${SHARED_DATA_ENV}={tmp_path / 'elsewhere'}" in message
    assert str(tmp_path / "elsewhere" / "solar-vs-glm" / "layernorm_sanity_shuffle.csv") in message

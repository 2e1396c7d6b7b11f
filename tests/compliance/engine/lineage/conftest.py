"""Shared tiny models for the lineage tests: one Llama-style reference, written and fingerprinted once."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.engine.lineage import Fingerprint, fingerprint_build
from tests.compliance.engine.lineage import tinymodels as tm


@pytest.fixture(scope="session")
def llama_base() -> tm.TinyModel:
    return tm.llama_make(seed=1)


@pytest.fixture(scope="session")
def llama_dir(llama_base: tm.TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tm.model_write(llama_base, tmp_path_factory.mktemp("ref") / "llama-base")


@pytest.fixture(scope="session")
def llama_print(llama_dir: Path) -> Fingerprint:
    return fingerprint_build(path=llama_dir)

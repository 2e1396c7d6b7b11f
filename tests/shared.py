"""Where the project's shared reference data lives: $PORTAL_SHARED_DATA if set, else
../shared/data beside the repository (as CI lays it out). A test that needs a file from it asks
`shared_data(...)`, which fails the test (never skips it) saying where it looked: a green run
must not hide that the real-data tests did not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.inputs import shared_data_missing_message, shared_data_root

SHARED_DATA = shared_data_root()


def shared_data(*parts: str) -> Path:
    """The shared file or folder at `parts`, or a failed test naming where it was looked for."""
    path = shared_data_root().joinpath(*parts)
    if not path.exists():
        pytest.fail(shared_data_missing_message(path=path), pytrace=False)
    return path

"""Shared fixtures: ScanCode's index loads once per test session (4-8 s)."""

import importlib.metadata
import os

import pytest


def installed_file(distribution: str, endswith: str) -> str:
    """Absolute path of a file shipped by an installed distribution."""
    dist = importlib.metadata.distribution(distribution)
    for entry in dist.files or []:
        if str(entry).endswith(endswith):
            path = str(dist.locate_file(entry))
            if os.path.exists(path):
                return path
    raise FileNotFoundError(f"{distribution} ships no file ending {endswith}")


@pytest.fixture(scope="session")
def license_detector(tmp_path_factory):
    from compliance.engine.licenses import LicenseDetector

    detector = LicenseDetector(cache_dir=str(tmp_path_factory.mktemp("license-cache")))
    yield detector
    detector.close()

"""Where the project's shared reference data lives: ../shared/data beside the repository
(as on developers' machines and in CI), else /work/shared/data."""

from pathlib import Path

_BESIDE = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SHARED_DATA = _BESIDE if _BESIDE.exists() else Path("/work/shared/data")

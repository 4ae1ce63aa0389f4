"""Shared fixtures: small seeded tables and the path of the public data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``VIPML_DATA_DIR``, else ``../shared/data`` beside the project."""
    env = os.environ.get("VIPML_DATA_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared public data; tests that use it skip when it is absent."""
    folder = shared_data_dir()
    if not (folder / "cdnow_sample.txt").is_file() or not (folder / "hillstrom.csv").is_file():
        pytest.skip(
            f"public data sets not found in {folder} (set VIPML_DATA_DIR to the folder holding "
            "cdnow_sample.txt and hillstrom.csv)"
        )
    return folder

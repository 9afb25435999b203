"""Fixtures for the demo tests."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Every test stores the demo's item files under its own temporary folder: ``--reset``
    deletes the files of the rows it flushes."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT

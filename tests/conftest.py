"""Shared fixtures: databases on both backends, the simulator, the real data sample."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.databases"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled real-data sample (a subset of shared/data, with provenance)."""
    return REPO / "data" / "sample"

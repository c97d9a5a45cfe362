"""Shared fixtures: databases on both backends, the simulator, the real data sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klinewatch.sim.testing import RunningSim, from_fixture_param

pytest_plugins = ["tests.fixtures.databases"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled real-data sample (a subset of shared/data, with provenance)."""
    return REPO / "data" / "sample"


@pytest.fixture
def sim_server(request: pytest.FixtureRequest) -> Iterator[RunningSim]:
    """The exchange simulator on a free loopback port over ``default_data_dir()``;
    ``.url``, ``.ctx`` (clock, faults, stats). Parametrize indirectly with ``SimOptions``
    or a dict of ``running_sim`` arguments to change its data or limits."""
    with from_fixture_param(getattr(request, "param", None)) as sim:
        yield sim

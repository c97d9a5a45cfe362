"""One simulator per test module (starting one costs ~0.2 s), reset before each test;
``http`` is a client of it. The venue tests in ``venues/`` bring their own fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from klinewatch.sim.testing import RunningSim, running_sim


@pytest.fixture(scope="module")
def core_sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def core_sim(core_sim_module: RunningSim) -> RunningSim:
    """The module's simulator with no faults, stats, bans or shift; real-time clock."""
    core_sim_module.reset()
    return core_sim_module


@pytest.fixture
def http(core_sim: RunningSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=core_sim.url, timeout=10) as client:
        yield client

"""A simulator (the core app, which mounts the venue routes) for the venue tests, plus
helpers that page through CCXT and compare with the recorded CSV value by value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from klinewatch.domain.candles import Candles
from klinewatch.sim.store import SeriesStore
from klinewatch.sim.testing import RunningSim, running_sim


@pytest.fixture(scope="module")
def venue_sim_module() -> Iterator[RunningSim]:
    """One simulator per module (``sim_server`` would start one per test)."""
    with running_sim() as running:
        yield running


@pytest.fixture
def sim(venue_sim_module: RunningSim) -> RunningSim:
    """The module's simulator over ``default_data_dir()``, reset: no faults, real limits,
    real-time clock (tests freeze it where they need)."""
    venue_sim_module.reset()
    return venue_sim_module


def recorded(store: SeriesStore, exchange: str, market: str, symbol: str, interval: str) -> Candles:
    """A recorded series, or skip the test when the data folder lacks it."""
    if not store.has(exchange, market, symbol, interval):
        pytest.skip(f"{exchange}/{market}/{symbol}/{interval} is not in {store.root}")
    return store.get(exchange, market, symbol, interval)


async def paginate(
    exchange: Any, symbol: str, timeframe: str, since: int, end_ms: int, step_ms: int, limit: int
) -> list[list[float]]:
    """Every candle in ``[since, end_ms)`` as the caller pages: ``since`` = last + step."""
    rows: list[list[float]] = []
    while since < end_ms:
        batch = await exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
        batch = [row for row in batch if row[0] < end_ms]
        if not batch:
            break
        assert len(batch) <= limit
        rows += batch
        since = int(batch[-1][0]) + step_ms
    return rows


def assert_same_candles(rows: list[list[float]], expected: Candles) -> None:
    """CCXT's ``[ts, o, h, l, c, v]`` rows equal the recording exactly, every value."""
    got = np.array(rows, dtype=np.float64).reshape(-1, 6)
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got[:, 0].astype(np.int64), expected.open_time_ms)
    for i, column in enumerate((expected.open, expected.high, expected.low, expected.close), 1):
        np.testing.assert_array_equal(got[:, i], column)
    np.testing.assert_array_equal(got[:, 5], expected.volume)

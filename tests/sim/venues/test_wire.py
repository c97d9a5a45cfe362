"""The pieces every venue shares: number strings and page selection under the clock."""

from __future__ import annotations

import pytest

from klinewatch.domain.intervals import INTERVALS
from klinewatch.sim.testing import RunningSim
from klinewatch.sim.venues.wire import Series, divide, fmt, select
from tests.sim.venues.conftest import recorded


@pytest.mark.parametrize(
    ("value", "text"),
    [(37630.5, "37630.5"), (37630.0, "37630"), (1e-05, "0.00001"), (0.0, "0"), (343.38, "343.38")],
)
def test_numbers_print_as_exchanges_print_them(value: float, text: str) -> None:
    assert fmt(value) == text


def test_contract_counts_are_exact_decimals() -> None:
    assert divide(343.38, "0.01") == "34338"
    assert divide(6821.2, "0.1") == "68212"
    assert divide(0.0, "0.01") == "0"


def test_pages_keep_the_oldest_or_the_newest_and_never_pass_now(sim: RunningSim) -> None:
    candles = recorded(sim.ctx.store, "bybit", "futures", "BTCUSDT", "4h")
    series = Series("bybit", "futures", "BTCUSDT", INTERVALS["4h"])
    times = candles.open_time_ms
    now = int(times[100]) + 60_000
    store = sim.ctx.store
    oldest = select(store, series, now, lo_ms=int(times[10]), limit=5, keep="oldest")
    newest = select(store, series, now, lo_ms=int(times[10]), limit=5, keep="newest")
    assert oldest.open_time_ms.tolist() == times[10:15].tolist()
    assert newest.open_time_ms.tolist() == times[96:101].tolist()
    assert newest.close_time_ms[-1] >= now  # the open candle, part-way
    assert newest.volume[-1] < candles.volume[100]
    assert newest.close[:-1].tolist() == candles.close[96:100].tolist()
    empty = select(store, series, int(times[0]) - 1, limit=5, keep="newest")
    assert len(empty) == 0

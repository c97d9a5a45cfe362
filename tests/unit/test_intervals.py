"""Interval arithmetic against Binance's grid, property-tested."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from klinewatch.domain.intervals import (
    DAY_MS,
    HOUR_MS,
    INTERVALS,
    parse_interval,
    parse_market_type,
)
from klinewatch.errors import InvalidInput

MS = st.integers(min_value=1_262_304_000_000, max_value=2_000_000_000_000)  # 2010..2033
NAMES = st.sampled_from(sorted(INTERVALS))


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@given(NAMES, MS)
def test_floor_is_aligned_and_contains_the_moment(name: str, t: int) -> None:
    interval = INTERVALS[name]
    start = interval.floor(t)
    assert interval.is_aligned(start)
    assert start <= t <= interval.close_time(start)
    assert interval.floor(start) == start


@given(NAMES, MS)
def test_close_time_is_next_open_minus_one(name: str, t: int) -> None:
    interval = INTERVALS[name]
    start = interval.floor(t)
    assert interval.close_time(start) == interval.next_open(start) - 1
    assert interval.floor(interval.next_open(start)) == interval.next_open(start)


@given(NAMES, MS, st.integers(min_value=0, max_value=400 * DAY_MS))
def test_open_times_are_consecutive_and_counted(name: str, start: int, span: int) -> None:
    interval = INTERVALS[name]
    times = interval.open_times(start, start + span)
    assert len(times) == interval.count(start, start + span)
    assert all(interval.is_aligned(int(t)) for t in times[:5])
    if len(times):
        assert times[0] >= start and times[-1] < start + span
        assert interval.ceil(start) == times[0]
    for a, b in zip(times[:50], times[1:50], strict=False):
        assert interval.next_open(int(a)) == int(b)


def test_week_opens_on_monday_and_month_on_the_first() -> None:
    week = parse_interval("1w")
    assert week.floor(ms(2024, 1, 10, 15)) == ms(2024, 1, 8)  # a Wednesday -> Monday 8th
    month = parse_interval("1M")
    assert month.floor(ms(2024, 2, 29, 23)) == ms(2024, 2, 1)
    assert month.close_time(ms(2024, 2, 1)) == ms(2024, 3, 1) - 1
    assert month.next_open(ms(2024, 12, 1)) == ms(2025, 1, 1)
    assert list(month.open_times(ms(2024, 1, 15), ms(2024, 4, 1))) == [
        ms(2024, 2, 1),
        ms(2024, 3, 1),
    ]


def test_last_closed_candle() -> None:
    hour = parse_interval("1h")
    assert hour.last_closed_open(ms(2024, 1, 1, 10, 30)) == ms(2024, 1, 1, 9)
    assert hour.last_closed_open(ms(2024, 1, 1, 10) - 1) == ms(2024, 1, 1, 8)  # 9:00 still open
    assert hour.last_closed_open(ms(2024, 1, 1, 10)) == ms(2024, 1, 1, 9)


def test_real_series_sit_on_the_grid(sample_dir: object) -> None:
    from klinewatch.sim.store import SeriesStore

    store = SeriesStore(sample_dir)  # type: ignore[arg-type]
    for market, symbol, name in [("spot", "BTCUSDT", "4h"), ("futures", "DOTUSDT", "1m")]:
        candles = store.get("binance", market, symbol, name)
        interval = parse_interval(name)
        assert len(candles) > 1000
        assert interval.aligned_mask(candles.open_time_ms).all()
        assert np.array_equal(candles.close_time_ms, candles.open_time_ms + interval.nominal_ms - 1)


def test_bad_names_are_invalid_input_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_interval("7m")
    assert err.value.field == "interval" and "7m" in err.value.message
    with pytest.raises(InvalidInput) as err:
        parse_market_type("options")
    assert err.value.field == "market_type"
    assert parse_market_type("SPOT").value == "spot"
    assert parse_interval("1h").length_ms == HOUR_MS

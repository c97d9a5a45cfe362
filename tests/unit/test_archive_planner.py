"""Which whole months and days the archive serves, and the REST spot-check's window."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import DAY_MS, HOUR_MS, parse_interval
from klinewatch.services.archive_planner import (
    Period,
    agrees,
    archive_serves,
    plan_archive,
    sample_window,
    split_days,
)

M1 = parse_interval("1m")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_whole_months_then_whole_days_then_rest() -> None:
    missing = [(ms("2025-10-25T12:00"), ms("2025-12-03T06:00"))]
    plan = plan_archive(missing, M1, now_ms=ms("2025-12-05"), min_candles=499)
    months = [p for p in plan.periods if p.freq == "monthly"]
    days = [p for p in plan.periods if p.freq == "daily"]
    assert months == [Period("monthly", ms("2025-11-01"), ms("2025-12-01"))]
    assert [p.start_ms for p in days] == [
        *(ms(f"2025-10-{d}") for d in range(26, 32)),
        ms("2025-12-01"),
        ms("2025-12-02"),
    ]
    assert plan.rest == [
        (ms("2025-10-25T12:00"), ms("2025-10-26")),
        (ms("2025-12-03"), ms("2025-12-03T06:00")),
    ]


def test_only_ended_periods_are_planned() -> None:
    missing = [(ms("2025-11-01"), ms("2025-11-20T12:00"))]
    plan = plan_archive(missing, M1, now_ms=ms("2025-11-20T12:00"), min_candles=499)
    assert all(p.freq == "daily" for p in plan.periods)  # November has not ended
    assert len(plan.periods) == 19
    assert plan.rest == [(ms("2025-11-20"), ms("2025-11-20T12:00"))]


def test_periods_too_small_to_save_a_request_stay_with_rest() -> None:
    missing = [(ms("2021-04-20"), ms("2021-07-18"))]
    plan = plan_archive(missing, parse_interval("5m"), ms("2021-07-18"), min_candles=1000)
    assert [p.freq for p in plan.periods] == ["monthly", "monthly"]  # a 5m day is 288
    assert plan.rest == [
        (ms("2021-04-20"), ms("2021-05-01")),
        (ms("2021-07-01"), ms("2021-07-18")),
    ]
    hourly = plan_archive(missing, parse_interval("1h"), ms("2021-07-18"), min_candles=1000)
    assert hourly.periods == [] and hourly.rest == missing


def test_intervals_that_do_not_divide_a_day_never_use_the_archive() -> None:
    assert archive_serves(parse_interval("4h"))
    assert not archive_serves(parse_interval("3d"))
    assert not archive_serves(parse_interval("1w"))
    assert not archive_serves(parse_interval("1M"))
    days, rest = split_days([(0, 10 * DAY_MS)], parse_interval("1w"), 20 * DAY_MS, 0)
    assert days == [] and rest == [(0, 10 * DAY_MS)]


def test_a_failed_month_splits_into_its_days() -> None:
    month = (ms("2025-02-01"), ms("2025-03-01"))
    days, rest = split_days([month], M1, ms("2025-03-02"), 499)
    assert len(days) == 28 and rest == []


def test_the_sample_window_lies_inside_the_period_and_is_stable() -> None:
    for start in range(ms("2025-01-01"), ms("2025-02-01"), DAY_MS):
        day = Period("daily", start, start + DAY_MS)
        window = sample_window(day, M1, 99)
        assert day.start_ms <= window[0] and window[1] <= day.end_ms
        assert window[1] - window[0] == 99 * 60_000
        assert sample_window(day, M1, 99) == window
    small = Period("daily", 0, DAY_MS)
    assert sample_window(small, parse_interval("1h"), 1000) == (0, DAY_MS)


def test_agreement_needs_every_field_equal() -> None:
    times = np.arange(0, 10 * HOUR_MS, HOUR_MS, dtype=np.int64)
    ones = np.ones(len(times))
    candles = Candles.from_columns(
        open_time_ms=times,
        open=ones,
        high=ones,
        low=ones,
        close=ones,
        volume=ones,
        close_time_ms=times + HOUR_MS - 1,
    )
    window = (2 * HOUR_MS, 6 * HOUR_MS)
    assert agrees(candles, candles.take(np.arange(len(times))[::-1]), window)  # any order
    doubled = Candles.from_columns(
        **{name: getattr(candles, name) for name in ("open_time_ms", "open", "high", "low")},
        close=ones,
        volume=ones * 2,
        close_time_ms=candles.close_time_ms,
    )
    assert not agrees(candles, doubled, window)
    assert not agrees(candles.take(times != 3 * HOUR_MS), candles, window)  # a row missing

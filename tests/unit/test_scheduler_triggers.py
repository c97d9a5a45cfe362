"""Pure triggers: when each job runs next in both modes, across interval boundaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from klinewatch.domain.intervals import DAY_MS, HOUR_MS, MINUTE_MS, parse_interval
from klinewatch.errors import InvalidInput
from klinewatch.scheduler.jobs import CONTRACTS, JobKey, JobSpec, jobs_for_series, parse_jobs
from klinewatch.scheduler.triggers import Schedule, next_close, next_fire, next_on_grid

DELAY = 2_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


H1, H4, D1 = parse_interval("1h"), parse_interval("4h"), parse_interval("1d")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2025-04-13 18:00:00", "2025-04-13 18:00:02"),  # a close, not yet published
        ("2025-04-13 18:00:01.999", "2025-04-13 18:00:02"),
        ("2025-04-13 18:00:02", "2025-04-13 19:00:02"),  # fired at :02, next hour
        ("2025-04-13 18:30:00", "2025-04-13 19:00:02"),
        ("2025-04-13 23:59:59", "2025-04-14 00:00:02"),  # across midnight
    ],
)
def test_n_periods_1h_fires_just_after_each_close(now: str, expected: str) -> None:
    assert next_close(H1, ms(now), 1, DELAY) == ms(expected)


def test_n_periods_4h_and_1d_follow_their_own_grid() -> None:
    now = ms("2025-04-13 18:30:00")
    assert next_close(H4, now, 1, DELAY) == ms("2025-04-13 20:00:02")
    assert next_close(D1, now, 1, DELAY) == ms("2025-04-14 00:00:02")
    assert next_close(parse_interval("1w"), now, 1, DELAY) == ms("2025-04-14 00:00:02")  # Monday
    assert next_close(parse_interval("1M"), now, 1, DELAY) == ms("2025-05-01 00:00:02")
    assert next_close(parse_interval("1M"), ms("2024-12-31 23:59:59"), 1, 0) == ms("2025-01-01")


def test_n_periods_every_nth_close() -> None:
    now = ms("2025-04-13 18:30:00")
    assert next_close(H1, now, 4, DELAY) == ms("2025-04-13 20:00:02")  # 20:00 is 4h-aligned
    assert next_close(H1, ms("2025-04-13 20:00:02"), 4, DELAY) == ms("2025-04-14 00:00:02")
    assert next_close(parse_interval("1M"), now, 3, 0) == ms("2025-07-01")  # Jan, Apr, Jul


def test_a_loop_that_asks_at_each_fire_time_fires_once_per_close() -> None:
    now, fires = ms("2025-04-13 21:10:00"), []
    for _ in range(5):
        now = next_close(H1, now, 1, DELAY)
        fires.append(now)
    assert [b - a for a, b in zip(fires, fires[1:], strict=False)] == [HOUR_MS] * 4
    assert fires[0] == ms("2025-04-13 22:00:02")


@pytest.mark.parametrize(
    ("now", "every_s", "expected"),
    [
        ("2025-04-13 18:00:00", 5, "2025-04-13 18:00:05"),
        ("2025-04-13 18:00:04.999", 5, "2025-04-13 18:00:05"),
        ("2025-04-13 18:00:05", 5, "2025-04-13 18:00:10"),
        ("2025-04-13 18:59:59", 60, "2025-04-13 19:00:00"),
    ],
)
def test_interval_mode_runs_every_n_seconds_on_a_fixed_grid(
    now: str, every_s: int, expected: str
) -> None:
    schedule = Schedule("interval", every_s)
    for interval in (H1, D1):  # the same for every kline interval
        assert next_fire(schedule, ms(now), interval) == ms(expected)


def test_next_fire_follows_the_mode_and_contracts_their_own_period() -> None:
    now = ms("2025-04-13 18:30:00")
    assert next_fire(Schedule("n_periods", 5, 1, DELAY), now, H1) == ms("2025-04-13 19:00:02")
    assert next_fire(Schedule("interval", 5), now, H1) == now + 5_000
    for mode in ("interval", "n_periods"):
        schedule = Schedule(mode, 5)  # type: ignore[arg-type]
        assert next_fire(schedule, now, None, DAY_MS) == ms("2025-04-14 00:00:00")


def test_fire_times_are_strictly_after_now() -> None:
    for now in range(ms("2025-04-13 17:59:00"), ms("2025-04-13 18:01:00"), 7_000):
        assert next_close(H1, now, 1, DELAY) > now
        assert next_on_grid(now, MINUTE_MS) > now


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="every_s"):
        Schedule("interval", 0)
    with pytest.raises(ValueError, match="n_periods"):
        Schedule("n_periods", 5, 0)
    with pytest.raises(ValueError, match="every_ms"):
        next_fire(Schedule("interval", 5), 0, None)


def test_jobs_setting_lists_contract_syncs_first() -> None:
    jobs = parse_jobs("binance:spot:1h,4h; binance:futures:1d ;binance:spot:1h")
    assert [job.key for job in jobs] == [
        JobKey("binance", "spot", CONTRACTS),
        JobKey("binance", "futures", CONTRACTS),
        JobKey("binance", "spot", "1h"),
        JobKey("binance", "spot", "4h"),
        JobKey("binance", "futures", "1d"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("binance:spot", "not exchange:market:intervals"),
        ("binance:options:1h", "unknown market type"),
        ("binance:spot:1h,2x", "unknown interval '2x'"),
        ("  ;  ", "no job given"),
        ("kraken:spot:1h", "unknown exchange 'kraken'; expected one of binance, okx"),
    ],
)
def test_a_bad_jobs_setting_names_the_setting(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected) as raised:
        parse_jobs(text, exchanges=("binance", "okx"))
    assert raised.value.message.startswith("KLINEWATCH_SCHEDULER_JOBS")


def test_job_groups_give_each_symbol_its_start() -> None:
    key = JobKey("binance", "spot", "1h")
    assert JobSpec(key).groups() == [([], None)]
    spec = JobSpec(key, ("ETHUSDT",), 500, starts=(("BTCUSDT", 100), ("OMUSDT", 100)))
    assert spec.groups() == [(["BTCUSDT", "OMUSDT"], 100), (["ETHUSDT"], 500)]


def test_jobs_for_recorded_series_sync_first_then_longer_intervals_first() -> None:
    jobs = jobs_for_series(
        [
            ("binance", "spot", "1h", "BTCUSDT", 100),
            ("binance", "futures", "1d", "SPACEUSDT", 300),
            ("binance", "spot", "1h", "OMUSDT", 200),
            ("binance", "spot", "1d", "BTCUSDT", 100),
        ]
    )
    assert [job.key for job in jobs] == [
        JobKey("binance", "spot", CONTRACTS),
        JobKey("binance", "futures", CONTRACTS),
        JobKey("binance", "futures", "1d"),
        JobKey("binance", "spot", "1d"),
        JobKey("binance", "spot", "1h"),
    ]
    assert jobs[-1].groups() == [(["BTCUSDT"], 100), (["OMUSDT"], 200)]

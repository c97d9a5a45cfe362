"""When a job runs next: pure functions of the mode, the interval and "now".

Seed 001 section 3.6 has two modes:

- ``interval``: every job runs every ``update_interval_seconds``. Fire times sit on a grid
  aligned to the epoch (``k * every``), so they never drift and a restart keeps the rhythm.
- ``n_periods``: a kline interval's job runs just after every ``n_periods``-th of its
  candles closes, plus ``delay_ms`` for the exchange to publish it (a candle that closed
  a moment ago may not be served yet). The boundaries are the interval's own open times
  (1w on Mondays, 1M on the first of the month), counted from the epoch, so ``n_periods=4``
  on 1h fires at 00:00, 04:00, ... plus the delay.

A job that is not a kline interval (the contract sync) runs every ``every_ms`` on its own
grid in both modes. Every function returns the first fire time strictly after ``now_ms``:
a loop that fires at ``t`` and asks again at ``t`` never fires twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from klinewatch.domain.intervals import Interval

Mode = Literal["interval", "n_periods"]
DEFAULT_DELAY_MS = 2_000
_MONDAY_OFFSET_MS = 4 * 86_400_000  # 1970-01-05, the first Monday (1w's grid)


@dataclass(frozen=True, slots=True)
class Schedule:
    """What the triggers read from the system config; equal schedules plan equally."""

    mode: Mode
    every_s: int
    n_periods: int = 1
    delay_ms: int = DEFAULT_DELAY_MS

    def __post_init__(self) -> None:
        if self.every_s < 1:
            raise ValueError(f"every_s must be at least 1, got {self.every_s}")
        if self.n_periods < 1:
            raise ValueError(f"n_periods must be at least 1, got {self.n_periods}")
        if self.delay_ms < 0:
            raise ValueError(f"delay_ms must not be negative, got {self.delay_ms}")


def next_on_grid(now_ms: int, every_ms: int) -> int:
    """The first multiple of ``every_ms`` strictly after ``now_ms``."""
    if every_ms <= 0:
        raise ValueError(f"every_ms must be positive, got {every_ms}")
    return (now_ms // every_ms + 1) * every_ms


def period_index(interval: Interval, open_ms: int) -> int:
    """How many candles of ``interval`` opened between the epoch's grid and ``open_ms``."""
    if interval.length_ms is None:
        moment = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        return (moment.year - 1970) * 12 + moment.month - 1
    offset = _MONDAY_OFFSET_MS if interval.name == "1w" else 0
    return (open_ms - offset) // interval.length_ms


def next_close(interval: Interval, now_ms: int, n_periods: int = 1, delay_ms: int = 0) -> int:
    """Just after the next close of every ``n_periods``-th candle: the first boundary ``b``
    (an open time with ``period_index(b) % n_periods == 0``) with ``b + delay_ms > now_ms``,
    returned as ``b + delay_ms``."""
    if n_periods < 1:
        raise ValueError(f"n_periods must be at least 1, got {n_periods}")
    boundary = interval.next_open(interval.floor(now_ms - delay_ms))
    if interval.length_ms is not None:
        step = interval.length_ms
        behind = period_index(interval, boundary) % n_periods
        boundary += ((n_periods - behind) % n_periods) * step
    else:
        while period_index(interval, boundary) % n_periods:
            boundary = interval.next_open(boundary)
    return boundary + delay_ms


def next_fire(
    schedule: Schedule, now_ms: int, interval: Interval | None, every_ms: int | None = None
) -> int:
    """The next run of one job: a kline ``interval`` follows the schedule's mode; a job
    without one (``interval=None``) runs every ``every_ms`` whatever the mode."""
    if interval is None:
        if every_ms is None:
            raise ValueError("a job without an interval needs every_ms")
        return next_on_grid(now_ms, every_ms)
    if schedule.mode == "interval":
        return next_on_grid(now_ms, schedule.every_s * 1000)
    return next_close(interval, now_ms, schedule.n_periods, schedule.delay_ms)

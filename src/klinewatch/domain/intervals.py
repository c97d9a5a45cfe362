"""Binance's kline intervals and the UTC open/close time arithmetic of each.

All times are integer milliseconds since the epoch (UTC), named ``*_ms``. A candle's
``close_time_ms`` is the next candle's open time minus one, as on Binance. Ranges are
half-open ``[start_ms, end_ms)`` over open times.

Alignment follows Binance: fixed intervals up to 3d are multiples of their length since
the epoch; ``1w`` opens on Monday 00:00 UTC; ``1M`` on the first day of the month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from klinewatch.errors import InvalidInput

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; the first Monday 00:00 UTC is 1970-01-05.
_FIRST_MONDAY_MS = 4 * DAY_MS


class MarketType(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


@dataclass(frozen=True, slots=True)
class Interval:
    """One kline interval; ``length_ms`` is ``None`` only for the calendar month."""

    name: str
    length_ms: int | None

    @property
    def is_monthly(self) -> bool:
        return self.length_ms is None

    @property
    def nominal_ms(self) -> int:
        """Length for planning (a month counts as 31 days so estimates never fall short)."""
        return self.length_ms if self.length_ms is not None else 31 * DAY_MS

    def floor(self, ts_ms: int) -> int:
        """The open time of the candle that contains ``ts_ms``."""
        if self.length_ms is None:
            moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
            return _month_start_ms(moment.year, moment.month)
        offset = _FIRST_MONDAY_MS if self.name == "1w" else 0
        return (ts_ms - offset) // self.length_ms * self.length_ms + offset

    def ceil(self, ts_ms: int) -> int:
        """The first open time at or after ``ts_ms``."""
        floored = self.floor(ts_ms)
        return floored if floored == ts_ms else self.next_open(floored)

    def next_open(self, open_ms: int) -> int:
        if self.length_ms is not None:
            return open_ms + self.length_ms
        moment = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return _month_start_ms(year, month)

    def close_time(self, open_ms: int) -> int:
        return self.next_open(open_ms) - 1

    def is_aligned(self, ts_ms: int) -> bool:
        return self.floor(ts_ms) == ts_ms

    def aligned_mask(self, open_times_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Vectorized ``is_aligned`` for a column of open times."""
        if self.length_ms is None:
            return np.array([self.is_aligned(int(t)) for t in open_times_ms], dtype=np.bool_)
        offset = _FIRST_MONDAY_MS if self.name == "1w" else 0
        return np.asarray((open_times_ms - offset) % self.length_ms == 0, dtype=np.bool_)

    def open_times(self, start_ms: int, end_ms: int) -> npt.NDArray[np.int64]:
        """Every open time in ``[start_ms, end_ms)``, oldest first."""
        first = self.ceil(start_ms)
        if first >= end_ms:
            return np.empty(0, dtype=np.int64)
        if self.length_ms is not None:
            return np.arange(first, end_ms, self.length_ms, dtype=np.int64)
        out: list[int] = []
        current = first
        while current < end_ms:
            out.append(current)
            current = self.next_open(current)
        return np.array(out, dtype=np.int64)

    def count(self, start_ms: int, end_ms: int) -> int:
        """How many open times lie in ``[start_ms, end_ms)``."""
        if self.length_ms is None:
            return len(self.open_times(start_ms, end_ms))
        first = self.ceil(start_ms)
        return 0 if first >= end_ms else (end_ms - 1 - first) // self.length_ms + 1

    def last_closed_open(self, now_ms: int) -> int:
        """Open time of the newest candle fully closed at ``now_ms``."""
        current = self.floor(now_ms)
        if self.close_time(current) < now_ms:
            return current
        return self.floor(current - 1)

    def __str__(self) -> str:
        return self.name


def _month_start_ms(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


_INTERVALS: tuple[Interval, ...] = (
    Interval("1m", MINUTE_MS),
    Interval("3m", 3 * MINUTE_MS),
    Interval("5m", 5 * MINUTE_MS),
    Interval("15m", 15 * MINUTE_MS),
    Interval("30m", 30 * MINUTE_MS),
    Interval("1h", HOUR_MS),
    Interval("2h", 2 * HOUR_MS),
    Interval("4h", 4 * HOUR_MS),
    Interval("6h", 6 * HOUR_MS),
    Interval("8h", 8 * HOUR_MS),
    Interval("12h", 12 * HOUR_MS),
    Interval("1d", DAY_MS),
    Interval("3d", 3 * DAY_MS),
    Interval("1w", WEEK_MS),
    Interval("1M", None),
)
INTERVALS: dict[str, Interval] = {i.name: i for i in _INTERVALS}
INTERVAL_NAMES: tuple[str, ...] = tuple(INTERVALS)


def parse_interval(name: str, field: str = "interval") -> Interval:
    try:
        return INTERVALS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown interval {name!r}; expected one of {', '.join(INTERVAL_NAMES)}",
            field=field,
        ) from None


def parse_market_type(value: str, field: str = "market_type") -> MarketType:
    try:
        return MarketType(value.lower())
    except ValueError:
        raise InvalidInput(
            f"unknown market type {value!r}; expected spot or futures", field=field
        ) from None

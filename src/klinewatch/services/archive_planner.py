"""Which parts of a series' missing ranges the public-data archive can serve.

Whole months that have ended come from monthly files, then whole days that have ended
from daily files; the rest (partial days, the current day, periods too small to pay
off) goes to the REST API. A file is worth it only when its period holds more candles
than one REST request carries: every file used costs one small REST request to
spot-check it (``sample_window``), so below that size the archive saves nothing.

Pure: no I/O, times in epoch milliseconds, ranges half-open over open times.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import Range, merge_ranges
from klinewatch.domain.intervals import DAY_MS, INTERVALS, Interval

Freq = Literal["monthly", "daily"]
_MONTH = INTERVALS["1M"]
_DAY = INTERVALS["1d"]


@dataclass(frozen=True, slots=True)
class Period:
    """One archive file's span: a calendar month or a UTC day."""

    freq: Freq
    start_ms: int
    end_ms: int

    @property
    def range(self) -> Range:
        return (self.start_ms, self.end_ms)


@dataclass
class ArchivePlan:
    periods: list[Period] = field(default_factory=list)
    rest: list[Range] = field(default_factory=list)


def archive_serves(interval: Interval) -> bool:
    """Archive files hold whole UTC days, so only intervals that divide a day fit."""
    return interval.length_ms is not None and DAY_MS % interval.length_ms == 0


def plan_archive(
    missing: Sequence[Range], interval: Interval, now_ms: int, min_candles: int
) -> ArchivePlan:
    """Months, then days, of ``missing`` that have ended by ``now_ms`` and hold more
    than ``min_candles`` candles; everything else stays for the REST API."""
    plan = ArchivePlan()
    if not archive_serves(interval):
        plan.rest = merge_ranges(missing)
        return plan
    months, leftover = _whole_periods(missing, "monthly", _MONTH.next_open, now_ms)
    small = [m.range for m in months if interval.count(*m.range) <= min_candles]
    plan.periods = [m for m in months if interval.count(*m.range) > min_candles]
    days, plan.rest = split_days([*leftover, *small], interval, now_ms, min_candles)
    plan.periods.extend(days)
    plan.periods.sort(key=lambda p: p.start_ms)
    return plan


def split_days(
    ranges: Sequence[Range], interval: Interval, now_ms: int, min_candles: int
) -> tuple[list[Period], list[Range]]:
    """Whole ended days of ``ranges`` worth a daily file, and the ranges left over."""
    if not archive_serves(interval):
        return [], merge_ranges(ranges)
    days, leftover = _whole_periods(ranges, "daily", _DAY.next_open, now_ms)
    kept = [d for d in days if interval.count(*d.range) > min_candles]
    rest = [d.range for d in days if interval.count(*d.range) <= min_candles]
    return kept, merge_ranges([*leftover, *rest])


def _whole_periods(
    ranges: Sequence[Range], freq: Freq, next_start: Callable[[int], int], now_ms: int
) -> tuple[list[Period], list[Range]]:
    """Calendar periods lying wholly inside one of ``ranges`` and ended by ``now_ms``."""
    floor = _MONTH.floor if freq == "monthly" else _DAY.floor
    periods: list[Period] = []
    leftover: list[Range] = []
    for start, end in merge_ranges(ranges):
        first = floor(start)
        cursor = first if first == start else next_start(first)
        if cursor > start:
            leftover.append((start, min(cursor, end)))
        while cursor < end:
            following = next_start(cursor)
            if following > end or following > now_ms:
                leftover.append((cursor, end))
                break
            periods.append(Period(freq, cursor, following))
            cursor = following
    return periods, merge_ranges(leftover)


def sample_window(period: Period, interval: Interval, size: int) -> Range:
    """A stretch of ``size`` candles inside ``period`` to compare with the REST API.

    Its place depends on the period (a hash of its start), so repeated runs check the
    same stretch of a file while different files are checked at different places.
    """
    step = interval.nominal_ms
    count = interval.count(*period.range)
    size = max(1, min(size, count))
    offset = zlib.crc32(str(period.start_ms).encode()) % (count - size + 1)
    start = period.start_ms + offset * step
    return (start, start + size * step)


def agrees(archive: Candles, rest: Candles, window: Range) -> bool:
    """Whether the archive file holds exactly the REST API's candles in ``window``."""
    mine = archive.between(*window)
    theirs = rest.sorted_unique().between(*window)
    return mine.equals(theirs)

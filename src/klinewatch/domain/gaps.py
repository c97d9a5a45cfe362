"""Gap arithmetic: which open times a series still lacks.

A range is a half-open ``(start_ms, end_ms)`` over open times. "Covered" means the
warehouse needs nothing more there: a candle is stored, or the exchange confirmed the
range empty (an outage, a halt, before the listing). Everything else in the wanted span
is missing and will be fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from klinewatch.domain.intervals import Interval

Range = tuple[int, int]


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, non-overlapping, non-adjacent ranges covering the same open times."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract_ranges(wanted: Sequence[Range], covered: Sequence[Range]) -> list[Range]:
    """``wanted`` minus ``covered``; both may be unsorted and overlapping."""
    result: list[Range] = []
    cover = merge_ranges(covered)
    for start, end in merge_ranges(wanted):
        cursor = start
        for c_start, c_end in cover:
            if c_end <= cursor:
                continue
            if c_start >= end:
                break
            if c_start > cursor:
                result.append((cursor, c_start))
            cursor = max(cursor, c_end)
            if cursor >= end:
                break
        if cursor < end:
            result.append((cursor, end))
    return result


def runs_of_open_times(open_times_ms: npt.NDArray[np.int64], interval: Interval) -> list[Range]:
    """Stored open times (sorted, unique) as ranges of consecutive candles."""
    if len(open_times_ms) == 0:
        return []
    if interval.length_ms is None:
        return merge_ranges((int(t), interval.next_open(int(t))) for t in open_times_ms)
    breaks = np.flatnonzero(np.diff(open_times_ms) != interval.length_ms)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(open_times_ms) - 1]))
    return [
        (int(open_times_ms[s]), int(open_times_ms[e]) + interval.length_ms)
        for s, e in zip(starts, ends, strict=True)
    ]


def missing_ranges(
    interval: Interval,
    wanted: Range,
    stored_open_times_ms: npt.NDArray[np.int64],
    confirmed_empty: Sequence[Range] = (),
) -> list[Range]:
    """The ranges of ``wanted`` (aligned outward to the grid) that hold neither a stored
    candle nor a confirmed-empty range: holes in the middle as well as at the ends."""
    start = interval.ceil(wanted[0])
    end = interval.ceil(wanted[1])
    if start >= end:
        return []
    covered = runs_of_open_times(np.asarray(stored_open_times_ms, dtype=np.int64), interval)
    return subtract_ranges([(start, end)], [*covered, *confirmed_empty])


def slice_range(interval: Interval, rng: Range, max_candles: int) -> list[Range]:
    """Cut a range into requests of at most ``max_candles`` open times each."""
    if max_candles < 1:
        raise ValueError("max_candles must be at least 1")
    out: list[Range] = []
    start, end = interval.ceil(rng[0]), rng[1]
    if interval.length_ms is not None:
        step = interval.length_ms * max_candles
        while start < end:
            out.append((start, min(start + step, end)))
            start += step
        return out
    times = interval.open_times(start, end)
    for i in range(0, len(times), max_candles):
        chunk_end = interval.next_open(int(times[min(i + max_candles, len(times)) - 1]))
        out.append((int(times[i]), min(chunk_end, end)))
    return out

"""Missing ranges between what is stored, what is confirmed empty and what is wanted."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from klinewatch.domain.gaps import merge_ranges, missing_ranges, slice_range, subtract_ranges
from klinewatch.domain.intervals import HOUR_MS, INTERVALS, parse_interval

H = HOUR_MS
hour = parse_interval("1h")


def test_holes_in_the_middle_and_at_both_ends_are_found() -> None:
    stored = np.array([2 * H, 3 * H, 7 * H], dtype=np.int64)
    got = missing_ranges(hour, (0, 10 * H), stored, confirmed_empty=[(8 * H, 9 * H)])
    assert got == [(0, 2 * H), (4 * H, 7 * H), (9 * H, 10 * H)]


def test_nothing_missing_when_covered_by_candles_and_empty_ledger() -> None:
    stored = np.arange(0, 5 * H, H, dtype=np.int64)
    assert missing_ranges(hour, (0, 8 * H), stored, [(5 * H, 8 * H)]) == []


def test_wanted_span_is_aligned_outward_to_the_grid() -> None:
    assert missing_ranges(hour, (H // 2, 3 * H + 1), np.array([], dtype=np.int64)) == [(H, 4 * H)]


@st.composite
def scenario(draw: st.DrawFn) -> tuple[str, int, np.ndarray, list[tuple[int, int]], int]:
    name = draw(st.sampled_from(["1m", "5m", "1h", "1d", "1w", "1M"]))
    interval = INTERVALS[name]
    start = interval.floor(draw(st.integers(1_500_000_000_000, 1_700_000_000_000)))
    n = draw(st.integers(0, 60))
    grid = [start]
    for _ in range(n):
        grid.append(interval.next_open(grid[-1]))
    end = grid[-1]
    stored = np.array(
        sorted(draw(st.sets(st.sampled_from(grid[:-1]), max_size=n)) if n else []), dtype=np.int64
    )
    empties = []
    for _ in range(draw(st.integers(0, 3))):
        a, b = sorted(draw(st.lists(st.sampled_from(grid), min_size=2, max_size=2)))
        empties.append((a, b))
    return name, start, stored, empties, end


@given(scenario())
def test_missing_is_exactly_the_uncovered_open_times(case: tuple) -> None:  # type: ignore[type-arg]
    name, start, stored, empties, end = case
    interval = INTERVALS[name]
    missing = missing_ranges(interval, (start, end), stored, empties)
    expected = {
        int(t)
        for t in interval.open_times(start, end)
        if t not in set(stored.tolist()) and not any(a <= t < b for a, b in empties)
    }
    got = {int(t) for a, b in missing for t in interval.open_times(a, b)}
    assert got == expected
    assert merge_ranges(missing) == missing  # sorted, disjoint, non-adjacent


@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=8),
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=8),
)
def test_subtract_matches_set_arithmetic(wanted: list, covered: list) -> None:  # type: ignore[type-arg]
    def points(rs: list) -> set[int]:  # type: ignore[type-arg]
        return {p for a, b in rs for p in range(a, b)}

    assert points(subtract_ranges(wanted, covered)) == points(wanted) - points(covered)


@given(st.sampled_from(["1m", "1h", "1M"]), st.integers(1, 1500), st.integers(0, 5000))
def test_slices_cover_the_range_with_at_most_max_candles(name: str, size: int, n: int) -> None:
    interval = INTERVALS[name]
    start = interval.floor(1_600_000_000_000)
    times = interval.open_times(start, start + interval.nominal_ms * n)
    end = int(interval.next_open(int(times[-1]))) if len(times) else start
    parts = slice_range(interval, (start, end), size)
    counts = [interval.count(a, b) for a, b in parts]
    assert sum(counts) == interval.count(start, end)
    assert all(0 < c <= size for c in counts)
    assert all(a < b for a, b in parts) and all(
        p[1] == q[0] for p, q in zip(parts, parts[1:], strict=False)
    )

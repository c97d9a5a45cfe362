"""A series' scan: each path through the phases, later bursts, idempotency, and a
replay that agrees with a live candle-by-candle run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klinewatch.domain.candles import Candles
from klinewatch.domain.volume_trap import (
    TRANSITIONS,
    Board,
    DataInsufficient,
    Detector,
    LaterBurst,
    Phase,
    ScanResult,
    SeriesState,
    Status,
    Step,
    Transition,
    VolumeTrapParams,
    advance,
    evaluate,
    history_before_cursor,
)
from klinewatch.errors import InvalidInput
from tests.unit.volume_trap.factory import Build, random_candles

P = VolumeTrapParams()
K = 120  # the burst's index: calm candles before it cover the lookback


def burst() -> Build:
    """Calm candles, then a burst: RVOL 20, amplitude 30 %, key level 115, high 130."""
    return Build().flat(K).candle(100, 130, 100, 128, 2000)


def replay(c: Candles, p: VolumeTrapParams = P) -> ScanResult:
    return advance(c, SeriesState(), p, from_series_start=True)


def live(
    c: Candles, chunks: Sequence[int], p: VolumeTrapParams = P
) -> tuple[list[Step], SeriesState]:
    """A live run: each scan sees only the newest closed candles, as a service loads
    them (``history_before_cursor`` at or before the cursor, plus the new ones)."""
    state, end = SeriesState(), 0
    steps: list[Step] = []
    for size in chunks:
        end = min(len(c), end + size)
        done = 0 if state.cursor_open_time_ms is None else _after(c, state.cursor_open_time_ms)
        start = max(0, done - history_before_cursor(p))
        result = advance(c.take(slice(start, end)), state, p, from_series_start=start == 0)
        steps += result.steps
        state = result.state
    return steps, state


def _after(c: Candles, open_time_ms: int) -> int:
    return int(np.searchsorted(c.open_time_ms, open_time_ms, side="right"))


def path(result_steps: Sequence[Step], c: Candles) -> list[tuple[int, str]]:
    """(candle index, what happened) for each step."""
    index = {int(t): i for i, t in enumerate(c.open_time_ms)}
    return [
        (index[s.open_time_ms], s.to_status if isinstance(s, Transition) else "later_burst")
        for s in result_steps
    ]


def test_a_burst_that_fades_and_bleeds_goes_through_all_three_phases() -> None:
    falling = [112.0 - 2 * i for i in range(12)] + [90.0] * 40
    c = burst().closes(falling, volume=5.0).candles()
    r = replay(c)
    statuses = [s for _, s in path(r.steps, c)]
    assert statuses == ["pending", "suspected_abandonment", "confirmed_abandonment"]
    validate = r.steps[-1]
    assert isinstance(validate, Transition)
    assert path(r.steps, c)[:2] == [
        (K, "pending"),
        (K + P.retention_min_candles, "suspected_abandonment"),
    ]
    t = path(r.steps, c)[2][0]  # validated on the first candle whose rule holds
    assert not evaluate(Phase.VALIDATION, P.validation, Board(c, K, t - 1, P).outcome).passed
    assert validate.snapshot[Detector.MA_CROSS].passed
    assert r.state.monitor is None
    for step in r.steps:
        assert isinstance(step, Transition)
        assert set(step.snapshot) == set(Detector)
        assert TRANSITIONS[(step.from_status, step.event)] is step.to_status
        assert step.monitor.status is step.to_status
        assert step.monitor.last_transition_open_time_ms == step.open_time_ms


def test_a_close_above_the_trigger_high_invalidates() -> None:
    c = burst().closes([120.0, 131.0, 131.0]).candles()
    r = replay(c)
    assert path(r.steps, c) == [(K, "pending"), (K + 2, "invalidated")]
    assert "above the trigger's high 130" in r.steps[-1].reason  # type: ignore[union-attr]


def test_a_pending_monitor_expires_after_the_configured_quiet_candles() -> None:
    c = burst().flat(100, price=120.0, half_range=0.5).candles()
    r = replay(c)
    assert path(r.steps, c) == [(K, "pending"), (K + P.expiry_candles, "expired")]
    short = VolumeTrapParams(expiry_candles=7)
    assert path(replay(c, short).steps, c) == [(K, "pending"), (K + 7, "expired")]


def grinding_up() -> Build:
    """After the burst, volume dies and price drops below the key level, then creeps up
    so slowly that MA(7) stays above MA(25): suspected, never validated."""
    return burst().closes([110.0 + 0.1 * i for i in range(140)], volume=5.0)


def test_a_suspected_monitor_expires_when_the_averages_never_cross() -> None:
    c = grinding_up().candles()
    confirmed_at = K + P.retention_min_candles
    assert path(replay(c).steps, c) == [
        (K, "pending"),
        (confirmed_at, "suspected_abandonment"),
        (confirmed_at + P.expiry_candles, "expired"),
    ]


def test_a_later_burst_is_recorded_on_the_active_monitor_and_does_not_reset_expiry() -> None:
    b = burst().flat(9, price=120.0, half_range=0.5).candle(120, 129, 108, 121, 3000)
    c = b.flat(80, price=120.0, half_range=0.5).candles()
    r = replay(c)
    assert path(r.steps, c) == [(K, "pending"), (K + 10, "later_burst"), (K + 60, "expired")]
    later = r.steps[1]
    assert isinstance(later, LaterBurst)
    assert later.monitor.later_bursts == (int(c.open_time_ms[K + 10]),)
    assert later.snapshot[Detector.RVOL].passed
    assert r.steps[2].monitor.later_bursts == later.monitor.later_bursts


def test_a_burst_that_invalidates_the_monitor_opens_the_next_one() -> None:
    b = burst().flat(5, price=120.0, half_range=0.5).candle(120, 150, 120, 148, 5000)
    c = b.flat(3, price=148.0, half_range=0.5).candles()
    r = replay(c)
    assert path(r.steps, c) == [(K, "pending"), (K + 6, "invalidated"), (K + 6, "pending")]
    assert r.state.monitor is not None
    assert r.state.monitor.trigger_open_time_ms == int(c.open_time_ms[K + 6])


def test_the_monitor_row_carries_the_trigger_and_the_drawdown() -> None:
    c = burst().closes([117.0, 104.0]).candles()
    m = replay(c).state.monitor
    assert m is not None
    assert (m.trigger_high, m.trigger_low, m.key_level, m.rvol) == (130.0, 100.0, 115.0, 20.0)
    assert m.amplitude_pct == 30.0
    assert m.drawdown_pct == pytest.approx((130 - 104) / 130 * 100)
    assert m.last_evaluated_open_time_ms == int(c.open_time_ms[-1])


def test_a_second_scan_over_the_same_candles_changes_nothing() -> None:
    c = burst().closes([117.0, 104.0, 100.0]).candles()
    first = replay(c)
    again = advance(c, first.state, P)
    assert again.steps == ()
    assert again.state == first.state
    assert again.evaluated == 0


def test_only_candles_after_the_cursor_are_evaluated() -> None:
    c = burst().closes([117.0]).candles()
    past = SeriesState(cursor_open_time_ms=int(c.open_time_ms[K]))
    r = advance(c, past, P)
    assert (r.steps, r.evaluated) == ((), 1)


def test_an_active_monitor_whose_trigger_is_not_given_is_short_data() -> None:
    c = burst().closes([117.0, 110.0]).candles()
    state = replay(c.take(slice(0, K + 2))).state
    with pytest.raises(DataInsufficient, match="the trigger candle"):
        advance(c.take(slice(K + 1, None)), state, P)


def test_too_little_lookback_is_refused_unless_the_series_starts_there() -> None:
    c = burst().closes([117.0]).candles()
    cut = c.take(slice(K - 50, None))
    with pytest.raises(DataInsufficient, match="candles of lookback"):
        advance(cut, SeriesState(), P)
    assert len(advance(cut, SeriesState(), P, from_series_start=True).steps) == 1


def test_unordered_candles_and_inconsistent_states_are_refused() -> None:
    c = burst().closes([117.0]).candles()
    with pytest.raises(InvalidInput, match="oldest first"):
        advance(c.take(np.array([1, 0, 2])), SeriesState(), P)
    m = replay(c).state.monitor
    assert m is not None
    with pytest.raises(InvalidInput, match="cursor"):
        SeriesState(cursor_open_time_ms=0, monitor=m)
    with pytest.raises(InvalidInput, match="not active"):
        SeriesState(m.last_evaluated_open_time_ms, replace(m, status=Status.EXPIRED))


SCENARIOS = {
    "abandonment": burst().closes([112.0 - 2 * i for i in range(12)] + [90.0] * 40, volume=5.0),
    "later burst": burst()
    .flat(9, price=120.0, half_range=0.5)
    .candle(120, 129, 108, 121, 3000)
    .flat(80, price=120.0, half_range=0.5),
    "suspected expiry": grinding_up(),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_live_one_candle_at_a_time_equals_the_replay(name: str) -> None:
    c = SCENARIOS[name].candles()
    expected = replay(c)
    steps, state = live(c, [K] + [1] * (len(c) - K))
    assert repr(steps) == repr(list(expected.steps))
    assert state == expected.state


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    chunks=st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_any_live_schedule_equals_the_replay_on_random_bursty_series(
    seed: int, chunks: list[int]
) -> None:
    c = random_candles(seed, 700)
    p = VolumeTrapParams(rvol_min=4.0, amplitude_ratio_min=2.0, amplitude_min_pct=3.0)
    expected = replay(c, p)
    schedule = chunks + [1] * (len(c) - sum(chunks))
    steps, state = live(c, schedule, p)
    assert repr(steps) == repr(list(expected.steps))  # repr: exact floats, NaN == NaN
    assert state == expected.state

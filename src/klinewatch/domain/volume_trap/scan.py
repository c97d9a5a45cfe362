"""One series' scan as a pure function: candles and the series' state in, the
transitions to persist and the new state out.

``advance`` evaluates every candle after the state's cursor, oldest first, with the same
per-candle rule whether it is handed one new candle (a live scan) or years of history
(a replay). Every value it computes at candle t depends only on fixed windows ending at
t or anchored at the trigger, never on where the array starts, so a replay and a live
run agree by construction as long as each is given the lookback it needs
(``history_before_cursor``). Monitors are referred to by open times, never indices.

The service persists each step in one transaction: the step's ``monitor`` (insert on
``discover``, update otherwise), its snapshot as ``VolumeTrapIndicators`` and, for a
``Transition``, the transition record; then the final ``state`` (cursor, drawdown).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from klinewatch.domain.candles import I64, Candles
from klinewatch.domain.volume_trap.detectors import (
    AmplitudeResult,
    DataInsufficient,
    RvolResult,
    key_level,
)
from klinewatch.domain.volume_trap.evaluator import Board, Snapshot, discovery_mask, evaluate
from klinewatch.domain.volume_trap.lifecycle import (
    Event,
    Monitor,
    Status,
    is_expired,
    is_invalidated,
    next_state,
)
from klinewatch.domain.volume_trap.params import Detector, Phase, VolumeTrapParams
from klinewatch.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class SeriesState:
    """What a series' scan remembers: the last candle evaluated and the active monitor."""

    cursor_open_time_ms: int | None = None
    monitor: Monitor | None = None

    def __post_init__(self) -> None:
        m = self.monitor
        if m is None:
            return
        if not m.is_active:
            raise InvalidInput(f"a {m.status} monitor is not active", field="monitor")
        if m.last_evaluated_open_time_ms != self.cursor_open_time_ms:
            raise InvalidInput(
                "the cursor must be the active monitor's last evaluated candle", field="cursor"
            )


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change at the candle ``open_time_ms``; ``monitor`` is the row after it."""

    open_time_ms: int
    event: Event
    from_status: Status | None
    to_status: Status
    reason: str
    snapshot: Snapshot
    monitor: Monitor


@dataclass(frozen=True, slots=True)
class LaterBurst:
    """A new burst on a series whose monitor is still active: recorded on that monitor
    (``monitor.later_bursts``), not opened as a second one; no state change. The
    snapshot is the monitor's detectors at that candle (RVOL, amplitude: the burst's)."""

    open_time_ms: int
    snapshot: Snapshot
    monitor: Monitor


Step = Transition | LaterBurst


@dataclass(frozen=True, slots=True)
class ScanResult:
    steps: tuple[Step, ...]
    state: SeriesState
    evaluated: int


@dataclass(frozen=True, slots=True)
class _Live:
    """An active monitor with its trigger and last-transition indices in this array."""

    monitor: Monitor
    k: int
    last: int


def history_before_cursor(params: VolumeTrapParams) -> int:
    """Candles at or before the cursor that a scan must be given as well as the new
    ones (or every candle, for a younger series): an active trigger lies at most
    ``max_monitor_candles`` back, and its indicators look ``lookback_candles`` further."""
    return params.lookback_candles() + params.max_monitor_candles() + 1


def advance(
    candles: Candles,
    state: SeriesState,
    params: VolumeTrapParams,
    *,
    from_series_start: bool = False,
) -> ScanResult:
    """Evaluate every candle after ``state.cursor_open_time_ms`` (all if ``None``).

    ``candles``: closed candles of one series, oldest first, unique open times.
    ``from_series_start``: the array begins at the series' first candle, so a short
    lookback is the truth (a new listing), not a loading mistake; otherwise a lookback
    shorter than ``params.lookback_candles()`` raises ``DataInsufficient``.
    """
    _check_order(candles)
    times = candles.open_time_ms
    first = 0 if state.cursor_open_time_ms is None else _after(times, state.cursor_open_time_ms)
    n = len(candles)
    if first >= n:
        return ScanResult((), state, 0)
    live = None if state.monitor is None else _locate(candles, state.monitor)
    _check_lookback(params, first if live is None else live.k, from_series_start)
    bursts = discovery_mask(candles, params)
    burst_at = np.flatnonzero(bursts[first:]) + first
    steps: list[Step] = []
    t = first
    while t < n:
        if live is None:  # jump to the next burst: the mask equals the per-candle rule
            pos = int(np.searchsorted(burst_at, t))
            if pos == len(burst_at):
                break
            t = int(burst_at[pos])
            live = _discover(candles, t, params, steps)
        else:
            live = _evaluate(candles, live, t, bool(bursts[t]), params, steps)
        t += 1
    monitor = None if live is None else _touch(live.monitor, candles, n - 1)
    return ScanResult(tuple(steps), SeriesState(int(times[-1]), monitor), n - first)


def _evaluate(
    c: Candles, live: _Live, t: int, burst: bool, p: VolumeTrapParams, steps: list[Step]
) -> _Live | None:
    """One candle of an active monitor: at most one transition, then a burst on this
    candle is either a later burst (still active) or a new monitor (it just ended)."""
    board = Board(c, live.k, t, p)
    event = _event(c, live, t, board, p)
    after: _Live | None = live
    if event is not None:
        kind, reason = event
        status = next_state(live.monitor.status, kind)
        monitor = replace(
            _touch(live.monitor, c, t),
            status=status,
            last_transition_open_time_ms=int(c.open_time_ms[t]),
        )
        steps.append(_transition(c, t, kind, live.monitor.status, reason, board, monitor))
        after = None if status.is_final else _Live(monitor, live.k, t)
    if not burst:
        return after
    if after is None:
        return _discover(c, t, p, steps)
    time = int(c.open_time_ms[t])
    monitor = _touch(after.monitor, c, t)
    monitor = replace(monitor, later_bursts=(*monitor.later_bursts, time))
    steps.append(LaterBurst(time, board.snapshot(), monitor))
    return _Live(monitor, after.k, after.last)


def _event(
    c: Candles, live: _Live, t: int, board: Board, p: VolumeTrapParams
) -> tuple[Event, str] | None:
    """Invalidation first (the move continued), then the phase's rule, then expiry."""
    k = live.k
    if is_invalidated(c, k, t):
        return Event.INVALIDATE, f"close {c.close[t]:g} above the trigger's high {c.high[k]:g}"
    pending = live.monitor.status is Status.PENDING
    phase = Phase.CONFIRMATION if pending else Phase.VALIDATION
    decision = evaluate(phase, p.rule(phase), board.outcome)
    if decision.passed:
        return (Event.CONFIRM if pending else Event.VALIDATE), decision.reason()
    if is_expired(t - live.last, p.expiry_candles):
        return Event.EXPIRE, f"no transition within {p.expiry_candles} candles; {decision.reason()}"
    return None


def _discover(c: Candles, t: int, p: VolumeTrapParams, steps: list[Step]) -> _Live:
    board = Board(c, t, t, p)
    decision = evaluate(Phase.DISCOVERY, p.discovery, board.outcome)
    if not decision.passed:  # the vectorised mask said it would: a bug, not data
        raise AssertionError(f"discovery mask and detectors disagree at {c.open_time_ms[t]}")
    rvol, amp = board.outcome(Detector.RVOL), board.outcome(Detector.AMPLITUDE)
    time = int(c.open_time_ms[t])
    monitor = Monitor(
        status=next_state(None, Event.DISCOVER),
        trigger_open_time_ms=time,
        trigger_open=float(c.open[t]),
        trigger_high=float(c.high[t]),
        trigger_low=float(c.low[t]),
        trigger_close=float(c.close[t]),
        trigger_volume=float(c.volume[t]),
        key_level=key_level(c, t),
        rvol=rvol.ratio if isinstance(rvol, RvolResult) else float("nan"),
        amplitude_pct=amp.amplitude_pct if isinstance(amp, AmplitudeResult) else float("nan"),
        drawdown_pct=_drawdown(float(c.high[t]), float(c.close[t])),
        last_transition_open_time_ms=time,
        last_evaluated_open_time_ms=time,
    )
    steps.append(_transition(c, t, Event.DISCOVER, None, decision.reason(), board, monitor))
    return _Live(monitor, t, t)


def _transition(
    c: Candles,
    t: int,
    event: Event,
    before: Status | None,
    reason: str,
    board: Board,
    monitor: Monitor,
) -> Transition:
    time = int(c.open_time_ms[t])
    return Transition(time, event, before, monitor.status, reason, board.snapshot(), monitor)


def _drawdown(trigger_high: float, close: float) -> float:
    """How far the close lies below the trigger's high, in % (the list's sort key)."""
    return (trigger_high - close) * 100.0 / trigger_high if trigger_high > 0 else 0.0


def _touch(m: Monitor, c: Candles, t: int) -> Monitor:
    """The monitor as of candle t: last evaluated there, drawdown at its close."""
    return replace(
        m,
        last_evaluated_open_time_ms=int(c.open_time_ms[t]),
        drawdown_pct=_drawdown(m.trigger_high, float(c.close[t])),
    )


def _after(times: I64, cursor: int) -> int:
    return int(np.searchsorted(times, cursor, side="right"))


def _locate(c: Candles, m: Monitor) -> _Live:
    """Find the trigger and the last transition in this array by open time."""
    k = _index_of(c, m.trigger_open_time_ms, "the trigger candle")
    last = _index_of(c, m.last_transition_open_time_ms, "the last transition's candle")
    return _Live(m, k, last)


def _index_of(c: Candles, open_time_ms: int, what: str) -> int:
    i = int(np.searchsorted(c.open_time_ms, open_time_ms))
    if i == len(c) or int(c.open_time_ms[i]) != open_time_ms:
        raise DataInsufficient(
            "scan", needed=1, available=0, what=f"candle at {open_time_ms} ({what})"
        )
    return i


def _check_lookback(p: VolumeTrapParams, index: int, from_series_start: bool) -> None:
    if not from_series_start and index < p.lookback_candles():
        raise DataInsufficient(
            "scan", needed=p.lookback_candles(), available=index, what="candles of lookback"
        )


def _check_order(c: Candles) -> None:
    if len(c) > 1 and not bool(np.all(np.diff(c.open_time_ms) > 0)):
        raise InvalidInput("candles must be oldest first with unique open times", field="candles")

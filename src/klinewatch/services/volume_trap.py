"""The volume-trap scan (seed 002 flow 3; spec shared/spec/volume-trap.md).

For every active contract of (exchange, market_type, interval) the scan loads the closed
candles the pure core needs (``history_before_cursor`` at or before the series' cursor
and every one after it; the whole series on its first scan), calls ``advance`` and
persists what it returns:

* the steps of one candle (almost always one transition) in one transaction: the
  monitor's new state, the detector snapshot, the transition record and the cursor
  moved to that candle. A failure rolls all of it back and the next scan redoes it;
* then, in one transaction for all series, each cursor moved to the newest candle and
  each active monitor's "last evaluated" and drawdown.

The writes are ``volume_trap_writer``'s (on PostgreSQL a step is one statement); the
candles of the next 250 series load on a thread while the current ones are scanned.

Every committed state is one the core can resume from, so an interrupted scan, a
scan run twice, a live run candle by candle and a replay (``from_ms``) all end in the
same rows. ``check_invalidations`` applies only the invalidation and expiry rules, and
only where they are a monitor's next event, so it never disagrees with a full scan.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import Clock, SystemClock
from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import parse_interval, parse_market_type
from klinewatch.domain.market_config import InvalidConfig
from klinewatch.domain.volume_trap import (
    Event,
    SeriesState,
    Step,
    Transition,
    VolumeTrapParams,
    advance,
    history_before_cursor,
)
from klinewatch.errors import InvalidInput, KlinewatchError
from klinewatch.logs import get_logger
from klinewatch.services.ingestion import UpdateSummary
from klinewatch.services.volume_trap_writer import (
    SeriesRun,
    StepWriter,
    error_message,
    finish,
    pinned,
    rewind,
)
from klinewatch.storage.engine import transaction
from klinewatch.storage.volume_trap import TrapKey, VolumeTrapRepository
from klinewatch.storage.volume_trap_candles import CandleRequest, ScanCandles

log = get_logger(__name__)
Sessions = sessionmaker[Session]
Progress = Callable[[int, int], None]
LOAD_BATCH = 250  # series whose candles are loaded in one statement
ENDINGS = frozenset({Event.INVALIDATE, Event.EXPIRE})
SUMMARY_FIELDS = {
    "discover": "discovered",
    "confirm": "confirmed",
    "validate": "validated",
    "invalidate": "invalidated",
    "expire": "expired",
    "later_burst": "later_bursts",
}


@dataclass
class ScanSummary:
    """The three-phase result of one scan of (exchange, market_type, interval)."""

    exchange: str
    market_type: str
    interval: str
    pairs: int = 0  # active contracts with candles of this interval
    scanned: int = 0  # of them, with new closed candles
    candles: int = 0  # candles evaluated
    discovered: int = 0
    confirmed: int = 0
    validated: int = 0
    invalidated: int = 0
    expired: int = 0
    later_bursts: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ScanOptions:
    symbols: Sequence[str] | None = None  # None: every active contract
    from_ms: int | None = None  # replay from this candle on (a backfill)
    params: VolumeTrapParams | None = None  # None: the system config's
    on_progress: Progress | None = None  # (series done, series total)


def load_params(sessions: Sessions) -> VolumeTrapParams:
    """The thresholds in the system config's ``volume_trap`` section; the defaults when
    the row or the section is empty. A stored value out of range is ``InvalidConfig``
    naming the field (``volume_trap.rvol_min``)."""
    with transaction(sessions) as session:
        section = VolumeTrapRepository(session).config_section()
    if not section:
        return VolumeTrapParams()
    try:
        return VolumeTrapParams.from_mapping(section)
    except InvalidInput as e:
        field_name = f"volume_trap.{e.field or ''}".rstrip(".")
        raise InvalidConfig(f"volume_trap.{e.message}", field=field_name) from e


def scan(
    sessions: Sessions,
    exchange: str,
    market_type: str,
    interval: str,
    options: ScanOptions | None = None,
    clock: Clock | None = None,
) -> ScanSummary:
    """Scan every active contract's newest closed candles (or replay from
    ``options.from_ms``); a failing series is reported in ``errors`` and the rest go on."""
    return _run(sessions, exchange, market_type, interval, options or ScanOptions(), clock, False)


def scan_after_update(
    sessions: Sessions,
    exchange: str,
    market_type: str,
    interval: str,
    symbols: Sequence[str] | None = None,
) -> ScanSummary:
    """The scheduler's hook after an update of an interval's candles (blocking: call
    it through ``asyncio.to_thread`` from async code)."""
    return scan(sessions, exchange, market_type, interval, ScanOptions(symbols=symbols))


def check_invalidations(
    sessions: Sessions,
    exchange: str | None = None,
    market_type: str | None = None,
    interval: str | None = None,
    options: ScanOptions | None = None,
    clock: Clock | None = None,
) -> list[ScanSummary]:
    """Invalidation and expiry alone, for every group with an active monitor."""
    if market_type is not None:
        market_type = parse_market_type(market_type).value
    if interval is not None:
        parse_interval(interval)
    opts = options or ScanOptions()
    if opts.from_ms is not None:
        raise InvalidInput("check-invalidations does not replay history", field="from")
    with transaction(sessions) as session:
        scopes = VolumeTrapRepository(session).active_scopes(exchange, market_type, interval)
    return [_run(sessions, *scope, opts, clock, True) for scope in scopes]


def volume_trap_hook(sessions: Sessions) -> Callable[[UpdateSummary], Awaitable[ScanSummary]]:
    """``scheduler.on_update(volume_trap_hook(sessions))``: scan the updated group's
    series after each kline update, in a worker thread."""

    async def hook(update: UpdateSummary) -> ScanSummary:
        if update.candles_added == 0:  # nothing closed since the last scan
            return ScanSummary(update.exchange, update.market_type, update.interval)
        return await asyncio.to_thread(
            scan_after_update, sessions, update.exchange, update.market_type, update.interval
        )

    return hook


def _run(
    sessions: Sessions,
    exchange: str,
    market_type: str,
    interval: str,
    options: ScanOptions,
    clock: Clock | None,
    endings_only: bool,
) -> ScanSummary:
    started = time.perf_counter()
    market_type = parse_market_type(market_type).value
    end_ms = parse_interval(interval).last_closed_open((clock or SystemClock()).now_ms())
    params = options.params or load_params(sessions)
    summary = ScanSummary(exchange, market_type, interval)
    with pinned(sessions) as reader:
        series = _series(reader, summary, options.symbols, endings_only)
        summary.pairs = len(series)
        due = [s for s in series if _prepare(reader, s, options.from_ms, summary)]
        fresh = _with_new_candles(reader, due, end_ms)
        progress = _Progress(options.on_progress, summary.pairs - len(fresh), summary.pairs)
        finals: list[SeriesRun] = []
        with StepWriter(sessions) as writer:
            for batch, candles in _loaded(reader, fresh, end_ms, params):
                for s in batch:
                    candle = candles[s.target.series_id]
                    if _advance(writer, s, candle, params, summary, endings_only):
                        finals.append(s)
                    progress.step()
        summary.errors.update(writer.failures)
        finish(sessions, [s for s in finals if s.key.symbol not in summary.errors], summary.errors)
    for name, n in writer.written.items():
        field_name = SUMMARY_FIELDS[name]
        setattr(summary, field_name, getattr(summary, field_name) + n)
    summary.duration_s = time.perf_counter() - started
    _log(summary, endings_only)
    return summary


@dataclass
class _Progress:
    report: Progress | None
    done: int
    total: int

    def step(self) -> None:
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)


def _series(
    sessions: Sessions, summary: ScanSummary, symbols: Sequence[str] | None, endings_only: bool
) -> list[SeriesRun]:
    group = (summary.exchange, summary.market_type, summary.interval)
    with transaction(sessions) as session:
        repo = VolumeTrapRepository(session)
        targets = repo.targets(*group, symbols)
        cursors = repo.cursors(*group)
        active = repo.active_monitors(*group)
    return [
        SeriesRun(
            TrapKey(*group[:2], t.symbol, group[2]), t, cursors.get(t.symbol), active.get(t.symbol)
        )
        for t in targets
        if not endings_only or t.symbol in active
    ]


def _prepare(sessions: Sessions, s: SeriesRun, from_ms: int | None, summary: ScanSummary) -> bool:
    """Set the state the series' scan starts from (rewound for a replay)."""
    try:
        start = s.cursor if from_ms is None else rewind(sessions, s, from_ms)
        s.state = SeriesState(start, None if s.stored is None else s.stored.monitor)
    except (KlinewatchError, SQLAlchemyError) as e:
        _failed(summary, s, e)
        return False
    return True


def _with_new_candles(sessions: Sessions, series: list[SeriesRun], end_ms: int) -> list[SeriesRun]:
    with transaction(sessions) as session:
        newest = ScanCandles(session).newest_open_times(
            [s.target.series_id for s in series], end_ms
        )
    out = []
    for s in series:
        last = newest.get(s.target.series_id)
        cursor = s.state.cursor_open_time_ms
        if last is not None and (cursor is None or last > cursor):
            out.append(s)
    return out


def _history(s: SeriesRun, params: VolumeTrapParams) -> int:
    """Candles at or before the cursor to load: an active monitor's trigger may lie
    ``max_monitor_candles`` back; without one, the indicators' lookback is enough."""
    return history_before_cursor(params) if s.state.monitor else params.lookback_candles()


def _loaded(
    sessions: Sessions, series: list[SeriesRun], end_ms: int, params: VolumeTrapParams
) -> Iterator[tuple[list[SeriesRun], dict[int, Candles]]]:
    """Batches of series with their candles; on PostgreSQL the next batch is loaded on
    a thread while this one is scanned (the load mostly waits on the server). SQLite's
    connections belong to their thread, and its reads cost no waiting anyway."""
    batches = list(_batches(series, LOAD_BATCH))
    engine: Any = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        for batch in batches:
            yield batch, _load(sessions, batch, end_ms, params)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="volume-trap-load") as pool:
        ahead = [pool.submit(_load, sessions, batch, end_ms, params) for batch in batches[:1]]
        for i, batch in enumerate(batches):
            candles = ahead[i].result()
            if i + 1 < len(batches):
                ahead.append(pool.submit(_load, sessions, batches[i + 1], end_ms, params))
            yield batch, candles


def _load(
    sessions: Sessions, batch: list[SeriesRun], end_ms: int, params: VolumeTrapParams
) -> dict[int, Candles]:
    requests = [
        CandleRequest(s.target.series_id, s.state.cursor_open_time_ms, _history(s, params))
        for s in batch
    ]
    with transaction(sessions) as session:
        return ScanCandles(session).load(requests, end_ms)


def _advance(
    writer: StepWriter,
    s: SeriesRun,
    candles: Candles,
    params: VolumeTrapParams,
    summary: ScanSummary,
    endings_only: bool,
) -> bool:
    """Advance one series and write its steps; True when its cursor is then to be
    moved to the newest candle (by ``finish``)."""
    cursor = s.state.cursor_open_time_ms
    before = 0 if cursor is None else int(np.searchsorted(candles.open_time_ms, cursor, "right"))
    try:
        result = advance(candles, s.state, params, from_series_start=before < _history(s, params))
    except KlinewatchError as e:
        _failed(summary, s, e)
        return False
    if endings_only:
        steps = _endings(list(result.steps))
        if steps and writer.write(s, steps, _previous_open(candles, steps)):
            summary.scanned += 1
        return False
    if not writer.write(s, result.steps):
        return False
    summary.scanned += 1
    summary.candles += result.evaluated
    s.state = result.state
    return True


def _endings(steps: list[Step]) -> list[Step]:
    """The steps up to the active monitor's end, when an invalidation or an expiry is
    its next transition (later bursts before it included); else none."""
    for i, step in enumerate(steps):
        if isinstance(step, Transition):
            return steps[: i + 1] if step.event in ENDINGS else []
    return []


def _previous_open(candles: Candles, steps: list[Step]) -> int | None:
    """The candle before the ending: the cursor stops there, so that a burst on the
    ending's own candle is left for the scan to discover."""
    if not steps:
        return None
    i = int(np.searchsorted(candles.open_time_ms, steps[-1].open_time_ms))
    assert i > 0, "an active monitor's cursor candle is always loaded"
    return int(candles.open_time_ms[i - 1])


def _failed(summary: ScanSummary, s: SeriesRun, error: Exception) -> None:
    summary.errors[s.key.symbol] = error_message(error)  # logged by ``_log``


def _log(summary: ScanSummary, endings_only: bool) -> None:
    for symbol, error in summary.errors.items():
        log.warning(
            "volume_trap_series_failed",
            exchange=summary.exchange,
            market_type=summary.market_type,
            symbol=symbol,
            interval=summary.interval,
            error=error,
        )
    log.info(
        "volume_trap_scan_done",
        exchange=summary.exchange,
        market_type=summary.market_type,
        interval=summary.interval,
        endings_only=endings_only,
        pairs=summary.pairs,
        scanned=summary.scanned,
        discovered=summary.discovered,
        confirmed=summary.confirmed,
        validated=summary.validated,
        invalidated=summary.invalidated,
        expired=summary.expired,
        errors=len(summary.errors),
        duration_s=round(summary.duration_s, 3),
    )


def _batches(items: list[SeriesRun], size: int) -> Iterator[list[SeriesRun]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

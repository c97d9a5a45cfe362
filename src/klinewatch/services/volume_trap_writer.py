"""Persisting a scan's steps: each candle's steps in one transaction with the cursor.

On PostgreSQL a candle with one step (nearly all) is one statement in autocommit
(``storage.volume_trap_pg``: one round trip), on a connection whose commits do not wait
for the disk: each stays atomic, and a server crash could only lose the last few, which
the next scan recomputes since the cursor moves with them; ``finish`` then commits
normally, which makes everything before it durable. Otherwise (SQLite, or two steps on
one candle) the statements run in one ordinary transaction.

A series whose write fails stops there (its cursor stays at its last committed candle,
so the next scan redoes the rest) and the other series go on. ``rewind`` forgets what
a replay (``--from``) is about to find again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from itertools import groupby
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.volume_trap import SeriesState, Step, Transition, snapshot_record
from klinewatch.errors import KlinewatchError
from klinewatch.storage.engine import transaction
from klinewatch.storage.volume_trap import (
    StepRecord,
    StoredMonitor,
    Target,
    TrapKey,
    VolumeTrapRepository,
)
from klinewatch.storage.volume_trap_candles import ScanCandles
from klinewatch.storage.volume_trap_pg import write_step_alone
from klinewatch.storage.volume_trap_writes import VolumeTrapWrites

Sessions = sessionmaker[Session]


@dataclass(slots=True)
class SeriesRun:
    """One series during a scan: what is stored (``cursor``, ``stored``) and the state
    the core resumes from, then reached (``state``)."""

    key: TrapKey
    target: Target
    cursor: int | None
    stored: StoredMonitor | None
    state: SeriesState = field(default_factory=SeriesState)


@contextmanager
def pinned(sessions: Sessions) -> Iterator[Sessions]:
    """Sessions on one connection held for the whole run: no pool checkout (and no
    pre-ping round trip) per transaction."""
    engine: Any = sessions.kw["bind"]
    with engine.connect() as connection:
        yield sessionmaker(bind=connection, expire_on_commit=False)


def error_message(error: Exception) -> str:
    if isinstance(error, KlinewatchError):
        return error.message
    lines = str(getattr(error, "orig", error)).strip().splitlines()  # no statement, no values
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def record(step: Step) -> StepRecord:
    if isinstance(step, Transition):
        before = None if step.from_status is None else step.from_status.value
        move = (before, step.to_status.value, step.reason)
        discover = step.from_status is None
    else:
        move, discover = None, False
    values = snapshot_record(step.snapshot)
    return StepRecord(step.open_time_ms, step.monitor, values, discover, move)


class StepWriter:
    """``with StepWriter(sessions) as w: w.write(series, steps)``; then ``failures`` by
    symbol and ``written``, the steps committed per event ("later_burst" included)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.failures: dict[str, str] = {}
        self.written: dict[str, int] = {}
        self._stack = ExitStack()
        self._tx: Sessions = sessions
        self._alone: Connection | None = None

    def __enter__(self) -> StepWriter:
        self._tx = self._stack.enter_context(pinned(self.sessions))
        engine: Any = self.sessions.kw["bind"]
        if engine.dialect.name == "postgresql":
            connection = self._stack.enter_context(engine.connect())
            self._alone = connection.execution_options(isolation_level="AUTOCOMMIT")
            self._alone.execute(text("SET synchronous_commit = off"))
            self._stack.callback(self._restore, self._alone)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    @staticmethod
    def _restore(connection: Connection) -> None:
        try:
            connection.execute(text("RESET synchronous_commit"))
        except SQLAlchemyError:
            connection.invalidate()  # never hand a relaxed connection back to the pool

    def write(self, s: SeriesRun, steps: Sequence[Step], last_cursor: int | None = None) -> bool:
        """Each candle's steps with the cursor moved to that candle (``last_cursor``
        instead after the last one, when given). False if the series failed."""
        if s.key.symbol in self.failures:
            return False
        groups = [list(g) for _, g in groupby(steps, key=lambda step: step.open_time_ms)]
        try:
            for n, group in enumerate(groups):
                last = last_cursor is not None and n == len(groups) - 1
                self._group(s, group, last_cursor if last else group[0].open_time_ms)
        except (KlinewatchError, SQLAlchemyError) as e:
            self.failures[s.key.symbol] = error_message(e)
            return False
        return True

    def _group(self, s: SeriesRun, group: list[Step], new_cursor: int | None) -> None:
        records = [record(step) for step in group]
        monitor_id = None if s.stored is None else s.stored.id
        if self._alone is not None and len(records) == 1 and new_cursor is not None:
            cursor = (s.cursor, new_cursor)
            contract = s.target.contract_id
            monitor_id = write_step_alone(
                self._alone, s.key, contract, monitor_id, records[0], cursor
            )
        else:
            with transaction(self._tx) as session:
                writes = VolumeTrapWrites(session)
                writes.relax_durability()
                for r in records:
                    monitor_id = writes.write_step(s.key, s.target.contract_id, monitor_id, r)
                writes.move_cursor(s.key, s.cursor, new_cursor)
        final = group[-1].monitor
        s.stored = StoredMonitor(monitor_id, final) if final.is_active and monitor_id else None
        s.cursor = new_cursor
        for step in group:
            name = str(step.event) if isinstance(step, Transition) else "later_burst"
            self.written[name] = self.written.get(name, 0) + 1


def rewind(sessions: Sessions, s: SeriesRun, from_ms: int) -> int | None:
    """Forget the results from ``from_ms`` on and return the cursor to resume from; a
    series never scanned starts there, one not scanned that far goes on from its cursor."""
    with transaction(sessions) as session:
        writes = VolumeTrapWrites(session)
        previous = ScanCandles(session).previous_open(s.target.series_id, from_ms)
        prev_ms = None if previous is None else previous[0]
        if s.cursor is None or (prev_ms is not None and s.cursor < prev_ms):
            return prev_ms if s.cursor is None else s.cursor
        stored = VolumeTrapRepository(session).rewind(s.key, from_ms)
        if stored is not None and previous is not None:
            monitor = replace(
                stored.monitor,
                last_evaluated_open_time_ms=previous[0],
                drawdown_pct=_drawdown(stored.monitor.trigger_high, previous[1]),
            )
            writes.update_monitor(stored.id, monitor)
            stored = StoredMonitor(stored.id, monitor)
        writes.move_cursor(s.key, s.cursor, prev_ms)
    s.cursor, s.stored = prev_ms, stored
    return prev_ms


def _drawdown(trigger_high: float, close: float) -> float:
    """As the core computes it (``scan._drawdown``)."""
    return (trigger_high - close) * 100.0 / trigger_high if trigger_high > 0 else 0.0


def finish(sessions: Sessions, finals: list[SeriesRun], failures: dict[str, str]) -> None:
    """Move every scanned series' cursor to its newest candle and record where each
    active monitor was last evaluated, in one (durable) transaction; should another scan
    have moved a cursor meanwhile, series by series so that only that one fails."""
    if not finals:
        return
    try:
        with transaction(sessions) as session:
            _finish_in(VolumeTrapWrites(session), finals)
    except (KlinewatchError, SQLAlchemyError):
        for s in finals:
            try:
                with transaction(sessions) as session:
                    _finish_in(VolumeTrapWrites(session), [s])
            except (KlinewatchError, SQLAlchemyError) as e:
                failures[s.key.symbol] = error_message(e)


def _finish_in(writes: VolumeTrapWrites, finals: list[SeriesRun]) -> None:
    key = finals[0].key
    moves = [
        (s.key.symbol, s.cursor, s.state.cursor_open_time_ms)
        for s in finals
        if s.state.cursor_open_time_ms is not None and s.cursor != s.state.cursor_open_time_ms
    ]
    writes.move_cursors(key.exchange, key.market_type, key.interval, moves)
    writes.touch_monitors(
        (s.stored.id, s.state.monitor)
        for s in finals
        if s.stored is not None and s.state.monitor is not None
    )

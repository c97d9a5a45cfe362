"""Volume-trap storage, the state a scan starts from: which series to scan, their
cursors and active monitors, the thresholds, and the rewind of a replay. The types the
writes share are here too; the writes are in ``volume_trap_writes``, the candles in
``volume_trap_candles``, the list and statistics in ``volume_trap_queries``. The
repositories never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from klinewatch.domain.volume_trap import Monitor, Status
from klinewatch.errors import StorageError
from klinewatch.storage.models import (
    Contract,
    KlineSeries,
    SystemConfig,
    VolumeTrapIndicators,
    VolumeTrapMonitor,
    VolumeTrapScanCursor,
    VolumeTrapStateTransition,
)

ACTIVE = (Status.PENDING.value, Status.SUSPECTED_ABANDONMENT.value)
TRADING = "TRADING"
MONITOR_FIELDS = tuple(Monitor.__dataclass_fields__)


class CursorMoved(StorageError):
    """Another scan moved this series' cursor meanwhile: this scan's writes are void."""

    code = "SCAN_CONFLICT"


@dataclass(frozen=True, slots=True)
class TrapKey:
    """One candle series, as monitors and cursors name it."""

    exchange: str
    market_type: str
    symbol: str
    interval: str

    def where(self, table: Any) -> list[Any]:
        return [
            table.exchange == self.exchange,
            table.market_type == self.market_type,
            table.symbol == self.symbol,
            table.interval == self.interval,
        ]


@dataclass(frozen=True, slots=True)
class Target:
    """A series to scan: an active contract's candles of one interval."""

    symbol: str
    series_id: int
    contract_id: int


@dataclass(frozen=True, slots=True)
class StoredMonitor:
    id: int
    monitor: Monitor


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What one step of the core writes: the monitor's new row (inserted when
    ``discover``), its detector snapshot and, for a transition, (from, to, reason)."""

    open_time_ms: int
    monitor: Monitor
    detector_values: dict[str, Any]
    discover: bool
    transition: tuple[str | None, str, str] | None


def cursor_moved(exchange: str, market_type: str, interval: str, symbols: list[str]) -> CursorMoved:
    shown = ", ".join(symbols[:5]) + (" ..." if len(symbols) > 5 else "")
    return CursorMoved(
        f"another scan moved the cursor of {shown} ({exchange} {market_type} {interval})",
        exchange=exchange,
        market_type=market_type,
        interval=interval,
        symbols=symbols[:20],
    )


def monitor_of(row: Any) -> Monitor:
    values = {name: getattr(row, name) for name in MONITOR_FIELDS}
    values["status"] = Status(values["status"])
    values["later_bursts"] = tuple(int(t) for t in values["later_bursts"] or ())
    return Monitor(**values)


def monitor_values(monitor: Monitor) -> dict[str, Any]:
    values = {name: getattr(monitor, name) for name in MONITOR_FIELDS}
    values["status"] = monitor.status.value
    values["later_bursts"] = list(monitor.later_bursts)
    return values


class VolumeTrapRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    # --- what to scan ---------------------------------------------------------------

    def config_section(self) -> dict[str, Any]:
        """The system config's ``volume_trap`` section ({} when there is no row yet)."""
        found = self.session.scalar(select(SystemConfig.volume_trap).where(SystemConfig.id == 1))
        return dict(found or {})

    def targets(
        self, exchange: str, market_type: str, interval: str, symbols: Sequence[str] | None
    ) -> list[Target]:
        """Series with candles of the active (trading, not delisted) contracts."""
        s, c = KlineSeries, Contract
        query = (
            select(s.symbol, s.id, c.id)
            .join(
                c,
                (c.exchange == s.exchange)
                & (c.market_type == s.market_type)
                & (c.symbol == s.symbol),
            )
            .where(
                s.exchange == exchange,
                s.market_type == market_type,
                s.interval == interval,
                c.status == TRADING,
                c.delisted_at.is_(None),
            )
            .order_by(s.symbol)
        )
        if symbols is not None:
            query = query.where(s.symbol.in_(list(symbols)))
        return [Target(str(a), int(b), int(d)) for a, b, d in self.session.execute(query)]

    def cursors(self, exchange: str, market_type: str, interval: str) -> dict[str, int]:
        t = VolumeTrapScanCursor
        rows = self.session.execute(
            select(t.symbol, t.cursor_open_time_ms).where(
                t.exchange == exchange, t.market_type == market_type, t.interval == interval
            )
        )
        return {str(symbol): int(cursor) for symbol, cursor in rows}

    def active_monitors(
        self, exchange: str, market_type: str, interval: str
    ) -> dict[str, StoredMonitor]:
        m = VolumeTrapMonitor
        rows = self.session.scalars(
            select(m).where(
                m.exchange == exchange,
                m.market_type == market_type,
                m.interval == interval,
                m.status.in_(ACTIVE),
            )
        )
        return {row.symbol: StoredMonitor(row.id, monitor_of(row)) for row in rows}

    def active_scopes(
        self, exchange: str | None, market_type: str | None, interval: str | None
    ) -> list[tuple[str, str, str]]:
        """(exchange, market_type, interval) of every group with an active monitor."""
        m = VolumeTrapMonitor
        query = select(m.exchange, m.market_type, m.interval).where(m.status.in_(ACTIVE))
        for column, value in ((m.exchange, exchange), (m.market_type, market_type)):
            if value is not None:
                query = query.where(column == value)
        if interval is not None:
            query = query.where(m.interval == interval)
        rows = self.session.execute(
            query.distinct().order_by(m.exchange, m.market_type, m.interval)
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def rewind(self, key: TrapKey, from_ms: int) -> StoredMonitor | None:
        """Forget what the scan found from ``from_ms`` on: monitors triggered since are
        deleted, the one active just before loses its later transitions and snapshots.
        Returns that monitor as it stood (its ``last_evaluated`` is set by the caller)."""
        m, tr, ind = VolumeTrapMonitor, VolumeTrapStateTransition, VolumeTrapIndicators
        self.session.execute(delete(m).where(*key.where(m), m.trigger_open_time_ms >= from_ms))
        row = self.session.scalars(
            select(m).where(
                *key.where(m),
                m.trigger_open_time_ms < from_ms,
                m.status.in_(ACTIVE) | (m.last_transition_open_time_ms >= from_ms),
            )
        ).first()
        if row is None:
            return None
        for table in (tr, ind):
            self.session.execute(
                delete(table).where(table.monitor_id == row.id, table.open_time_ms >= from_ms)
            )
        last = self.session.execute(
            select(tr.to_status, tr.open_time_ms)
            .where(tr.monitor_id == row.id)
            .order_by(tr.open_time_ms.desc(), tr.id.desc())
            .limit(1)
        ).one()
        row.status = str(last[0])
        row.last_transition_open_time_ms = int(last[1])
        row.later_bursts = [t for t in row.later_bursts or () if int(t) < from_ms]
        self.session.flush()
        return StoredMonitor(row.id, monitor_of(row))

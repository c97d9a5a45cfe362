"""What the dashboard lists: the stored candle series and the latest monitor transitions.

Both are small reads meant for pickers and a feed. A series is listed only when it holds
candles (``update-klines`` creates a series row for every active contract it plans, most
of which may stay empty); its first and last open times come from the ``klines`` primary
key, one index probe each, never a scan of the candles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from klinewatch.storage.models import (
    Kline,
    KlineSeries,
    VolumeTrapMonitor,
    VolumeTrapStateTransition,
)


@dataclass(frozen=True, slots=True)
class StoredSeries:
    exchange: str
    market_type: str
    symbol: str
    interval: str
    first_open_time_ms: int
    last_open_time_ms: int


@dataclass(frozen=True, slots=True)
class TransitionRow:
    monitor_id: int
    exchange: str
    market_type: str
    symbol: str
    interval: str
    status: str
    from_status: str | None
    to_status: str
    open_time_ms: int
    reason: str
    detector_values: dict[str, Any]


def stored_series(session: Session, market_type: str | None = None) -> list[StoredSeries]:
    """Every series holding at least one candle, ordered for a picker."""
    s = KlineSeries
    first = select(func.min(Kline.open_time_ms)).where(Kline.series_id == s.id).scalar_subquery()
    last = select(func.max(Kline.open_time_ms)).where(Kline.series_id == s.id).scalar_subquery()
    query = (
        select(s.exchange, s.market_type, s.symbol, s.interval, first, last)
        .where(exists().where(Kline.series_id == s.id))
        .order_by(s.exchange, s.market_type, s.symbol, s.interval)
    )
    if market_type is not None:
        query = query.where(s.market_type == market_type)
    return [
        StoredSeries(str(e), str(m), str(sym), str(i), int(lo), int(hi))
        for e, m, sym, i, lo, hi in session.execute(query).all()
    ]


def latest_transitions(
    session: Session, limit: int, market_type: str | None = None
) -> list[TransitionRow]:
    """The ``limit`` most recent transitions by candle time (newest first), each with
    its monitor's series and current status."""
    t, m = VolumeTrapStateTransition, VolumeTrapMonitor
    query = (
        select(
            t.monitor_id,
            m.exchange,
            m.market_type,
            m.symbol,
            m.interval,
            m.status,
            t.from_status,
            t.to_status,
            t.open_time_ms,
            t.reason,
            t.detector_values,
        )
        .join(m, m.id == t.monitor_id)
        .order_by(t.open_time_ms.desc(), t.id.desc())
        .limit(limit)
    )
    if market_type is not None:
        query = query.where(m.market_type == market_type)
    return [TransitionRow(*row) for row in session.execute(query).all()]

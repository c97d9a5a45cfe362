"""The dashboard's lists: which candle series are stored (for the chart's pickers and
the watched pairs) and the latest volume-trap transitions (the dashboard's feed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.intervals import parse_market_type
from klinewatch.errors import InvalidInput
from klinewatch.services.market_shapes import iso
from klinewatch.storage.engine import transaction
from klinewatch.storage.series_catalog import latest_transitions, stored_series

MAX_TRANSITIONS = 200


def list_series(sessions: sessionmaker[Session], market_type: str | None) -> list[dict[str, Any]]:
    """Every series holding candles, with its first and last open times."""
    market = None if market_type is None else parse_market_type(market_type).value
    with transaction(sessions) as session:
        rows = stored_series(session, market)
    return [
        {
            "exchange": r.exchange,
            "market_type": r.market_type,
            "symbol": r.symbol,
            "interval": r.interval,
            "first_open_time": iso(r.first_open_time_ms),
            "last_open_time": iso(r.last_open_time_ms),
        }
        for r in rows
    ]


def recent_transitions(
    sessions: sessionmaker[Session], limit: int, market_type: str | None
) -> list[dict[str, Any]]:
    """The newest ``limit`` transitions by candle time, newest first."""
    if not 1 <= limit <= MAX_TRANSITIONS:
        raise InvalidInput(f"limit: 1 to {MAX_TRANSITIONS}", field="limit")
    market = None if market_type is None else parse_market_type(market_type).value
    with transaction(sessions) as session:
        rows = latest_transitions(session, limit, market)
    return [
        {
            "monitor_id": r.monitor_id,
            "exchange": r.exchange,
            "market_type": r.market_type,
            "symbol": r.symbol,
            "interval": r.interval,
            "status": r.status,
            "from_status": r.from_status,
            "to_status": r.to_status,
            "open_time": iso(r.open_time_ms),
            "reason": r.reason,
            "detector_values": r.detector_values,
        }
        for r in rows
    ]

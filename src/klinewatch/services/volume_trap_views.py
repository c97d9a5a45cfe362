"""What the volume-trap pages and API show: the monitor list, one monitor, statistics.

Each use case validates its input (so any caller gets the same ``InvalidInput`` naming
the field), reads in one transaction and returns JSON-ready data with ISO times.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import parse_interval, parse_market_type
from klinewatch.domain.volume_trap import Status
from klinewatch.errors import InvalidInput, NotFound
from klinewatch.services.market_shapes import candle_records, iso
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.models import VolumeTrapMonitor
from klinewatch.storage.volume_trap_queries import (
    ORDER_COLUMNS,
    MonitorFilter,
    Valuation,
    VolumeTrapQueries,
)

Sessions = sessionmaker[Session]
ORDERINGS = tuple(name for key in ORDER_COLUMNS for name in (key, f"-{key}"))
MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases' schema
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,39}")
MAX_AROUND = 1000  # candles on either side of the trigger in a monitor's detail
# Each phase a monitor passes, as (phase, the status it leaves, the status it reaches).
PHASES = (
    ("confirmation", Status.PENDING, Status.SUSPECTED_ABANDONMENT),
    ("validation", Status.SUSPECTED_ABANDONMENT, Status.CONFIRMED_ABANDONMENT),
)
ENDED = (Status.INVALIDATED.value, Status.EXPIRED.value)


@dataclass(frozen=True, slots=True)
class ListQuery:
    where: MonitorFilter = field(default_factory=MonitorFilter)
    ordering: str = "-trigger_time"
    page: int = 1
    page_size: int = 20


def checked_filter(
    market_type: str | None = None,
    status: str | None = None,
    interval: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
) -> MonitorFilter:
    """A filter with every value checked; a bad one is ``InvalidInput`` naming it."""
    if market_type is not None:
        market_type = parse_market_type(market_type).value
    if status is not None and status not in {s.value for s in Status}:
        known = ", ".join(s.value for s in Status)
        raise InvalidInput(f"status: {status!r} is not one of {known}", field="status")
    if interval is not None:
        interval = parse_interval(interval).name
    if symbol is not None:
        symbol = symbol.strip().upper().replace("/", "")
        if not SYMBOL.fullmatch(symbol):
            raise InvalidInput(f"symbol: {symbol!r} is not a symbol like BTCUSDT", field="symbol")
    return MonitorFilter(market_type, status, interval, exchange, symbol)


def list_monitors(sessions: Sessions, q: ListQuery) -> dict[str, Any]:
    """One page of monitors; a page past the end is ``InvalidInput`` on ``page``."""
    if q.ordering not in ORDERINGS:
        raise InvalidInput(f"ordering: one of {', '.join(ORDERINGS)}", field="ordering")
    if not 1 <= q.page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size: 1 to {MAX_PAGE_SIZE}", field="page_size")
    if q.page < 1:
        raise InvalidInput("page: from 1", field="page")
    with transaction(sessions) as session:
        queries = VolumeTrapQueries(session)
        count = queries.count(q.where)
        pages = max(1, math.ceil(count / q.page_size))
        if q.page > pages:
            raise InvalidInput(
                f"page {q.page} is past the end: {count} monitors make {pages} page(s) "
                f"of {q.page_size}",
                field="page",
                pages=pages,
                count=count,
            )
        descending = q.ordering.startswith("-")
        offset = (q.page - 1) * q.page_size
        rows = queries.page(q.where, q.ordering.lstrip("-"), descending, offset, q.page_size)
        worth = queries.valuations([r.contract_id for r in rows if r.contract_id is not None])
    return {
        "count": count,
        "page": q.page,
        "page_size": q.page_size,
        "pages": pages,
        "ordering": q.ordering,
        "results": [
            monitor_record(r, None if r.contract_id is None else worth.get(r.contract_id))
            for r in rows
        ],
    }


def monitor_record(row: VolumeTrapMonitor, worth: Valuation | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "exchange": row.exchange,
        "market_type": row.market_type,
        "symbol": row.symbol,
        "interval": row.interval,
        "status": row.status,
        "trigger_time": iso(row.trigger_open_time_ms),
        "key_level": row.key_level,
        "rvol": _finite(row.rvol),
        "amplitude_pct": _finite(row.amplitude_pct),
        "drawdown_pct": row.drawdown_pct,
        "last_transition_time": iso(row.last_transition_open_time_ms),
        "last_evaluated_time": iso(row.last_evaluated_open_time_ms),
        "later_bursts": [iso(int(t)) for t in row.later_bursts or ()],
        "coingecko_id": None if worth is None else worth.coingecko_id,
        "market_cap": None if worth is None else worth.market_cap,
        "fully_diluted_valuation": None if worth is None else worth.fully_diluted_valuation,
        "fdv": None if worth is None else worth.fully_diluted_valuation,  # the dashboard's name
    }


def monitor_detail(
    sessions: Sessions, monitor_id: int, before: int = 48, after: int = 48
) -> dict[str, Any]:
    """A monitor, its trigger candle and key level, every transition with its detector
    values, every later burst's snapshot, and the candles from ``before`` candles
    before the trigger to ``after`` past the last transition."""
    if not 1 <= monitor_id <= MAX_ID:
        raise InvalidInput(f"monitor_id: 1 to {MAX_ID}", field="monitor_id")
    for name, value in (("before", before), ("after", after)):
        if not 0 <= value <= MAX_AROUND:
            raise InvalidInput(f"{name}: 0 to {MAX_AROUND} candles", field=name)
    with transaction(sessions) as session:
        queries = VolumeTrapQueries(session)
        row = queries.monitor(monitor_id)
        if row is None:
            raise NotFound(f"no volume-trap monitor {monitor_id}", field="monitor_id")
        worth = None if row.contract_id is None else queries.valuations([row.contract_id])
        transitions = queries.transitions(monitor_id)
        moved = {t.open_time_ms for t in transitions}
        bursts = [s for s in queries.snapshots(monitor_id) if s.open_time_ms not in moved]
        candles = _around(KlineRepository(session), row, before, after)
    record = monitor_record(row, None if not worth else worth.get(row.contract_id or 0))
    return {
        **record,
        "trigger_candle": {
            "open_time": iso(row.trigger_open_time_ms),
            "open": row.trigger_open,
            "high": row.trigger_high,
            "low": row.trigger_low,
            "close": row.trigger_close,
            "volume": row.trigger_volume,
        },
        "transitions": [
            {
                "from_status": t.from_status,
                "to_status": t.to_status,
                "open_time": iso(t.open_time_ms),
                "reason": t.reason,
                "detector_values": t.detector_values,
            }
            for t in transitions
        ],
        "later_burst_snapshots": [
            {"open_time": iso(s.open_time_ms), "detector_values": s.detector_values} for s in bursts
        ],
        "candles": candle_records(candles),
    }


def _around(klines: KlineRepository, row: VolumeTrapMonitor, before: int, after: int) -> Candles:
    series = klines.find_series(row.exchange, row.market_type, row.symbol, row.interval)
    if series is None:
        return Candles.empty()
    trigger, last = row.trigger_open_time_ms, row.last_transition_open_time_ms
    return Candles.concat(
        [
            klines.read(series, end_ms=trigger, limit=before, newest=True),
            klines.read(series, start_ms=trigger, end_ms=last + 1, limit=MAX_AROUND),
            klines.read(series, start_ms=last + 1, limit=after),
        ]
    )


def statistics(sessions: Sessions, where: MonitorFilter) -> dict[str, Any]:
    """Monitors per status and market type, and per phase how many went on to the next
    (``share``: of those the phase decided, i.e. not still in it)."""
    with transaction(sessions) as session:
        queries = VolumeTrapQueries(session)
        statuses = queries.status_counts(where)
        moves = queries.transition_counts(where)
    markets = sorted({m for m, _, _ in statuses})
    return {
        "total": sum(n for _, _, n in statuses),
        "by_status": _by_status(statuses, None),
        "by_market_type": {m: _by_status(statuses, m) for m in markets},
        "phases": _phases(statuses, moves, None),
        "phases_by_market_type": {m: _phases(statuses, moves, m) for m in markets},
    }


def _by_status(statuses: list[tuple[str, str, int]], market: str | None) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for m, status, n in statuses:
        if market is None or m == market:
            counts[status] += n
    return counts


def _phases(
    statuses: list[tuple[str, str, int]],
    moves: list[tuple[str, str | None, str, int]],
    market: str | None,
) -> list[dict[str, Any]]:
    def moved(frm: str | None, to: tuple[str, ...]) -> int:
        return sum(
            n for m, f, t, n in moves if (market is None or m == market) and f == frm and t in to
        )

    still = _by_status(statuses, market)
    out = []
    for phase, start, goal in PHASES:
        entered = moved(None if start is Status.PENDING else "pending", (start.value,))
        advanced = moved(start.value, (goal.value,))
        ended = moved(start.value, ENDED)
        decided = advanced + ended
        out.append(
            {
                "phase": phase,
                "from_status": start.value,
                "to_status": goal.value,
                "entered": entered,
                "advanced": advanced,
                "ended": ended,
                "active": still[start.value],
                "share": round(advanced / decided, 4) if decided else None,
                "share_of_entered": round(advanced / entered, 4) if entered else None,
            }
        )
    return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None

"""What people read about volume-trap monitors: the filtered, ordered, paginated list,
one monitor with its transitions, and the statistics. Read only.

The list is two statements (a count and a page ordered by one indexed column with the
id as tie-break, so pages never overlap) and, for the page's rows only, a third for
market cap and FDV through a confirmed CoinGecko mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from klinewatch.storage.models import (
    CoinMarketData,
    Contract,
    TokenMapping,
    VolumeTrapIndicators,
    VolumeTrapMonitor,
    VolumeTrapStateTransition,
)

CONFIRMED_MAPPINGS = ("auto_matched", "manual_confirmed")
Q = TypeVar("Q")
ORDER_COLUMNS = {
    "trigger_time": VolumeTrapMonitor.trigger_open_time_ms,
    "rvol": VolumeTrapMonitor.rvol,
    "drawdown": VolumeTrapMonitor.drawdown_pct,
}


@dataclass(frozen=True, slots=True)
class MonitorFilter:
    """Equality filters of the list and the statistics; None means any."""

    market_type: str | None = None
    status: str | None = None
    interval: str | None = None
    exchange: str | None = None
    symbol: str | None = None

    def apply(self, query: Q) -> Q:
        """``query`` (a select over ``volume_trap_monitors``) with the filters added."""
        m = VolumeTrapMonitor
        out: Any = query
        for column, value in (
            (m.market_type, self.market_type),
            (m.status, self.status),
            (m.interval, self.interval),
            (m.exchange, self.exchange),
            (m.symbol, self.symbol),
        ):
            if value is not None:
                out = out.where(column == value)
        return cast(Q, out)


@dataclass(frozen=True, slots=True)
class Valuation:
    coingecko_id: str
    market_cap: float | None
    fully_diluted_valuation: float | None


class VolumeTrapQueries:
    def __init__(self, session: Session) -> None:
        self.session = session

    def count(self, where: MonitorFilter) -> int:
        query = where.apply(select(func.count()).select_from(VolumeTrapMonitor))
        return int(self.session.execute(query).scalar_one())

    def page(
        self, where: MonitorFilter, order: str, descending: bool, offset: int, limit: int
    ) -> list[VolumeTrapMonitor]:
        column = ORDER_COLUMNS[order]
        m = VolumeTrapMonitor
        keys = (column.desc(), m.id.desc()) if descending else (column.asc(), m.id.asc())
        query = where.apply(select(m)).order_by(*keys).offset(offset).limit(limit)
        return list(self.session.scalars(query))

    def valuations(self, contract_ids: Sequence[int]) -> dict[int, Valuation]:
        """Market cap and FDV by contract, where the base asset's mapping is confirmed."""
        if not contract_ids:
            return {}
        c, t, d = Contract, TokenMapping, CoinMarketData
        rows = self.session.execute(
            select(c.id, d.coingecko_id, d.market_cap, d.fully_diluted_valuation)
            .join(
                t,
                and_(
                    t.exchange == c.exchange,
                    t.base_asset == c.base_asset,
                    t.match_status.in_(CONFIRMED_MAPPINGS),
                ),
            )
            .join(d, d.coingecko_id == t.coingecko_id)
            .where(c.id.in_(list(contract_ids)))
        )
        return {int(cid): Valuation(str(gid), cap, fdv) for cid, gid, cap, fdv in rows}

    def monitor(self, monitor_id: int) -> VolumeTrapMonitor | None:
        return self.session.get(VolumeTrapMonitor, monitor_id)

    def transitions(self, monitor_id: int) -> list[VolumeTrapStateTransition]:
        t = VolumeTrapStateTransition
        query = select(t).where(t.monitor_id == monitor_id).order_by(t.open_time_ms, t.id)
        return list(self.session.scalars(query))

    def snapshots(self, monitor_id: int) -> list[VolumeTrapIndicators]:
        i = VolumeTrapIndicators
        query = select(i).where(i.monitor_id == monitor_id).order_by(i.open_time_ms, i.id)
        return list(self.session.scalars(query))

    def status_counts(self, where: MonitorFilter) -> list[tuple[str, str, int]]:
        """(market_type, status, monitors)."""
        m = VolumeTrapMonitor
        query = where.apply(
            select(m.market_type, m.status, func.count()).group_by(m.market_type, m.status)
        )
        return [(str(a), str(b), int(n)) for a, b, n in self.session.execute(query)]

    def transition_counts(self, where: MonitorFilter) -> list[tuple[str, str | None, str, int]]:
        """(market_type, from_status, to_status, transitions) of the filtered monitors."""
        m, t = VolumeTrapMonitor, VolumeTrapStateTransition
        query = where.apply(
            select(m.market_type, t.from_status, t.to_status, func.count())
            .join(t, t.monitor_id == m.id)
            .group_by(m.market_type, t.from_status, t.to_status)
        )
        return [(str(a), b, str(c), int(n)) for a, b, c, n in self.session.execute(query)]

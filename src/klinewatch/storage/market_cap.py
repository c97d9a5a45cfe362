"""Market cap, FDV, 24h volume and rank per CoinGecko coin, as last fetched.

One row per coin, not per pair: ``PEPE`` and ``1000PEPE`` share ``pepe``'s row (a
market cap does not depend on the unit a venue quotes in). Figures are stored as the
doubles CoinGecko sends and read back as ``Decimal`` through their shortest repr, which
is exactly the number CoinGecko wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from klinewatch.domain.mapping import CoinMarket
from klinewatch.storage.models import CoinMarketData

_IN_CHUNK = 500  # stay far below any database's bound-parameter limit


@dataclass(frozen=True, slots=True)
class MarketCapRecord:
    coingecko_id: str
    symbol: str
    price: Decimal | None
    market_cap: Decimal | None
    fdv: Decimal | None
    volume_24h: Decimal | None
    market_cap_rank: int | None
    fetched_at: datetime


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(float(value)))


def _record(row: CoinMarketData) -> MarketCapRecord:
    return MarketCapRecord(
        coingecko_id=row.coingecko_id,
        symbol=row.symbol,
        price=_decimal(row.price_usd),
        market_cap=_decimal(row.market_cap),
        fdv=_decimal(row.fully_diluted_valuation),
        volume_24h=_decimal(row.total_volume),
        market_cap_rank=row.market_cap_rank,
        fetched_at=row.fetched_at,
    )


class MarketCapRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def save(self, markets: Iterable[CoinMarket], fetched_at: datetime) -> int:
        """Insert or replace each coin's figures; returns how many rows were written."""
        by_id = {m.id: m for m in markets}
        stored = self._rows(list(by_id))
        for coin_id, market in by_id.items():
            row = stored.get(coin_id)
            if row is None:
                row = CoinMarketData(coingecko_id=coin_id)
                self.session.add(row)
            row.symbol = market.symbol[:24]
            row.price_usd = _float(market.price)
            row.market_cap = _float(market.market_cap)
            row.fully_diluted_valuation = _float(market.fdv)
            row.total_volume = _float(market.volume_24h)
            row.market_cap_rank = market.market_cap_rank
            row.fetched_at = fetched_at
        self.session.flush()
        return len(by_id)

    def get_many(self, coingecko_ids: Sequence[str]) -> dict[str, MarketCapRecord]:
        return {k: _record(v) for k, v in self._rows(coingecko_ids).items()}

    def _rows(self, coingecko_ids: Sequence[str]) -> dict[str, CoinMarketData]:
        ids = list(dict.fromkeys(coingecko_ids))
        found: dict[str, CoinMarketData] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            query = select(CoinMarketData).where(CoinMarketData.coingecko_id.in_(chunk))
            found.update({row.coingecko_id: row for row in self.session.scalars(query)})
        return found

"""What the price service reads and keeps in the database: the last good price of each
token (``cached_prices``, seed 004's local cache that outlives a restart), the symbols
klinewatch knows, and the newest stored candle closes of ``<SYMBOL>USDT`` pairs
(klinewatch's own exchange prices). Symbol -> CoinGecko ids: ``storage/mappings.py``.

Repositories never commit; the service owns the transaction. A token without a network
is stored with the network ``""`` (the table's unique key is ``(symbol, network)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import String, and_, cast, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from klinewatch.domain.intervals import INTERVALS
from klinewatch.domain.prices import PricePoint, valid_price
from klinewatch.storage.models import CachedPrice, Contract, Kline, KlineSeries, TokenMapping

PriceKey = tuple[str, str | None]  # (symbol, network)


def _network(network: str | None) -> str:
    return network or ""


def _ms(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


class CachedPriceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def read(self, keys: Sequence[PriceKey]) -> dict[PriceKey, PricePoint]:
        """The stored point of each key that has one."""
        if not keys:
            return {}
        wanted = {(symbol, _network(network)): (symbol, network) for symbol, network in keys}
        rows = self.session.execute(
            select(
                CachedPrice.symbol,
                CachedPrice.network,
                cast(CachedPrice.price_usdt, String),  # SQLite keeps a REAL: its text is exact
                CachedPrice.source,
                CachedPrice.fetched_at,
            ).where(tuple_(CachedPrice.symbol, CachedPrice.network).in_(list(wanted)))
        ).all()
        found: dict[PriceKey, PricePoint] = {}
        for symbol, network, price, source, fetched_at in rows:
            value = valid_price(price)
            if value is not None:
                found[wanted[(symbol, network)]] = PricePoint(value, source, _ms(fetched_at))
        return found

    def save(self, points: dict[PriceKey, PricePoint]) -> None:
        """Insert or replace each key's point, unless the stored one is newer."""
        if not points:
            return
        rows = [
            {
                "symbol": symbol,
                "network": _network(network),
                "price_usdt": point.price,
                "source": point.origin[:16],
                "fetched_at": datetime.fromtimestamp(point.observed_ms / 1000, tz=UTC),
            }
            for (symbol, network), point in sorted(points.items(), key=lambda i: _sort_key(i[0]))
        ]
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(CachedPrice).values(rows)
        excluded = statement.excluded
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["symbol", "network"],
                set_={
                    "price_usdt": excluded.price_usdt,
                    "source": excluded.source,
                    "fetched_at": excluded.fetched_at,
                },
                where=CachedPrice.fetched_at <= excluded.fetched_at,
            )
        )


def _sort_key(key: PriceKey) -> tuple[str, str]:
    """One lock order for every writer (two upserts never deadlock on PostgreSQL)."""
    return key[0], _network(key[1])


def known_symbols(session: Session, symbols: Sequence[str]) -> set[str]:
    """Which of ``symbols`` klinewatch has heard of: a contract's base asset, a mapped
    base asset, or a token it once priced."""
    if not symbols:
        return set()
    wanted = list(symbols)
    found: set[str] = set()
    for column in (Contract.base_asset, TokenMapping.base_asset, CachedPrice.symbol):
        found.update(session.scalars(select(column).where(column.in_(wanted)).distinct()))
    return found


@dataclass(frozen=True, slots=True)
class StoredClose:
    pair: str
    close: Decimal
    close_time_ms: int


def latest_closes(
    session: Session,
    pairs: Sequence[str],
    exchange: str,
    market_types: Sequence[str],
    since_ms: int,
    now_ms: int,
) -> dict[str, StoredClose]:
    """The newest candle of each pair (over its stored series of ``market_types``) that
    closed in ``[since_ms, now_ms)``; one query, by the primary key's range."""
    if not pairs:
        return {}
    series = session.execute(
        select(KlineSeries.id, KlineSeries.symbol, KlineSeries.interval).where(
            KlineSeries.exchange == exchange,
            KlineSeries.market_type.in_(list(market_types)),
            KlineSeries.symbol.in_(list(pairs)),
        )
    ).all()
    windows = [
        and_(Kline.series_id == sid, Kline.open_time_ms >= since_ms - INTERVALS[name].nominal_ms)
        for sid, _, name in series
        if name in INTERVALS
    ]
    if not windows:
        return {}
    pair_of = {sid: pair for sid, pair, _ in series}
    rows = session.execute(
        select(Kline.series_id, Kline.close, Kline.close_time_ms).where(
            or_(*windows), Kline.close_time_ms >= since_ms, Kline.close_time_ms < now_ms
        )
    ).all()
    newest: dict[str, StoredClose] = {}
    for sid, close, close_time_ms in rows:
        price = valid_price(close)
        pair = pair_of[sid]
        if price is not None and (pair not in newest or close_time_ms > newest[pair].close_time_ms):
            newest[pair] = StoredClose(pair, price, int(close_time_ms))
    return newest

"""Steps 2 to 4 of the price chain (``services/prices.py``): the primary source, then
CoinGecko ``simple/price``, then klinewatch's own exchange data, each asked once for all
the symbols still without a price.

A source that raises an ``ExchangeError`` or takes longer than ``timeout_s`` is logged
and skipped, then rests ``REST_MS`` (10 s) before it is asked again. The round also
says whether some source answered at all: then the network is fine, and a symbol no
answer holds may be unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import ParamSpec, Protocol, TypeVar

import orjson
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache import keys
from klinewatch.cache.port import Cache, CacheUnavailable
from klinewatch.domain.prices import (
    MAJOR_COINGECKO_IDS,
    USDT,
    Freshness,
    PricePoint,
    PricePolicy,
    chain_of,
    valid_price,
)
from klinewatch.errors import (
    ConfigurationError,
    DatabaseUnreachable,
    ExchangeError,
    KlinewatchError,
    RateLimited,
)
from klinewatch.logs import get_logger
from klinewatch.storage.engine import transaction
from klinewatch.storage.mappings import MappingRepository
from klinewatch.storage.prices import StoredClose, known_symbols, latest_closes

log = get_logger(__name__)

COINGECKO = "coingecko"
EXCHANGE = "exchange"
REST_MS = 10_000  # a failed source is not asked again for this long
T = TypeVar("T")
P = ParamSpec("P")


async def guarded(
    what: str, default: T, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``read`` in a thread; when the database fails, ``default`` (the step is skipped:
    a price from the sources is still worth giving)."""
    try:
        return await asyncio.to_thread(read, *args, **kwargs)
    except (SQLAlchemyError, DatabaseUnreachable) as e:
        log.warning("price_database_step_skipped", step=what, error=type(e).__name__)
        return default


class PrimarySource(Protocol):
    source: str

    async def fetch_prices(self, symbols: Sequence[str], chain_id: str) -> dict[str, Decimal]: ...


class SimplePrices(Protocol):
    async def fetch_simple_prices(
        self, ids: Sequence[str], vs_currency: str = "usd"
    ) -> dict[str, Decimal]: ...


@dataclass
class SourceRound:
    """What one pass over the sources found for the symbols of one network."""

    points: dict[str, PricePoint] = field(default_factory=dict)
    answered: bool = False  # some source answered: a symbol it left out may be unknown
    failed: bool = False  # some source failed or timed out


@dataclass(frozen=True, slots=True)
class OwnMarkets:
    """Whose tickers and candles are the own-data step (``<SYMBOL>USDT`` pairs)."""

    exchange: str = "binance"
    market_types: tuple[str, ...] = ("spot", "futures")


class PriceSources:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        cache: Cache,
        policy: PricePolicy,
        primary: PrimarySource | None,
        coingecko: SimplePrices | None,
        timeout_s: float,
        own: OwnMarkets | None = None,
    ) -> None:
        self.sessions = sessions
        self.cache = cache
        self.policy = policy
        self.primary = primary
        self.coingecko = coingecko
        self.timeout_s = timeout_s
        self.own = own or OwnMarkets()
        self._resting_until_ms: dict[str, int] = {}

    async def fetch(self, symbols: list[str], network: str | None, now: int) -> SourceRound:
        """Steps 2 to 4 for ``symbols`` of one network; each point names its origin."""
        round_ = SourceRound()
        chain = chain_of(network)
        primary = self.primary
        if primary is not None and chain is not None:
            call = partial(primary.fetch_prices, symbols, chain)
            found = await self._ask(primary.source, round_, call, now)
            self._take(round_, found, primary.source, now)
        rest = [s for s in symbols if s not in round_.points]
        if rest and self.coingecko is not None:
            self._take(round_, await self._from_coingecko(rest, round_, now), COINGECKO, now)
        rest = [s for s in rest if s not in round_.points]
        if rest:
            for symbol, point in (await self._from_exchange(rest, now)).items():
                if self.policy.freshness(now - point.observed_ms) is not Freshness.EXPIRED:
                    round_.points[symbol] = point
        return round_

    def _take(
        self, round_: SourceRound, found: dict[str, Decimal] | None, source: str, now: int
    ) -> None:
        for symbol, price in (found or {}).items():
            round_.points.setdefault(symbol, PricePoint(price, source, now))

    async def _ask(
        self, source: str, round_: SourceRound, call: Callable[[], Awaitable[T]], now: int
    ) -> T | None:
        """One source call within ``timeout_s``. A failure is logged, and the source
        rests for ``REST_MS`` (a 429: its Retry-After) so that a source that is down
        costs one request its timeout, not every request."""
        if now < self._resting_until_ms.get(source, 0):
            round_.failed = True
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except (ExchangeError, ConfigurationError, TimeoutError) as e:
            round_.failed = True  # a refused key (ConfigurationError) fails this source only
            reason = e.code if isinstance(e, KlinewatchError) else "TIMEOUT"
            rest_ms = REST_MS
            if isinstance(e, RateLimited):
                rest_ms = max(REST_MS, int(e.retry_after_s * 1000))
            self._resting_until_ms[source] = now + rest_ms
            log.warning("price_source_failed", source=source, reason=reason, rest_ms=rest_ms,
                        error=getattr(e, "message", "timed out"))  # fmt: skip
            return None
        self._resting_until_ms.pop(source, None)
        round_.answered = True
        return result

    async def _from_coingecko(
        self, symbols: list[str], round_: SourceRound, now: int
    ) -> dict[str, Decimal]:
        """Mapped symbols only; the multiplier turns a coin's price into a unit's
        (``1000PEPE`` is 1000 PEPE)."""
        assert self.coingecko is not None
        refs = await guarded("coingecko_ids_read", {}, self._coin_refs, symbols)
        if not refs:
            return {}  # not asked: no answer (an unmapped token may still be real)
        ids = sorted({coin for coin, _ in refs.values()})
        call = partial(self.coingecko.fetch_simple_prices, ids, "usd")
        prices = await self._ask(COINGECKO, round_, call, now)
        found: dict[str, Decimal] = {}
        for symbol, (coin, multiplier) in refs.items():
            price = valid_price((prices or {}).get(coin))
            if price is not None:
                found[symbol] = price * multiplier
        return found

    async def _from_exchange(self, symbols: list[str], now: int) -> dict[str, PricePoint]:
        """The newer of the ticker the market-data service cached and the newest stored
        closed candle, per ``<SYMBOL>USDT`` pair."""
        pairs = {f"{symbol}{USDT}": symbol for symbol in symbols}
        own = self.own
        lookups = [(pair, market) for pair in pairs for market in own.market_types]
        raw = await asyncio.gather(
            *(self._cache_raw(keys.ticker(own.exchange, m, pair)) for pair, m in lookups)
        )
        candidates = [
            (pairs[pair], _ticker_point(body)) for (pair, _), body in zip(lookups, raw, strict=True)
        ]
        since = now - self.policy.max_stale_ms
        closes = await guarded("latest_closes_read", {}, self._read_closes, list(pairs), since, now)
        for pair, close in closes.items():
            candle = PricePoint(close.close, EXCHANGE, close.close_time_ms + 1)
            candidates.append((pairs[pair], candle))
        points: dict[str, PricePoint] = {}
        for symbol, point in candidates:
            if point is not None and (
                symbol not in points or point.observed_ms > points[symbol].observed_ms
            ):
                points[symbol] = point
        return points

    async def _cache_raw(self, name: str) -> bytes | None:
        try:
            return await self.cache.get(name)
        except CacheUnavailable:
            return None

    def _coin_refs(self, symbols: list[str]) -> dict[str, tuple[str, int]]:
        """Symbol -> (CoinGecko id, units per coin): a ready mapping of the own exchange
        (``auto_matched`` or ``manual_confirmed``; ``needs_review`` may be the wrong
        coin), else the built-in majors."""
        with transaction(self.sessions) as session:
            ready = MappingRepository(session).ready(self.own.exchange, symbols)
        refs = {s: (MAJOR_COINGECKO_IDS[s], 1) for s in symbols if s in MAJOR_COINGECKO_IDS}
        for record in ready:
            if record.coingecko_id:
                refs[record.base_asset] = (record.coingecko_id, record.multiplier or 1)
        return refs

    def _read_closes(self, pairs: list[str], since: int, now: int) -> dict[str, StoredClose]:
        own = self.own
        with transaction(self.sessions) as session:
            return latest_closes(session, pairs, own.exchange, own.market_types, since, now)

    def known(self, symbols: list[str]) -> set[str]:
        """Which symbols klinewatch has heard of (contracts, mappings, prices, majors)."""
        with transaction(self.sessions) as session:
            known = known_symbols(session, symbols)
        return known | {s for s in symbols if s in MAJOR_COINGECKO_IDS}


def _ticker_point(body: bytes | None) -> PricePoint | None:
    """A ticker the market-data service cached (``ticker_record``) as a price point."""
    if body is None:
        return None
    try:
        record = orjson.loads(body)
        price = valid_price(record["last"])
        observed = int(record["fetched_at_ms"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return None if price is None else PricePoint(price, EXCHANGE, observed)

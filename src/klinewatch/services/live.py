"""Live market data (seed 001 section 5.3): tickers read through cache -> exchange, and
the push of new candles and tickers to WebSocket clients.

``LiveHub.publish_update`` is the scheduler's ``on_update`` hook (an ``UpdateSummary``);
``publish_candles`` / ``publish_ticker`` take one series' new candles or a ticker. They
drop the series' cached klines and indicators (a new candle changes every "latest"
window) and publish one message per candle on the series' channel (``cache.keys.live_*``):
through Redis pub/sub when Redis is the cache, so every worker's WebSocket clients get
it, else in this process. When Redis is down, both sides fall back to this process.

Messages are JSON: ``{"type": "kline", "exchange", "market_type", "symbol",
"timeframe", "candle": {...}}`` and ``{"type": "ticker", ..., "ticker": {...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import numpy as np
import orjson
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache import keys
from klinewatch.cache.port import Cache, CacheUnavailable, Subscription
from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import DAY_MS, INTERVALS
from klinewatch.errors import ExchangeUnavailable, RateLimited
from klinewatch.exchanges.port import Ticker
from klinewatch.logs import get_logger
from klinewatch.services.ingestion import UpdateSummary
from klinewatch.services.market_data import MarketDataService
from klinewatch.services.market_shapes import (
    API,
    CACHE,
    DATABASE,
    candle_records,
    envelope,
    ticker_record,
)
from klinewatch.services.warehouse import SeriesKey
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository

log = get_logger(__name__)

TICKER_TTL_S = 5.0
QUEUE_SIZE = 1_000
END_OF_FEED = b""  # the feed broke (Redis went away): the subscriber should reconnect
# Intervals a ticker can be rebuilt from when the exchange cannot be asked, finest first.
TICKER_FALLBACK_INTERVALS = ("1h", "15m", "5m", "1m", "4h")


class LiveHub:
    def __init__(
        self,
        cache: Cache,
        fallback: Cache | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        """``fallback``: an in-process cache used for pub/sub when ``cache`` (Redis) is
        down; None when ``cache`` already is in-process. ``sessions``: where
        ``publish_update`` reads the candles an update stored."""
        self.cache = cache
        self.fallback = fallback
        self.sessions = sessions
        self._watched: dict[SeriesKey, int] = {}  # series -> newest open time published

    def watch(self, series: SeriesKey) -> None:
        """Follow a series (it is cached or streamed here) in ``publish_update``."""
        self._watched.setdefault(series, -1)

    async def publish_update(self, summary: UpdateSummary) -> int:
        """The scheduler's ``on_update`` hook: for every followed series of the update's
        exchange, market type and interval, invalidate and push the candles stored
        since the last push (the first time: the newest one)."""
        if summary.candles_added == 0 or self.sessions is None:
            return 0
        scope = (summary.exchange, summary.market_type, summary.interval)
        series = [s for s in self._watched if (s.exchange, s.market_type, s.interval) == scope]
        receivers = 0
        for key, candles in await asyncio.to_thread(self._stored_since, series):
            receivers += await self.publish_candles(
                key.exchange, key.market_type, key.symbol, key.interval, candles
            )
        return receivers

    def _stored_since(self, series: list[SeriesKey]) -> list[tuple[SeriesKey, Candles]]:
        assert self.sessions is not None
        found: list[tuple[SeriesKey, Candles]] = []
        with transaction(self.sessions) as session:
            repo = KlineRepository(session)
            for key in series:
                sid = repo.find_series(key.exchange, key.market_type, key.symbol, key.interval)
                if sid is None:
                    continue
                last = self._watched.get(key, -1)
                candles = (
                    repo.read(sid, start_ms=last + 1, limit=1000)
                    if last >= 0
                    else repo.read(sid, limit=1, newest=True)
                )
                if len(candles):
                    self._watched[key] = int(candles.open_time_ms[-1])
                    found.append((key, candles))
        return found

    async def publish_candles(
        self, exchange: str, market_type: str, symbol: str, interval: str, candles: Candles
    ) -> int:
        """New closed candles of a series were stored: invalidate, then push each."""
        for prefix in keys.series_prefixes(exchange, market_type, symbol, interval):
            try:
                await self.cache.delete_prefix(prefix)
            except CacheUnavailable:
                log.warning("cache_invalidation_skipped", exchange=exchange, symbol=symbol)
        channel = keys.live_klines_channel(exchange, market_type, symbol, interval)
        head = {"type": "kline", "exchange": exchange, "market_type": market_type}
        receivers = 0
        for record in candle_records(candles):
            message = {**head, "symbol": symbol, "timeframe": interval, "candle": record}
            receivers += await self._publish(channel, orjson.dumps(message))
        return receivers

    async def publish_ticker(
        self, exchange: str, market_type: str, ticker: Ticker, fetched_at_ms: int
    ) -> int:
        """A new ticker: becomes the cached one and is pushed to subscribers."""
        record = ticker_record(exchange, market_type, ticker, fetched_at_ms)
        with contextlib.suppress(CacheUnavailable):
            await self.cache.set(
                keys.ticker(exchange, market_type, ticker.symbol),
                orjson.dumps(record),
                DAY_MS / 1000,
            )
        message: dict[str, Any] = {"type": "ticker", "exchange": exchange}
        message |= {"market_type": market_type, "symbol": ticker.symbol, "ticker": _public(record)}
        channel = keys.live_ticker_channel(exchange, market_type, ticker.symbol)
        return await self._publish(channel, orjson.dumps(message))

    async def _publish(self, channel: str, message: bytes) -> int:
        receivers = 0
        try:
            receivers += await self.cache.publish(channel, message)
        except CacheUnavailable:
            log.warning("live_publish_fallback", channel=channel)
        if self.fallback is not None:
            receivers += await self.fallback.publish(channel, message)
        return receivers

    @asynccontextmanager
    async def subscribe(
        self, exchange: str, market_type: str, symbol: str, timeframes: Sequence[str]
    ) -> AsyncIterator[asyncio.Queue[bytes]]:
        """One queue with every message of the symbol's candle channels and ticker."""
        for timeframe in timeframes:
            self.watch(SeriesKey(exchange, market_type, symbol, timeframe))
        channels = [keys.live_klines_channel(exchange, market_type, symbol, t) for t in timeframes]
        channels.append(keys.live_ticker_channel(exchange, market_type, symbol))
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_SIZE)
        async with AsyncExitStack() as stack:
            subscriptions = [await self._enter(stack, channel) for channel in channels]
            pumps = [asyncio.create_task(_pump(s, queue)) for s in subscriptions]
            try:
                yield queue
            finally:
                await cancel_all(pumps)

    async def _enter(self, stack: AsyncExitStack, channel: str) -> Subscription:
        try:
            return await stack.enter_async_context(self.cache.subscribe(channel))
        except CacheUnavailable:
            if self.fallback is None:
                raise
            log.warning("live_subscribe_fallback", channel=channel)
            return await stack.enter_async_context(self.fallback.subscribe(channel))


async def cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel and wait for ``tasks``. ``asyncio.wait``, not ``gather``: a cancellation of
    the caller then propagates as it was sent (anyio's cancel scopes recognise theirs)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" noise


async def _pump(subscription: Subscription, queue: asyncio.Queue[bytes]) -> None:
    """Copy messages into the queue; a slow reader loses the oldest, never blocks."""
    try:
        async for message in subscription:
            _offer(queue, message)
    except CacheUnavailable:
        _offer(queue, END_OF_FEED)


def _offer(queue: asyncio.Queue[bytes], message: bytes) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


class TickerService:
    """Tickers: fresh cache (5 s) -> exchange -> stale cache -> rebuilt from candles."""

    def __init__(self, market: MarketDataService) -> None:
        self.market = market

    async def ticker_body(self, exchange: str, market_type: str, symbol: str) -> tuple[bytes, str]:
        m = self.market
        key = keys.ticker(exchange, market_type, symbol)
        now = m.clock.now_ms()
        raw = await m.cache_get(key, "ticker")
        cached: dict[str, Any] | None = orjson.loads(raw) if raw else None
        if cached is not None and now - int(cached["fetched_at_ms"]) <= TICKER_TTL_S * 1000:
            return _body(cached, CACHE, stale=False), CACHE
        try:
            client = m.clients.get(exchange, market_type)
            ticker = await m.gate.ask(exchange, client.fetch_ticker(symbol), field="symbol")
        except (RateLimited, ExchangeUnavailable) as cause:
            return await self._fallback(exchange, market_type, symbol, cached, cause)
        record = ticker_record(exchange, market_type, ticker, now)
        ttl = max(TICKER_TTL_S, m.config().max_stale_age_s)
        await m.cache_set(key, orjson.dumps(record), ttl)
        return _body(record, API, stale=False), API

    async def _fallback(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        cached: dict[str, Any] | None,
        cause: RateLimited | ExchangeUnavailable,
    ) -> tuple[bytes, str]:
        max_age_ms = self.market.config().max_stale_age_s * 1000
        now = self.market.clock.now_ms()
        if cached is not None and now - int(cached["fetched_at_ms"]) <= max_age_ms:
            return _body(cached, CACHE, stale=True), CACHE
        record = await asyncio.to_thread(self._from_candles, exchange, market_type, symbol)
        if record is not None and now - int(record["fetched_at_ms"]) <= max_age_ms:
            log.warning("ticker_from_candles", exchange=exchange, symbol=symbol, reason=cause.code)
            return _body(record, DATABASE, stale=True), DATABASE
        raise cause

    def _from_candles(self, exchange: str, market_type: str, symbol: str) -> dict[str, Any] | None:
        """A 24-hour ticker rebuilt from the newest stored candles of the finest series."""
        with transaction(self.market.sessions) as session:
            repo = KlineRepository(session)
            for name in TICKER_FALLBACK_INTERVALS:
                sid = repo.find_series(exchange, market_type, symbol, name)
                if sid is None:
                    continue
                count = max(1, DAY_MS // INTERVALS[name].nominal_ms)
                candles = repo.read(sid, limit=int(count), newest=True)
                if len(candles):
                    return _ticker_of(exchange, market_type, symbol, candles)
        return None


def _ticker_of(exchange: str, market_type: str, symbol: str, c: Candles) -> dict[str, Any]:
    first_open, last = float(c.open[0]), float(c.close[-1])
    ticker = Ticker(
        symbol=symbol,
        last_price=last,
        price_change_pct=(last - first_open) / first_open * 100 if first_open else 0.0,
        high=float(np.max(c.high)),
        low=float(np.min(c.low)),
        volume=float(np.sum(c.volume)),
        quote_volume=float(np.sum(c.quote_volume)),
        close_time_ms=int(c.close_time_ms[-1]),
    )
    return ticker_record(exchange, market_type, ticker, int(c.close_time_ms[-1]) + 1)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "fetched_at_ms"}


def _body(record: dict[str, Any], source: str, *, stale: bool) -> bytes:
    return envelope({**_public(record), "data_source": source, "is_stale": stale})

"""Klines and tickers read through cache -> database -> exchange (seed 001 sections 2.3,
3.4, 6.2 and 7).

A klines answer is the cached response body when there is one (the cache stores the
body itself, so a hit costs one lookup and no serialization). Otherwise the database is
read; when it lacks candles of the window that are neither stored nor known to be empty
(the per-series ledger), the exchange is asked for them in one request, they are written
through to the database, and the answer is read back. Only closed candles are served, so
the three sources always agree.

When the exchange cannot be asked (rate-limit mark after a 429, unhealthy, no client) or
fails, whatever the database holds is served with ``is_stale: true``, unless the newest
candle is older than the config's ``max_stale_age_s`` (then the cause is the answer:
429 or 503). Stale answers are never cached, so the first request after the exchange is
back refreshes the data.

Concurrent misses of one key share one computation (followers get the cached body).
A database read is one statement (the window, plus the warm-up indicators need) on an
autocommit session, the series id remembered once known: one round trip, no BEGIN.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache.port import Cache, CacheUnavailable
from klinewatch.clock import Clock
from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import Range, missing_ranges
from klinewatch.domain.intervals import DAY_MS, Interval, parse_interval, parse_market_type
from klinewatch.domain.market_config import MarketDataConfig, ttl_for
from klinewatch.errors import (
    ExchangeUnavailable,
    InvalidInput,
    NotFound,
    RateLimited,
)
from klinewatch.logs import get_logger
from klinewatch.services.failover import ExchangeClients, ExchangeGate, FailoverManager
from klinewatch.services.market_shapes import (
    API,
    CACHE,
    DATABASE,
    KLINES,
    MAX_LIMIT,
    KlineQuery,
    NullTelemetry,
    Reads,
    Telemetry,
    Window,
    epoch_ms,
    klines_bodies,
    native_symbol,
    steps,
)
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.storage.contracts import ContractRepository
from klinewatch.storage.engine import transaction
from klinewatch.storage.kline_reads import Span, WindowRead, read_only, read_window
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository

log = get_logger(__name__)

SETTLE_MS = DAY_MS  # a hole older than this is final (the exchange will not fill it)
KNOWN_SYMBOLS_TTL_MS = 5 * 60_000


@dataclass(frozen=True, slots=True)
class _Stored:
    read: WindowRead
    series_id: int | None
    span: Range  # the open times the window covers when nothing is missing
    missing: list[Range]
    closed_end: int  # open time after the newest closed candle

    @property
    def candles(self) -> Candles:
        return self.read.candles


@dataclass(frozen=True, slots=True)
class _Rendered:
    reply: bytes
    cached: bytes | None
    source: str


def _end(q: KlineQuery, closed_end: int) -> int:
    """The exclusive end of a window: its ``end`` if given, never past the newest closed
    candle."""
    return closed_end if q.end_ms is None else min(q.interval.ceil(q.end_ms), closed_end)


def _read_window(
    session: Session, sid: int, q: KlineQuery, span: Range, closed_end: int, reads: Reads
) -> WindowRead:
    """``limit`` candles back from the span's end, or forward from its start, as the
    exchange would answer: across holes (outages), up to the window's end; with the
    warm-up ``reads`` asks for in the same statement."""
    if q.start_ms is None:
        window = Span(end_ms=span[1], limit=q.limit, newest=True)
    else:
        window = Span(start_ms=span[0], end_ms=_end(q, closed_end), limit=q.limit)
    return read_window(session, sid, window, reads.warmup, reads.columns)


class MarketDataService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        cache: Cache,
        clients: ExchangeClients,
        failover: FailoverManager,
        gate: ExchangeGate,
        config: Callable[[], MarketDataConfig],
        clock: Clock,
        telemetry: Telemetry | None = None,
        on_cached: Callable[[SeriesKey], None] = lambda series: None,
    ) -> None:
        self.sessions = sessions
        self.cache = cache
        self.clients = clients
        self.failover = failover
        self.gate = gate
        self.config = config
        self.clock = clock
        self.telemetry = telemetry or NullTelemetry()
        self.on_cached = on_cached  # the live hub follows cached series to invalidate them
        self._inflight: dict[str, asyncio.Future[_Rendered]] = {}
        self._known: dict[tuple[str, str], tuple[int, frozenset[str]]] = {}
        self._series_ids: dict[tuple[str, str, str, str], int] = {}

    # --- validation -------------------------------------------------------------------

    def resolve(self, exchange: str | None, market_type: str, symbol: str) -> tuple[str, str, str]:
        """(exchange, market type, symbol) checked; no exchange means the current one."""
        name = exchange or self.failover.current_exchange
        enabled = self.config().enabled_exchanges
        if name not in enabled:
            raise InvalidInput(
                f"exchange {name!r} is not enabled; enabled: {', '.join(enabled)}",
                field="exchange",
            )
        market = parse_market_type(market_type).value
        return name, market, native_symbol(name, market, symbol)

    def query(
        self,
        *,
        exchange: str | None,
        market_type: str,
        symbol: str,
        timeframe: str,
        limit: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> KlineQuery:
        """A request's parameters as a window, or ``InvalidInput`` naming the field."""
        name, market, pair = self.resolve(exchange, market_type, symbol)
        interval = parse_interval(timeframe, field="timeframe")
        count = self.config().default_klines_limit if limit is None else limit
        if not 1 <= count <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}, not {count}", field="limit")
        start_ms, end_ms = epoch_ms(start, "start"), epoch_ms(end, "end")
        if start_ms is not None and end_ms is not None and start_ms >= end_ms:
            raise InvalidInput("start must be before end", field="start")
        return KlineQuery(name, market, pair, interval, count, start_ms, end_ms)

    # --- the cache layer --------------------------------------------------------------

    async def cache_get(self, key: str, kind: str) -> bytes | None:
        try:
            value = await self.cache.get(key)
        except CacheUnavailable:
            value = None  # the database answers instead
        self.telemetry.cache_lookup(kind, value is not None)
        return value

    async def cache_set(
        self, key: str, value: bytes, ttl_s: float, series: SeriesKey | None = None
    ) -> None:
        with contextlib.suppress(CacheUnavailable):
            await self.cache.set(key, value, ttl_s)
        if series is not None:
            self.on_cached(series)

    async def shared(self, key: str, compute: Callable[[], Awaitable[_Rendered]]) -> _Rendered:
        """Run ``compute`` once for concurrent callers of one key. It runs as its own
        task, so a caller that goes away cancels only its own wait."""
        task = self._inflight.get(key)
        leader = task is None
        if task is None:
            task = asyncio.ensure_future(compute())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        result = await asyncio.shield(task)
        if leader:
            return result
        return _Rendered(
            result.cached or result.reply, None, CACHE if result.cached else result.source
        )

    def _finished(self, key: str, task: asyncio.Future[_Rendered]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning without waiters

    # --- klines -----------------------------------------------------------------------

    async def klines_body(self, q: KlineQuery) -> tuple[bytes, str]:
        """The response body of a klines request and where its data came from."""
        key = q.klines_key()
        body = await self.cache_get(key, "klines")
        if body is not None:
            self.telemetry.served("klines", CACHE)
            return body, CACHE

        async def compute() -> _Rendered:
            window = await self.window(q)
            reply, cached = klines_bodies(
                q,
                window.candles,
                stale=window.stale,
                source=window.source,
                as_of_ms=window.as_of_ms,
            )
            if not window.stale:
                ttl = ttl_for(self.config(), q.interval.name)
                await self.cache_set(key, cached, ttl, q.series())
            return _Rendered(reply, None if window.stale else cached, window.source)

        rendered = await self.shared(key, compute)
        self.telemetry.served("klines", rendered.source)
        return rendered.reply, rendered.source

    async def window(self, q: KlineQuery, reads: Reads = KLINES) -> Window:
        """The window from the database, refreshed from the exchange when incomplete."""
        now = self.failover.now_ms(q.exchange)
        stored = await asyncio.to_thread(self._read, q, now, reads)
        if not stored.missing:
            return self._answer(q, stored, DATABASE, False, now)
        try:
            fetched, span = await self._fetch(q, stored)
        except (RateLimited, ExchangeUnavailable) as cause:
            return self._fallback(q, stored, cause, now)
        refreshed = await asyncio.to_thread(self._store, q, fetched, span, now, reads)
        return self._answer(q, refreshed, API, False, now)

    def _answer(self, q: KlineQuery, stored: _Stored, source: str, stale: bool, now: int) -> Window:
        if len(stored.candles) == 0:
            raise NotFound(
                f"no {q.exchange} {q.market_type} {q.symbol} {q.interval} candles in that window",
                exchange=q.exchange,
                symbol=q.symbol,
            )
        return Window(q, stored.read, stored.series_id, source, stale, now)

    def _fallback(self, q: KlineQuery, stored: _Stored, cause: Exception, now: int) -> Window:
        """Serve what is stored, marked stale, within the configured maximum age."""
        config = self.config()
        if isinstance(cause, RateLimited) and not config.rate_limit_fallback:
            raise cause
        if len(stored.candles) == 0:
            raise cause
        if q.latest:
            newest_close = q.interval.next_open(int(stored.candles.open_time_ms[-1]))
            age_s = (now - newest_close) / 1000
            if age_s > config.max_stale_age_s:
                message = (
                    f"{q.exchange} cannot be asked ({getattr(cause, 'message', cause)}) and "
                    f"the newest stored candle closed {age_s:.0f} s ago, more than "
                    f"max_stale_age_s ({config.max_stale_age_s})"
                )
                if isinstance(cause, RateLimited):
                    raise RateLimited(message, retry_after_s=cause.retry_after_s) from cause
                raise ExchangeUnavailable(message, exchange=q.exchange) from cause
        log.warning(
            "klines_served_stale",
            exchange=q.exchange,
            symbol=q.symbol,
            timeframe=q.interval.name,
            reason=getattr(cause, "code", type(cause).__name__),
        )
        return Window(q, stored.read, stored.series_id, DATABASE, True, now)

    def _span(self, q: KlineQuery, closed_end: int) -> Range:
        """The open times ``limit`` candles take when the series has no hole there (what
        the completeness check looks at; the read itself crosses holes)."""
        iv = q.interval
        end = _end(q, closed_end)
        if q.start_ms is None:
            return steps(iv, end, -q.limit), end
        start = iv.ceil(q.start_ms)
        return start, max(start, min(end, steps(iv, start, q.limit)))

    def _read(self, q: KlineQuery, now: int, reads: Reads) -> _Stored:
        closed_end = q.interval.next_open(q.interval.last_closed_open(now))
        span = self._span(q, closed_end)
        with read_only(self.sessions) as session:
            sid = self._series_id(session, q)
            if sid is None:
                self._check_symbol(session, q)
                none = WindowRead(Candles.empty(), Candles.empty(), None)
                missing = missing_ranges(q.interval, span, none.candles.open_time_ms)
                return _Stored(none, None, span, missing, closed_end)
            read = _read_window(session, sid, q, span, closed_end, reads)
            candles = read.candles
            if len(candles) >= q.limit and (
                not q.latest or int(candles.open_time_ms[-1]) >= q.interval.floor(closed_end - 1)
            ):
                return _Stored(read, sid, span, [], closed_end)
            ledger = LedgerRepository(session)
            covered = [*ledger.ranges(sid, "empty"), *ledger.ranges(sid, "fetched")]
        missing = missing_ranges(q.interval, span, candles.open_time_ms, covered)
        return _Stored(read, sid, span, missing, closed_end)

    def _series_id(self, session: Session, q: KlineQuery) -> int | None:
        """The series' id, remembered once known (series rows are never deleted)."""
        key = (q.exchange, q.market_type, q.symbol, q.interval.name)
        sid = self._series_ids.get(key)
        if sid is None:
            sid = KlineRepository(session).find_series(*key)
            if sid is not None:
                self._series_ids[key] = sid
        return sid

    def _check_symbol(self, session: Session, q: KlineQuery) -> None:
        """Refuse a symbol the stored contract list does not know (if there is one)."""
        key = (q.exchange, q.market_type)
        now = self.clock.now_ms()
        loaded = self._known.get(key)
        if loaded is None or now - loaded[0] > KNOWN_SYMBOLS_TTL_MS:
            symbols = ContractRepository(session).active_symbols(q.exchange, q.market_type)
            loaded = (now, frozenset(symbols))
            self._known[key] = loaded
        if loaded[1] and q.symbol not in loaded[1]:
            raise InvalidInput(
                f"unknown symbol {q.symbol}: not an active {q.exchange} {q.market_type} pair",
                field="symbol",
            )

    async def _fetch(self, q: KlineQuery, stored: _Stored) -> tuple[Candles, Range]:
        lo, hi = stored.missing[0][0], stored.missing[-1][1]
        client = self.clients.get(q.exchange, q.market_type)
        count = q.interval.count(lo, hi)
        if count > client.capabilities.max_candles_per_request:
            count = client.capabilities.max_candles_per_request
            hi = steps(q.interval, lo, count)
        call = client.fetch_klines(q.symbol, q.interval, lo, hi, count)
        candles = await self.gate.ask(q.exchange, call, field="symbol")
        span = (lo, min(hi, stored.closed_end))
        return candles.sorted_unique().between(*span), span

    def _store(
        self, q: KlineQuery, fetched: Candles, span: Range, now: int, reads: Reads
    ) -> _Stored:
        """Write the fetched candles and what the answer proved, then read the window."""
        iv = q.interval
        with transaction(self.sessions) as session:
            added = write_candles(session, q.series(), fetched).added
            repo = KlineRepository(session)
            sid = repo.ensure_series(q.exchange, q.market_type, q.symbol, iv.name)
            ledger = LedgerRepository(session)
            if len(fetched):
                newest = iv.next_open(int(fetched.open_time_ms[-1]))
                ledger.record(sid, "fetched", [(span[0], newest)])
            settled = iv.floor(now - SETTLE_MS)
            holes = missing_ranges(iv, span, fetched.open_time_ms)
            ledger.record(sid, "empty", [(a, min(b, settled)) for a, b in holes if a < settled])
            closed_end = iv.next_open(iv.last_closed_open(now))
            window_span = self._span(q, closed_end)
            read = _read_window(session, sid, q, window_span, closed_end, reads)
        self.telemetry.candles_written(q.exchange, q.market_type, iv.name, added)
        log.info(
            "klines_fetched",
            exchange=q.exchange,
            symbol=q.symbol,
            timeframe=iv.name,
            received=len(fetched),
            added=added,
        )
        return _Stored(read, sid, window_span, [], closed_end)

    # --- warm-up ----------------------------------------------------------------------

    async def warm_up(self, timeframe: Interval) -> int:
        """Seed 001 section 7.1: the hot pairs' latest candles into the cache at start."""
        config = self.config()
        warmed = 0
        for pair in config.hot_pairs:
            try:
                q = KlineQuery(
                    self.failover.current_exchange,
                    "spot",
                    native_symbol(self.failover.current_exchange, "spot", pair),
                    timeframe,
                    config.default_klines_limit,
                )
                _, source = await self.klines_body(q)
            except (InvalidInput, NotFound, RateLimited, ExchangeUnavailable) as e:
                log.warning(
                    "cache_warmup_failed", symbol=pair, timeframe=timeframe.name, error=e.message
                )
                continue
            warmed += 1
            log.info("cache_warmed", symbol=pair, timeframe=timeframe.name, source=source)
        return warmed

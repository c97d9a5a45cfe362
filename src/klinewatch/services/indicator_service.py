"""Indicators of a candle window (seed 001 sections 2.3.2 and 5.2), equal to TA-Lib run
over the series' full stored history.

The window comes from ``MarketDataService.window`` (database, refreshed from the exchange
when incomplete). The candles before it are loaded as ``domain.indicators`` asks: the
whole stored prefix when it is short (bit-exact values), else the warm-up, and more
whenever ``compute`` finds the data needs it (``InsufficientWarmup``). Whole answers are
cached under the hash of the parameters that matter, for the series' TTL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache import keys
from klinewatch.domain.candles import Candles
from klinewatch.domain.indicators import (
    EXACT_PREFIX_MAX,
    IndicatorParams,
    InsufficientWarmup,
    compute,
    output_keys,
    warmup_candles,
)
from klinewatch.domain.market_config import ttl_for
from klinewatch.logs import get_logger
from klinewatch.services.market_data import MarketDataService, Window
from klinewatch.services.market_shapes import CACHE, KlineQuery, iso, iso_times
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository

log = get_logger(__name__)
Values = dict[str, list[float | None]]


class IndicatorService:
    def __init__(self, market: MarketDataService, sessions: sessionmaker[Session]) -> None:
        self.market = market
        self.sessions = sessions

    def cache_key(self, q: KlineQuery, params: IndicatorParams) -> str:
        kinds = "-".join(i.value for i in params.indicators)
        return keys.indicators(
            q.exchange,
            q.market_type,
            q.symbol,
            q.interval.name,
            kinds,
            params.params_hash(),
            q.window_key(),
        )

    async def indicators_body(self, q: KlineQuery, params: IndicatorParams) -> tuple[bytes, str]:
        """The response body of an indicators request and where its candles came from."""
        key = self.cache_key(q, params)
        body = await self.market.cache_get(key, "indicators")
        if body is not None:
            self.market.telemetry.served("indicators", CACHE)
            return body, CACHE
        window = await self.market.window(q)
        values = await asyncio.to_thread(self._compute, window, params)
        reply, cached = _bodies(window, params, values)
        if not window.stale:
            ttl = ttl_for(self.market.config(), q.interval.name)
            await self.market.cache_set(key, cached, ttl, q.series())
        self.market.telemetry.served("indicators", window.source)
        return reply, window.source

    def _compute(self, window: Window, params: IndicatorParams) -> Values:
        """``compute`` over warm-up + window, loading more history when it asks."""
        assert window.series_id is not None  # a window is only served from storage
        sid, first_open = window.series_id, int(window.candles.open_time_ms[0])
        need = warmup_candles(params)
        with transaction(self.sessions) as session:
            repo = KlineRepository(session)
            before, whole = self._before(repo, sid, first_open, need, window)
            while True:
                candles = Candles.concat([before, window.candles])
                try:
                    return compute(candles, params, len(before), series_start=whole)
                except InsufficientWarmup as e:
                    log.info(
                        "indicator_warmup_extended",
                        symbol=window.query.symbol,
                        timeframe=window.query.interval.name,
                        given=e.given,
                        needed=e.needed,
                    )
                    before = repo.read(sid, end_ms=first_open, limit=e.needed + 1, newest=True)
                    whole = len(before) <= e.needed
                    if not whole:
                        before = before.take(slice(1, None))

    def _before(
        self, repo: KlineRepository, sid: int, first_open: int, need: int, window: Window
    ) -> tuple[Candles, bool]:
        """The candles before the window to start from, and whether they are all of them.

        The whole prefix when at most ``EXACT_PREFIX_MAX`` candles could precede the
        window (an upper bound from the first stored open time, so no count query).
        """
        before = repo.read(sid, end_ms=first_open, limit=need + 1, newest=True)
        if len(before) <= need:
            return before, True
        oldest = repo.read(sid, limit=1)
        first_stored = int(oldest.open_time_ms[0])
        if window.query.interval.count(first_stored, first_open) <= EXACT_PREFIX_MAX:
            return repo.read(sid, start_ms=first_stored, end_ms=first_open), True
        return before.take(slice(1, None)), False


def _bodies(window: Window, params: IndicatorParams, values: Values) -> tuple[bytes, bytes]:
    q = window.query
    grouped = {
        indicator.value: {name: values[name] for name in names}
        for indicator, names in output_keys(params).items()
    }
    data: dict[str, Any] = {
        "exchange": q.exchange,
        "market_type": q.market_type,
        "symbol": q.symbol,
        "timeframe": q.interval.name,
        "open_times": iso_times(window.candles.open_time_ms),
        "indicators": orjson.Fragment(orjson.dumps(grouped)),
        "params": params.effective(),
        "data_source": window.source,
        "is_stale": window.stale,
        "calculated_at": iso(window.as_of_ms),
    }
    reply = orjson.dumps({"success": True, "data": data})
    data["data_source"] = CACHE
    return reply, orjson.dumps({"success": True, "data": data})

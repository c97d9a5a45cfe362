"""Indicators of a candle window (seed 001 sections 2.3.2 and 5.2), equal to TA-Lib run
over the series' full stored history.

The window comes from ``MarketDataService.window`` (database, refreshed from the exchange
when incomplete), with the warm-up candles before it and the series' first open time in
the same statement, and only the columns used (open time, close, volume). The candles
before it are then as ``domain.indicators`` asks: the whole stored prefix when it is
short (bit-exact values, one more read), else the warm-up, and more whenever ``compute``
finds the data needs it (``InsufficientWarmup``). Whole answers are cached under the
hash of the parameters that matter, for the series' TTL.
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
from klinewatch.services.market_data import MarketDataService
from klinewatch.services.market_shapes import CACHE, KlineQuery, Reads, Window, iso, iso_times_json
from klinewatch.storage.kline_reads import Span, read_only, read_spans

log = get_logger(__name__)
Values = dict[str, list[float | None]]
# What the computation and the answer read of a candle: open time, close and volume.
INDICATOR_COLUMNS = ("open_time_ms", "close", "volume")


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
        reads = Reads(columns=INDICATOR_COLUMNS, warmup=warmup_candles(params) + 1)
        window = await self.market.window(q, reads)
        reply, cached = await asyncio.to_thread(self._render, window, params)
        if not window.stale:
            ttl = ttl_for(self.market.config(), q.interval.name)
            await self.market.cache_set(key, cached, ttl, q.series())
        self.market.telemetry.served("indicators", window.source)
        return reply, window.source

    def _render(self, window: Window, params: IndicatorParams) -> tuple[bytes, bytes]:
        """The reply and the cached copy (in a thread: TA-Lib and the JSON take ~1 ms)."""
        return _bodies(window, params, self._compute(window, params))

    def _compute(self, window: Window, params: IndicatorParams) -> Values:
        """``compute`` over warm-up + window, loading more history when it asks.

        The window came with ``warmup + 1`` candles before it: fewer means they are the
        whole stored prefix. Otherwise the whole prefix is loaded when at most
        ``EXACT_PREFIX_MAX`` candles could precede the window (an upper bound from the
        series' first open time, so no count query): bit-exact values, cheaply."""
        assert window.series_id is not None  # a window is only served from storage
        sid, first_open = window.series_id, int(window.candles.open_time_ms[0])
        before, need = window.read.before, warmup_candles(params)
        whole = len(before) <= need
        first_stored = window.read.first_open_ms
        if not whole and first_stored is not None:
            whole = window.query.interval.count(first_stored, first_open) <= EXACT_PREFIX_MAX
            if whole:
                before = self._load(sid, Span(start_ms=first_stored, end_ms=first_open))
            else:
                before = before.take(slice(1, None))
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
                before = self._load(sid, Span(end_ms=first_open, limit=e.needed + 1, newest=True))
                whole = len(before) <= e.needed
                if not whole:
                    before = before.take(slice(1, None))

    def _load(self, sid: int, span: Span) -> Candles:
        with read_only(self.sessions) as session:
            return read_spans(session, sid, [span], INDICATOR_COLUMNS)[0]


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
        "open_times": iso_times_json(window.candles.open_time_ms),
        "indicators": orjson.Fragment(orjson.dumps(grouped)),
        "params": params.effective(),
        "data_source": window.source,
        "is_stale": window.stale,
        "calculated_at": iso(window.as_of_ms),
    }
    reply = orjson.dumps({"success": True, "data": data})
    data["data_source"] = CACHE
    return reply, orjson.dumps({"success": True, "data": data})

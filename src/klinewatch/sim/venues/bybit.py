"""Bybit v5 public market data, as CCXT's ``bybit`` calls it, from the recorded Bybit series.

Endpoints: ``/v5/market/instruments-info`` (load_markets asks spot, linear, linear
PreLaunch, inverse and option), ``/v5/market/time``, ``/v5/market/kline`` and
``/v5/market/tickers``. Categories: ``spot`` is the recorded spot series, ``linear`` the
recorded USDT perpetuals; ``inverse`` and ``option`` are valid and empty.

Wire facts kept: HTTP 200 with ``retCode``/``retMsg`` for every answer, errors included;
string numbers; candles newest first, at most 1,000 (default 200) per request. ``start``
selects the candle containing it and the ones after (the oldest ``limit`` from there);
without ``start`` the newest ``limit`` up to ``end`` (or now) come back. The candle still
open at the clock's now is served part-way, as on Bybit.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.domain.intervals import INTERVALS
from klinewatch.sim.context import SimContext
from klinewatch.sim.venues.wire import (
    DayStats,
    Series,
    VenueError,
    fmt,
    guarded,
    int_param,
    json_response,
    ohlcv_rows,
    select,
    served,
    split_pair,
    ticker_stats,
)

EXCHANGE = "bybit"
KLINE_MAX, KLINE_DEFAULT = 1000, 200
INTERVAL_NAMES: dict[str, str] = {
    "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h",
    "240": "4h", "360": "6h", "720": "12h", "D": "1d", "W": "1w", "M": "1M",
}  # fmt: skip
MARKET_OF_CATEGORY = {"spot": "spot", "linear": "futures"}
CATEGORIES = ("spot", "linear", "inverse", "option")
# Real filters of the recorded pairs; other symbols get the generic ones.
TICK = {("spot", "BTCUSDT"): "0.01", ("linear", "BTCUSDT"): "0.10"}
QTY_STEP = {("spot", "BTCUSDT"): "0.000001", ("linear", "BTCUSDT"): "0.001"}


def _bad(message: str) -> VenueError:
    return VenueError("10001", message, status=200)


class Bybit:
    """The Bybit routes over one simulator context."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    def ok(self, result: dict[str, Any]) -> Response:
        now = self.ctx.clock.now_ms()
        return json_response(
            {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now}
        )

    def error(self, e: VenueError) -> Response:
        now = self.ctx.clock.now_ms()
        body = {"retCode": int(e.code), "retMsg": e.message, "result": {}, "retExtInfo": {}}
        return json_response(body | {"time": now}, status=e.status)

    def category(self, request: Request, default: str | None = None) -> str:
        category = request.query_params.get("category", default or "")
        if not category:
            raise _bad("params error: category is required")
        if category not in CATEGORIES:
            raise _bad("Illegal category")
        return category

    def symbols(self, category: str) -> list[str]:
        market = MARKET_OF_CATEGORY.get(category)
        return [] if market is None else self.ctx.store.symbols(EXCHANGE, market)

    def require_symbol(self, request: Request, category: str) -> str:
        symbol = request.query_params.get("symbol", "")
        if not symbol:
            raise _bad("params error: symbol is required")
        if symbol not in self.symbols(category):
            raise _bad("Not supported symbols")
        return symbol

    def instruments(self, request: Request) -> Response:
        category = self.category(request)
        wanted = request.query_params.get("symbol")
        prelaunch = request.query_params.get("status") == "PreLaunch"
        names = [] if prelaunch else self.symbols(category)
        rows = [_instrument(category, s) for s in names if wanted in (None, "", s)]
        return self.ok({"category": category, "list": rows, "nextPageCursor": ""})

    def time(self, request: Request) -> Response:
        now = self.ctx.clock.now_ms()
        return self.ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    def kline(self, request: Request) -> Response:
        category = self.category(request, default="linear")
        if category not in MARKET_OF_CATEGORY:
            raise _bad("Illegal category")
        symbol = self.require_symbol(request, category)
        market = MARKET_OF_CATEGORY[category]
        name = INTERVAL_NAMES.get(request.query_params.get("interval", ""))
        if name is None or not self.ctx.store.has(EXCHANGE, market, symbol, name):
            raise _bad("Invalid period!")
        interval = INTERVALS[name]
        start = int_param(request, "start", _bad("params error: start invalid"))
        end = int_param(request, "end", _bad("params error: end invalid"))
        limit = int_param(request, "limit", _bad("params error: limit invalid"))
        if limit is not None and limit < 1:
            raise _bad("params error: limit invalid")
        now = self.ctx.clock.now_ms()
        series = Series(EXCHANGE, market, symbol, interval)
        page = select(
            self.ctx.store,
            series,
            now,
            lo_ms=None if start is None else interval.floor(start),
            hi_ms=None if end is None else end + 1,
            limit=min(limit or KLINE_DEFAULT, KLINE_MAX),
            keep="oldest" if start is not None else "newest",
        )
        rows = ohlcv_rows(served(self.ctx, request, series, page), now)
        body = [[str(ts), *(fmt(x) for x in values)] for ts, values, _ in rows]
        return self.ok({"symbol": symbol, "category": category, "list": body[::-1]})

    def tickers(self, request: Request) -> Response:
        category = self.category(request)
        wanted = request.query_params.get("symbol")
        names = self.symbols(category) if not wanted else [self.require_symbol(request, category)]
        entries = [self._ticker(category, s) for s in names]
        return self.ok({"category": category, "list": [e for e in entries if e is not None]})

    def _ticker(self, category: str, symbol: str) -> dict[str, str] | None:
        market = MARKET_OF_CATEGORY[category]
        stats = ticker_stats(self.ctx.store, EXCHANGE, market, symbol, self.ctx.clock.now_ms())
        return None if stats is None else _ticker_body(category, symbol, stats)


def _instrument(category: str, symbol: str) -> dict[str, Any]:
    """One instruments-info row with the filters CCXT's market parsers read."""
    base, quote = split_pair(symbol)
    tick = TICK.get((category, symbol), "0.0001")
    step = QTY_STEP.get((category, symbol), "0.01")
    if category == "spot":
        return {
            "symbol": symbol, "baseCoin": base, "quoteCoin": quote, "innovation": "0",
            "status": "Trading", "marginTrading": "none", "stTag": "0",
            "lotSizeFilter": {"basePrecision": step, "quotePrecision": "0.00000001",
                              "minOrderQty": step, "maxOrderQty": "10000000",
                              "minOrderAmt": "1", "maxOrderAmt": "4000000"},
            "priceFilter": {"tickSize": tick},
        }  # fmt: skip
    return {
        "symbol": symbol, "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": base, "quoteCoin": quote, "settleCoin": quote, "launchTime": "0",
        "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(len(tick.split(".")[-1])),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": step, "qtyStep": step,
                          "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000",
                          "minNotionalValue": "5"},
        "unifiedMarginTrade": True, "fundingInterval": 480, "copyTrading": "none",
        "isPreListing": False,
    }  # fmt: skip


def _ticker_body(category: str, symbol: str, s: DayStats) -> dict[str, str]:
    last = fmt(s.last)
    change = (s.last - s.open) / s.open if s.open else 0.0
    body = {
        "symbol": symbol, "lastPrice": last, "bid1Price": last, "bid1Size": "0",
        "ask1Price": last, "ask1Size": "0", "prevPrice24h": fmt(s.open),
        "price24hPcnt": fmt(round(change, 6)), "highPrice24h": fmt(s.high),
        "lowPrice24h": fmt(s.low), "turnover24h": fmt(s.quote_volume),
        "volume24h": fmt(s.volume),
    }  # fmt: skip
    if category == "linear":
        body |= {"markPrice": last, "indexPrice": last}
    return body


def routes(ctx: SimContext) -> list[BaseRoute]:
    """Bybit's paths without the simulator's ``/bybit`` prefix (``all_routes`` adds it)."""
    bybit = Bybit(ctx)
    guard = guarded(bybit.error)
    return [
        Route("/v5/market/instruments-info", guard(bybit.instruments)),
        Route("/v5/market/time", guard(bybit.time)),
        Route("/v5/market/kline", guard(bybit.kline)),
        Route("/v5/market/tickers", guard(bybit.tickers)),
    ]

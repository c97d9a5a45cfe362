"""Binance spot (``/api/v3``) and USDT-M futures (``/fapi/v1``) market-data routes.

``ping``, ``time``, ``exchangeInfo``, ``klines``, ``ticker/24hr`` and ``ticker/price``
with Binance's semantics, error bodies and request weights. Every response carries
``X-MBX-USED-WEIGHT-1M``; over budget a client gets 429, then 418 (``limits.py``).

Klines pages are slices of bytes encoded once per series (``kline_rows.py``); only a
page that ends in the still-open candle or meets a candle fault is encoded per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio.to_thread
import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import INTERVAL_NAMES, INTERVALS, Interval
from klinewatch.sim import binance_wire as wire
from klinewatch.sim.binance_info import ExchangeInfo
from klinewatch.sim.candle_view import page_bounds, partial_candle
from klinewatch.sim.context import SimContext
from klinewatch.sim.faults import CANDLE_KINDS, apply_candle_faults
from klinewatch.sim.kline_rows import RowCache, encode_rows, rows_json
from klinewatch.sim.limits import Verdict
from klinewatch.sim.stats import client_of
from klinewatch.sim.tickers import last_price, ticker_24hr

Handler = Callable[[Request], Awaitable[Response]]
Weigher = Callable[[QueryParams], int]
JSON = "application/json"


def _futures_klines_weight(query: QueryParams) -> int:
    limit = wire.lenient_int(query, "limit", 500)
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _spot_24hr_weight(query: QueryParams) -> int:
    if query.get("symbol"):
        return 2
    if not query.get("symbols"):
        return 80
    try:
        count = len(orjson.loads(query["symbols"]))
    except (orjson.JSONDecodeError, TypeError):
        count = 1
    return 2 if count <= 20 else 40 if count <= 100 else 80


def _by_symbol(single: int, every: int) -> Weigher:
    return lambda query: single if query.get("symbol") else every


@dataclass(frozen=True)
class Market:
    """What differs between Binance spot and USDT-M futures."""

    name: str
    prefix: str
    max_limit: int
    intervals: frozenset[str]
    kline_params: frozenset[str]
    ticker_params: frozenset[str]
    weights: dict[str, Weigher] = field(hash=False)


SPOT = Market(
    "spot",
    "/api/v3",
    1000,
    frozenset({"1s", *INTERVAL_NAMES}),
    frozenset({"symbol", "interval", "startTime", "endTime", "limit", "timeZone"}),
    frozenset({"symbol", "symbols", "type"}),
    {
        "exchangeInfo": lambda q: 20,
        "klines": lambda q: 2,
        "ticker/24hr": _spot_24hr_weight,
        "ticker/price": _by_symbol(2, 4),
    },
)
FUTURES = Market(
    "futures",
    "/fapi/v1",
    1500,
    frozenset(INTERVAL_NAMES),
    frozenset({"symbol", "interval", "startTime", "endTime", "limit"}),
    frozenset({"symbol"}),
    {
        "exchangeInfo": lambda q: 1,
        "klines": _futures_klines_weight,
        "ticker/24hr": _by_symbol(1, 40),
        "ticker/price": _by_symbol(1, 2),
    },
)
_INTERVALS = {**INTERVALS, "1s": Interval("1s", 1000)}  # spot only; never recorded here
_INFO_PARAMS = frozenset({"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"})


class BinanceMarket:
    """The routes of one Binance market over the shared simulator context."""

    def __init__(self, ctx: SimContext, market: Market, rows: RowCache) -> None:
        self.ctx, self.market, self.rows = ctx, market, rows
        self.info = ExchangeInfo(ctx.store, market.name)

    def routes(self) -> list[BaseRoute]:
        m, weights = self.market, self.market.weights
        endpoints: list[tuple[str, Weigher, Handler]] = [
            ("ping", lambda q: 1, self.ping),
            ("time", lambda q: 1, self.time),
            ("exchangeInfo", weights["exchangeInfo"], self.exchange_info),
            ("klines", weights["klines"], self.klines),
            ("ticker/24hr", weights["ticker/24hr"], self.ticker_24hr),
            ("ticker/price", weights["ticker/price"], self.ticker_price),
        ]
        if m.name == "spot":
            endpoints.append(("uiKlines", weights["klines"], self.klines))
        return [
            Route(f"{m.prefix}/{name}", self._limited(weigh, handler), methods=["GET"])
            for name, weigh, handler in endpoints
        ]

    def _limited(self, weigh: Weigher, handler: Handler) -> Handler:
        """Count the request's weight first, as Binance does, then serve or refuse it."""
        market = self.market.name

        async def endpoint(request: Request) -> Response:
            client, path = client_of(request.scope), request.scope["path"]
            weight = weigh(request.query_params)
            gate, budget = self.ctx.gate(market), self.ctx.budget(market)
            verdict = gate.admit(client, weight, budget, self.ctx.clock.now_ms())
            if verdict.status != 418:
                self.ctx.stats.add_weight(client, path, weight)
            if verdict.status == 200:
                try:
                    response = await handler(request)
                except wire.BinanceError as error:
                    response = error.response()
            else:
                response = _refusal(verdict, budget)
            used = str(verdict.used)
            response.headers["X-MBX-USED-WEIGHT-1M"] = used
            response.headers["x-mbx-used-weight"] = used
            return response

        return endpoint

    async def ping(self, request: Request) -> Response:
        wire.Params.check(request.query_params, ())
        return Response(b"{}", media_type=JSON)

    async def time(self, request: Request) -> Response:
        wire.Params.check(request.query_params, ())
        return wire.json_response({"serverTime": self.ctx.clock.now_ms()})

    async def exchange_info(self, request: Request) -> Response:
        params = wire.Params.check(request.query_params, _INFO_PARAMS)
        wanted = params.symbol_or_symbols()
        self._require_known(wanted or [])
        body = self.info.body(self.ctx.clock.now_ms(), self.ctx.budget(self.market.name), wanted)
        return Response(body, media_type=JSON)

    def _require_known(self, symbols: list[str]) -> None:
        if not all(self.info.has_symbol(s) for s in symbols):
            raise wire.invalid_symbol()

    async def klines(self, request: Request) -> Response:
        m = self.market
        params = wire.Params.check(request.query_params, m.kline_params, ("symbol", "interval"))
        symbol = params.symbol() or ""
        start, end = params.number("startTime"), params.number("endTime")
        limit = params.number("limit")
        interval = _INTERVALS.get(params.get("interval") or "")
        if interval is None or interval.name not in m.intervals:
            raise wire.invalid_interval()
        self._require_known([symbol])
        limit = 500 if limit is None else limit
        if not 1 <= limit <= m.max_limit:
            raise wire.invalid_limit()
        if start is not None and end is not None and start > end:
            raise wire.start_after_end()
        if not self.ctx.store.has("binance", m.name, symbol, interval.name):
            return Response(b"[]", media_type=JSON)
        if not self.rows.cached("binance", m.name, symbol, interval.name):
            await anyio.to_thread.run_sync(self.rows.get, "binance", m.name, symbol, interval.name)
        page = _KlinePage(self, symbol, interval, request.scope["path"])
        return Response(page.body(start, end, limit), media_type=JSON)

    async def ticker_24hr(self, request: Request) -> Response:
        return await self._tickers(request, ticker_24hr)

    async def ticker_price(self, request: Request) -> Response:
        return await self._tickers(request, last_price)

    async def _tickers(self, request: Request, compute: Callable[..., object]) -> Response:
        """One object for ``symbol=``, a list for ``symbols=`` or every symbol."""
        m = self.market
        params = wire.Params.check(request.query_params, m.ticker_params)
        wanted = params.symbol_or_symbols() if m.name == "spot" else _one(params.symbol())
        self._require_known(wanted or [])
        now = self.ctx.clock.now_ms()
        names = wanted if wanted is not None else self.ctx.store.symbols("binance", m.name)

        def run() -> list[object]:
            return [compute(self.ctx.store, m.name, name, now) for name in names]

        bodies = await anyio.to_thread.run_sync(run)
        single = params.get("symbol") is not None
        return Response(orjson.dumps(bodies[0] if single else bodies), media_type=JSON)


def _one(symbol: str | None) -> list[str] | None:
    return None if symbol is None else [symbol]


def _refusal(verdict: Verdict, budget: int) -> Response:
    if verdict.status == 429:
        body = {"code": -1003, "msg": wire.too_much_weight(budget)}
    else:
        body = {"code": -1003, "msg": wire.banned_until(verdict.ban_until_ms)}
    headers = {
        "Retry-After": str(verdict.retry_after_s),
        "X-Sim-Retry-After-Ms": str(verdict.retry_after_ms),
    }
    return wire.json_response(body, verdict.status, headers)


@dataclass
class _KlinePage:
    """One klines page: a slice of the encoded series, the open candle, candle faults."""

    venue: BinanceMarket
    symbol: str
    interval: Interval
    path: str

    def body(self, start: int | None, end: int | None, limit: int) -> bytes:
        ctx, market = self.venue.ctx, self.venue.market.name
        key = ("binance", market, self.symbol, self.interval.name)
        encoded = self.venue.rows.get(*key)
        candles = ctx.store.get(*key)
        now = ctx.clock.now_ms()
        lo, hi, is_open = page_bounds(candles, now, start, end, limit)
        faulty = ctx.faults.any_of(CANDLE_KINDS)
        if not is_open and not faulty:
            return encoded.join(lo, hi)
        closed_hi = hi - 1 if is_open else hi
        page = candles.take(slice(lo, closed_hi))
        if is_open:
            recorded = candles.take(slice(hi - 1, hi))
            series = ("binance", market, self.symbol)
            partial = partial_candle(ctx.store, series, self.interval, recorded, now)
            if not faulty:
                return encoded.join(
                    lo, closed_hi, encode_rows(partial, encoded.decimals)[0].encode()
                )
            page = Candles.concat([page, partial])
        page = apply_candle_faults(
            ctx, self.path, page, symbol=self.symbol, interval=self.interval.name
        )
        return rows_json(page, encoded.decimals)


def routes(ctx: SimContext) -> list[BaseRoute]:
    """Spot and futures routes; both share one cache of encoded rows."""
    rows = RowCache(ctx.store)
    return [*BinanceMarket(ctx, SPOT, rows).routes(), *BinanceMarket(ctx, FUTURES, rows).routes()]

"""Bitget v2 public market data, as CCXT's ``bitget`` calls it.

No Bitget market was recorded, so Bitget serves the recorded *Binance* series under
Bitget's own symbol names (which are Binance's: ``BTCUSDT`` spot, ``BTCUSDT`` in
``USDT-FUTURES``). The prices are Binance's, the wire format is Bitget's.

Endpoints: load_markets reads ``/api/v2/spot/public/coins``, ``/spot/public/symbols``,
``/margin/currencies`` and ``/mix/market/contracts`` for six product types (only
``USDT-FUTURES`` has contracts here); candles come from ``/spot|mix/market/candles``
(recent: at most 1,000 per request, only the last days per granularity that CCXT's
``maxRecentDaysPerTimeframe`` records) and ``/history-candles`` (any age, at most 200,
``endTime`` required); tickers from ``/spot/market/tickers`` and ``/mix/market/ticker``.

Wire facts kept: ``{"code":"00000","msg":"success","requestTime","data"}``; candles oldest
first, ``startTime <= ts < endTime``, the newest ``limit`` of that range ("aligned from
endTime", which is why CCXT passes at most 200 per history page); HTTP 400 with Bitget's
code for bad input.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.domain.intervals import DAY_MS, INTERVALS
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

SOURCE = "binance"  # whose recorded series Bitget serves
RECENT_MAX, HISTORY_MAX, DEFAULT_LIMIT = 1000, 200, 100
SPOT_GRANULARITY: dict[str, str] = {
    "1min": "1m", "3min": "3m", "5min": "5m", "15min": "15m", "30min": "30m", "1h": "1h",
    "4h": "4h", "6Hutc": "6h", "12Hutc": "12h", "1Dutc": "1d", "3Dutc": "3d", "1Wutc": "1w",
    "1Mutc": "1M",
}  # fmt: skip
MIX_GRANULARITY: dict[str, str] = {
    "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "2H": "2h",
    "4H": "4h", "6Hutc": "6h", "12Hutc": "12h", "1Dutc": "1d", "3Dutc": "3d", "1Wutc": "1w",
    "1Mutc": "1M",
}  # fmt: skip
RECENT_DAYS: dict[str, int] = {
    "1m": 30, "3m": 30, "5m": 30, "15m": 30, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
    "6h": 360, "12h": 720, "1d": 1440, "3d": 4320, "1w": 10080, "1M": 43200,
}  # fmt: skip
PRODUCT_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES",
                 "SCOIN-FUTURES", "SUSDC-FUTURES")  # fmt: skip
# (price decimals, quantity decimals) of the real pairs; others get the generic ones.
PLACES = {"BTCUSDT": ("2", "6"), "ETHUSDT": ("2", "4")}
MIX_PLACES = {"BTCUSDT": ("1", "3"), "ETHUSDT": ("2", "2")}


def _empty(name: str) -> VenueError:
    return VenueError("40019", f"Parameter {name} cannot be empty")


def _invalid(name: str) -> VenueError:
    return VenueError("40020", f"Parameter {name} error")


class Bitget:
    """The Bitget routes over one simulator context."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    def envelope(self, code: str, msg: str, data: Any, status: int = 200) -> Response:
        body = {"code": code, "msg": msg, "requestTime": self.ctx.clock.now_ms(), "data": data}
        return json_response(body, status=status)

    def ok(self, data: Any) -> Response:
        return self.envelope("00000", "success", data)

    def error(self, e: VenueError) -> Response:
        return self.envelope(e.code, e.message, None, status=e.status)

    def symbols(self, market: str) -> list[str]:
        return self.ctx.store.symbols(SOURCE, market)

    def market(self, request: Request, spot: bool) -> str:
        """``spot`` or ``futures`` for a request; mix requests must name their product (a
        valid product other than USDT-FUTURES is a market with no recorded symbols)."""
        if spot:
            return "spot"
        product = request.query_params.get("productType", "")
        if not product:
            raise _empty("productType")
        if product.upper() not in PRODUCT_TYPES:
            raise _invalid("productType")
        return "futures" if product.upper() == "USDT-FUTURES" else "unrecorded"

    def require_symbol(self, request: Request, market: str) -> str:
        symbol = request.query_params.get("symbol", "")
        if not symbol:
            raise _empty("symbol")
        if symbol not in self.symbols(market):
            raise VenueError("40034", f"Parameter {symbol} does not exist")
        return symbol

    def time(self, request: Request) -> Response:
        return self.ok({"serverTime": str(self.ctx.clock.now_ms())})

    def coins(self, request: Request) -> Response:
        pairs = [split_pair(s) for m in ("spot", "futures") for s in self.symbols(m)]
        names = {coin for pair in pairs for coin in pair if coin}
        rows = [{"coinId": str(i + 1), "coin": c, "transfer": "true", "chains": [],
                 "areaCoin": "no"} for i, c in enumerate(sorted(names))]  # fmt: skip
        return self.ok(rows)

    def spot_symbols(self, request: Request) -> Response:
        wanted = request.query_params.get("symbol")
        return self.ok([_spot_symbol(s) for s in self.symbols("spot") if wanted in (None, "", s)])

    def margin_currencies(self, request: Request) -> Response:
        return self.ok([])

    def contracts(self, request: Request) -> Response:
        market = self.market(request, spot=False)
        wanted = request.query_params.get("symbol")
        names = self.symbols(market)
        return self.ok([_contract(s) for s in names if wanted in (None, "", s)])

    def candles(self, request: Request, spot: bool, history: bool) -> Response:
        market = self.market(request, spot)
        symbol = self.require_symbol(request, market)
        names = SPOT_GRANULARITY if spot else MIX_GRANULARITY
        name = names.get(request.query_params.get("granularity", ""))
        if name is None or not self.ctx.store.has(SOURCE, market, symbol, name):
            raise _invalid("granularity")
        start = int_param(request, "startTime", _invalid("startTime"))
        end = int_param(request, "endTime", _invalid("endTime"))
        limit = int_param(request, "limit", _invalid("limit"))
        if limit is not None and limit < 1:
            raise _invalid("limit")
        now = self.ctx.clock.now_ms()
        if history:
            if end is None:
                raise _empty("endTime")
            start = None  # the history endpoint pages from endTime only
        else:
            horizon = now - RECENT_DAYS[name] * DAY_MS
            start = horizon if start is None else max(start, horizon)
        series = Series(SOURCE, market, symbol, INTERVALS[name])
        cap = HISTORY_MAX if history else RECENT_MAX
        page = select(self.ctx.store, series, now, lo_ms=start, hi_ms=end,
                      limit=min(limit or DEFAULT_LIMIT, cap), keep="newest")  # fmt: skip
        rows = ohlcv_rows(served(self.ctx, request, series, page), now)
        return self.ok([_candle(ts, values, spot) for ts, values, _ in rows])

    def spot_tickers(self, request: Request) -> Response:
        wanted = request.query_params.get("symbol")
        names = [self.require_symbol(request, "spot")] if wanted else self.symbols("spot")
        return self.ok(self._tickers("spot", names))

    def mix_ticker(self, request: Request) -> Response:
        market = self.market(request, spot=False)
        return self.ok(self._tickers(market, [self.require_symbol(request, market)]))

    def mix_tickers(self, request: Request) -> Response:
        market = self.market(request, spot=False)
        return self.ok(self._tickers(market, self.symbols(market)))

    def _tickers(self, market: str, names: list[str]) -> list[dict[str, str]]:
        now = self.ctx.clock.now_ms()
        stats = [(s, ticker_stats(self.ctx.store, SOURCE, market, s, now)) for s in names]
        return [_ticker_body(s, st, spot=market == "spot") for s, st in stats if st is not None]


def _candle(ts: int, values: list[float], spot: bool) -> list[str]:
    """Spot rows end ``baseVol, usdtVol, quoteVol``; futures rows ``baseVol, quoteVol``."""
    o, h, low, c, v, qv = values
    row = [str(ts), fmt(o), fmt(h), fmt(low), fmt(c), fmt(v), fmt(qv)]
    return [*row, fmt(qv)] if spot else row


def _spot_symbol(symbol: str) -> dict[str, Any]:
    base, quote = split_pair(symbol)
    price_places, qty_places = PLACES.get(symbol, ("6", "2"))
    return {
        "symbol": symbol, "baseCoin": base, "quoteCoin": quote, "minTradeAmount": "0",
        "maxTradeAmount": "900000000000000000000", "takerFeeRate": "0.001",
        "makerFeeRate": "0.001", "pricePrecision": price_places,
        "quantityPrecision": qty_places, "quotePrecision": "8", "status": "online",
        "minTradeUSDT": "1", "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05",
        "areaSymbol": "no", "orderQuantity": "200", "openTime": "", "offTime": "",
    }  # fmt: skip


def _contract(symbol: str) -> dict[str, Any]:
    base, quote = split_pair(symbol)
    price_places, volume_places = MIX_PLACES.get(symbol, ("4", "1"))
    return {
        "symbol": symbol, "baseCoin": base, "quoteCoin": quote, "buyLimitPriceRatio": "0.05",
        "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
        "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": [quote],
        "minTradeNum": "0.001", "priceEndStep": "1", "volumePlace": volume_places,
        "pricePlace": price_places, "sizeMultiplier": "0.001", "symbolType": "perpetual",
        "minTradeUSDT": "5", "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
        "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1",
        "limitOpenTime": "-1", "deliveryTime": "", "deliveryStartTime": "",
        "deliveryPeriod": "", "launchTime": "", "fundInterval": "8", "minLever": "1",
        "maxLever": "125", "posLimit": "0.05", "maintainTime": "",
    }  # fmt: skip


def _ticker_body(symbol: str, s: DayStats, spot: bool) -> dict[str, str]:
    last = fmt(s.last)
    change = fmt(round((s.last - s.open) / s.open, 5)) if s.open else "0"
    change_utc = fmt(round((s.last - s.day_open) / s.day_open, 5)) if s.day_open else "0"
    body = {
        "symbol": symbol, "lastPr": last, "askPr": last, "bidPr": last, "askSz": "0",
        "bidSz": "0", "high24h": fmt(s.high), "low24h": fmt(s.low), "ts": str(s.ts_ms),
        "change24h": change, "baseVolume": fmt(s.volume), "quoteVolume": fmt(s.quote_volume),
        "usdtVolume": fmt(s.quote_volume), "openUtc": fmt(s.day_open), "changeUtc24h": change_utc,
    }  # fmt: skip
    if spot:
        return body | {"open": fmt(s.open)}
    return body | {"open24h": fmt(s.open), "indexPrice": last, "markPrice": last}


def routes(ctx: SimContext) -> list[BaseRoute]:
    """Bitget's paths without the simulator's ``/bitget`` prefix (``all_routes`` adds it)."""
    b = Bitget(ctx)
    guard = guarded(b.error)

    def candles(spot: bool, history: bool) -> Any:
        def endpoint(request: Request) -> Response:
            return b.candles(request, spot, history)

        return guard(endpoint)

    return [
        Route("/api/v2/public/time", guard(b.time)),
        Route("/api/v2/spot/public/coins", guard(b.coins)),
        Route("/api/v2/spot/public/symbols", guard(b.spot_symbols)),
        Route("/api/v2/margin/currencies", guard(b.margin_currencies)),
        Route("/api/v2/mix/market/contracts", guard(b.contracts)),
        Route("/api/v2/spot/market/candles", candles(spot=True, history=False)),
        Route("/api/v2/spot/market/history-candles", candles(spot=True, history=True)),
        Route("/api/v2/mix/market/candles", candles(spot=False, history=False)),
        Route("/api/v2/mix/market/history-candles", candles(spot=False, history=True)),
        Route("/api/v2/spot/market/tickers", guard(b.spot_tickers)),
        Route("/api/v2/mix/market/ticker", guard(b.mix_ticker)),
        Route("/api/v2/mix/market/tickers", guard(b.mix_tickers)),
    ]

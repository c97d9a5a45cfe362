"""OKX v5 public market data, as CCXT's ``okx`` calls it, from the recorded OKX series.

Endpoints: ``/api/v5/public/instruments`` (load_markets asks SPOT, FUTURES, SWAP, OPTION),
``/api/v5/public/time``, ``/api/v5/market/candles`` (newest 1,440 intervals only, 300 per
request), ``/api/v5/market/history-candles`` (any age) and ``/market/ticker(s)``.

History pages hold up to 300 candles, the cap CCXT 4.5.90 relies on (older OKX docs say
100): CCXT asks history-candles for 300 with ``after = since + 300 bars``, so a cap of
100 (newest first) would hand it the last 100 and silently skip 200 of every 300.

Wire facts kept: string numbers in a ``{"code","msg","data"}`` envelope; candles newest
first, ``before < ts < after``, the newest ``limit`` of the range; swap volume in
contracts (``vol``) beside base (``volCcy``) and quote (``volCcyQuote``), with OKX's real
contract values; ``confirm`` is ``"0"`` for the candle still open at the clock's now.
Bars 6H and up are served only in their UTC form (``1Dutc``): the recorded series are
UTC-aligned, OKX's plain ``1D`` is Hong Kong time, so it answers 51000 like any bar that
was not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    divide,
    fmt,
    guarded,
    int_param,
    json_response,
    ohlcv_rows,
    select,
    served,
    ticker_stats,
)

EXCHANGE = "okx"
CANDLES_MAX, HISTORY_MAX, DEFAULT_LIMIT = 300, 300, 100
RECENT_CANDLES = 1440  # /market/candles only reaches this many intervals back
BARS: dict[str, str] = {
    "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "2H": "2h",
    "4H": "4h", "6Hutc": "6h", "12Hutc": "12h", "1Dutc": "1d", "1Wutc": "1w", "1Mutc": "1M",
}  # fmt: skip
MARKET_OF_TYPE = {"SPOT": "spot", "SWAP": "futures"}
ALL_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


@dataclass(frozen=True, slots=True)
class Spec:
    """The instrument facts CCXT's parse_market reads (real values for the recorded swaps)."""

    tick: str
    lot: str
    min_size: str
    ct_val: str = ""
    lever: str = "10"


SPECS: dict[str, Spec] = {
    "BTC-USDT-SWAP": Spec("0.1", "0.01", "0.01", ct_val="0.01", lever="100"),
    "ETH-USDT-SWAP": Spec("0.01", "0.01", "0.01", ct_val="0.1", lever="100"),
    "BTC-USDT": Spec("0.1", "0.00000001", "0.00001"),
    "ETH-USDT": Spec("0.01", "0.000001", "0.0001"),
}
DEFAULT_SWAP = Spec("0.0001", "1", "1", ct_val="1", lever="50")
DEFAULT_SPOT = Spec("0.0001", "0.00000001", "0.00001")


def _error(e: VenueError) -> Response:
    return json_response({"code": e.code, "msg": e.message, "data": []}, status=e.status)


def _ok(data: list[Any]) -> Response:
    return json_response({"code": "0", "msg": "", "data": data})


def _empty_param(name: str) -> VenueError:
    return VenueError("50014", f"Parameter {name} can not be empty")


def _param_error(name: str) -> VenueError:
    return VenueError("51000", f"Parameter {name} error")


def _market_of(inst_id: str) -> str:
    return "futures" if inst_id.endswith("-SWAP") else "spot"


def _spec(inst_id: str) -> Spec:
    default = DEFAULT_SWAP if inst_id.endswith("-SWAP") else DEFAULT_SPOT
    return SPECS.get(inst_id, default)


def _instrument(inst_id: str) -> dict[str, str]:
    """One ``/public/instruments`` row; swaps name their underlying, spot its currencies."""
    spec, swap = _spec(inst_id), inst_id.endswith("-SWAP")
    base, quote = inst_id.split("-")[:2]
    return {
        "instType": "SWAP" if swap else "SPOT", "instId": inst_id,
        "uly": f"{base}-{quote}" if swap else "", "instFamily": f"{base}-{quote}" if swap else "",
        "baseCcy": "" if swap else base, "quoteCcy": "" if swap else quote,
        "settleCcy": quote if swap else "", "ctValCcy": base if swap else "",
        "ctVal": spec.ct_val if swap else "", "ctMult": "1" if swap else "",
        "ctType": "linear" if swap else "", "alias": "", "category": "1", "expTime": "",
        "listTime": "", "lever": spec.lever, "tickSz": spec.tick, "lotSz": spec.lot,
        "minSz": spec.min_size, "maxLmtSz": "100000000", "maxMktSz": "1000000",
        "optType": "", "stk": "", "state": "live", "ruleType": "normal",
    }  # fmt: skip


class Okx:
    """The OKX routes over one simulator context."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    def inst_ids(self, inst_type: str) -> list[str]:
        market = MARKET_OF_TYPE.get(inst_type)
        return [] if market is None else self.ctx.store.symbols(EXCHANGE, market)

    def require_inst(self, request: Request) -> str:
        inst_id = request.query_params.get("instId", "")
        if not inst_id:
            raise _empty_param("instId")
        if inst_id not in self.inst_ids("SWAP" if inst_id.endswith("-SWAP") else "SPOT"):
            raise VenueError("51001", "Instrument ID does not exist")
        return inst_id

    def instruments(self, request: Request) -> Response:
        inst_type = request.query_params.get("instType", "")
        if not inst_type:
            raise _empty_param("instType")
        if inst_type not in ALL_TYPES:
            raise _param_error("instType")
        wanted = request.query_params.get("instId")
        ids = [i for i in self.inst_ids(inst_type) if wanted in (None, "", i)]
        return _ok([_instrument(i) for i in ids])

    def time(self, request: Request) -> Response:
        return _ok([{"ts": str(self.ctx.clock.now_ms())}])

    def candles(self, request: Request) -> Response:
        return self._candles(request, history=False)

    def history_candles(self, request: Request) -> Response:
        return self._candles(request, history=True)

    def _candles(self, request: Request, history: bool) -> Response:
        inst_id = self.require_inst(request)
        market = _market_of(inst_id)
        name = BARS.get(request.query_params.get("bar", "1m"))
        if name is None or not self.ctx.store.has(EXCHANGE, market, inst_id, name):
            raise _param_error("bar")
        interval = INTERVALS[name]
        limit = int_param(request, "limit", _param_error("limit"))
        after = int_param(request, "after", _param_error("after"))
        before = int_param(request, "before", _param_error("before"))
        if limit is not None and limit < 1:
            raise _param_error("limit")
        now = self.ctx.clock.now_ms()
        lo = None if before is None else before + 1
        if not history:
            horizon = interval.floor(now) - (RECENT_CANDLES - 1) * interval.nominal_ms
            lo = horizon if lo is None else max(lo, horizon)
        cap = HISTORY_MAX if history else CANDLES_MAX
        series = Series(EXCHANGE, market, inst_id, interval)
        page = select(self.ctx.store, series, now, lo_ms=lo, hi_ms=after,
                      limit=min(limit or DEFAULT_LIMIT, cap), keep="newest")  # fmt: skip
        ct_val = _spec(inst_id).ct_val if market == "futures" else ""
        rows = ohlcv_rows(served(self.ctx, request, series, page), now)
        return _ok([_candle(ts, values, ct_val, still) for ts, values, still in rows][::-1])

    def ticker(self, request: Request) -> Response:
        inst_id = self.require_inst(request)
        entry = self._ticker(inst_id)
        if entry is None:
            raise VenueError("51001", "Instrument ID does not exist")
        return _ok([entry])

    def tickers(self, request: Request) -> Response:
        inst_type = request.query_params.get("instType", "")
        if not inst_type:
            raise _empty_param("instType")
        entries = [self._ticker(i) for i in self.inst_ids(inst_type)]
        return _ok([e for e in entries if e is not None])

    def _ticker(self, inst_id: str) -> dict[str, str] | None:
        now = self.ctx.clock.now_ms()
        stats = ticker_stats(self.ctx.store, EXCHANGE, _market_of(inst_id), inst_id, now)
        return None if stats is None else _ticker_body(inst_id, stats)


def _candle(ts: int, values: list[float], ct_val: str, still_open: bool) -> list[str]:
    o, h, low, c, v, qv = values
    row = [str(ts), fmt(o), fmt(h), fmt(low), fmt(c)]
    if ct_val:  # swap: contracts, base, quote
        row += [divide(v, ct_val), fmt(v), fmt(qv)]
    else:
        row += [fmt(v), fmt(qv), fmt(qv)]
    return [*row, "0" if still_open else "1"]


def _ticker_body(inst_id: str, s: DayStats) -> dict[str, str]:
    swap = inst_id.endswith("-SWAP")
    vol24h = divide(s.volume, _spec(inst_id).ct_val) if swap else fmt(s.volume)
    last = fmt(s.last)
    return {
        "instType": "SWAP" if swap else "SPOT", "instId": inst_id, "last": last, "lastSz": "0",
        "askPx": last, "askSz": "0", "bidPx": last, "bidSz": "0", "open24h": fmt(s.open),
        "high24h": fmt(s.high), "low24h": fmt(s.low),
        "volCcy24h": fmt(s.volume) if swap else fmt(s.quote_volume), "vol24h": vol24h,
        "ts": str(s.ts_ms), "sodUtc0": fmt(s.day_open), "sodUtc8": fmt(s.day_open_utc8),
    }  # fmt: skip


def routes(ctx: SimContext) -> list[BaseRoute]:
    """OKX's paths without the simulator's ``/okx`` prefix (``all_routes`` adds it)."""
    okx = Okx(ctx)
    guard = guarded(_error)
    return [
        Route("/api/v5/public/instruments", guard(okx.instruments)),
        Route("/api/v5/public/time", guard(okx.time)),
        Route("/api/v5/market/candles", guard(okx.candles)),
        Route("/api/v5/market/history-candles", guard(okx.history_candles)),
        Route("/api/v5/market/ticker", guard(okx.ticker)),
        Route("/api/v5/market/tickers", guard(okx.tickers)),
    ]

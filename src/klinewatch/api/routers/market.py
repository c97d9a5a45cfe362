"""``/api/v1/market``: klines, indicators, ticker (seed 001 sections 5.1 to 5.3).

Handlers only parse and delegate: the services return finished response bodies, so a
cache hit goes from the cache to the socket without being decoded. Exchange, symbol and
timeframe are bound to the log context for everything a request logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from structlog.contextvars import bound_contextvars

from klinewatch.api.errors import raw_ok
from klinewatch.api.schemas import IndicatorsEnvelope, KlinesEnvelope, TickerEnvelope, responses
from klinewatch.domain.indicators import IndicatorParams

if TYPE_CHECKING:
    from klinewatch.api.app import AppContext

router = APIRouter(prefix="/api/v1/market", tags=["market"])

ExchangeName = Literal["binance", "okx", "bybit", "bitget"]
MarketTypeName = Literal["spot", "futures"]
# Binance's kline intervals (klinewatch.domain.intervals.INTERVAL_NAMES; a test checks).
Timeframe = Literal[
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"
]

ExchangeQ = Annotated[
    ExchangeName | None,
    Query(description="Exchange; default: the current one (failover may have switched)."),
]
MarketTypeQ = Annotated[MarketTypeName, Query(description="spot or futures (USDT-M).")]
SymbolQ = Annotated[
    str,
    Query(min_length=1, max_length=40, description="BTC/USDT or BTCUSDT.", examples=["BTCUSDT"]),
]
TimeframeQ = Annotated[Timeframe, Query(description="Candle interval.", examples=["1h"])]
LimitQ = Annotated[
    int | None,
    Query(ge=1, le=1000, description="Candles in the window; default: the config's."),
]
StartQ = Annotated[
    datetime | None,
    Query(description="First open time (ISO 8601 or epoch); with it the window runs forward."),
]
EndQ = Annotated[datetime | None, Query(description="Open times before this one (exclusive).")]
PeriodsQ = Annotated[str | None, Query(max_length=100, description='Comma list, e.g. "5,10,20".')]
PeriodQ = Annotated[int | None, Query(ge=1, le=500)]


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


@router.get(
    "/klines",
    summary="Candles through cache -> database -> exchange",
    response_class=Response,
    responses=responses(400, 404, 503, ok=KlinesEnvelope),
)
async def klines(
    request: Request,
    symbol: SymbolQ,
    timeframe: TimeframeQ,
    exchange: ExchangeQ = None,
    market_type: MarketTypeQ = "spot",
    limit: LimitQ = None,
    start: StartQ = None,
    end: EndQ = None,
) -> Response:
    """The newest ``limit`` closed candles, or a window from ``start`` / before ``end``.
    ``data_source`` says where they came from; ``is_stale`` is true when the exchange
    could not be asked (rate limited, down) and the stored candles are behind."""
    market = context(request).market
    q = market.query(
        exchange=exchange,
        market_type=market_type,
        symbol=symbol,
        timeframe=timeframe,
        limit=limit,
        start=start,
        end=end,
    )
    with bound_contextvars(exchange=q.exchange, symbol=q.symbol, timeframe=q.interval.name):
        body, source = await market.klines_body(q)
    return raw_ok(body, source)


@router.get(
    "/indicators",
    summary="MA, EMA, MACD, RSI, BOLL and VOL of a window (TA-Lib)",
    response_class=Response,
    responses=responses(400, 404, 503, ok=IndicatorsEnvelope),
)
async def indicators(
    request: Request,
    symbol: SymbolQ,
    timeframe: TimeframeQ,
    exchange: ExchangeQ = None,
    market_type: MarketTypeQ = "spot",
    limit: LimitQ = None,
    start: StartQ = None,
    end: EndQ = None,
    indicators: Annotated[
        str | None,
        Query(max_length=100, description="Comma list of MA,EMA,MACD,RSI,BOLL,VOL (default all)."),
    ] = None,
    ma_periods: PeriodsQ = None,
    ema_periods: PeriodsQ = None,
    macd_fast: PeriodQ = None,
    macd_slow: PeriodQ = None,
    macd_signal: PeriodQ = None,
    rsi_period: PeriodQ = None,
    boll_period: PeriodQ = None,
    boll_std: Annotated[float | None, Query(gt=0, le=10)] = None,
    vol_ma_period: PeriodQ = None,
) -> Response:
    """Values for every candle of the window, equal to TA-Lib over the whole stored
    history (warm-up candles before the window are loaded); null inside TA-Lib's
    lookback at the start of the history."""
    ctx = context(request)
    raw = {
        "indicators": indicators,
        "ma_periods": ma_periods,
        "ema_periods": ema_periods,
        "macd_fast": macd_fast,
        "macd_slow": macd_slow,
        "macd_signal": macd_signal,
        "rsi_period": rsi_period,
        "boll_period": boll_period,
        "boll_std": boll_std,
        "vol_ma_period": vol_ma_period,
    }
    params = IndicatorParams.parse({k: v for k, v in raw.items() if v is not None})
    q = ctx.market.query(
        exchange=exchange,
        market_type=market_type,
        symbol=symbol,
        timeframe=timeframe,
        limit=limit,
        start=start,
        end=end,
    )
    with bound_contextvars(exchange=q.exchange, symbol=q.symbol, timeframe=q.interval.name):
        body, source = await ctx.indicators.indicators_body(q, params)
    return raw_ok(body, source)


@router.get(
    "/ticker",
    summary="24-hour ticker",
    response_class=Response,
    responses=responses(400, 503, ok=TickerEnvelope),
)
async def ticker(
    request: Request,
    symbol: SymbolQ,
    exchange: ExchangeQ = None,
    market_type: MarketTypeQ = "spot",
) -> Response:
    """Fresh for 5 s in the cache; when the exchange cannot be asked, the last one
    cached or one rebuilt from stored candles, with ``is_stale: true``."""
    ctx = context(request)
    name, market, pair = ctx.market.resolve(exchange, market_type, symbol)
    with bound_contextvars(exchange=name, symbol=pair):
        body, source = await ctx.tickers.ticker_body(name, market, pair)
    return raw_ok(body, source)

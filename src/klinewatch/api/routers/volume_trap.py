"""``/api/volume-trap``: the monitor list, one monitor, statistics (seed 002 flow 4).

Handlers parse and delegate to ``services.volume_trap_views``; they are plain ``def``
so the blocking database reads run in FastAPI's thread pool. Sessions come from
``app.state.sessions`` (set by ``create_app``'s lifespan). Every bad value is a 400
naming its field (FastAPI's own validation through ``api.errors``, the rest through
``InvalidInput``), an unknown monitor a 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from klinewatch.api.errors import ok
from klinewatch.api.requests import sessions_of
from klinewatch.api.schemas import responses
from klinewatch.services import volume_trap_views as views

router = APIRouter(prefix="/api/volume-trap", tags=["volume-trap"])

MarketTypeQ = Annotated[Literal["spot", "futures"] | None, Query(description="spot or futures.")]
StatusQ = Annotated[
    Literal["pending", "suspected_abandonment", "confirmed_abandonment", "invalidated", "expired"]
    | None,
    Query(description="The monitor's state."),
]
IntervalQ = Annotated[
    str | None, Query(max_length=4, description="Candle interval, e.g. 1h, 4h, 1d.")
]
ExchangeQ = Annotated[Literal["binance", "okx", "bybit", "bitget"] | None, Query()]
SymbolQ = Annotated[
    str | None, Query(min_length=1, max_length=40, description="BTCUSDT or BTC/USDT.")
]
Ordering = Literal["trigger_time", "-trigger_time", "rvol", "-rvol", "drawdown", "-drawdown"]


@router.get(
    "/monitors/",
    summary="Monitors, filtered, ordered and paginated",
    response_class=Response,
    responses=responses(400),
)
def list_monitors(
    request: Request,
    market_type: MarketTypeQ = None,
    status: StatusQ = None,
    interval: IntervalQ = None,
    exchange: ExchangeQ = None,
    symbol: SymbolQ = None,
    ordering: Annotated[
        Ordering,
        Query(description="trigger_time, rvol or drawdown (since the trigger); '-' descending."),
    ] = "-trigger_time",
    page: Annotated[int, Query(ge=1, description="From 1; past the last page is a 400.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE)] = 20,
) -> Response:
    """``{"count", "page", "page_size", "pages", "ordering", "results"}``; each row has
    market cap and FDV when the base asset has a confirmed CoinGecko mapping."""
    where = views.checked_filter(market_type, status, interval, exchange, symbol)
    query = views.ListQuery(where, ordering, page, page_size)
    return ok(views.list_monitors(sessions_of(request), query))


@router.get(
    "/monitors/{monitor_id}/",
    summary="One monitor: trigger, key level, transitions, candles around it",
    response_class=Response,
    responses=responses(400, 404),
)
def monitor_detail(
    request: Request,
    monitor_id: Annotated[int, Path(ge=1, le=views.MAX_ID)],
    before: Annotated[
        int, Query(ge=0, le=views.MAX_AROUND, description="Candles before the trigger.")
    ] = 48,
    after: Annotated[
        int, Query(ge=0, le=views.MAX_AROUND, description="Candles after the last transition.")
    ] = 48,
) -> Response:
    return ok(views.monitor_detail(sessions_of(request), monitor_id, before, after))


@router.get(
    "/statistics/",
    summary="Counts per status and market type; per phase the share that went on",
    response_class=Response,
    responses=responses(400),
)
def statistics(
    request: Request,
    market_type: MarketTypeQ = None,
    interval: IntervalQ = None,
    exchange: ExchangeQ = None,
) -> Response:
    where = views.checked_filter(market_type, None, interval, exchange, None)
    return ok(views.statistics(sessions_of(request), where))

"""What the dashboard reads and starts that the other routers lack: the stored series
(the chart's pickers), the latest volume-trap transitions (the dashboard's feed) and
backfills of one pair with their progress (token-protected, like every write).

Backfills live in this process (``services.backfills``): a page polls
``GET /api/v1/backfills/{id}`` until its ``state`` is ``done`` or ``failed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.responses import Response
from pydantic import BaseModel

from klinewatch.api.errors import JSON, ok
from klinewatch.api.requests import authorize, json_body, sessions_of, token_header
from klinewatch.api.schemas import responses
from klinewatch.services import series_catalog
from klinewatch.services.backfills import BackfillRequest, Backfills

if TYPE_CHECKING:
    from klinewatch.api.app import AppContext

router = APIRouter(tags=["dashboard"])
MarketTypeQ = Annotated[Literal["spot", "futures"] | None, Query(description="spot or futures.")]
MAX_BODY_BYTES = 4096

BACKFILL_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "exchange": {"type": "string", "default": "binance"},
        "market_type": {"type": "string", "enum": ["spot", "futures"], "default": "spot"},
        "symbol": {"type": "string", "example": "ETHUSDT"},
        "interval": {"type": "string", "default": "1h"},
        "days": {"type": "integer", "minimum": 1, "maximum": 3650},
    },
    "required": ["symbol"],
}


class StoredSeries(BaseModel):
    exchange: str
    market_type: Literal["spot", "futures"]
    symbol: str
    interval: str
    first_open_time: datetime
    last_open_time: datetime


class SeriesEnvelope(BaseModel):
    success: Literal[True]
    data: list[StoredSeries]


class TransitionRecord(BaseModel):
    monitor_id: int
    exchange: str
    market_type: Literal["spot", "futures"]
    symbol: str
    interval: str
    status: str
    from_status: str | None
    to_status: str
    open_time: datetime
    reason: str
    detector_values: dict[str, Any]


class TransitionsEnvelope(BaseModel):
    success: Literal[True]
    data: list[TransitionRecord]


class BackfillRecord(BaseModel):
    id: int
    exchange: str
    market_type: Literal["spot", "futures"]
    symbol: str
    interval: str
    days: int
    state: Literal["running", "done", "failed"]
    done: int
    total: int
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None
    error: str | None
    error_field: str | None


class BackfillEnvelope(BaseModel):
    success: Literal[True]
    data: BackfillRecord


class BackfillsEnvelope(BaseModel):
    success: Literal[True]
    data: list[BackfillRecord]


def _backfills(request: Request) -> Backfills:
    """The process's backfills, built on first use from the app's context; their tasks
    join the app's task table, so shutdown cancels a running one."""
    found: Backfills | None = getattr(request.app.state, "backfills", None)
    if found is None:
        ctx: AppContext = request.app.state.ctx
        found = Backfills(
            sessions=ctx.runtime.sessions,
            client_for=ctx.clients.get,
            clock=ctx.market.clock,
            quote_assets=set(ctx.settings.quote_assets),
            archive_for=ctx.runtime.archive_client,
            on_stored=ctx.live.publish_update,
            tasks=ctx.tasks,
        )
        request.app.state.backfills = found
    return found


@router.get(
    "/api/v1/series",
    summary="Stored candle series (exchange, market type, symbol, interval)",
    response_class=Response,
    responses=responses(400, ok=SeriesEnvelope),
)
def stored_series(request: Request, market_type: MarketTypeQ = None) -> Response:
    """Only series holding candles, with their first and last open times."""
    return ok(series_catalog.list_series(sessions_of(request), market_type))


@router.get(
    "/api/volume-trap/transitions/",
    summary="The latest monitor transitions, newest candle first",
    response_class=Response,
    responses=responses(400, ok=TransitionsEnvelope),
)
def latest_transitions(
    request: Request,
    market_type: MarketTypeQ = None,
    limit: Annotated[int, Query(ge=1, le=series_catalog.MAX_TRANSITIONS)] = 20,
) -> Response:
    rows = series_catalog.recent_transitions(sessions_of(request), limit, market_type)
    return ok(rows)


@router.post(
    "/api/v1/backfills",
    summary="Start filling one pair's candles in the background",
    status_code=202,
    response_class=Response,
    responses={
        202: {"model": BackfillEnvelope, "content": {JSON: {}}, "description": "its record"},
        **responses(400, 401),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {JSON: {"schema": BACKFILL_SCHEMA}}}
    },
)
async def start_backfill(
    request: Request, token: Annotated[str | None, Security(token_header)] = None
) -> Response:
    """The same work as ``klinewatch update-klines --symbols SYMBOL --days N``; answers
    at once with the record to poll (the running one if this series is already being
    filled); 429 while too many run."""
    ctx: AppContext = request.app.state.ctx
    authorize(token, [t.get_secret_value() for t in ctx.settings.api_tokens])
    body = await json_body(request, MAX_BODY_BYTES)
    job = _backfills(request).start(BackfillRequest.parse(body))
    answer = ok(job.record())
    answer.status_code = 202
    return answer


@router.get(
    "/api/v1/backfills",
    summary="The recent backfills of this process, newest first",
    response_class=Response,
    responses=responses(ok=BackfillsEnvelope),
)
async def list_backfills(request: Request) -> Response:
    return ok([job.record() for job in _backfills(request).recent()])


@router.get(
    "/api/v1/backfills/{backfill_id}",
    summary="One backfill: state, progress (done of total requests), summary or error",
    response_class=Response,
    responses=responses(400, 404, ok=BackfillEnvelope),
)
async def backfill_progress(
    request: Request, backfill_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    return ok(_backfills(request).get(backfill_id).record())

"""``/api/v1/mappings`` and ``/api/v1/market-cap``: review the Binance base asset ->
CoinGecko coin mappings, confirm one, and read market cap / FDV per symbol.

Confirming needs a token from ``KLINEWATCH_API_TOKENS`` in ``X-API-Token`` (as the
config writes do). An id is accepted when it is the mapping's own or one of its
candidates, else when CoinGecko's coin list has it (fetched once an hour through the
app's CoinGecko client). A refused confirmation changes nothing.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Security
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from klinewatch.api.errors import ok
from klinewatch.api.requests import authorize, json_body, sessions_of, token_header
from klinewatch.api.schemas import responses
from klinewatch.errors import ConfigurationError, ExchangeUnavailable, InvalidInput
from klinewatch.services import mapping as mapping_service
from klinewatch.services import market_cap as market_cap_service
from klinewatch.wiring import Runtime

router = APIRouter(prefix="/api/v1", tags=["market cap"])
MAX_BODY_BYTES = 4096
Status = Literal["needs_review", "auto_matched", "manual_confirmed"]


class CandidateModel(BaseModel):
    coingecko_id: str
    name: str
    symbol: str
    volume_24h: float | None
    market_cap_rank: int | None


class MappingModel(BaseModel):
    base_asset: str
    exchange: str
    coin_symbol: str
    multiplier: int = Field(description="Units of the coin per unit of the asset (1000PEPE).")
    coingecko_id: str | None
    status: Status
    evidence: dict[str, Any] = Field(description='The rule that decided ("rule") and its figures.')
    candidates: list[CandidateModel]
    updated_at: datetime
    market_types: list[str] | None = None


class MappingsEnvelope(BaseModel):
    success: Literal[True]
    data: list[MappingModel]


class MappingEnvelope(BaseModel):
    success: Literal[True]
    data: MappingModel


class MarketCapModel(BaseModel):
    symbol: str
    coingecko_id: str | None
    market_cap: float | None
    fdv: float | None
    volume_24h: float | None
    market_cap_rank: int | None
    fetched_at: datetime | None
    is_stale: bool = Field(description="No figures, or older than twice the refresh period.")


class MarketCapEnvelope(BaseModel):
    success: Literal[True]
    data: list[MarketCapModel]


CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "coingecko_id": {
            "type": ["string", "null"],
            "description": "The id to set; absent or null confirms the current one.",
        }
    },
    "example": {"coingecko_id": "pepe"},
}


def install(app: FastAPI, stack: AsyncExitStack, runtime: Runtime) -> None:
    """Give the app the CoinGecko id check confirmations use; its client closes with
    the app."""
    client = runtime.coingecko_client()
    stack.push_async_callback(client.aclose)
    app.state.coin_ids = mapping_service.CoinListIds(client)


@router.get(
    "/mappings",
    summary="Base asset -> CoinGecko mappings with evidence and candidates",
    response_class=Response,
    responses=responses(400, ok=MappingsEnvelope),
)
def list_mappings(
    request: Request,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    market_type: Annotated[
        Literal["spot", "futures"] | None, Query(description="Assets traded on this market.")
    ] = None,
    symbol: Annotated[
        str | None, Query(min_length=1, max_length=40, description="PEPE or PEPEUSDT.")
    ] = None,
) -> Response:
    return ok(mapping_service.list_mappings(sessions_of(request), status, market_type, symbol))


@router.post(
    "/mappings/{base_asset}/confirm",
    summary="Confirm a mapping or set its CoinGecko id (manual_confirmed)",
    response_class=Response,
    responses=responses(400, 401, 404, 503, ok=MappingEnvelope),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": CONFIRM_SCHEMA}},
        }
    },
)
async def confirm_mapping(
    request: Request,
    base_asset: Annotated[str, Path(min_length=1, max_length=40)],
    token: Annotated[str | None, Security(token_header)] = None,
) -> Response:
    """404 for an asset without a mapping, 400 for an id CoinGecko does not know; no
    mapping changes on any error."""
    authorize(token, [t.get_secret_value() for t in request.app.state.settings.api_tokens])
    coingecko_id = _body_id(await json_body(request, MAX_BODY_BYTES, allow_empty=True))
    try:
        record = await mapping_service.confirm_mapping(
            sessions_of(request), request.app.state.coin_ids, base_asset, coingecko_id
        )
    except ConfigurationError as e:  # CoinGecko refused our key: our problem, not the caller's
        raise ExchangeUnavailable(f"cannot check the id with CoinGecko: {e.message}") from e
    return ok(mapping_service.mapping_view(record))


def _body_id(body: Any) -> str | None:
    if body is None:
        return None
    if not isinstance(body, dict) or set(body) - {"coingecko_id"}:
        raise InvalidInput('the body is {"coingecko_id": "..."}', field="(root)")
    value = body.get("coingecko_id")
    if value is not None and not isinstance(value, str):
        raise InvalidInput("coingecko_id: a string", field="coingecko_id")
    return value


@router.get(
    "/market-cap",
    summary="Market cap, FDV, volume and rank per symbol, with fetched_at and is_stale",
    response_class=Response,
    responses=responses(400, ok=MarketCapEnvelope),
)
async def market_cap(
    request: Request,
    symbols: Annotated[
        str, Query(min_length=1, max_length=4000, description="Base assets or pairs: BTC,ETHUSDT")
    ],
) -> Response:
    """One row per symbol asked, in order; a symbol without a ready mapping or without
    figures yet has nulls and ``is_stale`` true."""
    wanted = market_cap_service.parse_symbols(symbols)
    stale_after = 2 * request.app.state.settings.market_data_refresh_s
    rows = await run_in_threadpool(
        market_cap_service.market_caps, sessions_of(request), wanted, stale_after
    )
    return ok(rows)

"""``/api/v1/system/config``: the config singleton (seed 001 section 5.4).

PUT needs a token from ``KLINEWATCH_API_TOKENS`` in ``X-API-Token`` (no tokens
configured: writes are disabled). The body is read here rather than declared as a model
so that every flaw, JSON syntax included, is one ``INVALID_CONFIG`` naming the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import Response

from klinewatch.api.errors import ok
from klinewatch.api.requests import authorize, json_body, token_header
from klinewatch.api.schemas import ConfigEnvelope, responses
from klinewatch.domain.market_config import InvalidConfig
from klinewatch.services.system_config import SECRET_NAMES

if TYPE_CHECKING:
    from klinewatch.api.app import AppContext

router = APIRouter(prefix="/api/v1/system", tags=["system"])
MAX_BODY_BYTES = 64 * 1024

UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "market_data": {
            "type": "object",
            "description": "Any part of the market_data section; deep-merged, then validated.",
        },
        "secrets": {
            "type": "object",
            "description": "Stored encrypted; a null or empty value removes one.",
            "additionalProperties": False,
            "properties": {name: {"type": ["string", "null"]} for name in SECRET_NAMES},
        },
    },
    "example": {"market_data": {"default_exchange": "binance", "update_mode": "n_periods"}},
}


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


@router.get(
    "/config",
    summary="The system config and the exchange in use",
    response_class=Response,
    responses=responses(ok=ConfigEnvelope),
)
async def get_config(request: Request) -> Response:
    ctx = _ctx(request)
    return ok(ctx.config.public_view(ctx.failover.current_exchange))


@router.put(
    "/config",
    summary="Update part of the config (takes effect without a restart)",
    response_class=Response,
    responses=responses(400, 401, ok=ConfigEnvelope),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UPDATE_SCHEMA}},
        }
    },
)
async def put_config(
    request: Request, token: Annotated[str | None, Security(token_header)] = None
) -> Response:
    """Deep-merges the body into the stored config and validates the result; an
    invalid update is refused with the field named and nothing is stored."""
    ctx = _ctx(request)
    authorize(token, [t.get_secret_value() for t in ctx.settings.api_tokens])
    body = await json_body(request, MAX_BODY_BYTES, error=InvalidConfig)
    await ctx.config.update(body)
    return ok(ctx.config.public_view(ctx.failover.current_exchange))

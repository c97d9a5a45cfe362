"""Health of the components klinewatch depends on, and the Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from klinewatch.api.errors import JSON
from klinewatch.api.metrics import CONTENT_TYPE
from klinewatch.api.schemas import MarketHealthEnvelope
from klinewatch.api.schemas import responses as error_responses
from klinewatch.cache.port import CacheUnavailable
from klinewatch.services.market_shapes import iso

if TYPE_CHECKING:
    from klinewatch.api.app import AppContext

router = APIRouter(tags=["health"])


def _database(engine: Engine) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", e)).strip().splitlines()
        return {"status": "unhealthy", "error": reason[0] if reason else type(e).__name__}
    return {"status": "healthy", "backend": engine.dialect.name}


@router.get("/health", summary="Liveness and database health")
def health(request: Request) -> JSONResponse:
    components = {"database": _database(request.app.state.engine)}
    healthy = all(c["status"] == "healthy" for c in components.values())
    body = {
        "success": healthy,
        "data": {"status": "healthy" if healthy else "unhealthy", "components": components},
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get(
    "/health/market-data",
    summary="Database, cache and every enabled exchange (seed 001 section 8.3)",
    response_class=Response,
    responses={
        200: {"model": MarketHealthEnvelope},
        503: {"model": MarketHealthEnvelope, "description": "the database is unreachable"},
        **{k: v for k, v in error_responses().items() if k in (429, 500)},
    },
)
async def market_data_health(request: Request) -> Response:
    """Exchanges show what the periodic health checks saw (healthy / unhealthy with
    the error); the database and the cache are probed now."""
    ctx: AppContext = request.app.state.ctx
    components: dict[str, dict[str, Any]] = {
        "database": await asyncio.to_thread(_database, ctx.runtime.engine)
    }
    backend = "redis" if ctx.settings.redis_url else "memory"
    try:
        await ctx.cache.ping()
        components["cache"] = {"status": "healthy", "backend": backend}
    except CacheUnavailable as e:
        components["cache"] = {"status": "unhealthy", "backend": backend, "error": e.message}
    for exchange, state in ctx.failover.report().items():
        components[f"exchange_{exchange}"] = state
    db_ok = components["database"]["status"] == "healthy"
    all_ok = all(c["status"] == "healthy" for c in components.values())
    data = {
        "status": "healthy" if all_ok else ("degraded" if db_ok else "unhealthy"),
        "timestamp": iso(ctx.runtime.clock.now_ms()),
        "current_exchange": ctx.failover.current_exchange,
        "components": components,
    }
    body = orjson.dumps({"success": db_ok, "data": data})
    return Response(body, 200 if db_ok else 503, media_type=JSON)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "text exposition format"}},
)
async def metrics(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    return Response(ctx.telemetry.render(), media_type=CONTENT_TYPE)

"""Health of the components klinewatch depends on."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and database health")
def health(request: Request) -> JSONResponse:
    components: dict[str, Any] = {}
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        components["database"] = {
            "status": "healthy",
            "backend": request.app.state.engine.dialect.name,
        }
    except SQLAlchemyError as e:
        components["database"] = {"status": "unhealthy", "error": type(e).__name__}
    healthy = all(c["status"] == "healthy" for c in components.values())
    body = {
        "success": healthy,
        "data": {"status": "healthy" if healthy else "unhealthy", "components": components},
    }
    return JSONResponse(body, status_code=200 if healthy else 503)

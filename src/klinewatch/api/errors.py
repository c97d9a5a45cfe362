"""The response envelopes (seed 001 section 6.3) and the translation of every error.

    {"success": true, "data": ...}
    {"success": false, "error": {"code", "message", "details"}}

| raised                                   | status | code                         |
|------------------------------------------|--------|------------------------------|
| InvalidConfig                            | 400    | INVALID_CONFIG               |
| InvalidInput, FastAPI validation errors  | 400    | INVALID_PARAMS (+ field)     |
| Unauthorized                             | 401    | UNAUTHORIZED                 |
| NotFound                                 | 404    | DATA_NOT_AVAILABLE           |
| RateLimited (IpBanned too)               | 429    | RATE_LIMITED + Retry-After   |
| ExchangeUnavailable                      | 503    | EXCHANGE_UNAVAILABLE         |
|   ... a timeout                          | 503    | NETWORK_ERROR                |
| DatabaseUnreachable, SQLAlchemy errors   | 503    | DATABASE_UNAVAILABLE         |
| anything else                            | 500    | INTERNAL_ERROR               |

No message ever carries a stack trace; unexpected errors are logged with theirs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from klinewatch.domain.market_config import InvalidConfig
from klinewatch.errors import (
    DatabaseUnreachable,
    ExchangeUnavailable,
    InvalidInput,
    KlinewatchError,
    NotFound,
    RateLimited,
)
from klinewatch.logs import get_logger

log = get_logger(__name__)
JSON = "application/json"


class Unauthorized(KlinewatchError):
    code = "UNAUTHORIZED"


def ok(data: Any) -> Response:
    return Response(orjson.dumps({"success": True, "data": data}), media_type=JSON)


def raw_ok(body: bytes, source: str | None = None) -> Response:
    """An already rendered success body (cache hits cost no serialization)."""
    headers = {"X-Data-Source": source} if source else None
    return Response(body, media_type=JSON, headers=headers)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    error = {"code": code, "message": message, "details": details or {}}
    return orjson.dumps({"success": False, "error": error}, default=str)


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(error_body(code, message, details), status, headers, media_type=JSON)


def translate(exc: Exception) -> Response:
    """The envelope and status of any exception."""
    if isinstance(exc, InvalidConfig):
        return error_response(400, "INVALID_CONFIG", exc.message, exc.details)
    if isinstance(exc, InvalidInput):
        return error_response(400, "INVALID_PARAMS", exc.message, exc.details)
    if isinstance(exc, Unauthorized):
        return error_response(401, exc.code, exc.message, exc.details)
    if isinstance(exc, NotFound):
        return error_response(404, "DATA_NOT_AVAILABLE", exc.message, exc.details)
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after_s))
        details = {**exc.details, "retry_after_s": wait}
        headers = {"Retry-After": str(wait)}
        return error_response(429, "RATE_LIMITED", exc.message, details, headers)
    if isinstance(exc, ExchangeUnavailable):
        code = "NETWORK_ERROR" if exc.details.get("network") else "EXCHANGE_UNAVAILABLE"
        details = {k: v for k, v in exc.details.items() if k != "network"}
        return error_response(503, code, exc.message, details)
    if isinstance(exc, DatabaseUnreachable | SQLAlchemyError):
        log.error("database_error", error=type(exc).__name__)
        return error_response(503, "DATABASE_UNAVAILABLE", "the database cannot be reached")
    log.error("unexpected_error", error=type(exc).__name__, exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error; it has been logged")


def validation_response(exc: RequestValidationError) -> Response:
    """FastAPI's own validation errors as 400, naming the first offending field."""
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    field = loc[0] if loc else "request"
    reason = str(first.get("msg", "invalid value"))
    return error_response(400, "INVALID_PARAMS", f"{field}: {reason}", {"field": field})


def install(app: FastAPI) -> None:
    async def on_klinewatch(request: Request, exc: Exception) -> Response:
        return translate(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(exc.status_code, code, message, headers=exc.headers)

    app.add_exception_handler(KlinewatchError, on_klinewatch)
    app.add_exception_handler(SQLAlchemyError, on_klinewatch)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_klinewatch)

"""What endpoints share before their own work: the app's database sessions, the API
token check and a bounded JSON body, refused with the error envelope that names the
problem."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.api.errors import Unauthorized
from klinewatch.errors import InvalidInput

token_header = APIKeyHeader(
    name="X-API-Token", auto_error=False, description="One of KLINEWATCH_API_TOKENS."
)


def sessions_of(request: Request) -> sessionmaker[Session]:
    """The app's session factory (built once in the lifespan)."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def authorize(token: str | None, accepted: list[str]) -> None:
    """Writes need a configured token; with none configured they are disabled."""
    if not accepted:
        raise Unauthorized(
            "writes are disabled: no KLINEWATCH_API_TOKENS configured", field="X-API-Token"
        )
    if token is None:
        raise Unauthorized("X-API-Token header required", field="X-API-Token")
    if not any(hmac.compare_digest(token.encode(), a.encode()) for a in accepted):
        raise Unauthorized("X-API-Token not accepted", field="X-API-Token")


async def json_body(
    request: Request,
    max_bytes: int,
    *,
    error: type[InvalidInput] = InvalidInput,
    loads: Callable[[bytes], Any] = orjson.loads,
    allow_empty: bool = False,
) -> Any:
    """The request's JSON body, at most ``max_bytes`` (``error`` lets the config
    endpoint answer INVALID_CONFIG); with ``allow_empty`` an empty body is ``None``."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise error(f"the body is larger than {max_bytes} bytes", field="(root)")
    if allow_empty and not raw.strip():
        return None
    try:
        return loads(raw)
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        raise error("the body is not JSON", field="(root)") from None

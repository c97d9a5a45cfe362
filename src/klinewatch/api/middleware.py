"""Plain ASGI middleware (no ``BaseHTTPMiddleware``: it costs a task per request):
a per-client rate limit answered with the 429 envelope, and request metrics.

The limit is a token bucket per client IP: ``per_min`` requests a minute with bursts of
as many. It is kept per worker process, so with N workers a client may reach N times
the limit. It guards the API (``/api/``, ``/ws/``, ``/health/...``); liveness
(``/health``), ``/metrics`` (monitors poll them) and the dashboard's pages and static
files (a first visit loads some thirty of them) are exempt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klinewatch.api.errors import error_body
from klinewatch.api.metrics import Telemetry

LIMITED_PREFIXES = ("/api/", "/ws/", "/health/")
MAX_CLIENTS = 10_000


class TokenBuckets:
    """``allow(client)`` -> seconds to wait (0 when allowed)."""

    def __init__(self, per_min: int, now: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_min)
        self.rate = per_min / 60.0
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait_s(self, client: str) -> float:
        now = self._now()
        tokens, stamp = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_full(now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop clients whose bucket has refilled: they are as good as new."""
        full = [
            c
            for c, (tokens, stamp) in self._buckets.items()
            if tokens + (now - stamp) * self.rate >= self.capacity
        ]
        for client in full:
            del self._buckets[client]


class ApiMiddleware:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets, telemetry: Telemetry) -> None:
        self.app = app
        self.buckets = buckets
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(LIMITED_PREFIXES):
            client = scope.get("client")
            wait = self.buckets.wait_s(client[0] if client else "unknown")
            if wait > 0:
                await _refuse(scope, receive, send, wait)
                return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.telemetry.http(scope["method"], template, status, time.perf_counter() - started)


async def _refuse(scope: Scope, receive: Receive, send: Send, wait_s: float) -> None:
    retry = max(1, math.ceil(wait_s))
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "rate limited"})
        return
    body = error_body(
        "RATE_LIMITED",
        "too many requests from this client; retry after the delay",
        {"retry_after_s": retry},
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})

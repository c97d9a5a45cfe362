"""``WS /ws/market/{symbol}``: newly closed candles and ticker updates as the scheduler
stores them (``services.live.LiveHub``).

Query: ``exchange`` (default the current one), ``market_type`` (spot), ``timeframes``
(comma list, default ``1m``). Bad parameters: one error envelope, then close 1008. When
the feed breaks (Redis went away) the socket is closed with 1012: reconnect, and the
subscription falls back to this process.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from klinewatch.api.errors import error_body
from klinewatch.cache.port import CacheUnavailable
from klinewatch.domain.intervals import parse_interval
from klinewatch.errors import InvalidInput
from klinewatch.services.live import END_OF_FEED, cancel_all

if TYPE_CHECKING:
    from klinewatch.api.app import AppContext

router = APIRouter(tags=["live"])
MAX_TIMEFRAMES = 15
POLICY_VIOLATION, SERVICE_RESTART, TRY_AGAIN_LATER = 1008, 1012, 1013


@router.websocket("/ws/market/{symbol}")
async def market_stream(
    websocket: WebSocket,
    symbol: str,
    exchange: str | None = None,
    market_type: str = "spot",
    timeframes: str = "1m",
) -> None:
    ctx: AppContext = websocket.app.state.ctx
    await websocket.accept()
    try:
        name, market, pair = ctx.market.resolve(exchange, market_type, symbol)
        names = [t.strip() for t in timeframes.split(",") if t.strip()][:MAX_TIMEFRAMES]
        wanted = [parse_interval(t, field="timeframes").name for t in names or ["1m"]]
    except InvalidInput as e:
        await websocket.send_text(error_body("INVALID_PARAMS", e.message, e.details).decode())
        await websocket.close(POLICY_VIOLATION)
        return
    try:
        async with ctx.live.subscribe(name, market, pair, wanted) as feed:
            code = await _forward(websocket, feed)
    except CacheUnavailable:
        code = TRY_AGAIN_LATER
    if code is not None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code)


async def _forward(websocket: WebSocket, feed: asyncio.Queue[bytes]) -> int | None:
    """Send messages until the client leaves (None) or the feed breaks (a close code)."""

    async def watch_client() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    client = asyncio.create_task(watch_client())
    getter: asyncio.Future[bytes] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(feed.get())
            done, _ = await asyncio.wait({getter, client}, return_when=asyncio.FIRST_COMPLETED)
            if client in done:
                return None
            message = getter.result()
            if message == END_OF_FEED:
                return SERVICE_RESTART
            await websocket.send_text(message.decode())
    finally:
        await cancel_all([t for t in (client, getter) if t is not None])

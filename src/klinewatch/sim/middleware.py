"""ASGI middleware around every simulated route: HTTP faults, latency and stats.

It is the outermost layer (``app.SimApp`` puts it there), so venue routes get every
generic fault without a line of code, and so it receives the server's own ``send``:
with uvicorn that is a bound method of the request cycle, whose ``transport`` lets a
``reset`` fault close the TCP connection with an RST (``SO_LINGER`` 0, then abort), the
way a crashed load balancer does. A client sees ``ConnectionResetError``, not a response.
``/__sim/`` admin routes are never faulted nor counted.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klinewatch.sim.context import SimContext
from klinewatch.sim.faults import HTTP_KINDS, Fault, FaultKind
from klinewatch.sim.stats import client_of

ADMIN_PREFIX = "/__sim"
_REASONS = {500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}


async def reset_connection(send: Send) -> None:
    """Drop the client's connection with a TCP reset and no response at all."""
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("simulated reset (no transport: response left incomplete)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(3):  # let the server see the connection lost before the app returns
        await asyncio.sleep(0)


async def plain_response(send: Send, status: int) -> None:
    body = _REASONS.get(status, b"Error")
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TruncatingSend:
    """Buffers the response and sends only the first half of its body, with a matching
    Content-Length, so the client gets a complete HTTP response holding broken JSON."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body", False):
            return
        cut = bytes(self.body[: len(self.body) // 2])
        headers = [
            (k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"
        ]
        headers.append((b"content-length", str(len(cut)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": cut})


class ReplayingReceive:
    """A ``receive`` that can wait for the client to hang up while stalling, then still
    hand the app every request message it consumed meanwhile."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.buffered: list[Message] = []

    async def stall(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the client disconnects first; True if it is still there."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    message = await self.receive()
                    if message["type"] == "http.disconnect":
                        return False
                    self.buffered.append(message)
        except TimeoutError:
            return True

    async def __call__(self) -> Message:
        return self.buffered.pop(0) if self.buffered else await self.receive()


class SimMiddleware:
    def __init__(self, app: ASGIApp, ctx: SimContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        fired = {f.kind: f for f in self.ctx.faults.take(path, HTTP_KINDS)}
        delay_ms = self.ctx.options.latency_ms + sum(
            f.latency_ms for f in fired.values() if f.kind is FaultKind.LATENCY
        )
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        if _resets(fired):
            self.ctx.stats.record(client, path, 0)  # before the client can see the reset
            await reset_connection(send)
            return
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._respond(fired, scope, receive, recording_send)
        finally:
            self.ctx.stats.record(client, path, status)

    async def _respond(
        self, fired: dict[FaultKind, Fault], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if FaultKind.DOWN in fired:
            await plain_response(send, 503)
            return
        for kind in (FaultKind.HTTP_500, FaultKind.HTTP_502, FaultKind.HTTP_503):
            if kind in fired:
                await plain_response(send, int(kind.value))
                return
        if FaultKind.TIMEOUT in fired:
            replaying = ReplayingReceive(receive)
            if not await replaying.stall(fired[FaultKind.TIMEOUT].sleep_s):
                return  # the client gave up waiting: nothing left to answer
            receive = replaying
        if FaultKind.TRUNCATE in fired:
            send = TruncatingSend(send)
        await self.app(scope, receive, send)


def _resets(fired: dict[FaultKind, Fault]) -> bool:
    down = fired.get(FaultKind.DOWN)
    return FaultKind.RESET in fired or (down is not None and down.mode == "reset")

"""Several small httpx clients used as one, for the many requests of a backfill.

httpcore's connection pool walks every one of its connections whenever a request enters
or a response is closed (each walk checks each idle socket with a system call), so the
CPU a request costs grows with the pool: measured against the simulator, one pool of 16
keep-alive connections spends about 1.4 ms a request, four pools of four about 0.8 ms,
one pool of 64 about 4.8 ms. On a 2-core machine that is the difference between a
backfill that keeps up with the weight budget and one that does not. Each request goes
to the shard with the fewest requests in flight, so a shard rarely holds more than a
connection or two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

CONNECTIONS_PER_SHARD = 4
Hook = Callable[[Any], Any]  # httpx's event hooks: an async callable of the request/response


class HttpShards:
    """``get``, ``event_hooks`` and ``aclose`` of an ``httpx.AsyncClient``, spread over
    several clients sharing one TLS context."""

    def __init__(
        self,
        max_connections: int,
        timeout_s: float,
        proxy: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        count = max(1, -(-max_connections // CONNECTIONS_PER_SHARD))
        per_shard = max(1, min(CONNECTIONS_PER_SHARD, max_connections))
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        # As on one client: hooks appended here run for the requests of every shard.
        self.event_hooks: dict[str, list[Hook]] = {"request": [], "response": []}
        hooks: dict[str, list[Hook]] = {
            "request": [self._on_request],
            "response": [self._on_response],
        }
        tls = httpx.create_ssl_context()  # built once: it costs 40+ ms a client
        self.clients = [
            httpx.AsyncClient(
                verify=tls,
                timeout=httpx.Timeout(timeout_s),
                proxy=proxy,
                limits=limits,
                headers=headers,
                event_hooks=hooks,
            )
            for _ in range(count)
        ]
        self._in_flight = [0] * count

    async def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        shard = min(range(len(self.clients)), key=self._in_flight.__getitem__)
        self._in_flight[shard] += 1
        try:
            return await self.clients[shard].get(url, params=params)
        finally:
            self._in_flight[shard] -= 1

    async def _on_request(self, request: httpx.Request) -> None:
        for hook in self.event_hooks["request"]:
            await hook(request)

    async def _on_response(self, response: httpx.Response) -> None:
        for hook in self.event_hooks["response"]:
            await hook(response)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

"""The Binance client's HTTP shards behave as one httpx client to their callers."""

from __future__ import annotations

import asyncio

import httpx

from klinewatch.exchanges.binance.http import HttpShards
from klinewatch.sim.testing import RunningSim


async def test_many_requests_in_flight_all_answer_and_every_hook_sees_each(
    sim_server: RunningSim,
) -> None:
    http = HttpShards(max_connections=8, timeout_s=10.0, headers={"X-Sim-Client": "shards"})
    assert len(http.clients) == 2  # four connections each
    requests: list[str] = []
    statuses: list[int] = []

    async def on_request(request: httpx.Request) -> None:
        requests.append(request.url.path)

    async def on_response(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    http.event_hooks["request"].append(on_request)
    http.event_hooks["response"].append(on_response)
    try:
        answers = await asyncio.gather(
            *(http.get(f"{sim_server.url}/api/v3/time", params={}) for _ in range(30))
        )
    finally:
        await http.aclose()
    assert [a.status_code for a in answers] == [200] * 30
    assert requests == ["/api/v3/time"] * 30 and statuses == [200] * 30
    assert all(client.is_closed for client in http.clients)

"""CoinGecko's ``exchanges/{id}/tickers`` paging and parsing (httpx ``MockTransport``:
no snapshot of these pages is recorded, so the simulator serves none)."""

from __future__ import annotations

import asyncio

import httpx

from klinewatch.exchanges.coingecko import CallPacer, CoingeckoClient


def ticker(i: int) -> dict[str, object]:
    # CoinGecko's documented ticker shape, trimmed to the fields klinewatch reads
    return {
        "base": f"c{i}",
        "target": "USDT",
        "coin_id": f"coin-{i}",
        "market": {"name": "Binance"},
    }


def test_pages_are_read_until_a_short_one() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        asked.append(request.url.params["page"])
        rows = [ticker(i) for i in range(100)] if page == 1 else [ticker(100), {"base": "X"}]
        return httpx.Response(200, json={"name": "Binance", "tickers": rows})

    async def fetch() -> list[tuple[str, str, str]]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        client = CoingeckoClient("https://cg.test/api/v3", http, CallPacer())
        try:
            return [(t.base, t.target, t.coin_id) for t in await client.fetch_exchange_tickers()]
        finally:
            await client.aclose()

    tickers = asyncio.run(fetch())
    assert asked == ["1", "2"]
    assert len(tickers) == 101  # the row without a coin_id is skipped
    assert tickers[0] == ("C0", "USDT", "coin-0")

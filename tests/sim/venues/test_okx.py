"""OKX through CCXT itself: markets, paged history equal to the recording, the ticker, the
open candle, and OKX's own error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import pytest

from klinewatch.domain.intervals import DAY_MS
from klinewatch.sim.testing import RunningSim
from klinewatch.sim.venues.ccxt_urls import ccxt_api_urls
from tests.sim.venues.conftest import assert_same_candles, paginate, recorded

FIVE_MIN = 300_000
SWAP = ("okx", "futures", "BTC-USDT-SWAP", "5m")


@pytest.fixture
async def okx(sim: RunningSim) -> AsyncIterator[Any]:
    urls = {"api": ccxt_api_urls("okx", sim.url + "/okx")}
    exchange = ccxt_async.okx({"urls": urls, "enableRateLimit": False})
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_load_markets_lists_the_recorded_swaps_with_real_contract_values(
    sim: RunningSim, okx: Any
) -> None:
    markets = await okx.load_markets()
    swaps = sim.ctx.store.symbols("okx", "futures")
    assert sorted(m["id"] for m in markets.values() if m["swap"]) == swaps
    assert markets["BTC/USDT:USDT"]["contractSize"] == 0.01
    if "ETH-USDT-SWAP" in swaps:
        assert markets["ETH/USDT:USDT"]["contractSize"] == 0.1


async def test_paged_history_equals_the_recording_volume_in_base_after_ccxt(
    sim: RunningSim, okx: Any
) -> None:
    series = recorded(sim.ctx.store, *SWAP)
    sim.ctx.clock.set(int(series.close_time_ms[-1]) + DAY_MS, speed=0.0)
    span = series.take(slice(1_000, 4_000))  # 3,000 candles: ten pages of 300
    start, end = int(span.open_time_ms[0]), int(span.open_time_ms[-1]) + FIVE_MIN
    rows = await paginate(okx, "BTC/USDT:USDT", "5m", start, end, FIVE_MIN, limit=300)
    assert_same_candles(rows, span)


async def test_nothing_after_now_and_the_candle_at_now_is_open(sim: RunningSim) -> None:
    series = recorded(sim.ctx.store, *SWAP)
    k = 5_000
    now = int(series.open_time_ms[k]) + 150_000  # half-way through candle k
    sim.ctx.clock.set(now, speed=0.0)
    params = {"instId": "BTC-USDT-SWAP", "bar": "5m", "limit": "3"}
    async with httpx.AsyncClient(base_url=sim.url) as client:
        body = (await client.get("/okx/api/v5/market/candles", params=params)).json()
    rows = body["data"]
    assert [int(r[0]) for r in rows] == [int(t) for t in series.open_time_ms[k - 2 : k + 1][::-1]]
    assert [r[8] for r in rows] == ["0", "1", "1"]
    closed = rows[1]
    assert float(closed[4]) == series.close[k - 1]
    assert float(closed[5]) == pytest.approx(series.volume[k - 1] / 0.01)  # contracts
    assert float(rows[0][6]) < series.volume[k]  # the open candle's volume is still growing


async def test_ticker_is_the_last_24_hours_at_the_clock(sim: RunningSim, okx: Any) -> None:
    series = recorded(sim.ctx.store, *SWAP)
    k = 10_000
    now = int(series.open_time_ms[k])  # candle k has just opened: last = its open
    sim.ctx.clock.set(now, speed=0.0)
    ticker = await okx.fetch_ticker("BTC/USDT:USDT")
    day = series.between(now - DAY_MS, now)
    assert ticker["last"] == series.open[k]
    assert ticker["open"] == day.open[0]
    assert ticker["high"] == max(day.high.max(), series.open[k])
    assert ticker["low"] == min(day.low.min(), series.open[k])
    assert ticker["baseVolume"] == pytest.approx(day.volume.sum() / 0.01)  # CCXT: contracts
    assert ticker["timestamp"] == now


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"instId": "NOPE-USDT-SWAP", "bar": "5m"}, "51001"),
        ({"instId": "BTC-USDT-SWAP", "bar": "1D"}, "51000"),  # Hong Kong days: not recorded
        ({"instId": "BTC-USDT-SWAP", "bar": "5m", "limit": "x"}, "51000"),
        ({"bar": "5m"}, "50014"),
    ],
)
async def test_bad_input_gets_okx_error_bodies(
    sim: RunningSim, params: dict[str, str], code: str
) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/okx/api/v5/market/history-candles", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["data"] == []

"""Bybit through CCXT itself: markets, paged spot and linear history equal to the
recording, the ticker, and Bybit's retCode errors (HTTP 200, as Bybit answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import pytest

from klinewatch.domain.intervals import DAY_MS, HOUR_MS
from klinewatch.sim.faults import Fault, FaultKind
from klinewatch.sim.testing import RunningSim
from klinewatch.sim.venues.ccxt_urls import ccxt_api_urls
from tests.sim.venues.conftest import assert_same_candles, paginate, recorded


@pytest.fixture
async def bybit(sim: RunningSim) -> AsyncIterator[Any]:
    urls = {"api": ccxt_api_urls("bybit", sim.url + "/bybit")}
    exchange = ccxt_async.bybit({"urls": urls, "enableRateLimit": False})
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_load_markets_lists_recorded_spot_and_linear_pairs(bybit: Any) -> None:
    markets = await bybit.load_markets()
    assert markets["BTC/USDT"]["spot"] is True
    assert markets["BTC/USDT:USDT"]["linear"] is True
    assert markets["BTC/USDT:USDT"]["id"] == "BTCUSDT"


@pytest.mark.parametrize(
    ("market", "symbol", "timeframe", "interval", "step_ms"),
    [
        ("spot", "BTC/USDT", "1h", "1h", HOUR_MS),
        ("futures", "BTC/USDT:USDT", "4h", "4h", 4 * HOUR_MS),
    ],
)
async def test_whole_series_paged_by_1000_equals_the_recording(
    sim: RunningSim, bybit: Any, market: str, symbol: str, timeframe: str, interval: str,
    step_ms: int,
) -> None:  # fmt: skip
    series = recorded(sim.ctx.store, "bybit", market, "BTCUSDT", interval)
    sim.ctx.clock.set(int(series.close_time_ms[-1]) + DAY_MS, speed=0.0)
    start, end = int(series.open_time_ms[0]), int(series.close_time_ms[-1]) + 1
    rows = await paginate(bybit, symbol, timeframe, start, end, step_ms, limit=1000)
    assert_same_candles(rows, series)


async def test_newest_page_stops_at_the_clock_with_the_open_candle_last(
    sim: RunningSim, bybit: Any
) -> None:
    series = recorded(sim.ctx.store, "bybit", "spot", "BTCUSDT", "1h")
    k = 3_000
    sim.ctx.clock.set(int(series.open_time_ms[k]) + 20 * 60_000, speed=0.0)
    rows = await bybit.fetch_ohlcv("BTC/USDT", "1h", limit=5)
    assert [r[0] for r in rows] == series.open_time_ms[k - 4 : k + 1].tolist()
    assert rows[-2][4] == series.close[k - 1]
    assert rows[-1][1] == series.open[k]
    assert rows[-1][5] < series.volume[k]  # a third of the hour has traded


async def test_ticker_follows_the_clock(sim: RunningSim, bybit: Any) -> None:
    series = recorded(sim.ctx.store, "bybit", "futures", "BTCUSDT", "4h")
    k = 2_000
    now = int(series.open_time_ms[k])
    sim.ctx.clock.set(now, speed=0.0)
    ticker = await bybit.fetch_ticker("BTC/USDT:USDT")
    day = series.between(now - DAY_MS, now)
    assert ticker["last"] == series.open[k]
    assert ticker["open"] == day.open[0]
    assert ticker["baseVolume"] == pytest.approx(day.volume.sum())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"category": "linear", "symbol": "NOPEUSDT", "interval": "240"}, "Not supported symbols"),
        ({"category": "linear", "symbol": "BTCUSDT", "interval": "7"}, "Invalid period!"),
        ({"category": "linear", "symbol": "BTCUSDT", "interval": "1"}, "Invalid period!"),
        ({"category": "nope", "symbol": "BTCUSDT", "interval": "240"}, "Illegal category"),
        ({"category": "linear", "symbol": "BTCUSDT", "interval": "240", "start": "x"}, "start"),
    ],
)
async def test_bad_input_gets_bybit_retcode_10001(
    sim: RunningSim, params: dict[str, str], message: str
) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/bybit/v5/market/kline", params=params)
    assert response.status_code == 200
    assert response.json()["retCode"] == 10001
    assert message in response.json()["retMsg"]


async def test_candle_faults_reach_the_venue_routes(sim: RunningSim) -> None:
    series = recorded(sim.ctx.store, "bybit", "futures", "BTCUSDT", "4h")
    sim.ctx.clock.set(int(series.close_time_ms[-1]) + DAY_MS, speed=0.0)
    sim.ctx.faults.add(Fault(FaultKind.DUPLICATE, route="/bybit/v5/market/kline", count=1))
    params = {"category": "linear", "symbol": "BTCUSDT", "interval": "240", "limit": "20"}
    async with httpx.AsyncClient(base_url=sim.url) as client:
        faulty = (await client.get("/bybit/v5/market/kline", params=params)).json()
        clean = (await client.get("/bybit/v5/market/kline", params=params)).json()
    assert len(faulty["result"]["list"]) == 22  # every 10th candle twice
    assert len(clean["result"]["list"]) == 20

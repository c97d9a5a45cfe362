"""Bitget through CCXT itself, over the recorded Binance series served under Bitget's
names: markets, history paged by 200 equal to the recording, tickers, error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import pytest

from klinewatch.domain.intervals import DAY_MS, HOUR_MS
from klinewatch.sim.testing import RunningSim
from klinewatch.sim.venues.ccxt_urls import ccxt_api_urls
from tests.sim.venues.conftest import assert_same_candles, paginate, recorded


@pytest.fixture
async def bitget(sim: RunningSim) -> AsyncIterator[Any]:
    urls = {"api": ccxt_api_urls("bitget", sim.url + "/bitget")}
    exchange = ccxt_async.bitget({"urls": urls, "enableRateLimit": False})
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_load_markets_lists_binance_symbols_as_bitget_spot_and_usdt_futures(
    sim: RunningSim, bitget: Any
) -> None:
    markets = await bitget.load_markets()
    spot = {m["id"] for m in markets.values() if m["spot"]}
    swaps = {m["id"] for m in markets.values() if m["swap"]}
    assert spot == set(sim.ctx.store.symbols("binance", "spot"))
    assert swaps == set(sim.ctx.store.symbols("binance", "futures"))
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01


@pytest.mark.parametrize(
    ("market", "symbol", "pair", "timeframe", "step_ms", "count"),
    [
        ("spot", "BTCUSDT", "BTC/USDT", "4h", 4 * HOUR_MS, 2_000),
        ("futures", "BTCUSDT", "BTC/USDT:USDT", "1d", DAY_MS, 10_000),
    ],
)
async def test_history_paged_by_200_equals_the_recording(
    sim: RunningSim, bitget: Any, market: str, symbol: str, pair: str, timeframe: str,
    step_ms: int, count: int,
) -> None:  # fmt: skip
    series = recorded(sim.ctx.store, "binance", market, symbol, timeframe)
    sim.ctx.clock.set(int(series.close_time_ms[-1]) + DAY_MS, speed=0.0)
    span = series.take(slice(0, count))
    start, end = int(span.open_time_ms[0]), int(span.close_time_ms[-1]) + 1
    rows = await paginate(bitget, pair, timeframe, start, end, step_ms, limit=200)
    assert_same_candles(rows, span)


async def test_recent_candles_stop_at_the_clock(sim: RunningSim, bitget: Any) -> None:
    series = recorded(sim.ctx.store, "binance", "spot", "BTCUSDT", "4h")
    k = 1_500
    sim.ctx.clock.set(int(series.open_time_ms[k]) + HOUR_MS, speed=0.0)
    rows = await bitget.fetch_ohlcv("BTC/USDT", "4h", limit=3)
    assert [r[0] for r in rows] == series.open_time_ms[k - 2 : k + 1].tolist()
    assert rows[1][4] == series.close[k - 1]
    assert rows[-1][5] < series.volume[k]


async def test_spot_and_futures_tickers(sim: RunningSim, bitget: Any) -> None:
    series = recorded(sim.ctx.store, "binance", "spot", "BTCUSDT", "1h")
    now = int(series.open_time_ms[-100])
    sim.ctx.clock.set(now, speed=0.0)
    ticker = await bitget.fetch_ticker("BTC/USDT")
    day = series.between(now - DAY_MS, now)
    assert ticker["last"] == series.open[-100]
    assert ticker["high"] == max(day.high.max(), series.open[-100])
    assert ticker["baseVolume"] == pytest.approx(day.volume.sum())
    futures = await bitget.fetch_ticker("BTC/USDT:USDT")
    assert futures["symbol"] == "BTC/USDT:USDT"
    assert futures["last"] > 0


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/spot/market/candles", {"symbol": "NOPEUSDT", "granularity": "4h"}, "40034"),
        ("/spot/market/candles", {"symbol": "BTCUSDT", "granularity": "7min"}, "40020"),
        ("/spot/market/history-candles", {"symbol": "BTCUSDT", "granularity": "4h"}, "40019"),
        ("/mix/market/candles", {"symbol": "BTCUSDT", "granularity": "1Dutc"}, "40019"),
        ("/mix/market/ticker", {"symbol": "BTCUSDT", "productType": "NOPE"}, "40020"),
    ],
)
async def test_bad_input_gets_bitget_error_bodies(
    sim: RunningSim, path: str, params: dict[str, str], code: str
) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/bitget/api/v2" + path, params=params)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["data"] is None

"""exchangeInfo completed from the candles, and tickers computed at the clock's time."""

from __future__ import annotations

import httpx
import pytest

from klinewatch.domain.intervals import HOUR_MS
from klinewatch.sim.store import replicate_symbols
from klinewatch.sim.testing import RunningSim
from tests.sim.recorded import csv_rows


def symbols(body: dict[str, list[dict[str, object]]]) -> dict[str, dict[str, object]]:
    return {str(s["symbol"]): s for s in body["symbols"]}


def test_spot_lists_the_snapshot_plus_symbols_that_have_candles(http: httpx.Client) -> None:
    listed = symbols(http.get("/api/v3/exchangeInfo").json())
    assert len(listed) > 1000  # the recorded snapshot
    kite = listed["KITEUSDT"]  # listed on Binance after the snapshot was taken
    assert (kite["status"], kite["baseAsset"], kite["quoteAsset"]) == ("TRADING", "KITE", "USDT")
    assert listed["ETHBTC"]["baseAssetPrecision"] == 8  # a snapshot entry, kept as recorded


def test_symbol_and_symbols_filters(http: httpx.Client) -> None:
    one = http.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"}).json()
    assert list(symbols(one)) == ["BTCUSDT"]
    two = http.get("/api/v3/exchangeInfo", params={"symbols": '["KITEUSDT","ETHBTC"]'}).json()
    assert list(symbols(two)) == ["KITEUSDT", "ETHBTC"]


def test_futures_lists_perpetuals_with_their_first_candle(http: httpx.Client) -> None:
    listed = symbols(http.get("/fapi/v1/exchangeInfo").json())
    space = listed["SPACEUSDT"]
    first = min(csv_rows("binance", "futures", "SPACEUSDT", i)[0][0] for i in ("1h", "5m", "1d"))
    assert space["contractType"] == "PERPETUAL" and space["status"] == "TRADING"
    assert space["onboardDate"] == first


def test_replicated_symbols_are_served_and_listed(core_sim: RunningSim, http: httpx.Client) -> None:
    replicate_symbols(core_sim.ctx.store, 3)
    listed = symbols(http.get("/api/v3/exchangeInfo").json())
    assert {"SIM0001USDT", "SIM0003USDT"} <= set(listed)
    q = {"interval": "1h", "startTime": 0, "limit": 5}
    alias = http.get("/api/v3/klines", params={**q, "symbol": "SIM0002USDT"}).json()
    assert alias == http.get("/api/v3/klines", params={**q, "symbol": "BTCUSDT"}).json()


def test_ticker_24hr_sums_the_last_day_of_candles(core_sim: RunningSim, http: httpx.Client) -> None:
    hours = csv_rows("binance", "spot", "KITEUSDT", "1h")
    now = hours[500][0]  # exactly at an hour's open: the previous 24 hours are closed
    core_sim.reset(now_ms=now)
    day = hours[476:500]
    body = http.get("/api/v3/ticker/24hr", params={"symbol": "KITEUSDT"}).json()
    assert body["symbol"] == "KITEUSDT" and body["openTime"] == now - 24 * HOUR_MS
    assert float(body["openPrice"]) == day[0][1]
    assert float(body["lastPrice"]) == hours[500][1]  # the hour just opened, at its open
    assert float(body["highPrice"]) == max(r[2] for r in day)
    assert float(body["volume"]) == pytest.approx(sum(r[5] for r in day))
    assert float(body["prevClosePrice"]) == hours[475][4]
    everything = http.get("/api/v3/ticker/24hr").json()
    assert {t["symbol"] for t in everything} >= {"KITEUSDT", "BTCUSDT"}


def test_ticker_price_is_the_last_close(core_sim: RunningSim, http: httpx.Client) -> None:
    """From the finest series (5m): at a candle's open the price is that open."""
    fives = csv_rows("binance", "futures", "SPACEUSDT", "5m")
    now = fives[100][0]
    core_sim.reset(now_ms=now)
    body = http.get("/fapi/v1/ticker/price", params={"symbol": "SPACEUSDT"}).json()
    assert float(body["price"]) == fives[100][1] and body["time"] == now
    core_sim.ctx.clock.set(fives[100][6] + 1, speed=0)  # closed, the next just opened
    body = http.get("/fapi/v1/ticker/price", params={"symbol": "SPACEUSDT"}).json()
    assert float(body["price"]) == fives[101][1]
    spot = http.get("/api/v3/ticker/price", params={"symbols": '["BTCUSDT"]'}).json()
    assert list(spot[0]) == ["symbol", "price"]

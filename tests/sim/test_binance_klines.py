"""Binance klines as served: paging reproduces the recorded series exactly, with Binance's
startTime/endTime/limit semantics, row types, and the still-open candle."""

from __future__ import annotations

import httpx
import pytest

from klinewatch.domain.intervals import HOUR_MS, MINUTE_MS
from klinewatch.sim.testing import RunningSim
from tests.sim.recorded import Row, csv_rows, served

SPOT, FUTURES = "/api/v3/klines", "/fapi/v1/klines"


def page(http: httpx.Client, path: str, **params: object) -> list[Row]:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return [served(row) for row in response.json()]


def page_all(http: httpx.Client, path: str, symbol: str, interval: str, limit: int) -> list[Row]:
    rows: list[Row] = []
    since = 0
    while batch := page(http, path, symbol=symbol, interval=interval, startTime=since, limit=limit):
        assert len(batch) <= limit
        rows += batch
        since = batch[-1][0] + 1
    return rows


@pytest.mark.parametrize(
    ("path", "market", "symbol", "interval", "limit"),
    [
        (SPOT, "spot", "KITEUSDT", "1h", 1000),
        (SPOT, "spot", "BTCUSDT", "4h", 1000),
        (FUTURES, "futures", "DOTUSDT", "1m", 1500),  # every field recorded: counts, taker
        (FUTURES, "futures", "SPACEUSDT", "1h", 99),
    ],
)
def test_paging_forward_reproduces_the_recorded_series_exactly(
    http: httpx.Client, path: str, market: str, symbol: str, interval: str, limit: int
) -> None:
    expected = csv_rows("binance", market, symbol, interval)
    assert page_all(http, path, symbol, interval, limit) == expected


def test_without_times_the_newest_500_up_to_now(http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "BTCUSDT", "4h")
    assert page(http, SPOT, symbol="BTCUSDT", interval="4h") == expected[-500:]
    assert page(http, SPOT, symbol="BTCUSDT", interval="4h", limit=7) == expected[-7:]


def test_end_time_alone_pages_backwards_from_it(http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    end = expected[1000][0]
    assert (
        page(http, SPOT, symbol="KITEUSDT", interval="1h", endTime=end, limit=10)
        == (expected[991:1001])
    )


def test_start_and_end_bound_open_times_inclusively(http: httpx.Client) -> None:
    expected = csv_rows("binance", "futures", "SPACEUSDT", "1h")
    start, end = expected[10][0], expected[20][0]
    assert (
        page(http, FUTURES, symbol="SPACEUSDT", interval="1h", startTime=start, endTime=end)
        == (expected[10:21])
    )
    # a start inside a candle begins with the next candle, as on Binance
    assert (
        page(http, FUTURES, symbol="SPACEUSDT", interval="1h", startTime=start + 1, limit=2)
        == (expected[11:13])
    )
    assert (
        page(http, FUTURES, symbol="SPACEUSDT", interval="1h", startTime=start, limit=3)
        == (expected[10:13])
    )


def test_a_symbol_without_that_interval_recorded_gives_an_empty_page(http: httpx.Client) -> None:
    assert http.get(SPOT, params={"symbol": "BTCUSDT", "interval": "1s"}).json() == []
    assert http.get(SPOT, params={"symbol": "ETHBTC", "interval": "1h"}).json() == []


def test_nothing_after_now_and_the_open_candle_is_partial_pro_rata(core_sim: RunningSim) -> None:
    """KITEUSDT has nothing finer than 1h in the data: the open hour is scaled pro rata."""
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    target = expected[100]
    core_sim.reset(now_ms=target[0] + 15 * MINUTE_MS)  # a quarter into the hour
    with httpx.Client(base_url=core_sim.url) as http:
        rows = page(http, SPOT, symbol="KITEUSDT", interval="1h", limit=5)
    assert rows[:4] == expected[96:100]
    open_row = rows[4]
    assert open_row[0] == target[0] and open_row[6] == target[6]
    assert open_row[5] == pytest.approx(target[5] * 0.25, rel=1e-8)
    assert open_row[4] == pytest.approx(target[1] + (target[4] - target[1]) * 0.25, abs=1e-8)
    assert target[3] <= open_row[3] <= open_row[2] <= target[2]


def test_the_open_candle_is_built_from_finer_candles_and_closes_as_time_moves(
    core_sim: RunningSim,
) -> None:
    """BTCUSDT 4h with 1h recorded: 2.5 hours in, the 4h candle is two closed hours plus
    half of the third; once the clock passes its close it is the recorded 4h candle."""
    four = csv_rows("binance", "spot", "BTCUSDT", "4h")
    hours = {row[0]: row for row in csv_rows("binance", "spot", "BTCUSDT", "1h")}
    target = next(r for r in four[-200:] if all(r[0] + i * HOUR_MS in hours for i in range(4)))
    h1, h2, h3 = (hours[target[0] + i * HOUR_MS] for i in range(3))
    core_sim.reset(now_ms=target[0] + 150 * MINUTE_MS)
    with httpx.Client(base_url=core_sim.url) as http:
        open_row = page(http, SPOT, symbol="BTCUSDT", interval="4h", limit=1)[0]
        assert open_row[0] == target[0] and open_row[6] == target[6]
        assert open_row[1] == h1[1]
        assert open_row[5] == pytest.approx(h1[5] + h2[5] + h3[5] * 0.5, rel=1e-9)
        assert open_row[2] >= max(h1[2], h2[2]) and open_row[3] <= min(h1[3], h2[3])
        core_sim.ctx.clock.advance(90 * MINUTE_MS)  # now exactly at the next open
        closed, newer = page(http, SPOT, symbol="BTCUSDT", interval="4h", limit=2)
    assert closed == target
    assert newer[0] == target[6] + 1 and newer[5] == 0.0  # the next one just opened

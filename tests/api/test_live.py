"""``WS /ws/market/{symbol}`` and the ticker: pushes arrive through Redis pub/sub (with
PostgreSQL) or in process (with SQLite); the scheduler's hook invalidates the cache."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from klinewatch.exchanges.port import Ticker
from klinewatch.services.ingestion import UpdateSummary
from tests.api.conftest import HOUR_MS, NOW_MS, Api

LAST_CLOSED = NOW_MS // HOUR_MS * HOUR_MS - HOUR_MS


def test_a_new_candle_reaches_subscribers_and_refreshes_the_cache(api: Api) -> None:
    series = api.sim.ctx.store.get("binance", "spot", "BTCUSDT", "1h")
    api.seed("BTCUSDT", "1h", until_ms=LAST_CLOSED)  # one candle behind
    before = api.klines(symbol="BTCUSDT", timeframe="1h", limit=3).json()["data"]
    assert before["data_source"] == "api"  # topped up: the exchange had the newest
    assert api.klines(symbol="BTCUSDT", timeframe="1h", limit=3).json()["data"]["data_source"] == (
        "cache"
    )
    with api.client.websocket_connect("/ws/market/BTC-USDT?timeframes=1h,4h") as ws:
        newest = series.take(series.open_time_ms == LAST_CLOSED)
        sent = api.run(api.ctx.live.publish_candles, "binance", "spot", "BTCUSDT", "1h", newest)
        assert sent >= 1
        message = json.loads(ws.receive_text())
        assert message["type"] == "kline"
        assert (message["symbol"], message["timeframe"]) == ("BTCUSDT", "1h")
        assert message["candle"]["open_time"] == "2025-06-01T11:00:00Z"
        assert message["candle"]["close"] == float(newest.close[0])

        ticker = Ticker("BTCUSDT", 104_000.5, 1.25, 105_000.0, 103_000.0, 10.0, 1e6, NOW_MS)
        api.run(api.ctx.live.publish_ticker, "binance", "spot", ticker, NOW_MS)
        pushed = json.loads(ws.receive_text())
        assert pushed["type"] == "ticker"
        assert pushed["ticker"]["last"] == 104_000.5
    after = api.klines(symbol="BTCUSDT", timeframe="1h", limit=3).json()["data"]
    assert after["data_source"] == "database"  # the push dropped the cached window
    served = api.get("/api/v1/market/ticker", symbol="BTCUSDT").json()["data"]
    assert (served["last"], served["data_source"]) == (104_000.5, "cache")


def test_the_scheduler_hook_pushes_what_an_update_stored(api: Api) -> None:
    api.seed("BTCUSDT", "1h", until_ms=LAST_CLOSED - HOUR_MS)
    assert api.klines(symbol="BTCUSDT", timeframe="1h", limit=2).status_code == 200  # follows it
    api.seed("BTCUSDT", "1h", until_ms=NOW_MS)  # what the scheduler would have stored
    with api.client.websocket_connect("/ws/market/BTCUSDT?timeframes=1h") as ws:
        summary = UpdateSummary("binance", "spot", "1h", pairs=1, candles_added=1)
        assert api.run(api.ctx.live.publish_update, summary) >= 1
        message = json.loads(ws.receive_text())
        assert message["candle"]["open_time"] == "2025-06-01T11:00:00Z"


def test_bad_stream_parameters_are_answered_then_closed(api: Api) -> None:
    with api.client.websocket_connect("/ws/market/BTCUSDT?timeframes=7x") as ws:
        error = json.loads(ws.receive_text())
        assert error["error"]["code"] == "INVALID_PARAMS"
        assert error["error"]["details"]["field"] == "timeframes"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1008


def test_the_ticker_comes_from_the_exchange_then_the_cache(api: Api) -> None:
    first = api.get("/api/v1/market/ticker", symbol="BTC/USDT").json()["data"]
    assert (first["data_source"], first["is_stale"], first["symbol"]) == ("api", False, "BTCUSDT")
    assert first["low_24h"] <= first["last"] <= first["high_24h"]
    assert api.get("/api/v1/market/ticker", symbol="BTCUSDT").json()["data"]["data_source"] == (
        "cache"
    )
    unknown = api.get("/api/v1/market/ticker", symbol="NOPEUSDT")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["field"] == "symbol"


def test_without_the_exchange_the_ticker_is_rebuilt_from_candles(sim: Any, api: Api) -> None:
    from klinewatch.sim.faults import Fault, FaultKind

    stored = api.seed("BTCUSDT", "1h", until_ms=NOW_MS)
    fast = {"market_data": {"health_check": {"timeout_s": 1, "interval_s": 5}}}
    assert api.put_config(fast).status_code == 200
    sim.ctx.faults.add(Fault(FaultKind.DOWN, exchange="binance"))
    for _ in range(3):
        api.run(api.ctx.failover.check, "binance")
    data = api.get("/api/v1/market/ticker", symbol="BTCUSDT").json()["data"]
    assert (data["data_source"], data["is_stale"]) == ("database", True)
    assert data["last"] == float(stored.close[-1])
    assert data["high_24h"] == float(stored.high[-24:].max())

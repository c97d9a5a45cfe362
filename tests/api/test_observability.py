"""``/health/market-data``, ``/metrics``, structured logs, and the start-up cache
warm-up (seed 001 sections 7.1 and 8)."""

from __future__ import annotations

import io
import sys
import time
from typing import Any

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from klinewatch.logs import configure_logging
from tests.api.conftest import NOW_MS, Api, running_api


def test_market_data_health_lists_every_component(api: Api) -> None:
    answer = api.get("/health/market-data")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["status"] == "healthy"
    assert data["current_exchange"] == "binance"
    components = data["components"]
    assert components["database"]["status"] == "healthy"
    assert components["cache"] == {
        "status": "healthy",
        "backend": "redis" if api.redis else "memory",
    }
    assert {f"exchange_{e}" for e in ("binance", "okx", "bybit", "bitget")} <= set(components)


def test_metrics_count_requests_cache_hits_and_candles(api: Api) -> None:
    for _ in range(3):
        assert api.klines(symbol="BTCUSDT", timeframe="1h", limit=20).status_code == 200
    text = api.get("/metrics").text
    route = 'method="GET",route="/api/v1/market/klines",status="200"'
    assert f"klinewatch_http_requests_total{{{route}}} 3.0" in text
    assert 'klinewatch_http_request_duration_seconds_bucket{le="0.001",' in text or (
        "klinewatch_http_request_duration_seconds_bucket" in text
    )
    assert 'klinewatch_cache_hits_total{kind="klines"} 2.0' in text
    assert 'klinewatch_cache_misses_total{kind="klines"} 1.0' in text
    assert 'klinewatch_answers_total{kind="klines",source="api"} 1.0' in text
    labels = 'exchange="binance",interval="1h",market_type="spot"'
    written = f"klinewatch_candles_written_total{{{labels}}}"
    assert f"{written} 20.0" in text
    weight = [line for line in text.splitlines() if line.startswith("klinewatch_exchange_weight")]
    assert any(float(line.rsplit(" ", 1)[1]) > 0 for line in weight)


def test_logs_carry_exchange_symbol_and_timeframe(api: Api) -> None:
    with capture_logs() as logs:
        api.klines(symbol="ETHUSDT", timeframe="4h", limit=5)
    fetched = [e for e in logs if e["event"] == "klines_fetched"]
    assert fetched and fetched[0] | {"exchange": "binance", "symbol": "ETHUSDT"} == fetched[0]
    assert fetched[0]["timeframe"] == "4h"


def test_json_logs_are_one_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from klinewatch.logs import get_logger

    sink = io.StringIO()
    previous = structlog.get_config()
    monkeypatch.setattr(sys, "stderr", sink)
    configure_logging("INFO", "json")
    try:
        get_logger("t").info("klines_served", exchange="binance", symbol="BTCUSDT", timeframe="1h")
    finally:
        structlog.configure(**previous)
    event = orjson.loads(sink.getvalue().strip().splitlines()[-1])
    assert event["event"] == "klines_served"
    assert (event["exchange"], event["symbol"], event["timeframe"]) == ("binance", "BTCUSDT", "1h")


def test_the_hot_pairs_are_warmed_at_start(sim: Any, database_url: str) -> None:
    with running_api(sim, database_url, background=True) as api:
        task = api.ctx.tasks["warm_up"]
        deadline = time.monotonic() + 30
        while not task.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert task.done() and task.result() == 1  # the sample has BTCUSDT 1h spot only
        answer = api.klines(symbol="BTC/USDT", timeframe="1h")
        assert answer.json()["data"]["data_source"] == "cache"
        assert len(answer.json()["data"]["candles"]) == 200
        assert answer.json()["data"]["candles"][-1]["close_time"] == "2025-06-01T11:59:59Z"
        assert api.ctx.tasks["health_checks"].done() is False
    assert NOW_MS > 0

"""Exchange failover (seed 001 section 3.3) against the simulator: its Binance goes down
(fault ``down``) while its OKX (the CCXT client) stays up. Checks are driven by the
test (``check_all``) rather than waited for; each failing probe ends at the configured
1 s timeout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from klinewatch.sim.faults import Fault, FaultKind
from tests.api.conftest import Api, running_api


@pytest.fixture
def api(sim: Any, database_url: str) -> Iterator[Api]:
    with running_api(sim, database_url) as running:
        update = {"market_data": {"health_check": {"timeout_s": 1, "interval_s": 5}}}
        assert running.put_config(update).status_code == 200
        yield running


def check(api: Api) -> str:
    current: str = api.run(api.ctx.failover.check_all)
    return current


def current_exchange(api: Api) -> str:
    value: str = api.get("/api/v1/system/config").json()["data"]["current_exchange"]
    return value


def test_binance_down_switches_within_three_checks_and_back_after_two(api: Api) -> None:
    assert check(api) == "binance"
    api.sim.ctx.faults.add(Fault(FaultKind.DOWN, exchange="binance"))
    with capture_logs() as logs:
        assert [check(api) for _ in range(3)] == ["binance", "binance", "okx"]
    assert current_exchange(api) == "okx"
    switch = [e for e in logs if e["event"] == "exchange_failover"]
    assert switch == [
        {
            "event": "exchange_failover",
            "exchange": "binance",
            "failover_to": "okx",
            "reason": "unhealthy",
            "log_level": "warning",
        }
    ]
    health = api.get("/health/market-data").json()["data"]
    assert health["current_exchange"] == "okx"
    assert health["components"]["exchange_binance"]["status"] == "unhealthy"
    assert "1 s" in health["components"]["exchange_binance"]["error"]
    assert health["components"]["exchange_okx"]["status"] == "healthy"
    metrics = api.get("/metrics").text
    assert 'klinewatch_exchange_failovers_total{from_exchange="binance",to="okx"} 1.0' in metrics
    assert 'klinewatch_exchange_health{exchange="binance"} 0.0' in metrics

    api.sim.ctx.faults.clear()
    assert check(api) == "okx"
    assert check(api) == "binance"
    assert current_exchange(api) == "binance"
    assert 'klinewatch_exchange_health{exchange="binance"} 1.0' in api.get("/metrics").text


def test_without_auto_failover_the_default_stays(api: Api) -> None:
    assert api.put_config({"market_data": {"auto_failover": False}}).status_code == 200
    api.sim.ctx.faults.add(Fault(FaultKind.DOWN, exchange="binance"))
    assert [check(api) for _ in range(3)] == ["binance"] * 3
    assert api.ctx.failover.is_healthy("binance") is False
    assert api.put_config({"market_data": {"auto_failover": True}}).status_code == 200
    assert current_exchange(api) == "okx"  # the change took effect without a restart


def test_a_request_without_an_exchange_uses_the_current_one(api: Api) -> None:
    api.sim.ctx.clock.set(1_748_410_200_000, speed=0)  # 2025-05-28T05:30Z, inside Bybit's data
    enabled = {"enabled_exchanges": ["binance", "bybit"]}
    assert api.put_config({"market_data": enabled}).status_code == 200
    api.sim.ctx.faults.add(Fault(FaultKind.DOWN, exchange="binance"))
    assert [check(api) for _ in range(3)][-1] == "bybit"
    answer = api.klines(symbol="BTC/USDT", timeframe="1h", limit=5)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["exchange"], data["symbol"], data["data_source"]) == ("bybit", "BTCUSDT", "api")
    bybit = api.sim.ctx.store.get("bybit", "spot", "BTCUSDT", "1h")
    newest = bybit.take(bybit.close_time_ms < 1_748_410_200_000).take(slice(-5, None))
    assert [c["close"] for c in data["candles"]] == newest.close.tolist()
    named = api.klines(symbol="BTCUSDT", timeframe="1h", limit=5, exchange="binance")
    assert named.status_code == 503  # unhealthy: not asked, and nothing stored
    assert named.json()["error"]["code"] == "EXCHANGE_UNAVAILABLE"


def test_with_every_exchange_down_the_default_is_used(api: Api) -> None:
    for venue in ("binance", "okx", "bybit", "bitget"):
        api.sim.ctx.faults.add(Fault(FaultKind.DOWN, exchange=venue))
    assert [check(api) for _ in range(3)] == ["binance"] * 3
    assert not any(api.ctx.failover.is_healthy(e) for e in ("binance", "okx", "bybit", "bitget"))


def test_a_new_default_exchange_applies_at_once(api: Api) -> None:
    assert api.put_config({"market_data": {"default_exchange": "bybit"}}).status_code == 200
    assert current_exchange(api) == "bybit"

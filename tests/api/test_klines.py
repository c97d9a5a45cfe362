"""``GET /api/v1/market/klines`` through cache -> database -> exchange on both stacks:
where each answer came from, exact values, stale answers after a 429 or an outage,
Redis dying mid-test, and bad input refused with nothing stored changed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import func, select

from klinewatch.clock import ms_to_datetime
from klinewatch.domain.candles import Candles
from klinewatch.sim.context import SimOptions
from klinewatch.sim.faults import Fault, FaultKind
from klinewatch.storage.engine import transaction
from klinewatch.storage.models import Kline, KlineRange, KlineSeries, SystemConfig
from tests.api.conftest import HOUR_MS, NOW_MS, Api, running_api

LAST_CLOSED_1H = NOW_MS // HOUR_MS * HOUR_MS - HOUR_MS  # 11:00, the 12:00 candle is open


def closed_series(api: Api, symbol: str = "BTCUSDT", interval: str = "1h") -> Candles:
    series = api.sim.ctx.store.get("binance", "spot", symbol, interval)
    return series.take(series.close_time_ms < NOW_MS)


def assert_candles_equal(body: dict[str, Any], expected: Candles) -> None:
    candles = body["data"]["candles"]
    assert len(candles) == len(expected)
    opens = [int(datetime.fromisoformat(c["open_time"]).timestamp() * 1000) for c in candles]
    assert opens == expected.open_time_ms.tolist()
    for name in ("open", "high", "low", "close", "volume"):
        assert [c[name] for c in candles] == getattr(expected, name).tolist(), name


def stored_counts(api: Api) -> tuple[int, int, int, str]:
    with transaction(api.ctx.runtime.sessions) as s:
        config = s.scalar(select(SystemConfig.market_data))
        return (
            s.scalar(select(func.count()).select_from(KlineSeries)) or 0,
            s.scalar(select(func.count()).select_from(Kline)) or 0,
            s.scalar(select(func.count()).select_from(KlineRange)) or 0,
            repr(config),
        )


def test_each_path_says_where_its_candles_came_from(api: Api) -> None:
    expected = closed_series(api)
    first = api.klines(symbol="BTC/USDT", timeframe="1h", limit=50)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True
    assert body["data"]["data_source"] == "api"
    assert body["data"]["is_stale"] is False
    assert body["data"]["symbol"] == "BTCUSDT"
    assert_candles_equal(body, expected.take(slice(-50, None)))
    assert body["data"]["candles"][-1]["open_time"] == "2025-06-01T11:00:00Z"

    again = api.klines(symbol="BTCUSDT", timeframe="1h", limit=50)
    assert again.json()["data"]["data_source"] == "cache"
    assert again.headers["X-Data-Source"] == "cache"
    assert again.json()["data"]["candles"] == body["data"]["candles"]

    fewer = api.klines(symbol="btc-usdt", timeframe="1h", limit=40)
    assert fewer.json()["data"]["data_source"] == "database"
    assert_candles_equal(fewer.json(), expected.take(slice(-40, None)))
    assert stored_counts(api)[:2] == (1, 50)


def test_a_database_behind_the_exchange_is_topped_up_from_it(api: Api) -> None:
    expected = closed_series(api)
    api.seed("BTCUSDT", "1h", until_ms=LAST_CLOSED_1H - 2 * HOUR_MS)  # three candles behind
    answer = api.klines(symbol="BTCUSDT", timeframe="1h", limit=200)
    assert answer.json()["data"]["data_source"] == "api"
    assert answer.json()["data"]["is_stale"] is False
    assert_candles_equal(answer.json(), expected.take(slice(-200, None)))
    assert _klines_requests(api) == 1


def test_windows_from_a_start_or_before_an_end(api: Api) -> None:
    expected = closed_series(api)
    api.seed("BTCUSDT", "1h", until_ms=NOW_MS)
    start = datetime(2024, 3, 1, 5, tzinfo=UTC)
    start_ms = int(start.timestamp() * 1000)
    forward = api.klines(symbol="BTCUSDT", timeframe="1h", start=start.isoformat(), limit=24)
    assert forward.json()["data"]["data_source"] == "database"
    assert_candles_equal(forward.json(), expected.between(start_ms, start_ms + 24 * HOUR_MS))

    end = datetime(2024, 3, 2, tzinfo=UTC)
    back = api.klines(symbol="BTCUSDT", timeframe="1h", end=end.isoformat(), limit=10)
    end_ms = int(end.timestamp() * 1000)
    assert_candles_equal(back.json(), expected.between(end_ms - 10 * HOUR_MS, end_ms))

    both = api.klines(
        symbol="BTCUSDT", timeframe="1h", start=start_ms, end=start_ms + 5 * HOUR_MS, limit=1000
    )
    assert_candles_equal(both.json(), expected.between(start_ms, start_ms + 5 * HOUR_MS))

    future = api.klines(symbol="BTCUSDT", timeframe="1h", start="2030-01-01T00:00:00Z")
    assert future.status_code == 404
    assert future.json()["error"]["code"] == "DATA_NOT_AVAILABLE"


def test_a_missing_historical_window_is_fetched_and_kept(api: Api) -> None:
    expected = closed_series(api)
    start_ms = int(datetime(2023, 7, 1, tzinfo=UTC).timestamp() * 1000)
    first = api.klines(symbol="BTCUSDT", timeframe="1h", start=start_ms, limit=100)
    assert first.json()["data"]["data_source"] == "api"
    assert_candles_equal(first.json(), expected.between(start_ms, start_ms + 100 * HOUR_MS))
    window = api.klines(symbol="BTCUSDT", timeframe="1h", start=start_ms + HOUR_MS, limit=99)
    assert window.json()["data"]["data_source"] == "database"


def test_a_429_leads_to_stale_answers_not_errors(sim: Any, database_url: str) -> None:
    sim.reset(now_ms=NOW_MS, options=SimOptions(spot_weight_per_min=2))
    with running_api(sim, database_url, http_timeout_s=1.0) as api:
        stored = api.seed("BTCUSDT", "1h", until_ms=LAST_CLOSED_1H - 2 * HOUR_MS)
        first = api.klines(symbol="BTCUSDT", timeframe="1h", limit=100)
        assert first.status_code == 200, first.text
        data = first.json()["data"]
        assert (data["data_source"], data["is_stale"]) == ("database", True)
        assert_candles_equal(first.json(), stored.take(slice(-100, None)))
        assert api.sim.ctx.stats.snapshot()["totals"]["429"] >= 1
        assert api.run(api.ctx.marks.until_ms, "binance") is not None

        klines_asked = _klines_requests(api)
        again = api.klines(symbol="BTCUSDT", timeframe="1h", limit=100)
        assert (again.json()["data"]["data_source"], again.json()["data"]["is_stale"]) == (
            "database",
            True,
        )
        assert _klines_requests(api) == klines_asked  # marked: the exchange is left alone

        assert api.put_config({"market_data": {"max_stale_age_s": 3600}}).status_code == 200
        too_old = api.klines(symbol="BTCUSDT", timeframe="1h", limit=100)
        assert too_old.status_code == 429
        assert too_old.json()["error"]["code"] == "RATE_LIMITED"
        assert int(too_old.headers["Retry-After"]) > 0


def _klines_requests(api: Api) -> int:
    """Klines requests the simulator has received from every client."""
    clients = api.sim.ctx.stats.snapshot()["clients"]
    return sum(
        stats["requests"]
        for routes in clients.values()
        for route, stats in routes.items()
        if route.startswith("/api/v3/klines")
    )


def test_an_exchange_outage_serves_the_database_marked_stale(sim: Any, database_url: str) -> None:
    with running_api(sim, database_url, http_timeout_s=1.0) as api:
        api.seed("BTCUSDT", "1h", until_ms=LAST_CLOSED_1H - 5 * HOUR_MS)
        sim.ctx.faults.add(Fault(FaultKind.HTTP_503, route="/api/v3/klines"))
        answer = api.klines(symbol="BTCUSDT", timeframe="1h", limit=10)
        assert answer.status_code == 200
        assert (answer.json()["data"]["data_source"], answer.json()["data"]["is_stale"]) == (
            "database",
            True,
        )
        nothing = api.klines(symbol="ETHUSDT", timeframe="4h", limit=10)
        assert nothing.status_code == 503
        assert nothing.json()["error"]["code"] in {"EXCHANGE_UNAVAILABLE", "NETWORK_ERROR"}
        assert "Traceback" not in nothing.text


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the Redis stack
def test_stopping_redis_mid_test_leaves_every_endpoint_answering(
    sim: Any, database_url: str
) -> None:
    with running_api(sim, database_url) as api:
        api.seed("BTCUSDT", "1h", until_ms=NOW_MS)
        assert api.klines(symbol="BTCUSDT", timeframe="1h").json()["data"]["data_source"] == (
            "database"
        )
        assert api.klines(symbol="BTCUSDT", timeframe="1h").json()["data"]["data_source"] == (
            "cache"
        )
        assert api.redis is not None
        api.redis.stop()
        for _ in range(2):
            answer = api.klines(symbol="BTCUSDT", timeframe="1h")
            assert answer.status_code == 200
            assert answer.json()["data"]["data_source"] == "database"
        indicators = api.indicators(symbol="BTCUSDT", timeframe="1h", limit=100)
        assert indicators.status_code == 200
        assert indicators.json()["data"]["data_source"] == "database"
        assert api.get("/api/v1/market/ticker", symbol="BTCUSDT").status_code == 200
        assert api.get("/api/v1/system/config").status_code == 200
        assert api.put_config({"market_data": {"default_klines_limit": 150}}).status_code == 200
        health = api.get("/health/market-data").json()["data"]
        assert health["components"]["cache"]["status"] == "unhealthy"
        assert health["status"] == "degraded"
        api.redis.start()
        api.klines(symbol="BTCUSDT", timeframe="1h")
        assert api.klines(symbol="BTCUSDT", timeframe="1h").json()["data"]["data_source"] == (
            "cache"
        )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"exchange": "kraken"}, "exchange"),
        ({"symbol": "?!"}, "symbol"),
        ({"symbol": "NOPEUSDT"}, "symbol"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"start": "1960-01-01T00:00:00Z"}, "start"),
        ({"market_type": "margin"}, "market_type"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    api: Api, params: dict[str, Any], field: str
) -> None:
    api.seed("BTCUSDT", "1h", until_ms=NOW_MS - 200 * HOUR_MS)
    before = stored_counts(api)
    answer = api.klines(**{"symbol": "BTCUSDT", "timeframe": "1h", **params})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID_PARAMS"
    assert error["details"]["field"] == field
    assert field in error["message"] or field == "symbol"
    assert stored_counts(api) == before


def test_an_exchange_that_is_not_enabled_is_refused(api: Api) -> None:
    assert api.put_config({"market_data": {"enabled_exchanges": ["binance"]}}).status_code == 200
    answer = api.klines(symbol="BTCUSDT", timeframe="1h", exchange="okx")
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == "exchange"


def test_a_symbol_missing_from_the_stored_contracts_is_refused_without_asking(api: Api) -> None:
    from klinewatch.services.contracts import sync_contracts

    client = api.ctx.clients.get("binance", "spot")
    api.run(sync_contracts, api.ctx.runtime.sessions, client, {"USDT"})
    asked = _klines_requests(api)
    answer = api.klines(symbol="NOPEUSDT", timeframe="1h")
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == "symbol"
    assert _klines_requests(api) == asked


def test_last_update_and_candle_times_are_utc_iso(api: Api) -> None:
    data = api.klines(symbol="BTCUSDT", timeframe="1h", limit=2).json()["data"]
    assert data["last_update"].endswith("Z")
    assert datetime.fromisoformat(data["last_update"]) == ms_to_datetime(NOW_MS)
    closes = [c["close_time"] for c in data["candles"]]
    assert closes[-1] == "2025-06-01T11:59:59Z"
    assert np.all(np.diff([datetime.fromisoformat(c).timestamp() for c in closes]) == 3600)


def test_concurrent_misses_of_one_window_ask_the_exchange_once(api: Api) -> None:
    q = api.ctx.market.query(
        exchange=None, market_type="spot", symbol="BTCUSDT", timeframe="1h", limit=100
    )

    async def ten_at_once() -> list[tuple[bytes, str]]:
        return list(await asyncio.gather(*(api.ctx.market.klines_body(q) for _ in range(10))))

    answers = api.run(ten_at_once)
    assert sorted(source for _, source in answers) == ["api"] + ["cache"] * 9
    assert len({orjson.loads(body)["data"]["last_update"] for body, _ in answers}) == 1
    assert _klines_requests(api) == 1

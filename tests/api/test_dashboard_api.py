"""What the dashboard reads and starts, on both backends: the stored series, the latest
monitor transitions, and a backfill with its progress (token, validation, the record)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from klinewatch.services.volume_trap import scan
from klinewatch.sim.faults import Fault, FaultKind
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from tests.api.conftest import NOW_MS, TOKEN, Api
from tests.integration.test_volume_trap_scan import NOW, OM, add_contract, put


def data(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()["data"]


def start_backfill(api: Api, body: Any, token: str | None = TOKEN) -> Any:
    headers = {"X-API-Token": token} if token else {}
    return api.client.post("/api/v1/backfills", json=body, headers=headers)


def finished(api: Api, backfill_id: int) -> dict[str, Any]:
    """The record once it is no longer running (bounded: 300 polls)."""
    for _ in range(300):
        record: dict[str, Any] = data(api.get(f"/api/v1/backfills/{backfill_id}"))
        if record["state"] != "running":
            return record
        time.sleep(0.05)
    raise AssertionError("the backfill is still running")


def test_only_series_holding_candles_are_listed_with_their_span(api: Api) -> None:
    candles = api.seed("BTCUSDT", "4h", until_ms=NOW_MS)
    with transaction(api.ctx.runtime.sessions) as session:
        KlineRepository(session).ensure_series("binance", "spot", "EMPTYUSDT", "1h")
    listed = data(api.get("/api/v1/series"))
    assert [(s["symbol"], s["interval"]) for s in listed] == [("BTCUSDT", "4h")]
    first, last = int(candles.open_time_ms[0]), int(candles.open_time_ms[-1])
    assert listed[0]["first_open_time"].startswith(_iso_minute(first))
    assert listed[0]["last_open_time"].startswith(_iso_minute(last))
    assert data(api.get("/api/v1/series", market_type="futures")) == []
    bad = api.get("/api/v1/series", market_type="swap")
    assert (bad.status_code, bad.json()["error"]["details"]["field"]) == (400, "market_type")


def _iso_minute(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def test_the_latest_transitions_come_newest_first(api: Api) -> None:
    market, symbol, start, end = OM
    sessions = api.ctx.runtime.sessions
    add_contract(sessions, market, symbol)
    series = api.sim.ctx.store.get("binance", market, symbol, "1h")
    put(sessions, market, symbol, series.take(slice(start, end)))
    assert not scan(sessions, "binance", market, "1h", clock=NOW).errors
    rows = data(api.get("/api/volume-trap/transitions/", limit=3))
    assert len(rows) == 3
    times = [r["open_time"] for r in rows]
    assert times == sorted(times, reverse=True)
    assert {r["symbol"] for r in rows} == {"OMUSDT"}
    assert rows[0]["detector_values"] and rows[0]["to_status"]
    assert data(api.get("/api/volume-trap/transitions/", market_type="futures")) == []
    assert api.get("/api/volume-trap/transitions/", limit=0).status_code == 400


def test_a_backfill_fills_the_pair_and_reports_its_progress(api: Api) -> None:
    started = data(start_backfill(api, {"symbol": "eth/usdt", "interval": "4h", "days": 30}), 202)
    assert (started["symbol"], started["market_type"], started["state"]) == (
        "ETHUSDT",
        "spot",
        "running",
    )
    record = finished(api, started["id"])
    assert record["state"] == "done", record
    assert record["done"] == record["total"] >= 1
    assert record["summary"]["candles_added"] == 30 * 6
    listed = data(api.get("/api/v1/series"))
    assert ("ETHUSDT", "4h") in {(s["symbol"], s["interval"]) for s in listed}
    assert [r["id"] for r in data(api.get("/api/v1/backfills"))] == [started["id"]]


def test_a_backfill_of_an_unknown_pair_fails_with_its_reason(api: Api) -> None:
    started = data(start_backfill(api, {"symbol": "NOPEUSDT", "interval": "1h", "days": 2}), 202)
    record = finished(api, started["id"])
    assert (record["state"], record["error_field"]) == ("failed", "symbols")
    assert "NOPEUSDT" in record["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbol": "BTCUSDT", "days": 0}, "days"),
        ({"symbol": "BTCUSDT", "days": "30"}, "days"),
        ({"symbol": "BTC USDT"}, "symbol"),
        ({"symbol": "BTCUSDT", "interval": "7x"}, "interval"),
        ({"symbol": "BTCUSDT", "market_type": "swap"}, "market_type"),
        ({"symbol": "BTCUSDT", "exchange": "kraken"}, "exchange"),
        ({"symbol": "BTCUSDT", "since": "2024"}, "since"),
        (["BTCUSDT"], "(root)"),
    ],
)
def test_a_bad_backfill_request_is_refused_naming_the_field(
    api: Api, body: Any, field: str
) -> None:
    answer = start_backfill(api, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == field
    assert data(api.get("/api/v1/backfills")) == []


def test_a_backfill_needs_a_token_and_an_unknown_one_is_not_found(api: Api) -> None:
    assert start_backfill(api, {"symbol": "BTCUSDT"}, token=None).status_code == 401
    assert start_backfill(api, {"symbol": "BTCUSDT"}, token="wrong").status_code == 401
    missing = api.get("/api/v1/backfills/99")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "DATA_NOT_AVAILABLE")


def test_the_pages_and_their_assets_are_served(api: Api) -> None:
    page = api.get("/monitors/7")
    assert page.status_code == 200 and "js/pages/monitor.js" in page.text
    asset = page.text.split('href="', 2)[2].split('"', 1)[0]  # the stylesheet
    css = api.get(asset)
    assert css.status_code == 200 and "immutable" in css.headers["cache-control"]
    assert api.get("/static/nope/css/app.css").status_code == 404
    assert api.get("/docs").status_code == 200


def test_a_running_series_is_not_started_twice_and_too_many_wait(api: Api) -> None:
    api.sim.ctx.faults.add(Fault(FaultKind.LATENCY, route="/api/v3/klines", latency_ms=1500))
    pairs = ["BTCUSDT", "ETHUSDT", "OMUSDT", "PEPEUSDT"]
    ids = [data(start_backfill(api, {"symbol": s, "days": 2}), 202)["id"] for s in pairs]
    again = data(start_backfill(api, {"symbol": "ETHUSDT", "days": 5}), 202)
    assert again["id"] == ids[1] and again["days"] == 2  # the running one
    busy = start_backfill(api, {"symbol": "BIOUSDT", "days": 2})
    assert busy.status_code == 429 and int(busy.headers["Retry-After"]) >= 1
    api.sim.ctx.faults.clear()
    assert {finished(api, i)["state"] for i in ids} == {"done"}
    assert data(start_backfill(api, {"symbol": "BIOUSDT", "days": 2}), 202)["state"] == "running"

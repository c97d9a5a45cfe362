"""Each fault on request, by count or probability, through the admin API or the context."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from klinewatch.sim.faults import Fault, FaultKind, apply_candle_faults, parse_fault_spec
from klinewatch.sim.testing import RunningSim
from tests.sim.recorded import csv_rows, served

KLINES = "/api/v3/klines"
Q = {"symbol": "KITEUSDT", "interval": "1h", "limit": 20}


def add(http: httpx.Client, **fault: object) -> dict[str, object]:
    response = http.post("/__sim/faults", json=fault)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()["faults"][0]
    return created


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_errors_for_the_next_n_requests_of_a_route(http: httpx.Client, status: int) -> None:
    add(http, kind=str(status), route=KLINES, count=2)
    assert http.get("/api/v3/ping").status_code == 200  # another route is untouched
    assert [http.get(KLINES, params=Q).status_code for _ in range(3)] == [status, status, 200]
    assert http.get("/__sim/faults").json() == {"faults": []}  # used up


def test_probability_faults_fire_at_about_that_rate(
    core_sim: RunningSim, http: httpx.Client
) -> None:
    http.post("/__sim/faults", json={"faults": [{"kind": "503", "route": "/api/v3/ping",
                                                  "prob": 0.3}], "seed": 7})  # fmt: skip
    statuses = [http.get("/api/v3/ping").status_code for _ in range(200)]
    assert 40 <= statuses.count(503) <= 80
    assert set(statuses) == {200, 503}


def test_timeout_answers_later_than_the_client_waits(http: httpx.Client) -> None:
    add(http, kind="timeout", route=KLINES, count=1, sleep_s=5)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.get(KLINES, params=Q, timeout=0.3)
    assert time.monotonic() - started < 2
    assert http.get(KLINES, params=Q).status_code == 200


def test_a_slow_response_still_arrives_for_a_patient_client(http: httpx.Client) -> None:
    add(http, kind="timeout", route="/api/v3/time", count=1, sleep_s=0.3)
    started = time.monotonic()
    assert http.get("/api/v3/time").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_reset_closes_the_connection_without_a_response(
    core_sim: RunningSim, http: httpx.Client
) -> None:
    add(http, kind="reset", route=KLINES, count=1)
    with pytest.raises(httpx.ReadError) as caught:
        http.get(KLINES, params=Q)
    assert isinstance(caught.value.__context__.__context__, ConnectionResetError)  # type: ignore[union-attr]
    assert http.get(KLINES, params=Q).status_code == 200
    statuses = core_sim.ctx.stats.snapshot()["clients"]["127.0.0.1"][KLINES]["statuses"]
    assert statuses == {"0": 1, "200": 1}


def test_truncated_body_is_a_complete_response_with_broken_json(http: httpx.Client) -> None:
    whole = http.get(KLINES, params=Q).content
    add(http, kind="truncate", route=KLINES, count=1)
    cut = http.get(KLINES, params=Q)
    assert cut.status_code == 200 and cut.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        cut.json()


def test_latency_is_added(http: httpx.Client) -> None:
    add(http, kind="latency", route="/api/v3/time", count=1, latency_ms=250)
    started = time.monotonic()
    assert http.get("/api/v3/time").status_code == 200
    assert time.monotonic() - started >= 0.25


def test_an_exchange_down_answers_503_everywhere_and_only_there(http: httpx.Client) -> None:
    add(http, kind="down", exchange="binance")
    assert http.get("/api/v3/ping").status_code == 503
    assert (
        http.get("/fapi/v1/klines", params={"symbol": "ETHUSDT", "interval": "1h"}).status_code
        == 503
    )
    assert http.get("/archive/data/spot/monthly/klines/KITEUSDT/1h/x.zip").status_code == 404
    assert http.get("/__sim/stats").status_code == 200
    assert http.delete("/__sim/faults").status_code == 200
    assert http.get("/api/v3/ping").status_code == 200


def test_an_exchange_down_can_refuse_connections(http: httpx.Client) -> None:
    add(http, kind="down", exchange="binance_futures", mode="reset")
    with pytest.raises(httpx.ReadError):
        http.get("/fapi/v1/ping")
    assert http.get("/api/v3/ping").status_code == 200


def test_duplicated_candles(http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    add(http, kind="duplicate", route=KLINES, count=1)
    rows = [served(r) for r in http.get(KLINES, params={**Q, "startTime": 0}).json()]
    assert len(rows) == 22 and sorted(set(rows)) == expected[:20]
    assert rows[0] == rows[1] and rows[11] == rows[12]


def test_out_of_order_candles(http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    add(http, kind="out_of_order", route=KLINES, symbol="KITEUSDT", count=1)
    rows = [served(r) for r in http.get(KLINES, params={**Q, "startTime": 0}).json()]
    assert rows != expected[:20] and sorted(rows) == expected[:20]
    assert rows[0] == expected[1] and rows[1] == expected[0]


def test_missing_window_comes_back_when_the_clock_passes(
    core_sim: RunningSim, http: httpx.Client
) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    core_sim.reset(now_ms=expected[-1][6] + 1)
    start, end = expected[5][0], expected[8][0]
    add(http, kind="missing", route=KLINES, start_ms=start, end_ms=end,
        until_ms=expected[-1][6] + 60_000)  # fmt: skip
    rows = [served(r) for r in http.get(KLINES, params={**Q, "startTime": 0}).json()]
    assert rows == expected[:5] + expected[8:20]
    assert [served(r) for r in http.get(KLINES, params={**Q, "startTime": 0}).json()] == rows
    core_sim.ctx.clock.advance(60_000)
    rows = [served(r) for r in http.get(KLINES, params={**Q, "startTime": 0}).json()]
    assert rows == expected[:20]


def test_missing_window_comes_back_when_cleared(http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    fault = add(http, kind="missing", route=KLINES, start_ms=expected[0][0], end_ms=expected[2][0])
    assert len(http.get(KLINES, params={**Q, "startTime": 0}).json()) == 18
    assert http.delete(f"/__sim/faults/{fault['id']}").json() == {"deleted": True}
    assert len(http.get(KLINES, params={**Q, "startTime": 0}).json()) == 20


def test_bad_fault_requests_are_400(http: httpx.Client) -> None:
    assert http.post("/__sim/faults", json={"kind": "explode"}).status_code == 400
    assert http.post("/__sim/faults", json={"kind": "500", "prob": 2}).status_code == 400
    assert http.post("/__sim/faults", json={"kind": "missing"}).status_code == 400
    assert http.post("/__sim/faults", json={"kind": "500", "colour": "red"}).status_code == 400


def test_cli_fault_specs_parse_to_faults() -> None:
    fault = parse_fault_spec("route=/api/v3/klines,kind=500,prob=0.05")
    assert (fault.kind, fault.route, fault.prob, fault.count) == (
        FaultKind.HTTP_500,
        "/api/v3/klines",
        0.05,
        None,
    )
    assert parse_fault_spec("kind=down,exchange=okx,mode=reset").matches("/okx/api/v5/x")
    assert parse_fault_spec("kind=503,route=/archive/*/daily/*").matches(
        "/archive/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01-01.zip"
    )
    with pytest.raises(ValueError, match="key=value"):
        parse_fault_spec("kind")


def test_candle_fault_helper_for_venue_code(core_sim: RunningSim) -> None:
    candles = core_sim.ctx.store.get("binance", "spot", "KITEUSDT", "1h").take(slice(0, 4))
    core_sim.ctx.faults.add(Fault(FaultKind.OUT_OF_ORDER, route="/okx/", count=1))
    assert apply_candle_faults(core_sim.ctx, "/bybit/v5/market/kline", candles) is candles
    swapped = apply_candle_faults(core_sim.ctx, "/okx/api/v5/market/candles", candles)
    assert swapped.open_time_ms.tolist() == candles.open_time_ms[[1, 0, 3, 2]].tolist()

"""The simulated clock through ``/__sim/clock``: set, advance, speed, shift to now."""

from __future__ import annotations

import time

import httpx

from klinewatch.domain.intervals import DAY_MS, HOUR_MS
from klinewatch.sim.testing import RunningSim
from tests.sim.recorded import csv_rows, served

KITE = {"symbol": "KITEUSDT", "interval": "1h", "limit": 2}


def last_two(http: httpx.Client) -> list[tuple[int, ...]]:
    return [served(r) for r in http.get("/api/v3/klines", params=KITE).json()]


def test_by_default_the_clock_is_real_time(http: httpx.Client) -> None:
    server = http.get("/api/v3/time").json()["serverTime"]
    assert abs(server - time.time() * 1000) < 5_000


def test_set_and_advance_make_a_new_candle_close(http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    open_ms = expected[50][0]
    state = http.post("/__sim/clock", json={"now_ms": open_ms + 30 * 60_000, "speed": 0}).json()
    assert state["now_ms"] == open_ms + 30 * 60_000 and state["speed"] == 0
    assert http.get("/api/v3/time").json() == {"serverTime": open_ms + 30 * 60_000}
    before = last_two(http)
    assert before[0] == expected[49] and before[1][0] == open_ms and before[1] != expected[50]
    http.post("/__sim/clock", json={"advance_ms": 30 * 60_000})
    assert last_two(http) == [expected[50], last_two(http)[1]]
    assert last_two(http)[1][0] == expected[51][0]  # the next hour has opened


def test_iso_times_and_speed(http: httpx.Client) -> None:
    http.post("/__sim/clock", json={"now": "2025-04-13T00:00:00Z", "speed": 100})
    first = http.get("/__sim/clock").json()
    time.sleep(0.05)
    second = http.get("/__sim/clock").json()
    assert first["now"].startswith("2025-04-13T00:00")
    assert 4_000 <= second["now_ms"] - first["now_ms"] <= 60_000
    assert http.post("/__sim/clock", json={"now": "2025-04-13T00:00:00"}).status_code == 400
    assert http.post("/__sim/clock", json={"warp": 1}).status_code == 400
    reset = http.post("/__sim/clock", json={"reset": True}).json()
    assert abs(reset["now_ms"] - time.time() * 1000) < 5_000


def test_shift_to_now_ends_history_at_the_clock(core_sim: RunningSim, http: httpx.Client) -> None:
    expected = csv_rows("binance", "spot", "KITEUSDT", "1h")
    now = 1_900_000_000_000  # 2030-03-17, years after the data
    core_sim.reset(now_ms=now)
    state = http.post("/__sim/clock", json={"shift_to_now": True}).json()
    shift = state["shift_ms"]
    assert shift % DAY_MS == 0 and shift > 0
    end = core_sim.ctx.store.recorded_end_ms()
    assert end is not None and now <= end + shift < now + DAY_MS
    rows = [served(r) for r in http.get("/api/v3/klines", params={**KITE, "startTime": 0}).json()]
    assert [r[0] - shift for r in rows] == [r[0] for r in expected[:2]]
    assert [r[1:6] for r in rows] == [r[1:6] for r in expected[:2]]
    newest = http.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h", "limit": 1})
    open_ms = newest.json()[0][0]
    assert now - HOUR_MS < open_ms <= now  # the hour containing now, still open

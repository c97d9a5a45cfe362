"""Request weight as Binance counts it: per client in clock-aligned one-minute windows,
429 with Retry-After over budget, 418 for a client that keeps going, bans that lift and
escalate. The clock is frozen and moved by hand, so nothing sleeps."""

from __future__ import annotations

import re

import httpx
import pytest

from klinewatch.domain.intervals import MINUTE_MS
from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window boundary
KLINES = ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 1})


def get(
    http: httpx.Client, client: str = "a", path: str = KLINES[0], **params: object
) -> httpx.Response:
    query = params or KLINES[1]
    return http.get(path, params=query, headers={"X-Sim-Client": client})  # type: ignore[arg-type]


@pytest.fixture
def tight(core_sim: RunningSim) -> RunningSim:
    """Spot budget 10 (five klines requests), futures 12; bans from 120 s, unscaled."""
    core_sim.reset(T0 + 23_456, SimOptions(spot_weight_per_min=10, futures_weight_per_min=12))
    return core_sim


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    [
        ("/api/v3/ping", {}, 1),
        ("/api/v3/time", {}, 1),
        ("/api/v3/exchangeInfo", {}, 20),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 1000}, 2),
        ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ticker/24hr", {}, 80),
        ("/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ticker/price", {}, 4),
        ("/fapi/v1/exchangeInfo", {}, 1),
        ("/fapi/v1/klines", {"symbol": "ETHUSDT", "interval": "1h", "limit": 99}, 1),
        ("/fapi/v1/klines", {"symbol": "ETHUSDT", "interval": "1h", "limit": 100}, 2),
        ("/fapi/v1/klines", {"symbol": "ETHUSDT", "interval": "1h"}, 5),
        ("/fapi/v1/klines", {"symbol": "ETHUSDT", "interval": "1h", "limit": 1000}, 5),
        ("/fapi/v1/klines", {"symbol": "ETHUSDT", "interval": "1h", "limit": 1001}, 10),
        ("/fapi/v1/ticker/24hr", {"symbol": "ETHUSDT"}, 1),
        ("/fapi/v1/ticker/24hr", {}, 40),
        ("/fapi/v1/ticker/price", {"symbol": "ETHUSDT"}, 1),
        ("/fapi/v1/ticker/price", {}, 2),
    ],
)
def test_each_endpoint_weighs_as_documented(
    core_sim: RunningSim, http: httpx.Client, path: str, params: dict[str, object], weight: int
) -> None:
    core_sim.reset(T0)
    first, second = (http.get(path, params=params) for _ in range(2))  # type: ignore[arg-type]
    assert first.status_code == second.status_code == 200
    assert first.headers["X-MBX-USED-WEIGHT-1M"] == str(weight)
    assert second.headers["x-mbx-used-weight"] == str(2 * weight)
    stats = core_sim.ctx.stats.snapshot()["clients"]["127.0.0.1"][path]
    assert stats["weight"] == 2 * weight and stats["requests"] == 2


def test_past_the_budget_429_then_418_and_the_ban_lifts(
    tight: RunningSim, http: httpx.Client
) -> None:
    used = [int(get(http).headers["X-MBX-USED-WEIGHT-1M"]) for _ in range(5)]
    assert used == [2, 4, 6, 8, 10]
    over = get(http)
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "37"  # 23.456 s into the minute: 36.544 s left
    assert over.headers["X-MBX-USED-WEIGHT-1M"] == "12"
    assert over.json() == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 10 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    assert get(http, "b").status_code == 200  # another client has its own budget
    banned = get(http)
    assert banned.status_code == 418
    until = T0 + 23_456 + 120_000
    assert banned.json() == {
        "code": -1003,
        "msg": f"Way too much request weight used; IP banned until {until}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    }
    assert banned.headers["Retry-After"] == "120"
    assert "X-MBX-USED-WEIGHT-1M" in banned.headers
    tight.ctx.clock.advance(119_999)
    assert get(http).status_code == 418
    tight.ctx.clock.advance(1)
    lifted = get(http)
    assert lifted.status_code == 200 and lifted.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    totals = tight.ctx.stats.snapshot()["clients"]["a"]["/api/v3/klines"]
    assert (totals["429"], totals["418"], totals["requests"]) == (1, 2, 9)


def test_bans_double_for_repeat_offenders(tight: RunningSim, http: httpx.Client) -> None:
    durations = []
    for _ in range(3):
        while get(http).status_code == 200:
            pass
        ban = get(http)
        assert ban.status_code == 418
        match = re.search(r"banned until (\d+)", ban.json()["msg"])
        assert match is not None
        durations.append(int(match.group(1)) - tight.ctx.clock.now_ms())
        tight.ctx.clock.set(int(match.group(1)), speed=0.0)
    assert durations == [120_000, 240_000, 480_000]


def test_time_scale_shortens_window_retry_after_and_ban(
    core_sim: RunningSim, http: httpx.Client
) -> None:
    options = SimOptions(spot_weight_per_min=4, time_scale=0.01)  # 600 ms windows, 1.2 s ban
    core_sim.reset(T0, options)
    assert [get(http).status_code for _ in range(3)] == [200, 200, 429]
    assert get(http).status_code == 418
    assert get(http).headers["X-Sim-Retry-After-Ms"] == "1200"
    core_sim.ctx.clock.advance(1_200)
    assert get(http).status_code == 200


def test_windows_are_aligned_to_the_clock_minute(tight: RunningSim, http: httpx.Client) -> None:
    for _ in range(5):
        get(http)
    tight.ctx.clock.set(T0 + MINUTE_MS - 1, speed=0.0)  # still the same minute
    assert get(http).status_code == 429
    tight.ctx.clock.set(T0 + MINUTE_MS, speed=0.0)  # the told wait is over: new window
    response = get(http)
    assert response.status_code == 200 and response.headers["X-MBX-USED-WEIGHT-1M"] == "2"


def test_spot_and_futures_count_apart(tight: RunningSim, http: httpx.Client) -> None:
    for _ in range(5):
        get(http)
    futures = get(http, path="/fapi/v1/klines", symbol="ETHUSDT", interval="1h", limit=1)
    assert futures.status_code == 200 and futures.headers["X-MBX-USED-WEIGHT-1M"] == "1"


def test_exchange_info_shows_the_simulated_budget(tight: RunningSim, http: httpx.Client) -> None:
    assert http.get("/api/v3/exchangeInfo").status_code == 429  # weight 20 > budget 10
    body = http.get("/fapi/v1/exchangeInfo").json()
    weight = [r for r in body["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert weight[0]["limit"] == 12

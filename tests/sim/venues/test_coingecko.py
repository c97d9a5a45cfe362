"""CoinGecko: the demo key, 50 calls per clock minute then 429 with Retry-After, batches
of 250 ids from the recorded snapshots, and the empty tickers page."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from klinewatch.sim.testing import RunningSim

KEY = {"x-cg-demo-api-key": "demo-key"}


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def cg(sim: RunningSim) -> Iterator[httpx.Client]:
    """A client of its own (its own rate-limit window) with the demo key."""
    headers = KEY | {"X-Sim-Client": f"cg-{uuid.uuid4().hex[:8]}"}
    with httpx.Client(base_url=sim.url + "/coingecko/api/v3", headers=headers) as client:
        yield client


def snapshot(sim: RunningSim, day: str) -> list[dict[str, Any]]:
    path = sim.ctx.store.root / "coingecko" / f"coins_markets_usd_top250_{day}.json.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not recorded")
    coins: list[dict[str, Any]] = json.loads(gzip.decompress(path.read_bytes()))
    return coins


def test_every_route_needs_the_demo_key(sim: RunningSim, cg: httpx.Client) -> None:
    response = httpx.get(sim.url + "/coingecko/api/v3/ping")
    assert response.status_code == 401
    assert response.json()["status"]["error_code"] == 10002
    assert cg.get("/ping").json() == {"gecko_says": "(V3) To the Moon!"}


def test_a_configured_key_must_match_exactly(sim: RunningSim, cg: httpx.Client) -> None:
    sim.ctx.options.coingecko_api_key = "the-real-one"
    try:
        assert cg.get("/ping").status_code == 401
        assert cg.get("/ping", headers={"x-cg-demo-api-key": "the-real-one"}).status_code == 200
    finally:
        sim.ctx.options.coingecko_api_key = None


def test_the_51st_call_in_a_clock_minute_gets_429_until_the_minute_turns(
    sim: RunningSim, cg: httpx.Client
) -> None:
    minute = _ms("2022-08-20T10:00:00")
    sim.ctx.clock.set(minute + 1_000, speed=0.0)
    assert all(cg.get("/ping").status_code == 200 for _ in range(50))
    refused = cg.get("/ping")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "59"
    assert refused.json()["status"]["error_code"] == 429
    sim.ctx.clock.set(minute + 60_000, speed=0.0)
    assert cg.get("/ping").status_code == 200


def test_a_batch_of_250_ids_returns_each_recorded_coin(sim: RunningSim, cg: httpx.Client) -> None:
    coins = snapshot(sim, "2022-08-14")
    sim.ctx.clock.set(_ms("2022-08-20T00:00:00"), speed=0.0)
    ids = [c["id"] for c in coins]
    assert len(ids) == 250
    params = {"vs_currency": "usd", "ids": ",".join(ids), "per_page": "250"}
    body = cg.get("/coins/markets", params=params).json()
    assert len(body) == 250
    by_id = {c["id"]: c for c in body}
    assert all(by_id[c["id"]]["market_cap"] == c["market_cap"] for c in coins)
    caps = [c["market_cap"] for c in body if c["market_cap"] is not None]
    assert caps == sorted(caps, reverse=True)


def test_an_unknown_id_is_simply_absent(cg: httpx.Client) -> None:
    params = {"vs_currency": "usd", "ids": "bitcoin,not-a-coin-at-all"}
    assert [c["id"] for c in cg.get("/coins/markets", params=params).json()] == ["bitcoin"]


def test_more_than_250_ids_is_a_400(cg: httpx.Client) -> None:
    ids = ",".join(f"coin-{i}" for i in range(251))
    response = cg.get("/coins/markets", params={"vs_currency": "usd", "ids": ids})
    assert response.status_code == 400
    assert "error" in response.json()


def test_the_snapshot_follows_the_clock(sim: RunningSim, cg: httpx.Client) -> None:
    early, late = snapshot(sim, "2022-08-02"), snapshot(sim, "2022-08-14")
    params = {"ids": "bitcoin", "vs_currencies": "usd"}
    sim.ctx.clock.set(_ms("2022-08-05T00:00:00"), speed=0.0)
    assert (
        cg.get("/simple/price", params=params).json()["bitcoin"]["usd"] == early[0]["current_price"]
    )
    sim.ctx.clock.set(_ms("2022-08-15T00:00:00"), speed=0.0)
    assert (
        cg.get("/simple/price", params=params).json()["bitcoin"]["usd"] == late[0]["current_price"]
    )


def test_coins_list_with_and_without_platforms(cg: httpx.Client) -> None:
    plain = cg.get("/coins/list").json()
    full = cg.get("/coins/list", params={"include_platform": "true"}).json()
    assert len(plain) == len(full) > 10_000
    assert "platforms" not in plain[0]
    assert "platforms" in full[0]


def test_binance_tickers_is_an_empty_page_without_a_recorded_snapshot(
    sim: RunningSim, cg: httpx.Client
) -> None:
    if list((sim.ctx.store.root / "coingecko").glob("exchanges_binance_tickers*.json.gz")):
        pytest.skip("a tickers snapshot is recorded")
    assert cg.get("/exchanges/binance/tickers").json() == {"name": "Binance", "tickers": []}

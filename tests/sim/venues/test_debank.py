"""The DeBank-shaped price source: AccessKey, DeBank's token fields, prices that follow
the clock over the recorded Binance candles, and absent tokens."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from klinewatch.domain.intervals import HOUR_MS
from klinewatch.sim.testing import RunningSim
from tests.sim.venues.conftest import recorded

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
HOUR = 1_740_787_200_000  # 2025-03-01 00:00 UTC: inside every recorded BTC/ETH series


@pytest.fixture
def debank(sim: RunningSim) -> Iterator[httpx.Client]:
    headers = {"AccessKey": "test-key"}
    with httpx.Client(base_url=sim.url + "/debank/v1", headers=headers) as client:
        yield client


def test_accesskey_is_required(sim: RunningSim) -> None:
    response = httpx.get(sim.url + "/debank/v1/token", params={"chain_id": "eth", "id": "eth"})
    assert response.status_code == 401


def test_price_is_the_close_of_the_newest_closed_candle_and_follows_the_clock(
    sim: RunningSim, debank: httpx.Client
) -> None:
    hourly = recorded(sim.ctx.store, "binance", "spot", "BTCUSDT", "1h")
    k = int(hourly.open_time_ms.searchsorted(HOUR - HOUR_MS))
    params = {"chain_id": "eth", "id": "btc"}
    sim.ctx.clock.set(HOUR, speed=0.0)  # the hour (and its last 5 minutes) just closed
    token = debank.get("/token", params=params).json()
    assert token["price"] == hourly.close[k]
    assert (token["symbol"], token["decimals"], token["chain"]) == ("BTC", 8, "eth")
    sim.ctx.clock.set(HOUR + HOUR_MS, speed=0.0)
    assert debank.get("/token", params=params).json()["price"] == hourly.close[k + 1]


def test_list_by_ids_leaves_out_tokens_without_data(sim: RunningSim, debank: httpx.Client) -> None:
    sim.ctx.clock.set(HOUR, speed=0.0)
    ids = f"eth,{WETH},kite,no-such-token"  # KITE was listed in November 2025
    body = debank.get("/token/list_by_ids", params={"chain_id": "eth", "ids": ids}).json()
    prices = {t["id"]: t["price"] for t in body}
    assert set(prices) == {"eth", WETH}
    assert prices["eth"] == prices[WETH]


def test_a_single_unknown_token_is_404(debank: httpx.Client) -> None:
    response = debank.get("/token", params={"chain_id": "eth", "id": "no-such-token"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/token", {"chain_id": "mars", "id": "eth"}),
        ("/token", {"chain_id": "eth"}),
        ("/token/list_by_ids", {"chain_id": "eth", "ids": ",".join(["eth"] * 101)}),
    ],
)
def test_bad_input_is_a_400(debank: httpx.Client, path: str, params: dict[str, str]) -> None:
    response = debank.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["message"] == "Input payload validation failed"

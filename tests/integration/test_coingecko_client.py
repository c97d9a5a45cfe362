"""The CoinGecko client against the simulator over real HTTP (recorded real snapshots):
seed 000's contract tests in spirit, plus its retry table (429 waits Retry-After, 5xx
backs off, 401 stops at once, 400/404 are never retried)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from klinewatch.errors import ExchangeRejected
from klinewatch.exchanges.coingecko import (
    CoingeckoClient,
    CoingeckoKeyRejected,
    build_coingecko_client,
)
from klinewatch.sim.context import SimOptions
from klinewatch.sim.faults import Fault, FaultKind
from klinewatch.sim.testing import RunningSim

T = TypeVar("T")
MARKETS = "/coingecko/api/v3/coins/markets"


@pytest.fixture
def sim(sim_server: RunningSim) -> RunningSim:
    return sim_server  # a fresh simulator per test (tests/conftest.py)


def run(sim: RunningSim, work: Callable[[CoingeckoClient], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        client = build_coingecko_client(f"{sim.url}/coingecko/api/v3", kw.pop("key", "k"), **kw)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def route_stats(sim: RunningSim, path: str) -> dict[str, Any]:
    routes: dict[str, Any] = sim.ctx.stats.snapshot()["clients"]["127.0.0.1"]
    return dict(routes[path])


def test_fetch_coins_list_success(sim: RunningSim) -> None:
    coins = run(sim, lambda c: c.fetch_coins_list())
    assert len(coins) == 12_470  # the recorded 2024-01 list
    by_id = {c.id: c for c in coins}
    assert (by_id["bitcoin"].symbol, by_id["bitcoin"].name) == ("btc", "Bitcoin")
    assert sum(1 for c in coins if c.symbol == "pepe") == 13


def test_simple_prices_leave_out_ids_the_source_does_not_know(sim: RunningSim) -> None:
    prices = run(sim, lambda c: c.fetch_simple_prices(["bitcoin", "ETHEREUM", "no-such-coin"]))
    assert set(prices) == {"bitcoin", "ethereum"}
    assert all(isinstance(p, Decimal) and p > 0 for p in prices.values())


def test_simple_prices_of_nothing_make_no_call(sim: RunningSim) -> None:
    assert run(sim, lambda c: c.fetch_simple_prices([])) == {}
    assert sim.ctx.stats.snapshot()["totals"]["requests"] == 0


def test_markets_carry_cap_fdv_volume_and_rank(sim: RunningSim) -> None:
    markets = run(sim, lambda c: c.fetch_markets(["bitcoin", "no-such-coin"]))
    assert [m.id for m in markets] == ["bitcoin"]
    btc = markets[0]
    assert btc.market_cap is not None and btc.market_cap > 0
    assert btc.fdv is not None and btc.fdv >= btc.market_cap
    assert btc.market_cap_rank == 1
    assert btc.last_updated is not None and btc.last_updated.tzinfo is not None


def test_binance_tickers_are_read_page_by_page(sim: RunningSim) -> None:
    # No real snapshot of CoinGecko's Binance tickers is recorded: the simulator
    # answers an empty list, as CoinGecko does past the last page.
    assert run(sim, lambda c: c.fetch_exchange_tickers("binance")) == []


def test_a_429_waits_its_retry_after_then_succeeds(sim: RunningSim) -> None:
    sim.reset(options=SimOptions(coingecko_calls_per_min=2, time_scale=0.05))  # 3 s windows
    sim.ctx.clock.set(1_700_000_040_000, speed=1.0)  # a window has just begun: 3 calls fit in it

    async def three(c: CoingeckoClient) -> list[int]:
        return [len(await c.fetch_markets(["bitcoin"])) for _ in range(3)]

    assert run(sim, three, calls_per_min=1000) == [1, 1, 1]
    stats = route_stats(sim, MARKETS)
    assert stats["429"] == 1
    assert stats["statuses"] == {"200": 3, "429": 1}


def test_a_rejected_key_stops_at_once_with_a_clear_message(sim: RunningSim) -> None:
    sim.reset(options=SimOptions(coingecko_api_key="the-right-key"))
    with pytest.raises(CoingeckoKeyRejected) as caught:
        run(sim, lambda c: c.fetch_coins_list(), key="a-wrong-key")
    assert "KLINEWATCH_COINGECKO_API_KEY" in caught.value.message
    assert sim.ctx.stats.snapshot()["totals"]["requests"] == 1  # never retried


def test_a_5xx_is_retried_with_backoff(sim: RunningSim) -> None:
    sim.ctx.faults.add(Fault(FaultKind.HTTP_503, route=MARKETS, count=2))
    markets = run(sim, lambda c: c.fetch_markets(["ethereum"]))
    assert [m.id for m in markets] == ["ethereum"]
    assert route_stats(sim, MARKETS)["statuses"] == {"503": 2, "200": 1}


def test_a_bad_request_is_never_retried(sim: RunningSim) -> None:
    async def bad(c: CoingeckoClient) -> Any:
        return await c._get("coins/markets", {"vs_currency": "xyz"})

    with pytest.raises(ExchangeRejected):
        run(sim, bad)
    assert route_stats(sim, MARKETS)["statuses"] == {"400": 1}


def test_a_batch_that_keeps_failing_is_reported_and_the_next_goes_on(sim: RunningSim) -> None:
    sim.ctx.faults.add(Fault(FaultKind.HTTP_500, route=MARKETS, count=4))  # every attempt

    async def batches(c: CoingeckoClient) -> list[tuple[tuple[str, ...], int, bool]]:
        return [
            (b.ids, len(b.markets), b.error is not None)
            async for b in c.iter_market_batches(["bitcoin", "ethereum", "tether"], batch_size=2)
        ]

    assert run(sim, batches, batch_pause_s=0.0) == [
        (("bitcoin", "ethereum"), 0, True),
        (("tether",), 1, False),
    ]

"""The weight governor's books, with time injected: a ``FixedClock`` and a sleep that only
moves it, so every wait is exact and nothing sleeps for real."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from klinewatch.clock import FixedClock
from klinewatch.exchanges.binance.client import capabilities
from klinewatch.exchanges.binance.rest import Market, klines_weight
from klinewatch.exchanges.ratelimit import MemoryWeightLedger, WeightGovernor

WINDOW = 60_000
T0 = 1_700_000_040_000  # a window start (a multiple of one minute)
GUARD = 100  # the governor leaves this much of each window's start unused


class Time:
    """A clock and the sleep that advances it, recording every wait."""

    def __init__(self, start_ms: int) -> None:
        self.clock = FixedClock(start_ms)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(round(seconds * 1000))


def governor(
    time: Time, budget: int = 100, ledger: MemoryWeightLedger | None = None
) -> WeightGovernor:
    return WeightGovernor(
        key="binance-spot@test",
        budget_per_min=budget,
        margin=0.8,
        ledger=ledger or MemoryWeightLedger(),
        clock=time.clock,
        sleep=time.sleep,
    )


async def test_a_burst_fills_the_window_at_full_speed_then_waits_for_the_next() -> None:
    time = Time(T0 + 1_000)
    gov = governor(time)  # 100 x 80% = 80 per window
    for _ in range(40):
        await gov.acquire(2)
    assert time.sleeps == []  # 80 weight went out at once
    assert time.clock.now_ms() == T0 + 1_000
    await gov.acquire(2)
    assert time.clock.now_ms() == T0 + WINDOW + GUARD  # the next window, past its guard
    assert gov.stats.requests == 41 and gov.stats.weight == 82


async def test_a_request_waits_out_the_guard_at_the_start_of_a_window() -> None:
    time = Time(T0 + 30)
    gov = governor(time)
    await gov.acquire(1)
    assert time.clock.now_ms() == T0 + GUARD


async def test_the_header_corrects_the_books_upwards_only() -> None:
    time = Time(T0 + 1_000)
    gov = governor(time)
    await gov.acquire(10)
    await gov.observe(60)  # another process on the same IP used weight too
    window = gov.exchange_now_ms() // WINDOW
    assert await gov.ledger.used(gov.key, window) == 60
    await gov.observe(20)  # stale: requests in flight are in our books, not yet in theirs
    assert await gov.ledger.used(gov.key, window) == 60
    await gov.observe(None)
    assert await gov.ledger.used(gov.key, window) == 60
    await gov.acquire(20)  # 60 + 20 = 80 fits exactly
    assert time.sleeps == []
    await gov.acquire(1)
    assert time.clock.now_ms() == T0 + WINDOW + GUARD


async def test_an_answer_from_the_last_window_does_not_fill_the_next_one() -> None:
    time = Time(T0 + WINDOW - 500)
    gov = governor(time)  # 80 per window
    reserved = await gov.acquire(2)  # sent half a second before the turn of the minute
    time.clock.advance(1_000)  # answered in the next window (a busy machine is late)
    await gov.observe(78, reserved, 2)  # the header: the last window's total
    window = gov.exchange_now_ms() // WINDOW
    assert window == reserved + 1
    assert await gov.ledger.used(gov.key, window) == 2  # only itself, had it counted here
    for _ in range(39):
        await gov.acquire(2)
    assert time.sleeps == []  # the rest of this window's budget is still there
    await gov.acquire(2)
    assert time.clock.now_ms() == T0 + 2 * WINDOW + GUARD


async def test_an_answer_in_its_own_window_corrects_the_books() -> None:
    time = Time(T0 + 1_000)
    gov = governor(time)
    reserved = await gov.acquire(2)
    await gov.observe(70, reserved, 2)  # another process on the IP: the header wins
    assert await gov.ledger.used(gov.key, reserved) == 70
    await gov.acquire(10)
    await gov.acquire(1)
    assert time.clock.now_ms() == T0 + WINDOW + GUARD


async def test_a_429_pauses_every_caller_for_its_retry_after() -> None:
    time = Time(T0 + 1_000)
    gov = governor(time)
    await gov.acquire(1)
    await gov.rate_limited(7.5)
    await gov.acquire(1)
    assert time.clock.now_ms() == T0 + 1_000 + 7_500
    assert gov.stats.rate_limited == 1


async def test_a_418_ban_is_persisted_and_honoured_after_a_restart(tmp_path: Path) -> None:
    ban_file = tmp_path / "var" / "bans.json"
    time = Time(T0 + 1_000)
    gov = governor(time, ledger=MemoryWeightLedger(ban_file=ban_file))
    until = T0 + 5 * WINDOW + 1_234
    await gov.banned(until)
    assert json.loads(ban_file.read_text()) == {gov.key: until}

    # "restart": new books read from the file, a new governor, no request made before
    restarted = governor(time, ledger=MemoryWeightLedger(ban_file=ban_file))
    await restarted.acquire(1)
    assert time.clock.now_ms() == until
    assert restarted.stats.requests == 1


async def test_a_429_pause_is_not_written_to_the_ban_file(tmp_path: Path) -> None:
    ban_file = tmp_path / "bans.json"
    gov = governor(Time(T0 + 1_000), ledger=MemoryWeightLedger(ban_file=ban_file))
    await gov.rate_limited(3.0)
    assert not ban_file.exists()


async def test_a_weight_bigger_than_the_budget_is_refused() -> None:
    time = Time(T0 + 1_000)
    gov = governor(time, budget=10)  # 8 after the margin
    with pytest.raises(ValueError, match="can never fit"):
        await gov.acquire(9)
    assert gov.stats.requests == 0 and time.sleeps == []
    await gov.acquire(8)
    assert gov.stats.requests == 1


def cheapest_weight(market: Market, count: int, max_size: int) -> list[int]:
    """Least total weight to fetch 0..count candles, any split (dynamic programming)."""
    best = [0] + [10**9] * count
    for n in range(1, count + 1):
        best[n] = min(
            best[n - size] + klines_weight(market, size) for size in range(1, min(n, max_size) + 1)
        )
    return best


@pytest.mark.parametrize(
    ("market", "size", "max_size"), [("futures", 499, 1500), ("spot", 1000, 1000)]
)
def test_requests_come_in_the_cheapest_size(market: Market, size: int, max_size: int) -> None:
    caps = capabilities(market)
    assert caps.best_candles_per_request == size
    assert caps.request_sizes(2 * size + 7) == [size, size, 7]
    best = cheapest_weight(market, 2_100, max_size)
    for count in itertools.chain(range(1, 200), range(400, 2_100, 37)):
        sizes = caps.request_sizes(count)
        assert sum(sizes) == count
        assert max(sizes) <= caps.max_candles_per_request
        assert sum(caps.klines_weight(s) for s in sizes) == best[count], count


def test_the_futures_size_is_499_because_it_costs_2_where_500_costs_5() -> None:
    assert klines_weight("futures", 499) == 2
    assert klines_weight("futures", 500) == 5
    assert klines_weight("futures", 1000) == 5
    assert klines_weight("futures", 1001) == 10

"""Weight books in the real Redis at 127.0.0.1:6379, shared by governors that each hold
their own connection, as separate processes would. Every key lives under a random prefix
that the test removes at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from klinewatch.clock import FixedClock, SystemClock
from klinewatch.errors import RateLimited
from klinewatch.exchanges.binance.rest import BinanceRest
from klinewatch.exchanges.ratelimit import MemoryWeightLedger, WeightGovernor, WeightLedger
from klinewatch.exchanges.ratelimit_redis import RedisWeightLedger
from klinewatch.settings import Settings
from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.wiring import build_runtime

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("KLINEWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
BUDGET, TIME_SCALE = 100, 0.02  # 100 weight per 1.2 s window in the simulator
WINDOW_MS = round(60_000 * TIME_SCALE)
T0 = 1_700_000_040_000


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"kwtest:{uuid.uuid4().hex}:"
    yield name
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{name}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset(options=SimOptions(spot_weight_per_min=BUDGET, time_scale=TIME_SCALE))
    # Parse the series now: parsing it on first request holds the GIL for a second, which
    # would stall this process's event loop mid-test, not the governors.
    sim_module.ctx.store.get("binance", "spot", "OMUSDT", "1h")
    return sim_module


def ledger(prefix: str, clock: FixedClock | None = None) -> RedisWeightLedger:
    """Books with a connection of their own, as another process would have."""
    return RedisWeightLedger.from_url(REDIS_URL, prefix=prefix, clock=clock or SystemClock())


class Caller:
    """One "process": its own governor, books connection and HTTP client, all from the
    same client identity (one IP, as far as the exchange can tell)."""

    def __init__(self, sim: RunningSim, books: WeightLedger, seen: list[int]) -> None:
        self.governor = WeightGovernor(
            key="binance-spot@sim", budget_per_min=BUDGET, ledger=books, window_ms=WINDOW_MS
        )

        async def record(response: httpx.Response) -> None:
            used = response.headers.get("x-mbx-used-weight-1m")
            if used is not None:
                seen.append(int(used))

        self.http = httpx.AsyncClient(
            headers={"X-Sim-Client": "one-ip"}, event_hooks={"response": [record]}
        )
        self.rest = BinanceRest("spot", sim.url, self.http, self.governor)

    async def calibrate(self) -> None:
        sent = SystemClock().now_ms()
        answer = await self.rest.get_time()
        self.governor.calibrate(int(answer["serverTime"]), sent, SystemClock().now_ms())

    async def hammer(self, requests: int) -> list[BaseException | None]:
        async def one() -> None:
            await self.rest.get_klines("OMUSDT", "1h", 1_744_502_400_000, 1_744_588_800_000, 1)

        results = await asyncio.gather(*(one() for _ in range(requests)), return_exceptions=True)
        await self.http.aclose()
        return [r if isinstance(r, BaseException) else None for r in results]


async def next_window() -> None:
    """Wait until just after a window starts, so a burst cannot straddle two windows."""
    into = SystemClock().now_ms() % WINDOW_MS
    await asyncio.sleep((WINDOW_MS - into + 150) / 1000)


def sim_totals(sim: RunningSim) -> dict[str, int]:
    totals: dict[str, int] = httpx.get(f"{sim.url}/__sim/stats").json()["totals"]
    return totals


async def test_two_processes_sharing_redis_fill_the_budget_together_and_never_exceed_it(
    sim: RunningSim, prefix: str
) -> None:
    seen: list[int] = []
    books_a, books_b = ledger(prefix), ledger(prefix)
    a, b = Caller(sim, books_a, seen), Caller(sim, books_b, seen)
    await asyncio.gather(a.calibrate(), b.calibrate())
    errors = await asyncio.gather(a.hammer(60), b.hammer(60))  # 240 weight: 3+ windows
    await books_a.aclose()
    await books_b.aclose()
    assert [e for e in errors[0] + errors[1] if e is not None] == []
    totals = sim_totals(sim)
    assert totals["429"] == 0 and totals["418"] == 0
    assert a.governor.stats.requests == b.governor.stats.requests == 61
    budget = int(BUDGET * 0.8)
    assert budget - 2 <= max(seen) <= BUDGET  # together they filled a window, and no more


async def test_without_shared_books_the_same_two_processes_get_a_429(sim: RunningSim) -> None:
    """The control: each process alone keeps to 80, but 80 + 80 is over the IP's 100."""
    seen: list[int] = []
    a, b = Caller(sim, MemoryWeightLedger(), seen), Caller(sim, MemoryWeightLedger(), seen)
    await asyncio.gather(a.calibrate(), b.calibrate())
    await next_window()
    errors = await asyncio.gather(a.hammer(39), b.hammer(39))  # 78 each, 156 together
    assert any(isinstance(e, RateLimited) for e in errors[0] + errors[1])
    assert sim_totals(sim)["429"] > 0


async def test_a_ban_written_by_one_process_silences_a_fresh_one(prefix: str) -> None:
    clock = FixedClock(T0 + 1_000)
    first = WeightGovernor(
        key="binance-spot@x", budget_per_min=BUDGET, ledger=ledger(prefix, clock), clock=clock
    )
    until = T0 + 3 * 60_000 + 500
    await first.banned(until)
    assert isinstance(first.ledger, RedisWeightLedger)
    await first.ledger.aclose()

    redis = Redis.from_url(REDIS_URL)
    ttl_ms = await redis.pttl(f"{prefix}pause:binance-spot@x")
    await redis.aclose()
    assert 0 < ttl_ms <= until - clock.now_ms() + 5_000  # expires once the ban is over

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(round(seconds * 1000))

    books = ledger(prefix, clock)  # a restarted process: new connection, nothing in memory
    fresh = WeightGovernor(
        key="binance-spot@x", budget_per_min=BUDGET, ledger=books, clock=clock, sleep=sleep
    )
    await fresh.acquire(1)
    await books.aclose()
    assert clock.now_ms() == until
    assert waits and fresh.stats.requests == 1


async def test_reserve_is_atomic_across_connections(prefix: str) -> None:
    books = [ledger(prefix) for _ in range(4)]
    granted = await asyncio.gather(
        *(books[i % 4].reserve("host", 7, 3, 50) for i in range(40))
    )  # 120 weight asked of a 50 budget
    assert sum(granted) == 16  # 16 x 3 = 48: the 17th would make 51
    assert await books[0].used("host", 7) == 48
    assert await books[0].used("host", 8) == 0
    for b in books:
        await b.aclose()


async def test_raise_to_only_raises_and_a_pause_only_lengthens(prefix: str) -> None:
    clock = FixedClock(T0)
    books = ledger(prefix, clock)
    await books.reserve("host", 1, 10, 100)
    await books.raise_to("host", 1, 40)
    await books.raise_to("host", 1, 25)
    assert await books.used("host", 1) == 40
    await books.set_pause_until("host", T0 + 9_000, persist=False)
    await books.set_pause_until("host", T0 + 4_000, persist=True)
    assert await books.pause_until("host") == T0 + 9_000
    await books.set_pause_until("other", T0 - 1, persist=True)  # already over: not stored
    assert await books.pause_until("other") == 0
    await books.aclose()


def test_books_follow_the_event_loop_of_each_call(prefix: str) -> None:
    """The CLI runs one event loop per command; the same books must work in each."""
    books = ledger(prefix)
    for _ in range(2):
        assert asyncio.run(books.reserve("host", 1, 1, 10))
    assert asyncio.run(books.used("host", 1)) == 2


def test_the_runtime_shares_books_through_redis_only_when_configured(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'kw.sqlite3'}"
    with_redis = build_runtime(Settings(database_url=database, redis_url=REDIS_URL))
    alone = build_runtime(Settings(database_url=database, redis_url=None))
    try:
        assert isinstance(with_redis.weight_ledger(), RedisWeightLedger)
        assert isinstance(alone.weight_ledger(), MemoryWeightLedger)
        okx = with_redis.governor("okx@h", 4, window_ms=500)
        binance = with_redis.binance_client("spot")
        asyncio.run(binance.aclose())
        assert okx.ledger is binance.rest.governor.ledger  # one set of books per process
        assert okx.window_ms == 500 and okx.budget == 3
    finally:
        with_redis.close()
        alone.close()

"""The scheduler against the simulator over real HTTP, on SQLite and PostgreSQL.

The scheduler's clock is a ``FixedClock`` the test moves together with the simulator's
frozen clock, and the trigger loop waits through a stepped sleep: candles "close" at
the simulator when the test says so, and nothing sleeps for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from klinewatch.clock import FixedClock
from klinewatch.domain.intervals import HOUR_MS
from klinewatch.domain.market_config import validate_config
from klinewatch.scheduler.config import fixed_config_source
from klinewatch.scheduler.jobs import CONTRACTS, JobKey, JobSpec
from klinewatch.scheduler.market_data import MarketDataScheduler
from klinewatch.scheduler.runner import JobResult, UpdateRunner
from klinewatch.services.ingestion import UpdateSummary
from klinewatch.settings import Settings
from klinewatch.sim.faults import Fault, FaultKind
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.wiring import Runtime, build_runtime

T0 = 1_748_737_800_000  # 2025-06-01 00:30 UTC: inside every recorded spot 1h series
SYMBOLS = ("BTCUSDT", "OMUSDT")
H1 = JobKey("binance", "spot", "1h")
JOBS = [
    JobSpec(JobKey("binance", "spot", CONTRACTS)),
    JobSpec(H1, SYMBOLS, since_ms=T0 - 2 * 24 * HOUR_MS),
]
N_PERIODS = fixed_config_source(
    validate_config({"market_data": {"update_mode": "n_periods"}}).market_data
)


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset(now_ms=T0)
    return sim_module


@pytest.fixture
def runtime(sim: RunningSim, database_url: str) -> Iterator[Runtime]:
    settings = Settings(
        database_url=database_url,
        binance_spot_url=sim.url,
        binance_futures_url=sim.url,
        http_timeout_s=5.0,
    )
    rt = build_runtime(settings)
    yield rt
    rt.close()


class SteppedSleep:
    """The trigger loop's sleep: returns only when the test releases it."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.release = asyncio.Event()
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        self.asked.set()
        await self.release.wait()
        self.release.clear()

    async def planned(self) -> float:
        """Wait until the loop has queued what was due and gone to sleep."""
        await asyncio.wait_for(self.asked.wait(), 60)
        self.asked.clear()
        return self.requested[-1]


class Overlaps:
    """The real runner, counting how many runs are in flight at once."""

    def __init__(self, runner: UpdateRunner) -> None:
        self.runner = runner
        self.active = 0
        self.max_active = 0
        self.runs: list[JobKey] = []
        self._started: dict[JobKey, asyncio.Event] = {}

    def started(self, key: JobKey) -> asyncio.Event:
        return self._started.setdefault(key, asyncio.Event())

    async def __call__(self, spec: JobSpec) -> JobResult:
        self.started(spec.key).set()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.runs.append(spec.key)
        try:
            return await self.runner(spec)
        finally:
            self.active -= 1


def make(
    runtime: Runtime, clock: FixedClock, sleep: SteppedSleep | None = None
) -> tuple[MarketDataScheduler, Overlaps]:
    runner = Overlaps(UpdateRunner(runtime, N_PERIODS))
    scheduler = MarketDataScheduler(
        JOBS,
        runner,
        config_source=N_PERIODS,
        clock=clock,
        sleep=sleep or SteppedSleep(),
        max_sleep_s=24 * 3600,
    )
    return scheduler, runner


def last_stored(runtime: Runtime, symbol: str) -> tuple[int, int]:
    """(open time of the newest stored candle, candles stored) of a spot 1h series."""
    with transaction(runtime.sessions) as session:
        repo = KlineRepository(session)
        sid = repo.find_series("binance", "spot", symbol, "1h")
        assert sid is not None
        candles = repo.read(sid)
    return int(candles.open_time_ms[-1]), len(candles)


def move_to(sim: RunningSim, clock: FixedClock, now_ms: int) -> None:
    clock.value_ms = now_ms
    sim.ctx.clock.set(now_ms, speed=0.0)


def test_after_a_candle_closes_at_the_exchange_the_next_run_stores_it(
    runtime: Runtime, sim: RunningSim
) -> None:
    async def go() -> None:
        clock, sleep = FixedClock(T0), SteppedSleep()
        scheduler, runner = make(runtime, clock, sleep)
        hooked: list[UpdateSummary] = []
        scheduler.on_update(hooked.append)
        await scheduler.start(catch_up=True)
        try:
            assert await sleep.planned() == 30 * 60 + 2  # 01:00:02, just after the close
            await scheduler.wait_idle()
            for symbol in SYMBOLS:  # 23:00 is the newest closed candle at 00:30
                assert last_stored(runtime, symbol) == (T0 - 90 * 60_000, 48)
            assert [s.candles_added for s in hooked] == [96]
            move_to(sim, clock, T0 + 30 * 60_000 + 2_000)  # the 00:00 candle has closed
            sleep.release.set()
            assert await sleep.planned() == 3600  # then 02:00:02
            await scheduler.wait_idle()
            for symbol in SYMBOLS:
                assert last_stored(runtime, symbol) == (T0 - 30 * 60_000, 49)
            assert [s.candles_added for s in hooked] == [96, 2]
            assert hooked[-1].interval == "1h" and hooked[-1].errors == {}
            assert runner.runs == [JOBS[0].key, H1, H1]
        finally:
            await scheduler.stop()
            await runner.runner.aclose()

    asyncio.run(go())


def test_a_slow_job_is_queued_once_more_and_never_overlaps(
    runtime: Runtime, sim: RunningSim
) -> None:
    async def go() -> None:
        clock = FixedClock(T0)
        scheduler, runner = make(runtime, clock)
        latency = sim.ctx.faults.add(
            Fault(FaultKind.LATENCY, route="/api/v3/klines", latency_ms=300)
        )
        await scheduler.tick()  # plan: the first close is at 01:00:02
        scheduler.queue.start()
        await scheduler.submit_all()  # the catch-up, slowed down by the latency
        await asyncio.wait_for(runner.started(H1).wait(), 60)
        for hours in (1, 2, 3):  # three closes while the catch-up still runs
            move_to(sim, clock, T0 + hours * HOUR_MS)
            await scheduler.tick()
        assert scheduler.queue.running == H1
        assert scheduler.queue.waiting == {H1}  # queued once, not three times
        sim.ctx.faults.remove(latency.id)
        await asyncio.wait_for(scheduler.wait_idle(), 60)
        await scheduler.stop()
        await runner.runner.aclose()
        assert runner.runs == [JOBS[0].key, H1, H1]
        assert runner.max_active == 1
        for symbol in SYMBOLS:  # the one follow-up covered all three closes
            assert last_stored(runtime, symbol) == (T0 + 2 * HOUR_MS - 30 * 60_000, 51)

    asyncio.run(go())


def test_catch_up_at_start_fills_what_was_missed_while_down(
    runtime: Runtime, sim: RunningSim
) -> None:
    async def go() -> None:
        clock = FixedClock(T0)
        first, runner = make(runtime, clock)
        results = await first.run_once()
        await runner.runner.aclose()
        assert [r.ok for r in results] == [True, True]
        assert last_stored(runtime, "BTCUSDT") == (T0 - 90 * 60_000, 48)

        move_to(sim, clock, T0 + 10 * HOUR_MS)  # down for ten hours
        sleep = SteppedSleep()
        second, runner = make(runtime, clock, sleep)
        await second.start(catch_up=True)
        await sleep.planned()
        await second.wait_idle()  # no trigger fired: the clock has not moved since start
        await second.stop()
        await runner.runner.aclose()
        for symbol in SYMBOLS:
            assert last_stored(runtime, symbol) == (T0 + 10 * HOUR_MS - 90 * 60_000, 58)
        summary = second.last_results[H1].summary
        assert summary is not None and summary.candles_added == 20

    asyncio.run(go())


def test_a_failing_job_is_reported_and_the_next_job_still_runs(
    runtime: Runtime, sim: RunningSim
) -> None:
    async def go() -> None:
        bad = JobSpec(JobKey("binance", "spot", "4h"), ("NOPEUSDT",))
        runner = UpdateRunner(runtime, N_PERIODS)
        scheduler = MarketDataScheduler([bad, *JOBS], runner, clock=FixedClock(T0))
        results = await scheduler.run_once()
        await runner.aclose()
        assert [r.ok for r in results] == [False, True, True]
        assert results[0].error is not None and "NOPEUSDT" in results[0].error
        assert last_stored(runtime, "BTCUSDT") == (T0 - 90 * 60_000, 48)

    asyncio.run(go())

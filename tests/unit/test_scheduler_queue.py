"""The one-worker job queue and the trigger loop with a fake clock: no real sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from klinewatch.clock import FixedClock
from klinewatch.domain.market_config import validate_config
from klinewatch.scheduler.config import fixed_config_source
from klinewatch.scheduler.jobs import JobKey, JobSpec
from klinewatch.scheduler.market_data import MarketDataScheduler
from klinewatch.scheduler.queue import JobQueue
from klinewatch.scheduler.runner import JobResult
from klinewatch.services.ingestion import UpdateSummary

H1 = JobKey("binance", "spot", "1h")
H4 = JobKey("binance", "spot", "4h")
T0 = 1_744_567_200_000  # 2025-04-13 18:00 UTC


class GatedJobs:
    """Jobs that run until the test opens their gate; records overlap and order."""

    def __init__(self) -> None:
        self.gates: dict[JobKey, asyncio.Event] = {}
        self.started: list[JobKey] = []
        self.active = 0
        self.max_active = 0

    def gate(self, key: JobKey) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    async def __call__(self, key: JobKey) -> None:
        self.started.append(key)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.gate(key).wait()
            self.gate(key).clear()
        finally:
            self.active -= 1


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_a_running_key_is_queued_once_more_and_never_overlaps() -> None:
    async def go() -> None:
        jobs = GatedJobs()
        queue: JobQueue[JobKey] = JobQueue(jobs)
        queue.start()
        assert queue.submit(H1)
        await settle()
        assert queue.running == H1
        assert queue.submit(H1)  # candles may have closed since the run began
        assert not queue.submit(H1)  # ... but one follow-up is enough
        assert not queue.submit(H1)
        assert queue.waiting == {H1}
        jobs.gate(H1).set()
        await settle()
        assert queue.running == H1 and queue.waiting == frozenset()
        jobs.gate(H1).set()
        await queue.join()
        assert jobs.started == [H1, H1]
        assert jobs.max_active == 1
        await queue.close()

    asyncio.run(go())


def test_jobs_run_one_at_a_time_in_order_and_a_crash_does_not_stop_the_worker() -> None:
    async def go() -> None:
        order: list[JobKey] = []

        async def run(key: JobKey) -> None:
            order.append(key)
            if key == H1:
                raise RuntimeError("boom")

        queue: JobQueue[JobKey] = JobQueue(run)
        queue.start()
        queue.submit(H1)
        queue.submit(H4)
        await queue.join()
        assert order == [H1, H4]
        assert queue.runs == 2
        await queue.close()

    asyncio.run(go())


def test_close_lets_the_running_job_finish_within_grace_then_cancels() -> None:
    async def go() -> None:
        finished: list[str] = []

        async def quick(key: JobKey) -> None:
            await asyncio.sleep(0.01)
            finished.append("quick")

        queue: JobQueue[JobKey] = JobQueue(quick)
        queue.start()
        queue.submit(H1)
        queue.submit(H4)  # waiting: dropped by close
        await settle()
        await queue.close(grace_s=5)
        assert finished == ["quick"]

        jobs = GatedJobs()
        slow: JobQueue[JobKey] = JobQueue(jobs)
        slow.start()
        slow.submit(H1)
        await settle()
        await slow.close(grace_s=0.01)
        assert jobs.active == 0 and slow.running is None

    asyncio.run(go())


def config(**market_data: object) -> Callable[[], Awaitable[object]]:
    return fixed_config_source(validate_config({"market_data": market_data}).market_data)


class Recorder:
    """A job runner that records what ran, at what fake time."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.ran: list[tuple[JobKey, int]] = []

    async def __call__(self, spec: JobSpec) -> JobResult:
        self.ran.append((spec.key, self.clock.now_ms()))
        summary = UpdateSummary(*spec.key, candles_added=1)
        return JobResult(spec.key, True, summary=summary)


class SteppedSleep:
    """The loop's sleep: it waits until the test has let the due jobs run, then moves
    the fake clock by what the loop asked for. Nothing sleeps for real."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.asked = asyncio.Event()
        self.release = asyncio.Event()
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        self.asked.set()
        await self.release.wait()
        self.release.clear()

    async def step(self, scheduler: MarketDataScheduler) -> None:
        """Let everything due now run, then jump to the loop's next wake-up."""
        await asyncio.wait_for(self.asked.wait(), 10)
        self.asked.clear()
        await asyncio.wait_for(scheduler.wait_idle(), 10)
        self.clock.advance(int(self.requested[-1] * 1000))
        self.release.set()


@pytest.mark.parametrize("mode", ["n_periods", "interval"])
def test_the_trigger_loop_runs_jobs_when_due_with_a_fake_clock(mode: str) -> None:
    async def go() -> None:
        start = T0 + 30 * 60_000  # 18:30
        clock = FixedClock(start)
        sleep = SteppedSleep(clock)
        hooked: list[str] = []
        runner = Recorder(clock)
        scheduler = MarketDataScheduler(
            [JobSpec(H1), JobSpec(H4)],
            runner,
            config_source=config(update_mode=mode, update_interval_seconds=600),  # type: ignore[arg-type]
            clock=clock,
            sleep=sleep,
            max_sleep_s=3600,
        )
        scheduler.on_update(lambda summary: hooked.append(summary.interval))
        await scheduler.start(catch_up=True)
        while clock.now_ms() < T0 + 4 * 3_600_000 + 2_000:  # until 22:00:02
            await sleep.step(scheduler)
        await asyncio.wait_for(sleep.asked.wait(), 10)
        await scheduler.wait_idle()
        await scheduler.stop()
        ran_at = {key: [at for k, at in runner.ran if k == key] for key in (H1, H4)}
        if mode == "n_periods":
            hours = [start] + [T0 + h * 3_600_000 + 2_000 for h in (1, 2, 3, 4)]
            assert ran_at[H1] == hours
            assert ran_at[H4] == [start, T0 + 2 * 3_600_000 + 2_000]  # 20:00:02
        else:
            every = [start + k * 600_000 for k in range(23)]  # 18:30, 18:40, ... 22:10
            assert ran_at[H1] == every
            assert ran_at[H4] == every
        assert hooked.count("1h") == len(ran_at[H1])

    asyncio.run(go())


def test_the_loop_never_sleeps_past_max_sleep_so_config_changes_are_seen() -> None:
    async def go() -> None:
        clock = FixedClock(T0 + 60_000)
        sleep = SteppedSleep(clock)
        modes = iter(["n_periods", "n_periods", "interval"])

        async def source() -> object:
            mode = next(modes, "interval")
            return validate_config({"market_data": {"update_mode": mode}}).market_data

        runner = Recorder(clock)
        scheduler = MarketDataScheduler(
            [JobSpec(H1)], runner, config_source=source, clock=clock, sleep=sleep,  # type: ignore[arg-type]
            max_sleep_s=30,
        )  # fmt: skip
        await scheduler.start(catch_up=False)
        for _ in range(3):
            await sleep.step(scheduler)
        assert sleep.requested[:2] == [30.0, 30.0]  # the next close is an hour away
        assert sleep.requested[2] == 5.0  # the config now says every 5 s
        await scheduler.stop()
        assert runner.ran == []

    asyncio.run(go())


def test_a_failing_hook_is_logged_and_the_next_still_runs() -> None:
    async def go() -> None:
        clock = FixedClock(T0)
        calls: list[str] = []

        def broken(summary: UpdateSummary) -> None:
            raise ValueError("bug in a consumer")

        async def works(summary: UpdateSummary) -> None:
            calls.append(summary.interval)

        scheduler = MarketDataScheduler([JobSpec(H1)], Recorder(clock), clock=clock)
        scheduler.on_update(broken)
        scheduler.on_update(works)
        results = await scheduler.run_once()
        assert calls == ["1h"] and results[0].ok

    asyncio.run(go())


def test_a_job_that_crashes_is_a_failed_result_and_the_others_run() -> None:
    async def go() -> None:
        clock = FixedClock(T0)
        recorder = Recorder(clock)

        async def run(spec: JobSpec) -> JobResult:
            if spec.key == H1:
                raise RuntimeError("a bug")
            return await recorder(spec)

        results = await MarketDataScheduler([JobSpec(H1), JobSpec(H4)], run, clock=clock).run_once()
        assert [(r.key, r.ok) for r in results] == [(H1, False), (H4, True)]
        assert results[0].error == "RuntimeError('a bug')"

    asyncio.run(go())

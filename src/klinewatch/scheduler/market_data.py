"""The market-data scheduler (seed 001 section 3.6, seed 003's serial queue).

A trigger loop decides when each job is due (``triggers``, from the config's mode read
at every step) and hands due keys to the one ``JobQueue``; the queue's single worker runs
them through ``run`` (in production an ``UpdateRunner``). ``start`` first queues every job
once: that run covers everything missed while klinewatch was down, since an update fills
every hole of its span.

Time is injected: ``clock`` says what "now" is and ``sleep`` waits, so tests move a
fake clock instead of sleeping. The loop never sleeps longer than ``max_sleep_s`` so a
config change (or a suspended laptop waking up) is seen within that time.

After each kline update that ran to its end, every ``on_update`` hook is called with its
``UpdateSummary`` (also when nothing new was stored: ``candles_added`` says so); the live
push and the volume-trap scan hang off it. A failing hook is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from klinewatch.clock import Clock, SystemClock
from klinewatch.domain.intervals import DAY_MS
from klinewatch.domain.market_config import MarketDataConfig
from klinewatch.logs import get_logger
from klinewatch.scheduler.config import ConfigSource, default_config_source, schedule_of
from klinewatch.scheduler.jobs import JobKey, JobSpec
from klinewatch.scheduler.queue import JobQueue
from klinewatch.scheduler.runner import JobResult
from klinewatch.scheduler.triggers import DEFAULT_DELAY_MS, Schedule, next_fire
from klinewatch.services.ingestion import UpdateSummary

log = get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]
JobRunner = Callable[[JobSpec], Awaitable[JobResult]]
UpdateHook = Callable[[UpdateSummary], object]  # awaited when it returns an awaitable


class MarketDataScheduler:
    def __init__(
        self,
        jobs: Sequence[JobSpec],
        run: JobRunner,
        *,
        config_source: ConfigSource = default_config_source,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        close_delay_ms: int = DEFAULT_DELAY_MS,
        contracts_every_ms: int = DAY_MS,
        grace_s: float = 5.0,
        max_sleep_s: float = 30.0,
    ) -> None:
        keys = [spec.key for spec in jobs]
        if len(set(keys)) != len(keys):
            raise ValueError("two jobs share a key")
        self.jobs = {spec.key: spec for spec in jobs}
        self.run = run
        self.config_source = config_source
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self.close_delay_ms = close_delay_ms
        self.contracts_every_ms = contracts_every_ms
        self.grace_s = grace_s
        self.max_sleep_ms = int(max_sleep_s * 1000)
        self.queue: JobQueue[JobKey] = JobQueue(self._execute)
        self.last_results: dict[JobKey, JobResult] = {}
        self.due_ms: dict[JobKey, int] = {}
        self._hooks: list[UpdateHook] = []
        self._config: MarketDataConfig | None = None
        self._planned_with: Schedule | None = None
        self._loop_task: asyncio.Task[None] | None = None

    def on_update(self, hook: UpdateHook) -> None:
        """Call ``hook(summary)`` after every kline update that ran to its end."""
        self._hooks.append(hook)

    async def submit_all(self) -> int:
        """Queue every job of an enabled exchange once (the catch-up); how many were."""
        enabled = (await self._read_config()).enabled_exchanges
        return sum(self.queue.submit(key) for key in self.jobs if key.exchange in enabled)

    async def tick(self) -> int:
        """Queue every job due at the clock's now; return when the next one is due (ms).

        A job planned for the first time is only planned: the catch-up covers it now.
        """
        now = self.clock.now_ms()
        config = await self._read_config()
        schedule = schedule_of(config, self.close_delay_ms)
        if schedule != self._planned_with:
            if self._planned_with is not None:
                log.info("scheduler_replanned", mode=schedule.mode, every_s=schedule.every_s)
            self.due_ms, self._planned_with = {}, schedule
        for key in self.jobs:
            due = self.due_ms.get(key)
            if due is not None and due <= now:
                if key.exchange in config.enabled_exchanges:
                    self.queue.submit(key)
                else:
                    log.debug("scheduler_exchange_disabled", exchange=key.exchange)
            if due is None or due <= now:
                self.due_ms[key] = next_fire(
                    schedule, now, key.kline_interval, self.contracts_every_ms
                )
        return min(self.due_ms.values())

    async def start(self, catch_up: bool = True) -> None:
        """Start the worker and the trigger loop; with ``catch_up`` run every job now."""
        self.queue.start()
        if catch_up:
            await self.submit_all()
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="scheduler-triggers")
        log.info("scheduler_started", jobs=[str(key) for key in self.jobs], catch_up=catch_up)

    async def run_once(self) -> list[JobResult]:
        """Every job once, in order (catch-up only, no triggers); their results."""
        self.queue.start()
        await self.submit_all()
        await self.queue.join()
        await self.queue.close(self.grace_s)
        return [self.last_results[key] for key in self.jobs if key in self.last_results]

    async def wait_idle(self) -> None:
        await self.queue.join()

    async def stop(self) -> None:
        """Stop triggering, drop waiting jobs, let the running one finish (``grace_s``)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await self.queue.close(self.grace_s)
        log.info("scheduler_stopped")

    def snapshot(self) -> dict[str, Any]:
        """What runs, what waits, when each job is due next (for health pages)."""
        return {
            "running": str(self.queue.running) if self.queue.running else None,
            "waiting": sorted(str(key) for key in self.queue.waiting),
            "due_ms": {str(key): due for key, due in self.due_ms.items()},
            "mode": self._planned_with.mode if self._planned_with else None,
        }

    async def _loop(self) -> None:
        while True:
            try:
                next_ms = await self.tick()
            except Exception as e:  # a planning bug must not end the triggers for good
                log.exception("scheduler_tick_failed", error=repr(e))
                next_ms = self.clock.now_ms() + self.max_sleep_ms
            wait_ms = min(max(next_ms - self.clock.now_ms(), 0), self.max_sleep_ms)
            await self.sleep(wait_ms / 1000)

    async def _read_config(self) -> MarketDataConfig:
        """The current config; if it cannot be read, the last one read (else defaults)."""
        try:
            self._config = await self.config_source()
        except Exception as e:  # the database may be away for a moment: keep planning
            log.warning("scheduler_config_unreadable", error=repr(e))
            if self._config is None:
                self._config = await default_config_source()
        return self._config

    async def _execute(self, key: JobKey) -> JobResult:
        try:
            result = await self.run(self.jobs[key])
        except Exception as e:  # not a typed error: a bug, reported as this run's failure
            log.exception("scheduler_job_crashed", job=str(key), error=repr(e))
            result = JobResult(key, False, error=repr(e))
        self.last_results[key] = result
        if result.ok and result.summary is not None:
            await self._fire_hooks(result.summary)
        return result

    async def _fire_hooks(self, summary: UpdateSummary) -> None:
        for hook in self._hooks:
            try:
                outcome = hook(summary)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as e:  # one consumer's bug must not stop the updates
                log.exception(
                    "scheduler_hook_failed",
                    hook=getattr(hook, "__qualname__", repr(hook)),
                    exchange=summary.exchange,
                    market_type=summary.market_type,
                    interval=summary.interval,
                    error=repr(e),
                )

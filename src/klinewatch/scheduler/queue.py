"""One FIFO queue, one worker: jobs run one after another (seed 003's serial queue), so
every request of every job passes the same weight governor one job at a time.

A key is leased from the moment it is queued until its run ends:

- a key already waiting is not queued again (later triggers coalesce into that run);
- a key that is running may be queued once more, because candles may have closed after
  its run started; further triggers while that follow-up waits coalesce into it;
- the single worker takes one job at a time, so a key never runs twice at once.

A job's exception is logged and the worker goes on: one failing market never stops the
others. ``close`` drops what waits, lets the running job finish for ``grace_s`` and then
cancels it (a write already handed to its thread still completes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from klinewatch.logs import get_logger

K = TypeVar("K", bound=Hashable)
log = get_logger(__name__)


class JobQueue(Generic[K]):
    def __init__(self, run: Callable[[K], Awaitable[object]]) -> None:
        self._run = run
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._running: K | None = None
        self._current: asyncio.Task[object] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.runs = 0

    @property
    def waiting(self) -> frozenset[K]:
        return frozenset(self._waiting)

    @property
    def running(self) -> K | None:
        return self._running

    def submit(self, key: K) -> bool:
        """Queue ``key`` unless it already waits; True when queued."""
        if key in self._waiting:
            log.debug("scheduler_job_coalesced", job=str(key))
            return False
        self._waiting.add(key)
        self._idle.clear()
        self._queue.put_nowait(key)
        return True

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="scheduler-worker")

    async def join(self) -> None:
        """Wait until nothing waits and nothing runs."""
        await self._idle.wait()

    async def close(self, grace_s: float = 5.0) -> None:
        """Drop waiting jobs, give the running one ``grace_s``, then cancel it."""
        dropped = len(self._waiting)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._waiting.clear()
        current = self._current
        if current is not None and not current.done():
            await asyncio.wait({current}, timeout=grace_s)
            if not current.done():
                log.warning("scheduler_job_cancelled", job=str(self._running), grace_s=grace_s)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if dropped:
            log.info("scheduler_jobs_dropped", count=dropped)
        self._idle.set()

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            self._running = key
            self._current = asyncio.create_task(self._guarded(key), name=f"job {key}")
            try:
                await self._current
            finally:
                self.runs += 1
                self._running = None
                self._current = None
                if self._queue.empty():
                    self._idle.set()

    async def _guarded(self, key: K) -> object:
        try:
            return await self._run(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a job's bug must not stop the others
            log.exception("scheduler_job_crashed", job=str(key), error=repr(e))
            return None

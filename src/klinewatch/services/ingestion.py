"""Seed 002 flow 2 / seed 003: gap-filling kline updates under the weight governor.

For every series the missing ranges over the whole requested span come from the stored
candles and the empty-range ledger (holes in the middle too). They are cut into requests
of the exchange's cheapest size and fetched several at a time; the governor paces them.
Each answer is written in its own transaction together with its ledger rows, so a killed
run loses at most the requests in flight and a rerun fetches exactly what is still missing.

A hole in an answer (open times the exchange did not return) is recorded as confirmed
empty only once it is older than ``settle_ms``: old outages never come back, while a
recent hole may be the exchange still catching up and is asked for again next run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import Clock
from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import Range, missing_ranges, slice_range
from klinewatch.domain.intervals import DAY_MS, Interval
from klinewatch.errors import KlinewatchError
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.logs import get_logger
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.storage.series_stats import span_stats
from klinewatch.storage.update_logs import UpdateLogRepository

log = get_logger(__name__)
Progress = Callable[[int, int], None]


@dataclass
class UpdateSummary:
    exchange: str
    market_type: str
    interval: str
    pairs: int = 0
    requests: int = 0
    weight: int = 0
    candles_added: int = 0
    empty_ranges: int = 0
    rejected: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Job:
    symbol: str
    series_id: int
    chunk: Range


class KlineUpdater:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: ExchangeClient,
        clock: Clock,
        *,
        concurrency: int = 8,
        settle_ms: int = DAY_MS,
        on_progress: Progress | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.concurrency = concurrency
        self.settle_ms = settle_ms
        self.on_progress = on_progress
        self._write_lock = asyncio.Lock()

    async def update(
        self, symbols: list[str], interval: Interval, start_ms: int, end_ms: int | None = None
    ) -> UpdateSummary:
        started = time.monotonic()
        summary = UpdateSummary(self.client.exchange, self.client.market_type, interval.name)
        summary.pairs = len(symbols)
        now = await self.client.server_time_ms()
        closed_end = interval.next_open(interval.last_closed_open(now))
        end = closed_end if end_ms is None else min(end_ms, closed_end)
        jobs = await asyncio.to_thread(self._plan, symbols, interval, start_ms, end)
        log_id = await asyncio.to_thread(self._start_log, summary, start_ms, end)
        done = 0
        semaphore = asyncio.Semaphore(self.concurrency)

        async def run(job: Job) -> None:
            nonlocal done
            async with semaphore:
                if job.symbol not in summary.errors:
                    await self._run_job(job, interval, now, summary)
            done += 1
            if self.on_progress:
                self.on_progress(done, len(jobs))

        if self.on_progress:
            self.on_progress(0, len(jobs))
        await asyncio.gather(*(run(job) for job in jobs))
        summary.duration_s = time.monotonic() - started
        await asyncio.to_thread(self._finish_log, log_id, summary)
        return summary

    def _plan(
        self, symbols: list[str], interval: Interval, start_ms: int, end_ms: int
    ) -> list[Job]:
        """Missing ranges of every series, sliced into requests of the cheapest size."""
        size = self.client.capabilities.best_candles_per_request
        jobs: list[Job] = []
        with transaction(self.sessions) as session:
            repo, ledger = KlineRepository(session), LedgerRepository(session)
            ids = {
                s: repo.ensure_series(
                    self.client.exchange, self.client.market_type, s, interval.name
                )
                for s in symbols
            }
            stats = span_stats(session, list(ids.values()), start_ms, end_ms)
            for symbol, series_id in ids.items():
                empty = ledger.ranges(series_id, "empty")
                stat = stats.get(series_id)
                stored = np.empty(0, dtype=np.int64)
                if stat is not None and stat.count == interval.count(
                    stat.first_ms, stat.last_ms + 1
                ):
                    empty = [*empty, (stat.first_ms, interval.next_open(stat.last_ms))]  # no holes
                elif stat is not None:
                    stored = repo.open_times(series_id, start_ms, end_ms)
                for rng in missing_ranges(interval, (start_ms, end_ms), stored, empty):
                    jobs.extend(Job(symbol, series_id, c) for c in slice_range(interval, rng, size))
        return jobs

    async def _run_job(
        self, job: Job, interval: Interval, now: int, summary: UpdateSummary
    ) -> None:
        start, end = job.chunk
        count = interval.count(start, end)
        try:
            candles = await self.client.fetch_klines(job.symbol, interval, start, end, count)
        except KlinewatchError as e:
            summary.errors.setdefault(job.symbol, e.message)
            log.warning(
                "series_update_failed",
                exchange=self.client.exchange,
                market_type=self.client.market_type,
                symbol=job.symbol,
                interval=interval.name,
                error=e.message,
            )
            return
        summary.requests += 1
        summary.weight += self.client.capabilities.klines_weight(count)
        closed_end = min(end, interval.next_open(interval.last_closed_open(now)))
        candles = candles.sorted_unique().between(start, closed_end)
        holes = self._settled_holes(candles, interval, (start, closed_end), now)
        async with self._write_lock:
            added, rejected = await asyncio.to_thread(
                self._store, job, interval, candles, (start, closed_end), holes
            )
        summary.candles_added += added
        summary.rejected += rejected
        summary.empty_ranges += len(holes)

    def _settled_holes(
        self, candles: Candles, interval: Interval, span: Range, now: int
    ) -> list[Range]:
        """Ranges of ``span`` the answer left empty and that are old enough to be final."""
        if span[0] >= span[1]:
            return []
        holes = missing_ranges(interval, span, candles.open_time_ms)
        limit = now - self.settle_ms
        return [(a, min(b, interval.ceil(limit))) for a, b in holes if a < interval.ceil(limit)]

    def _store(
        self, job: Job, interval: Interval, candles: Candles, span: Range, holes: list[Range]
    ) -> tuple[int, int]:
        key = SeriesKey(self.client.exchange, self.client.market_type, job.symbol, interval.name)
        with transaction(self.sessions) as session:
            result = write_candles(session, key, candles)
            ledger = LedgerRepository(session)
            if span[0] < span[1]:
                ledger.record(job.series_id, "fetched", [span])
            ledger.record(job.series_id, "empty", holes)
        return result.added, len(result.rejected)

    def _start_log(self, summary: UpdateSummary, start_ms: int, end_ms: int) -> int:
        with transaction(self.sessions) as session:
            return UpdateLogRepository(session).start(
                "klines_update",
                {
                    "exchange": summary.exchange,
                    "market_type": summary.market_type,
                    "interval": summary.interval,
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                },
            )

    def _finish_log(self, log_id: int, summary: UpdateSummary) -> None:
        with transaction(self.sessions) as session:
            logs = UpdateLogRepository(session)
            for symbol, error in summary.errors.items():
                logs.symbol_error(log_id, symbol, error)
            logs.finish(
                log_id,
                total=summary.pairs,
                succeeded=summary.pairs - len(summary.errors),
                failed=len(summary.errors),
                duration_s=summary.duration_s,
                details={
                    "requests": summary.requests,
                    "weight": summary.weight,
                    "candles_added": summary.candles_added,
                    "empty_ranges": summary.empty_ranges,
                    "rejected": summary.rejected,
                },
            )

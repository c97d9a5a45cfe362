"""Seed 002 flow 2 / seed 003: gap-filling kline updates under the weight governor.

For every series the missing ranges over the whole requested span come from the stored
candles and the empty-range ledger (holes in the middle too). They are cut into requests
of the exchange's cheapest size and fetched several at a time; the governor paces them.
Each answer's candles land in the same transaction as its ledger rows (answers that arrive
together share one: ``candle_sink.py``), so a killed run loses at most the answers not yet
committed and a rerun fetches exactly what is still missing.

A hole in an answer (open times the exchange did not return) is recorded as confirmed
empty only once it is older than ``settle_ms``: old outages never come back, while a
recent hole may be the exchange still catching up and is asked for again next run.

With a public-data archive (``archive_backfill.py``) a long backfill first takes whole
ended months, then days, from the archive files, and only what they lack from here.
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
from klinewatch.domain.gaps import Range, missing_ranges, runs_of_open_times, slice_range
from klinewatch.domain.intervals import DAY_MS, Interval
from klinewatch.errors import KlinewatchError
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.logs import get_logger
from klinewatch.services.archive_backfill import ArchiveBackfill, KlineArchive
from klinewatch.services.candle_sink import Answer, CandleSink
from klinewatch.services.warehouse import WriteResult
from klinewatch.storage.batch_write import ensure_series_many, ledger_ranges_many
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.series_stats import span_stats
from klinewatch.storage.stored_runs import stored_runs_many
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
    archive_files: int = 0  # archive files written
    archive_refused: int = 0  # archive files found unusable (corrupt, disagreeing)


@dataclass(frozen=True, slots=True)
class Job:
    symbol: str
    series_id: int
    chunk: Range


@dataclass(frozen=True, slots=True)
class Missing:
    """What one series still lacks in the requested span."""

    series_id: int
    ranges: list[Range]


def stored_runs(
    session: Session, series: list[int], interval: Interval, start_ms: int, end_ms: int
) -> dict[int, list[Range]]:
    """Ranges of consecutive stored candles per series (the database finds them for a
    fixed interval; the calendar month's few open times are read and walked here)."""
    if interval.length_ms is not None:
        return stored_runs_many(session, series, interval.length_ms, start_ms, end_ms)
    repo = KlineRepository(session)
    return {
        sid: runs_of_open_times(repo.open_times(sid, start_ms, end_ms), interval) for sid in series
    }


class Tracker:
    """Progress over a job count that grows (archive fallbacks add work as they occur)."""

    def __init__(self, report: Progress | None) -> None:
        self.report = report
        self.done = 0
        self.total = 0

    def add(self, count: int) -> None:
        self.total += count
        if self.report:
            self.report(self.done, self.total)

    def step(self) -> None:
        self.done += 1
        if self.report:
            self.report(self.done, self.total)


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
        archive: KlineArchive | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.concurrency = concurrency
        self.settle_ms = settle_ms
        self.on_progress = on_progress
        self.archive = (
            archive if archive is not None and archive.exchange == client.exchange else None
        )
        self.sink = CandleSink(sessions, client.exchange, client.market_type)

    async def update(
        self, symbols: list[str], interval: Interval, start_ms: int, end_ms: int | None = None
    ) -> UpdateSummary:
        started = time.monotonic()
        summary = UpdateSummary(self.client.exchange, self.client.market_type, interval.name)
        summary.pairs = len(symbols)
        now = await self.client.server_time_ms()
        closed_end = interval.next_open(interval.last_closed_open(now))
        end = closed_end if end_ms is None else min(end_ms, closed_end)
        missing = await asyncio.to_thread(self._missing, symbols, interval, start_ms, end)
        log_id = await asyncio.to_thread(self._start_log, summary, start_ms, end)
        tracker = Tracker(self.on_progress)
        if self.archive is not None:
            backfill = ArchiveBackfill(self, self.archive, interval, now, summary, tracker)
            missing = await backfill.run(missing)
        jobs = self._jobs(missing, interval)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def run(job: Job) -> None:
            if job.symbol not in summary.errors:
                await self._run_job(job, interval, now, summary, semaphore)
            tracker.step()

        tracker.add(len(jobs))
        try:
            await asyncio.gather(*(run(job) for job in jobs))
        finally:
            await self.sink.close()
        summary.duration_s = time.monotonic() - started
        await asyncio.to_thread(self._finish_log, log_id, summary)
        return summary

    def _missing(
        self, symbols: list[str], interval: Interval, start_ms: int, end_ms: int
    ) -> dict[str, Missing]:
        """Missing ranges of every series in the span, from a few queries for all of them:
        the stored count per series (a series without holes is one covered range), the
        runs of stored candles of those with holes, and the empty ledger."""
        with transaction(self.sessions) as session:
            ids = ensure_series_many(
                session, self.client.exchange, self.client.market_type, interval.name, symbols
            )
            series = list(ids.values())
            stats = span_stats(session, series, start_ms, end_ms)
            covered = ledger_ranges_many(session, series, "empty")
            holed: list[int] = []
            for series_id, stat in stats.items():
                if stat.count == interval.count(stat.first_ms, stat.last_ms + 1):
                    covered[series_id].append((stat.first_ms, interval.next_open(stat.last_ms)))
                else:
                    holed.append(series_id)
            for series_id, runs in stored_runs(session, holed, interval, start_ms, end_ms).items():
                covered[series_id].extend(runs)
        nothing = np.empty(0, dtype=np.int64)
        return {
            symbol: Missing(
                ids[symbol],
                missing_ranges(interval, (start_ms, end_ms), nothing, covered[ids[symbol]]),
            )
            for symbol in symbols
        }

    def _jobs(self, missing: dict[str, Missing], interval: Interval) -> list[Job]:
        """Missing ranges sliced into requests of the cheapest size."""
        size = self.client.capabilities.best_candles_per_request
        return [
            Job(symbol, series.series_id, chunk)
            for symbol, series in missing.items()
            for rng in series.ranges
            for chunk in slice_range(interval, rng, size)
        ]

    def fail(
        self, symbol: str, interval: Interval, error: KlinewatchError, summary: UpdateSummary
    ) -> None:
        """Give up on one series for this run: noted in the summary and the update log."""
        summary.errors.setdefault(symbol, error.message)
        log.warning(
            "series_update_failed",
            exchange=self.client.exchange,
            market_type=self.client.market_type,
            symbol=symbol,
            interval=interval.name,
            error=error.message,
        )

    async def fetch(
        self, symbol: str, interval: Interval, span: Range, limit: int, summary: UpdateSummary
    ) -> Candles:
        """One REST request, counted in the summary."""
        candles = await self.client.fetch_klines(symbol, interval, span[0], span[1], limit)
        summary.requests += 1
        summary.weight += self.client.capabilities.klines_weight(limit)
        return candles

    async def _run_job(
        self,
        job: Job,
        interval: Interval,
        now: int,
        summary: UpdateSummary,
        in_flight: asyncio.Semaphore,
    ) -> None:
        """Fetch under the in-flight limit, then write outside it: the next requests go
        out while this answer waits for its group commit."""
        start, end = job.chunk
        try:
            async with in_flight:
                candles = await self.fetch(
                    job.symbol, interval, job.chunk, interval.count(start, end), summary
                )
        except KlinewatchError as e:
            self.fail(job.symbol, interval, e, summary)
            return
        closed_end = min(end, interval.next_open(interval.last_closed_open(now)))
        candles = candles.sorted_unique().between(start, closed_end)
        holes = self.settled_holes(candles, interval, (start, closed_end), now)
        result = await self.write(
            job.symbol, job.series_id, interval, candles, (start, closed_end), holes
        )
        summary.candles_added += result.added
        summary.rejected += len(result.rejected)
        summary.empty_ranges += len(holes)

    def settled_holes(
        self, candles: Candles, interval: Interval, span: Range, now: int
    ) -> list[Range]:
        """Ranges of ``span`` the answer left empty and that are old enough to be final."""
        if span[0] >= span[1]:
            return []
        holes = missing_ranges(interval, span, candles.open_time_ms)
        limit = now - self.settle_ms
        return [(a, min(b, interval.ceil(limit))) for a, b in holes if a < interval.ceil(limit)]

    async def write(
        self,
        symbol: str,
        series_id: int,
        interval: Interval,
        candles: Candles,
        span: Range,
        holes: list[Range],
        source: str = "rest",
    ) -> WriteResult:
        """Candles and their ledger rows, committed together (group commit: answers that
        arrive while a batch is being written share the next transaction)."""
        valid_span = span if span[0] < span[1] else (span[0], span[0])
        answer = Answer(series_id, symbol, interval, candles, valid_span, holes, source)
        added, rejected = await self.sink.submit(answer)
        return WriteResult(added=added, rejected=rejected)

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
                    "archive_files": summary.archive_files,
                    "archive_refused": summary.archive_refused,
                },
            )

"""Seed 003's validation layer: is each stored series complete, sane and equal to the exchange?

The unit of comparison is a *bucket*: the UTC day for intervals up to 1d, the candle itself
above. Per bucket, the stored rows are compared with what they must be:

- holes: open times with neither a stored candle nor a confirmed-empty ledger range;
- insane candles: rows ``domain.candles.validate`` refuses (off the grid, high < low, ...);
- the count of stored rows against the bucket's slots minus its confirmed-empty slots;
- the sum of their volumes against the exchange's own candle of the bucket (1d candles for
  intraday series: one cheap request covers up to 1000 days). Float sums differ from the
  exchange's decimal sums in the last bits, hence a relative tolerance.

Only closed buckets are compared (today's candles are checked tomorrow). ``repair``
re-fetches exactly the differing buckets (adjacent ones share a request) and replaces
their rows, each bucket in one transaction (delete, write, ledger), so a failure leaves
the old rows. An answer that disagrees with the exchange's own daily candle, or is empty,
replaces nothing: a repair never trades stored data for a worse answer.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import ms_to_datetime
from klinewatch.domain.candles import Candles, Rejection, validate
from klinewatch.domain.gaps import Range, merge_ranges, missing_ranges, slice_range
from klinewatch.domain.intervals import DAY_MS, INTERVALS, Interval
from klinewatch.errors import InvalidInput, KlinewatchError, NotFound
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.logs import get_logger
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.storage.series_stats import span_stats

log = get_logger(__name__)
Progress = Callable[[int, int], None]
I64 = npt.NDArray[np.int64]

VOLUME_REL_TOL = 1e-9
VOLUME_ABS_TOL = 1e-12
WINDOW_CANDLES = 200_000  # rows read and checked at once
_FAR_PAST, _FAR_FUTURE = -(2**62), 2**62


def day_label(ms: int, with_time: bool = False) -> str:
    """A bucket's or candle's UTC time for messages: ``2025-01-31`` (``05:00`` too)."""
    return ms_to_datetime(ms).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


@dataclass
class SeriesReport:
    """One series' findings; ``differing`` maps a bucket's start to its reasons."""

    symbol: str
    span: Range | None = None
    holes: list[Range] = field(default_factory=list)
    insane: list[Rejection] = field(default_factory=list)
    days_checked: int = 0
    days_unchecked: int = 0  # stored rows, but the exchange has no candle to compare
    differing: dict[int, list[str]] = field(default_factory=dict)
    repaired: list[int] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def consistent(self) -> bool:
        return self.error is None and not self.remaining


@dataclass
class VerifyReport:
    exchange: str
    market_type: str
    interval: str
    repair: bool = False
    series: list[SeriesReport] = field(default_factory=list)
    requests: int = 0
    duration_s: float = 0.0

    @property
    def consistent(self) -> bool:
        return all(s.consistent for s in self.series)


def reference_interval(interval: Interval) -> Interval:
    """The exchange candle one bucket is compared with: 1d up to 1d, else the interval."""
    return interval if interval.nominal_ms >= DAY_MS else INTERVALS["1d"]


def volumes_agree(stored: float, exchange: float) -> bool:
    return math.isclose(stored, exchange, rel_tol=VOLUME_REL_TOL, abs_tol=VOLUME_ABS_TOL)


@dataclass
class WindowCheck:
    holes: list[Range] = field(default_factory=list)
    insane: list[Rejection] = field(default_factory=list)
    checked: int = 0
    unchecked: int = 0
    differing: dict[int, list[str]] = field(default_factory=dict)


def _bucket_range(edges: I64, start: int, end: int) -> range:
    """Indexes of the buckets (``edges[i]..edges[i+1]``) that ``[start, end)`` touches."""
    first = max(int(np.searchsorted(edges, start, side="right")) - 1, 0)
    last = min(int(np.searchsorted(edges, end, side="left")), len(edges) - 1)
    return range(first, last)


def _expected_counts(interval: Interval, edges: I64, empty: list[Range]) -> I64:
    """Slots of each bucket minus the slots the ledger confirms empty."""
    slots = [interval.count(a, b) for a, b in itertools.pairwise(edges.tolist())]
    expected = np.array(slots, dtype=np.int64)
    for a, b in empty:
        for i in _bucket_range(edges, a, b):
            lo, hi = max(a, int(edges[i])), min(b, int(edges[i + 1]))
            if lo < hi:
                expected[i] -= interval.count(lo, hi)
    return expected


def check_window(
    candles: Candles,
    interval: Interval,
    window: Range,
    empty: list[Range],
    exchange_volumes: dict[int, float] | None,
) -> WindowCheck:
    """Compare the stored rows of whole buckets ``window`` (oldest first) with the ledger,
    the sanity rules and the exchange's candle of each bucket (None: not available)."""
    starts = reference_interval(interval).open_times(*window)
    edges = np.append(starts, np.int64(window[1]))
    times = candles.open_time_ms
    result = WindowCheck()
    _, result.insane = validate(candles, interval)
    on_grid = np.unique(times[interval.aligned_mask(times)])
    result.holes = missing_ranges(interval, window, on_grid, empty)

    def flag(i: int, reason: str) -> None:
        result.differing.setdefault(int(starts[i]), []).append(reason)

    for a, b in result.holes:
        for i in _bucket_range(edges, a, b):
            flag(i, f"missing candles {day_label(a, True)}..{day_label(b, True)}")
    for rejection in result.insane:
        i = int(np.searchsorted(starts, rejection.open_time_ms, side="right")) - 1
        flag(i, f"insane candle {day_label(rejection.open_time_ms, True)}: {rejection.reason}")
    index = np.searchsorted(starts, times, side="right") - 1
    counts = np.bincount(index, minlength=len(starts))
    volumes = np.bincount(index, weights=candles.volume, minlength=len(starts))
    expected = _expected_counts(interval, edges, empty)
    for j in np.flatnonzero(counts != expected).tolist():
        flag(j, f"{counts[j]} candles, expected {expected[j]}")
    for i, start in enumerate(starts.tolist()):
        reference = None if exchange_volumes is None else exchange_volumes.get(start)
        if reference is None:
            result.unchecked += int(counts[i] > 0)
            continue
        result.checked += 1
        if not volumes_agree(float(volumes[i]), reference):
            flag(i, f"volume {volumes[i]:.12g}, exchange {reference:.12g}")
    return result


@dataclass(frozen=True, slots=True)
class SeriesJob:
    key: SeriesKey
    series_id: int
    interval: Interval

    @property
    def reference(self) -> Interval:
        return reference_interval(self.interval)


class KlineVerifier:
    """Verifies (and with ``repair`` fixes) stored series of one exchange market."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: ExchangeClient,
        *,
        concurrency: int = 4,
        settle_ms: int = DAY_MS,
        on_progress: Progress | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.concurrency = concurrency
        self.settle_ms = settle_ms
        self.on_progress: Progress = on_progress or (lambda done, total: None)
        self.requests = 0
        self._write_lock = asyncio.Lock()

    async def verify(
        self,
        interval: Interval,
        symbols: list[str],
        span: tuple[int | None, int | None] = (None, None),
        repair: bool = False,
    ) -> VerifyReport:
        """Every stored series of ``interval`` (or only ``symbols``) within ``span``."""
        started = time.monotonic()
        jobs = await asyncio.to_thread(self._jobs, interval, symbols)
        now = await self.client.server_time_ms()
        report = VerifyReport(
            self.client.exchange, self.client.market_type, interval.name, repair=repair
        )
        self.on_progress(0, len(jobs))
        for done, job in enumerate(jobs, start=1):
            report.series.append(await self._verify_series(job, span, now, repair))
            self.on_progress(done, len(jobs))
        report.requests = self.requests
        report.duration_s = time.monotonic() - started
        return report

    def _jobs(self, interval: Interval, symbols: list[str]) -> list[SeriesJob]:
        exchange, market = self.client.exchange, self.client.market_type
        with transaction(self.sessions) as session:
            stored = KlineRepository(session).list_series(exchange, market, interval.name)
        if not stored:
            raise NotFound(f"no stored {exchange} {market} {interval.name} series to verify")
        unknown = sorted(set(symbols) - set(stored))
        if unknown:
            raise InvalidInput(
                f"no stored {exchange} {market} {interval.name} series for "
                f"{', '.join(unknown)} (--symbols)",
                field="symbols",
            )
        return [
            SeriesJob(SeriesKey(exchange, market, symbol, interval.name), sid, interval)
            for symbol, sid in stored.items()
            if not symbols or symbol in symbols
        ]

    async def _verify_series(
        self, job: SeriesJob, wanted: tuple[int | None, int | None], now: int, repair: bool
    ) -> SeriesReport:
        report = SeriesReport(job.key.symbol)
        span = await asyncio.to_thread(self._span, job, wanted, now)
        if span is None:
            return report
        report.span = span
        volumes: dict[int, float] | None = None
        try:
            volumes = await self._exchange_volumes(job, span)
        except KlinewatchError as e:
            report.error = f"exchange candles unavailable: {e.message}"
        await asyncio.to_thread(self._check, job, span, volumes, report)
        if repair and report.differing and volumes is not None:
            await self._repair(job, report, volumes, now)
        else:
            report.remaining = sorted(report.differing)
        emit = log.debug if report.consistent else log.warning
        emit(
            "kline_series_verified",
            **asdict(job.key),
            holes=len(report.holes),
            insane=len(report.insane),
            differing=len(report.differing),
            repaired=len(report.repaired),
            remaining=len(report.remaining),
        )
        return report

    def _span(
        self, job: SeriesJob, wanted: tuple[int | None, int | None], now: int
    ) -> Range | None:
        """Whole closed buckets from ``--since`` (or the first stored candle) to
        ``--until`` (or the last one)."""
        since, until = wanted
        lo = _FAR_PAST if since is None else since
        hi = _FAR_FUTURE if until is None else until
        with transaction(self.sessions) as session:
            stat = span_stats(session, [job.series_id], lo, hi).get(job.series_id)
        start = since if since is not None else (stat.first_ms if stat else None)
        end = until if until is not None else (stat.last_ms + 1 if stat else None)
        if start is None or end is None:
            return None
        ref = job.reference
        first, last = ref.floor(start), min(ref.ceil(end), ref.floor(now))
        return (first, last) if first < last else None

    async def _exchange_volumes(self, job: SeriesJob, span: Range) -> dict[int, float]:
        ref = job.reference
        volumes: dict[int, float] = {}
        size = self.client.capabilities.best_candles_per_request
        for a, b in slice_range(ref, span, size):
            candles = await self.client.fetch_klines(job.key.symbol, ref, a, b, ref.count(a, b))
            self.requests += 1
            candles = candles.sorted_unique().between(a, b)
            volumes.update(zip(candles.open_time_ms.tolist(), candles.volume.tolist(), strict=True))
        return volumes

    def _check(
        self,
        job: SeriesJob,
        span: Range,
        volumes: dict[int, float] | None,
        report: SeriesReport,
    ) -> None:
        starts = job.reference.open_times(*span).tolist()
        per_bucket = max(1, job.reference.nominal_ms // job.interval.nominal_ms)
        step = max(1, WINDOW_CANDLES // per_bucket)
        with transaction(self.sessions) as session:
            repo = KlineRepository(session)
            empty = LedgerRepository(session).ranges(job.series_id, "empty")
            for i in range(0, len(starts), step):
                window = (starts[i], starts[i + step] if i + step < len(starts) else span[1])
                candles = repo.read(job.series_id, *window)
                found = check_window(candles, job.interval, window, empty, volumes)
                report.holes.extend(found.holes)
                report.insane.extend(found.insane)
                report.days_checked += found.checked
                report.days_unchecked += found.unchecked
                report.differing.update(found.differing)
        report.holes = merge_ranges(report.holes)

    async def _repair(
        self, job: SeriesJob, report: SeriesReport, volumes: dict[int, float], now: int
    ) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        replaced: list[int] = []

        async def run(group: list[int]) -> None:
            async with semaphore:
                replaced.extend(await self._repair_group(job, group, volumes, now))

        await asyncio.gather(*(run(g) for g in self._groups(job, sorted(report.differing))))
        fixed = await asyncio.to_thread(self._recheck, job, sorted(replaced), volumes)
        report.repaired = fixed
        report.remaining = sorted(set(report.differing) - set(fixed))

    def _groups(self, job: SeriesJob, buckets: list[int]) -> list[list[int]]:
        """Adjacent buckets in groups that one request (or one bucket's few) can fetch."""
        ref = job.reference
        per_bucket = max(1, ref.nominal_ms // job.interval.nominal_ms)
        most = max(1, self.client.capabilities.best_candles_per_request // per_bucket)
        groups: list[list[int]] = []
        for start in buckets:
            last = groups[-1] if groups else None
            if last and len(last) < most and ref.next_open(last[-1]) == start:
                last.append(start)
            else:
                groups.append([start])
        return groups

    async def _repair_group(
        self, job: SeriesJob, group: list[int], volumes: dict[int, float], now: int
    ) -> list[int]:
        """Fetch the group's buckets and replace each that the answer gets right."""
        ref, interval = job.reference, job.interval
        rng = (group[0], ref.next_open(group[-1]))
        try:
            fetched = await self._fetch(job, rng)
        except KlinewatchError as e:
            log.warning("kline_repair_failed", **asdict(job.key), error=e.message)
            return []
        replaced: list[int] = []
        for start in group:
            bucket = (start, ref.next_open(start))
            answer, _ = validate(fetched.between(*bucket), interval)
            reference = volumes.get(start)
            if len(answer) == 0 or (
                reference is not None and not volumes_agree(float(answer.volume.sum()), reference)
            ):
                log.warning("kline_repair_skipped", **asdict(job.key), day=day_label(start))
                continue
            holes = self._settled_holes(interval, bucket, answer, now)
            async with self._write_lock:
                if await asyncio.to_thread(self._replace, job, bucket, answer, holes):
                    replaced.append(start)
        return replaced

    async def _fetch(self, job: SeriesJob, rng: Range) -> Candles:
        interval = job.interval
        size = self.client.capabilities.best_candles_per_request
        parts: list[Candles] = []
        for a, b in slice_range(interval, rng, size):
            parts.append(
                await self.client.fetch_klines(job.key.symbol, interval, a, b, interval.count(a, b))
            )
            self.requests += 1
        return Candles.concat(parts).sorted_unique().between(*rng)

    def _settled_holes(
        self, interval: Interval, bucket: Range, answer: Candles, now: int
    ) -> list[Range]:
        """Open times the answer lacks that are old enough to be final (as ingestion)."""
        limit = interval.ceil(now - self.settle_ms)
        holes = missing_ranges(interval, bucket, answer.open_time_ms)
        return [(a, min(b, limit)) for a, b in holes if a < limit]

    def _replace(self, job: SeriesJob, bucket: Range, answer: Candles, holes: list[Range]) -> bool:
        """Swap the bucket's rows for the answer in one transaction, unless the answer
        lacks a slot we hold: the exchange's past does not shrink, its answers can."""
        with transaction(self.sessions) as session:
            repo = KlineRepository(session)
            held = repo.open_times(job.series_id, *bucket)
            held = held[job.interval.aligned_mask(held)]
            if not np.isin(held, answer.open_time_ms).all():
                log.warning("kline_repair_skipped", **asdict(job.key), day=day_label(bucket[0]))
                return False
            removed = repo.delete_range(job.series_id, *bucket)
            added = write_candles(session, job.key, answer).added
            ledger = LedgerRepository(session)
            ledger.record(job.series_id, "fetched", [bucket])
            ledger.record(job.series_id, "empty", holes)
        log.info(
            "kline_day_repaired",
            **asdict(job.key),
            day=day_label(bucket[0]),
            removed=removed,
            added=added,
        )
        return True

    def _recheck(self, job: SeriesJob, buckets: list[int], volumes: dict[int, float]) -> list[int]:
        """The replaced buckets that now agree with everything."""
        fixed: list[int] = []
        with transaction(self.sessions) as session:
            repo = KlineRepository(session)
            empty = LedgerRepository(session).ranges(job.series_id, "empty")
            for start in buckets:
                window = (start, job.reference.next_open(start))
                candles = repo.read(job.series_id, *window)
                if not check_window(candles, job.interval, window, empty, volumes).differing:
                    fixed.append(start)
        return fixed

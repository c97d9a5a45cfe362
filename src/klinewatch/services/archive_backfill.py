"""A long backfill from the exchange's public-data archive before its REST API.

For a series with missing ranges, one REST request finds its first candle (so the years
before a listing cost nothing and are recorded empty, as the REST path would), then the
planner's whole ended months and days are downloaded a few at a time. Each file is
verified twice before it is written: its ``.CHECKSUM`` (a corrupt or cut file), then one
small REST request over a stretch of it must return exactly the same candles (a file
replaced with wrong content carries a matching checksum, so only the exchange itself can
tell; a file wrong only outside the checked stretch gets past it, and ``verify-klines``,
comparing daily volumes with the exchange, is the net for that). A file is written in its
own transaction with its "fetched" ledger row (source ``archive``). A month the archive
lacks or that fails a check is taken day by day; such a day is left to the REST API, as
is everything the archive does not serve.

If the archive host stays unreachable past the retry policy, the rest of the run uses
the REST API only. The archive never declares a range empty: a hole inside a file (an
outage, or a file published incomplete, which happens) is asked of the REST API, whose
answer settles it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import Range, merge_ranges, missing_ranges, subtract_ranges
from klinewatch.domain.intervals import Interval
from klinewatch.errors import ExchangeError, ExchangeUnavailable, KlinewatchError, RateLimited
from klinewatch.exchanges.port import Capabilities
from klinewatch.logs import get_logger
from klinewatch.services.archive_planner import (
    Freq,
    Period,
    agrees,
    archive_serves,
    plan_archive,
    sample_window,
    split_days,
)

if TYPE_CHECKING:
    from klinewatch.services.ingestion import KlineUpdater, Missing, Tracker, UpdateSummary

log = get_logger(__name__)


class KlineArchive(Protocol):
    """A public-data archive of one exchange (Binance's data.binance.vision)."""

    exchange: str
    concurrency: int

    async def fetch_klines(
        self, market: str, symbol: str, interval: str, freq: Freq, start_ms: int
    ) -> Candles | None:
        """One monthly or daily file's candles, verified; ``None`` when there is none."""
        ...


def cheapest_sample(capabilities: Capabilities) -> int:
    """The most candles one request returns at the weight of a one-candle request."""
    floor = capabilities.klines_weight(1)
    top = capabilities.max_candles_per_request
    return max(n for n in range(1, top + 1) if capabilities.klines_weight(n) == floor)


class ArchiveBackfill:
    """The archive phase of one ``KlineUpdater.update`` run."""

    def __init__(
        self,
        updater: KlineUpdater,
        archive: KlineArchive,
        interval: Interval,
        now_ms: int,
        summary: UpdateSummary,
        tracker: Tracker,
    ) -> None:
        self.updater = updater
        self.archive = archive
        self.interval = interval
        self.now_ms = now_ms
        self.summary = summary
        self.tracker = tracker
        capabilities = updater.client.capabilities
        self.min_candles = capabilities.best_candles_per_request
        self.sample_size = cheapest_sample(capabilities)
        self.market = updater.client.market_type
        self._slots = asyncio.Semaphore(max(1, archive.concurrency))
        self._host_down = False  # once the host fails past its retries, use REST only

    async def run(self, missing: dict[str, Missing]) -> dict[str, Missing]:
        """Fill what the archive can; return what is left for the REST API."""
        if not archive_serves(self.interval):
            return missing
        left = await asyncio.gather(*(self._series(s, m) for s, m in missing.items()))
        return dict(zip(missing, left, strict=True))

    async def _series(self, symbol: str, series: Missing) -> Missing:
        interval = self.interval
        if not plan_archive(series.ranges, interval, self.now_ms, self.min_candles).periods:
            return series
        try:
            ranges = await self._skip_before_first(symbol, series)
        except KlinewatchError as e:
            self.updater.fail(symbol, interval, e, self.summary)
            return replace(series, ranges=[])
        plan = plan_archive(ranges, interval, self.now_ms, self.min_candles)
        self.tracker.add(len(plan.periods))
        parts = await asyncio.gather(
            *(self._period(symbol, series.series_id, p) for p in plan.periods)
        )
        return replace(series, ranges=merge_ranges([*plan.rest, *itertools.chain(*parts)]))

    async def _skip_before_first(self, symbol: str, series: Missing) -> list[Range]:
        """The missing ranges less the settled span before the series' first candle."""
        start, end = series.ranges[0][0], series.ranges[-1][1]
        first = await self.updater.fetch(symbol, self.interval, (start, end), 1, self.summary)
        if len(first) == 0:
            return series.ranges
        settled = self.interval.ceil(self.now_ms - self.updater.settle_ms)
        empty = (start, min(int(first.open_time_ms.min()), settled))
        if empty[0] >= empty[1]:
            return series.ranges
        await self.updater.write(
            symbol, series.series_id, self.interval, Candles.empty(), empty, [empty]
        )
        self.summary.empty_ranges += 1
        return subtract_ranges(series.ranges, [empty])

    async def _period(self, symbol: str, series_id: int, period: Period) -> list[Range]:
        """Write one file's candles; return what of its period is left for REST."""
        if symbol in self.summary.errors:
            self.tracker.step()
            return []
        async with self._slots:
            left = await self._file(symbol, series_id, period)
        self.tracker.step()
        if left is not None:
            return left
        if period.freq == "daily":
            return [period.range]
        days, rest = split_days([period.range], self.interval, self.now_ms, self.min_candles)
        self.tracker.add(len(days))
        parts = await asyncio.gather(*(self._period(symbol, series_id, d) for d in days))
        return [*rest, *itertools.chain(*parts)]

    async def _file(self, symbol: str, series_id: int, period: Period) -> list[Range] | None:
        """The holes left after writing the file, or ``None`` if it cannot be used."""
        interval = self.interval
        context = {
            "exchange": self.archive.exchange,
            "market_type": self.market,
            "symbol": symbol,
            "interval": interval.name,
            "freq": period.freq,
            "start_ms": period.start_ms,
        }
        if self._host_down:
            return None
        try:
            found = await self.archive.fetch_klines(
                self.market, symbol, interval.name, period.freq, period.start_ms
            )
        except (ExchangeUnavailable, RateLimited) as e:
            self._host_down = True
            log.warning("archive_unavailable", error=e.message, **context)
            return None
        except ExchangeError as e:
            self.summary.archive_refused += 1
            log.warning("archive_file_refused", error=e.message, **context)
            return None
        if found is None:
            log.info("archive_file_missing", **context)
            return None
        candles = found.sorted_unique().between(*period.range)
        try:
            trusted = await self._agrees_with_rest(symbol, period, candles)
        except KlinewatchError as e:
            self.updater.fail(symbol, interval, e, self.summary)
            return []
        if not trusted:
            self.summary.archive_refused += 1
            log.warning("archive_file_disagrees_with_rest", **context)
            return None
        written = await self.updater.write(
            symbol, series_id, interval, candles, period.range, [], source="archive"
        )
        self.summary.candles_added += written.added
        self.summary.rejected += len(written.rejected)
        self.summary.archive_files += 1
        times = candles.open_time_ms
        if written.rejected:  # refused candles are asked of the REST API too
            times = np.setdiff1d(times, [r.open_time_ms for r in written.rejected])
        return missing_ranges(interval, period.range, times)

    async def _agrees_with_rest(self, symbol: str, period: Period, candles: Candles) -> bool:
        window = sample_window(period, self.interval, self.sample_size)
        size = self.interval.count(*window)
        sample = await self.updater.fetch(symbol, self.interval, window, size, self.summary)
        return agrees(candles, sample, window)

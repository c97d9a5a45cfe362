"""Runs one job through the services: a contract sync, or a gap-filling kline update.

The runner is the scheduler's composition root: it builds one exchange client per market
from the ``Runtime`` and keeps it (one connection pool, one governor per host) for the
scheduler's life. Every run ends in a ``JobResult`` and one structured log line; a typed
error fails that run only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from klinewatch.domain.intervals import DAY_MS
from klinewatch.errors import KlinewatchError
from klinewatch.exchanges.binance.archive import BinanceArchive
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.logs import get_logger
from klinewatch.scheduler.config import ConfigSource, default_config_source, history_days
from klinewatch.scheduler.jobs import JobKey, JobSpec
from klinewatch.services.contracts import ContractSyncResult, sync_contracts
from klinewatch.services.ingestion import Progress, UpdateSummary
from klinewatch.services.warehouse_update import UpdateOptions, run_update
from klinewatch.wiring import Runtime

log = get_logger(__name__)
ProgressFactory = Callable[[JobKey], Progress | None]


@dataclass
class JobResult:
    key: JobKey
    ok: bool
    summary: UpdateSummary | None = None
    contracts: ContractSyncResult | None = None
    error: str | None = None
    duration_s: float = 0.0


class UpdateRunner:
    def __init__(
        self,
        runtime: Runtime,
        config_source: ConfigSource = default_config_source,
        *,
        progress: ProgressFactory | None = None,
        concurrency: int = 8,
    ) -> None:
        self.runtime = runtime
        self.config_source = config_source
        self.progress = progress
        self.concurrency = concurrency
        self._clients: dict[tuple[str, str], ExchangeClient] = {}
        self._archives: dict[str, BinanceArchive | None] = {}
        self._backfilled: set[JobKey] = set()

    def client(self, exchange: str, market_type: str) -> ExchangeClient:
        key = (exchange, market_type)
        if key not in self._clients:
            self._clients[key] = self.runtime.exchange_client(exchange, market_type)
        return self._clients[key]

    def archive(self, exchange: str) -> BinanceArchive | None:
        """The exchange's public-data archive for long backfills (None: none, or off)."""
        if exchange not in self._archives:
            self._archives[exchange] = self.runtime.archive_client(exchange)
        return self._archives[exchange]

    async def __call__(self, spec: JobSpec) -> JobResult:
        key = spec.key
        started = time.monotonic()
        context = {"exchange": key.exchange, "market_type": key.market_type, "job": key.interval}
        try:
            if key.kline_interval is None:
                result = JobResult(key, True, contracts=await self._sync(spec))
            else:
                result = JobResult(key, True, summary=await self._update(spec))
        except KlinewatchError as e:
            result = JobResult(key, False, error=e.message)
            log.warning("scheduler_job_failed", **context, error=e.message)
        result.duration_s = time.monotonic() - started
        if result.ok:
            log.info("scheduler_job_finished", **context, **_figures(result))
        return result

    async def _sync(self, spec: JobSpec) -> ContractSyncResult:
        quote_assets = set(self.runtime.settings.quote_assets)
        client = self.client(spec.key.exchange, spec.key.market_type)
        return await sync_contracts(self.runtime.sessions, client, quote_assets)

    async def _update(self, spec: JobSpec) -> UpdateSummary:
        """One update per group of symbols sharing a start, merged into one summary."""
        interval = spec.key.kline_interval
        assert interval is not None
        days = history_days(await self.config_source(), interval)
        client = self.client(spec.key.exchange, spec.key.market_type)
        quote_assets = set(self.runtime.settings.quote_assets)
        progress = _Cumulative(self.progress(spec.key) if self.progress else None)
        parts: list[UpdateSummary] = []
        for symbols, since_ms in self._groups(spec):
            options = UpdateOptions(
                interval=interval.name,
                symbols=symbols,
                since_parser=_since(since_ms, days),
                concurrency=self.concurrency,
                on_progress=progress.next_part(),
            )
            parts.append(
                await run_update(
                    self.runtime.sessions,
                    client,
                    self.runtime.clock,
                    quote_assets,
                    options,
                    archive=self.archive(spec.key.exchange),
                )
            )
        merged = merge_summaries(parts)
        if not merged.errors:
            self._backfilled.add(spec.key)
        return merged

    def _groups(self, spec: JobSpec) -> list[tuple[list[str], int | None]]:
        """Each symbol from its own start until one run has gone through without errors;
        from then on all of them over the config's history, in one update (what is older
        is stored, and a downtime longer than that history is caught up on restart)."""
        if spec.key not in self._backfilled or not spec.starts:
            return spec.groups()
        return [(list(dict.fromkeys([*spec.symbols, *dict(spec.starts)])), None)]

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        archives, self._archives = list(self._archives.values()), {}
        for client in clients:
            await client.aclose()
        for archive in archives:
            if archive is not None:
                await archive.aclose()


def _since(since_ms: int | None, days: int) -> Callable[[int], int]:
    return lambda now_ms: since_ms if since_ms is not None else now_ms - days * DAY_MS


class _Cumulative:
    """One progress bar over several updates run one after another."""

    def __init__(self, report: Progress | None) -> None:
        self.report = report
        self.base = 0
        self.last_total = 0

    def next_part(self) -> Progress | None:
        self.base += self.last_total
        self.last_total = 0
        report = self.report
        if report is None:
            return None

        def part(done: int, total: int) -> None:
            self.last_total = total
            report(self.base + done, self.base + total)

        return part


def merge_summaries(parts: list[UpdateSummary]) -> UpdateSummary:
    """One summary of several updates of the same series set: counts add up."""
    merged = replace(parts[0], errors=dict(parts[0].errors))
    for part in parts[1:]:
        for item in fields(UpdateSummary):
            value = getattr(part, item.name)
            if isinstance(value, dict):
                getattr(merged, item.name).update(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                setattr(merged, item.name, getattr(merged, item.name) + value)
    return merged


def _figures(result: JobResult) -> dict[str, object]:
    """The summary's figures as log context."""
    figures: dict[str, object] = {"duration_s": round(result.duration_s, 3)}
    if result.summary is not None:
        s = result.summary
        figures |= {
            "pairs": s.pairs,
            "requests": s.requests,
            "weight": s.weight,
            "candles_added": s.candles_added,
            "empty_ranges": s.empty_ranges,
            "rejected": s.rejected,
            "errors": len(s.errors),
        }
    if result.contracts is not None:
        c = result.contracts
        figures |= {"new": len(c.new), "updated": len(c.updated), "delisted": len(c.delisted)}
    return figures

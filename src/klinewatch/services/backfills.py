"""Backfills started from the dashboard: one pair's ``update-klines`` run in the
background, its progress readable while it runs.

A page cannot hold an HTTP request open for minutes, so a backfill is a task of the
app's event loop (kept in the app's task table, so shutdown cancels it) and a record
the page polls. A second request for a series already being filled returns the running
record instead of starting a duplicate. When candles were stored, ``on_stored`` (the
live hub's ``publish_update``) pushes them to open charts and drops cached windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import Clock
from klinewatch.domain.intervals import parse_interval, parse_market_type
from klinewatch.errors import InvalidInput, KlinewatchError, NotFound, RateLimited
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.logs import get_logger
from klinewatch.services.archive_backfill import KlineArchive
from klinewatch.services.ingestion import UpdateSummary
from klinewatch.services.market_shapes import iso
from klinewatch.services.warehouse_update import DEFAULT_HISTORY_DAYS, UpdateOptions, run_update

log = get_logger(__name__)

EXCHANGES = ("binance", "okx", "bybit", "bitget")
SYMBOL = re.compile(r"[A-Z0-9]{2,32}")
MAX_DAYS = 3650
KEPT = 50  # finished records kept for the page to read
MAX_RUNNING = 4  # more at once would only queue behind the same weight governor


class ClosableArchive(KlineArchive, Protocol):
    async def aclose(self) -> None: ...


ClientFor = Callable[[str, str], ExchangeClient]
ArchiveFor = Callable[[str], ClosableArchive | None]
OnStored = Callable[[UpdateSummary], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    exchange: str
    market_type: str
    symbol: str
    interval: str
    days: int

    @classmethod
    def parse(cls, body: object) -> BackfillRequest:
        """A checked request, or ``InvalidInput`` naming the first bad field."""
        if not isinstance(body, Mapping):
            raise InvalidInput("the body must be a JSON object", field="(root)")
        unknown = sorted(set(body) - {"exchange", "market_type", "symbol", "interval", "days"})
        if unknown:
            raise InvalidInput(f"{unknown[0]}: unknown field", field=unknown[0])
        exchange = body.get("exchange", "binance")
        if exchange not in EXCHANGES:
            raise InvalidInput(f"exchange: one of {', '.join(EXCHANGES)}", field="exchange")
        market = parse_market_type(str(body.get("market_type", "spot"))).value
        symbol = str(body.get("symbol", "")).strip().upper().replace("/", "").replace("-", "")
        if not SYMBOL.fullmatch(symbol):
            raise InvalidInput("symbol: a pair like BTCUSDT", field="symbol")
        interval = parse_interval(str(body.get("interval", "1h"))).name
        days = body.get("days", DEFAULT_HISTORY_DAYS.get(interval, 365))
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"days: a whole number from 1 to {MAX_DAYS}", field="days")
        return cls(str(exchange), market, symbol, interval, days)


@dataclass
class Backfill:
    id: int
    request: BackfillRequest
    started_at_ms: int
    state: str = "running"  # running | done | failed
    done: int = 0
    total: int = 0
    finished_at_ms: int | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    error_field: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **asdict(self.request),
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "started_at": iso(self.started_at_ms),
            "finished_at": None if self.finished_at_ms is None else iso(self.finished_at_ms),
            "summary": self.summary,
            "error": self.error,
            "error_field": self.error_field,
        }


@dataclass
class Backfills:
    """The backfills of this process: start one, read one, list the recent ones."""

    sessions: sessionmaker[Session]
    client_for: ClientFor
    clock: Clock
    quote_assets: set[str]
    archive_for: ArchiveFor
    on_stored: OnStored
    tasks: MutableMapping[str, asyncio.Task[Any]]
    _jobs: OrderedDict[int, Backfill] = field(default_factory=OrderedDict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self, request: BackfillRequest) -> Backfill:
        """A new background run, or the one already running for the same series;
        ``RateLimited`` while ``MAX_RUNNING`` others run."""
        running = [job for job in self._jobs.values() if job.state == "running"]
        for job in running:
            if _same_series(job.request, request):
                return job
        if len(running) >= MAX_RUNNING:
            raise RateLimited(
                f"{MAX_RUNNING} backfills are running; start another when one has finished",
                retry_after_s=5,
            )
        job = Backfill(next(self._ids), request, self.clock.now_ms())
        self._jobs[job.id] = job
        self._forget_old()
        # Finished tasks leave the table here, never from a done callback: the app's
        # shutdown iterates the table while the tasks it cancels finish.
        for name in [n for n, t in self.tasks.items() if n.startswith("backfill-") and t.done()]:
            del self.tasks[name]
        self.tasks[f"backfill-{job.id}"] = asyncio.create_task(
            self._run(job), name=f"klinewatch-backfill-{job.id}"
        )
        log.info("backfill_started", backfill_id=job.id, **asdict(request))
        return job

    def get(self, backfill_id: int) -> Backfill:
        job = self._jobs.get(backfill_id)
        if job is None:
            raise NotFound(f"no backfill {backfill_id} in this process", field="backfill_id")
        return job

    def recent(self) -> list[Backfill]:
        return list(reversed(self._jobs.values()))

    async def _run(self, job: Backfill) -> None:
        r = job.request
        day_ms = 86_400_000
        options = UpdateOptions(
            interval=r.interval,
            symbols=[r.symbol],
            since_parser=lambda now: now - r.days * day_ms,
            on_progress=lambda done, total: _progress(job, done, total),
        )
        archive = None
        try:
            client = self.client_for(r.exchange, r.market_type)
            archive = self.archive_for(r.exchange)
            summary = await run_update(
                self.sessions, client, self.clock, self.quote_assets, options, archive
            )
            job.summary = _summary_record(summary)
            if r.symbol in summary.errors:
                _fail(job, summary.errors[r.symbol], "symbol")
            else:
                job.state = "done"
            if summary.candles_added:
                await self.on_stored(summary)
        except KlinewatchError as e:
            _fail(job, e.message, e.details.get("field"))
        except Exception as e:  # the record must end; the log keeps the trace
            log.exception("backfill_crashed", backfill_id=job.id)
            _fail(job, f"internal error ({type(e).__name__})", None)
        finally:
            job.finished_at_ms = self.clock.now_ms()
            if archive is not None:
                with contextlib.suppress(Exception):
                    await archive.aclose()
        log.info("backfill_finished", backfill_id=job.id, state=job.state, error=job.error)

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state != "running"]
        for key in finished[: max(0, len(self._jobs) - KEPT)]:
            del self._jobs[key]


def _same_series(a: BackfillRequest, b: BackfillRequest) -> bool:
    return (a.exchange, a.market_type, a.symbol, a.interval) == (
        b.exchange,
        b.market_type,
        b.symbol,
        b.interval,
    )


def _progress(job: Backfill, done: int, total: int) -> None:
    job.done, job.total = done, total


def _fail(job: Backfill, message: str, field_name: object) -> None:
    job.state = "failed"
    job.error = message
    job.error_field = None if field_name is None else str(field_name)


def _summary_record(summary: UpdateSummary) -> dict[str, Any]:
    keys = ("requests", "weight", "candles_added", "empty_ranges", "rejected", "archive_files")
    return {k: getattr(summary, k) for k in keys} | {"duration_s": round(summary.duration_s, 3)}

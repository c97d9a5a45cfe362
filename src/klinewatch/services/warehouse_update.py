"""The update-klines use case end to end: contracts first if none, validation of the
request against them, then the gap-filling update."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import Clock
from klinewatch.domain.intervals import parse_interval
from klinewatch.errors import InvalidInput
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.services.archive_backfill import KlineArchive
from klinewatch.services.contracts import sync_contracts
from klinewatch.services.ingestion import KlineUpdater, Progress, UpdateSummary
from klinewatch.storage.contracts import ContractRepository
from klinewatch.storage.engine import transaction

# Seed 001's historical_data_days: the default span of an update per interval.
DEFAULT_HISTORY_DAYS = {"1m": 7, "5m": 30, "15m": 30, "1h": 90, "4h": 365, "1d": 365}


@dataclass
class UpdateOptions:
    interval: str
    symbols: list[str] = field(default_factory=list)
    since_parser: Callable[[int], int | None] = lambda now: None
    concurrency: int = 8
    on_progress: Progress | None = None


async def run_update(
    sessions: sessionmaker[Session],
    client: ExchangeClient,
    clock: Clock,
    quote_assets: set[str],
    options: UpdateOptions,
    archive: KlineArchive | None = None,
) -> UpdateSummary:
    """Validate the request against the stored contracts (syncing them first when there
    are none), then fill every missing closed candle of the span."""
    interval = parse_interval(options.interval)
    exchange, market_type = client.exchange, client.market_type
    now = await client.server_time_ms()
    since = options.since_parser(now)
    if since is None:
        since = now - DEFAULT_HISTORY_DAYS.get(interval.name, 365) * 86_400_000
    with transaction(sessions) as session:
        active = ContractRepository(session).active_symbols(exchange, market_type)
    if not active:
        await sync_contracts(sessions, client, quote_assets)
        with transaction(sessions) as session:
            active = ContractRepository(session).active_symbols(exchange, market_type)
    symbols = options.symbols or active
    unknown = sorted(set(symbols) - set(active))
    if unknown:
        raise InvalidInput(
            f"not an active {exchange} {market_type} contract: {', '.join(unknown)}",
            field="symbols",
        )
    updater = KlineUpdater(
        sessions,
        client,
        clock,
        concurrency=options.concurrency,
        on_progress=options.on_progress,
        archive=archive,
    )
    return await updater.update(symbols, interval, interval.floor(since))

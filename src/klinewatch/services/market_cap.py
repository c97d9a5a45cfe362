"""Market cap, FDV, 24h volume and rank for every ready mapping (seed 000's update_all
and update_single), and the figures per symbol for the API.

``update_all`` asks CoinGecko in batches of at most 250 ids (paced under its calls per
minute by the client). Each batch is its own transaction: its figures, and one error row
per symbol it could not fill (the batch failed after its retries, or CoinGecko has no
data for that id). A failed batch never stops the others; a rejected key (401) stops
the run, since no later call could succeed, and the batch log says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from klinewatch.domain.mapping import CoinMarket
from klinewatch.errors import ConfigurationError, InvalidInput, NotFound
from klinewatch.exchanges.coingecko import MarketBatch
from klinewatch.logs import get_logger
from klinewatch.services.mapping import EXCHANGE, Sessions, find_mapping, normalise_symbol
from klinewatch.storage.engine import transaction
from klinewatch.storage.mappings import MappingRecord, MappingRepository
from klinewatch.storage.market_cap import MarketCapRecord, MarketCapRepository
from klinewatch.storage.update_logs import UpdateLogRepository

log = get_logger(__name__)
MARKET_LOG = "market_data"
MAX_SYMBOLS = 200
Progress = Callable[[int, int], None]


class MarketSource(Protocol):
    """What the update needs from CoinGecko (``CoingeckoClient`` in production)."""

    async def fetch_markets(self, ids: Sequence[str]) -> list[CoinMarket]: ...

    def iter_market_batches(self, ids: Sequence[str], batch_size: int | None = None) -> Any: ...


@dataclass
class MarketUpdateResult:
    total: int = 0
    succeeded: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # base asset -> why
    coins: int = 0
    batches: int = 0
    failed_batches: int = 0
    duration_s: float = 0.0
    log_id: int | None = None
    stopped: str | None = None  # why the run stopped early (a rejected key)


async def update_all(
    sessions: Sessions,
    source: MarketSource,
    exchange: str = EXCHANGE,
    symbols: Sequence[str] | None = None,
    on_progress: Progress | None = None,
) -> MarketUpdateResult:
    """Fetch and store the figures of every ready mapping (or of ``symbols``' mappings)."""
    started = time.monotonic()
    mappings = await asyncio.to_thread(_ready, sessions, exchange, symbols)
    by_id: dict[str, list[str]] = {}
    for m in mappings:
        assert m.coingecko_id is not None
        by_id.setdefault(m.coingecko_id, []).append(m.base_asset)
    result = MarketUpdateResult(total=len(mappings), coins=len(by_id))
    result.log_id = await asyncio.to_thread(_start_log, sessions, result)
    done = 0
    try:
        batch: MarketBatch
        async for batch in source.iter_market_batches(list(by_id)):
            result.batches += 1
            await asyncio.to_thread(_store_batch, sessions, result, batch, by_id)
            done += sum(len(by_id[i]) for i in batch.ids)
            if on_progress is not None:
                on_progress(done, result.total)
    except ConfigurationError as e:
        result.stopped = e.message
        raise
    finally:
        result.duration_s = time.monotonic() - started
        await asyncio.to_thread(_finish_log, sessions, result)
        log.info(
            "market_data_updated",
            total=result.total,
            succeeded=result.succeeded,
            failed=len(result.failed),
            failed_batches=result.failed_batches,
            duration_s=round(result.duration_s, 3),
        )
    return result


def _ready(sessions: Sessions, exchange: str, symbols: Sequence[str] | None) -> list[MappingRecord]:
    with transaction(sessions) as session:
        if symbols is None:
            return MappingRepository(session).ready(exchange)
        found: list[MappingRecord] = []
        for symbol in symbols:
            record = find_mapping(session, normalise_symbol(symbol), exchange)
            if record is None:
                raise NotFound(f"no mapping for {symbol}: run generate-mappings", field="symbol")
            if record.coingecko_id is None or record.status == "needs_review":
                raise InvalidInput(
                    f"symbol: {record.base_asset}'s mapping needs review first "
                    f"(klinewatch mappings confirm {record.base_asset} COINGECKO_ID)",
                    field="symbol",
                )
            found.append(record)
        return found


def _start_log(sessions: Sessions, result: MarketUpdateResult) -> int:
    with transaction(sessions) as session:
        return UpdateLogRepository(session).start(
            MARKET_LOG, {"symbols": result.total, "coins": result.coins}
        )


def _store_batch(
    sessions: Sessions, result: MarketUpdateResult, batch: MarketBatch, by_id: dict[str, list[str]]
) -> None:
    assert result.log_id is not None
    now = datetime.now(UTC)
    answered = {m.id for m in batch.markets}
    with transaction(sessions) as session:
        MarketCapRepository(session).save(batch.markets, now)
        logs = UpdateLogRepository(session)
        if batch.error is not None:
            result.failed_batches += 1
        for coin_id in batch.ids:
            if coin_id in answered:
                result.succeeded += len(by_id[coin_id])
                continue
            why = (
                f"batch failed: {batch.error.message}"
                if batch.error is not None
                else f"CoinGecko returned no market data for {coin_id}"
            )
            for base in by_id[coin_id]:
                result.failed[base] = why
                logs.symbol_error(result.log_id, base, why)


def _finish_log(sessions: Sessions, result: MarketUpdateResult) -> None:
    assert result.log_id is not None
    details: dict[str, Any] = {
        "coins": result.coins,
        "batches": result.batches,
        "failed_batches": result.failed_batches,
    }
    if result.stopped:
        details["stopped"] = result.stopped
    with transaction(sessions) as session:
        logs = UpdateLogRepository(session)
        logs.finish(
            result.log_id,
            total=result.total,
            succeeded=result.succeeded,
            failed=result.total - result.succeeded,
            duration_s=result.duration_s,
            details=details,
        )


async def update_single(
    sessions: Sessions, source: MarketSource, symbol: str, exchange: str = EXCHANGE
) -> MarketUpdateResult:
    """One symbol's figures (seed 000 ``update_single``), logged as a batch of one."""
    return await update_all(sessions, source, exchange, symbols=[symbol])


def parse_symbols(text: str) -> list[str]:
    """``BTC,ETHUSDT`` -> normalised symbols; empty or too many is ``InvalidInput``."""
    try:
        symbols = list(dict.fromkeys(normalise_symbol(s) for s in text.split(",") if s.strip()))
    except InvalidInput as e:
        raise InvalidInput(e.message.replace("symbol:", "symbols:", 1), field="symbols") from None
    if not symbols:
        raise InvalidInput("symbols: give at least one, like BTC,ETHUSDT", field="symbols")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidInput(f"symbols: at most {MAX_SYMBOLS} at once", field="symbols")
    return symbols


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def market_caps(
    sessions: Sessions,
    symbols: Sequence[str],
    stale_after_s: float,
    now: datetime | None = None,
    exchange: str = EXCHANGE,
) -> list[dict[str, Any]]:
    """Per symbol (base asset or pair) its coin's figures; ``is_stale`` once they are
    older than ``stale_after_s``. A symbol without a ready mapping or figures is listed
    with nulls, so a caller sees which ones are missing."""
    moment = now or datetime.now(UTC)
    with transaction(sessions) as session:
        mappings = {s: find_mapping(session, s, exchange) for s in symbols}
        ids = [m.coingecko_id for m in mappings.values() if m and m.coingecko_id]
        figures = MarketCapRepository(session).get_many(ids)
    return [_row(s, mappings[s], figures, moment, stale_after_s) for s in symbols]


def _row(
    symbol: str,
    mapping: MappingRecord | None,
    figures: dict[str, MarketCapRecord],
    now: datetime,
    stale_after_s: float,
) -> dict[str, Any]:
    ready = mapping is not None and mapping.status != "needs_review"
    coin_id = mapping.coingecko_id if mapping is not None and ready else None
    record = figures.get(coin_id) if coin_id else None
    fetched = record.fetched_at if record is not None else None
    if fetched is not None and fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return {
        "symbol": symbol,
        "coingecko_id": coin_id,
        "market_cap": _number(record.market_cap) if record else None,
        "fdv": _number(record.fdv) if record else None,
        "volume_24h": _number(record.volume_24h) if record else None,
        "market_cap_rank": record.market_cap_rank if record else None,
        "fetched_at": fetched.isoformat() if fetched else None,
        "is_stale": fetched is None or now - fetched > timedelta(seconds=stale_after_s),
    }

"""Map every Binance base asset to its CoinGecko coin, and let a person confirm one.

``generate_mappings`` reads the base assets of every active spot and futures contract,
CoinGecko's coin list, CoinGecko's own Binance tickers (the strongest evidence; the run
goes on without them when CoinGecko cannot serve them) and, for symbols several coins
share, those coins' volume and rank; the rules (``domain/mapping.py``) decide; one
transaction stores the result, never touching a ``manual_confirmed`` row; a batch log
keeps the totals.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.mapping import (
    CoinListing,
    CoinMarket,
    Evidence,
    MappingDecision,
    MatchStatus,
    VenueTicker,
    candidates_by_symbol,
    decide,
    name_candidates,
    split_multiplier,
)
from klinewatch.errors import (
    ConfigurationError,
    ExchangeError,
    InvalidInput,
    KlinewatchError,
    NotFound,
)
from klinewatch.exchanges.coingecko import MarketBatch
from klinewatch.logs import get_logger
from klinewatch.storage.engine import transaction
from klinewatch.storage.mappings import MappingRecord, MappingRepository
from klinewatch.storage.update_logs import UpdateLogRepository

log = get_logger(__name__)
Sessions = sessionmaker[Session]
EXCHANGE = "binance"
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,39}")
COIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
MAPPING_LOG = "mapping_update"


class CoinSource(Protocol):
    """What the mapping needs from CoinGecko (``CoingeckoClient`` in production)."""

    async def fetch_coins_list(self) -> list[CoinListing]: ...

    async def fetch_exchange_tickers(self, exchange_id: str = "binance") -> list[VenueTicker]: ...

    def iter_market_batches(self, ids: Sequence[str], batch_size: int | None = None) -> Any: ...


@dataclass
class MappingRunResult:
    total: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    venue_tickers: int = 0
    failed_batches: int = 0
    duration_s: float = 0.0
    log_id: int | None = None


async def generate_mappings(
    sessions: Sessions, source: CoinSource, exchange: str = EXCHANGE
) -> MappingRunResult:
    started = time.monotonic()
    assets = await asyncio.to_thread(_base_assets, sessions, exchange)
    log_id = await asyncio.to_thread(_start_log, sessions, len(assets))
    try:
        decisions, result = await _decide_all(source, exchange, assets)
    except KlinewatchError as e:  # the run stops (a rejected key, CoinGecko away): say why
        await asyncio.to_thread(_fail_log, sessions, log_id, len(assets), started, e.message)
        raise
    result.log_id = log_id
    outcome = await asyncio.to_thread(
        _store, sessions, exchange, decisions, log_id, result, started
    )
    result.changes.update(outcome.values())
    log.info(
        "mappings_generated",
        exchange=exchange,
        total=result.total,
        **dict(result.statuses),
        duration_s=round(result.duration_s, 3),
    )
    return result


async def _decide_all(
    source: CoinSource, exchange: str, assets: set[str]
) -> tuple[list[MappingDecision], MappingRunResult]:
    """The rules applied to every asset, on what CoinGecko says now."""
    coins = await source.fetch_coins_list()
    venue = await _venue_coins(source, exchange)
    by_symbol = candidates_by_symbol(coins)
    known = frozenset(by_symbol)
    fallback = {
        asset: name_candidates(split_multiplier(asset, known)[0], coins)
        for asset in assets
        if split_multiplier(asset, known)[0] not in by_symbol
    }
    contested = _contested_ids(assets, by_symbol, venue, known)
    contested += [c.id for found in fallback.values() for c in found]
    markets, failed_batches = await _markets(source, list(dict.fromkeys(contested)))
    decisions = [
        decide(
            asset,
            by_symbol.get(split_multiplier(asset, known)[0], []),
            markets,
            venue_coin_id=_venue_coin(asset, venue, known),
            known_symbols=known,
            fallback=fallback.get(asset, ()),
        )
        for asset in sorted(assets)
    ]
    result = MappingRunResult(
        total=len(decisions), venue_tickers=len(venue), failed_batches=failed_batches
    )
    result.rules.update(str(d.evidence.get("rule", "")) for d in decisions)
    return decisions, result


def _fail_log(sessions: Sessions, log_id: int, total: int, started: float, why: str) -> None:
    with transaction(sessions) as session:
        UpdateLogRepository(session).finish(
            log_id,
            total=total,
            succeeded=0,
            failed=total,
            duration_s=time.monotonic() - started,
            details={"stopped": why},
        )


def _base_assets(sessions: Sessions, exchange: str) -> set[str]:
    with transaction(sessions) as session:
        return set(MappingRepository(session).base_assets(exchange))


def _start_log(sessions: Sessions, total: int) -> int:
    with transaction(sessions) as session:
        return UpdateLogRepository(session).start(MAPPING_LOG, {"base_assets": total})


async def _venue_coins(source: CoinSource, exchange: str) -> dict[str, str]:
    """Base asset -> coin id from CoinGecko's tickers of the venue (empty when it cannot
    serve them: the rules then stand on the rest)."""
    try:
        tickers = await source.fetch_exchange_tickers(exchange)
    except ConfigurationError:
        raise
    except ExchangeError as e:
        log.warning("coingecko_tickers_unavailable", exchange=exchange, error=e.message)
        return {}
    votes: dict[str, Counter[str]] = {}
    for ticker in tickers:
        votes.setdefault(ticker.base, Counter())[ticker.coin_id] += 1
    return {base: counter.most_common(1)[0][0] for base, counter in votes.items()}


def _venue_coin(asset: str, venue: dict[str, str], known: frozenset[str]) -> str | None:
    return venue.get(asset.upper()) or venue.get(split_multiplier(asset, known)[0])


def _contested_ids(
    assets: set[str],
    by_symbol: dict[str, list[CoinListing]],
    venue: dict[str, str],
    known: frozenset[str],
) -> list[str]:
    """Ids of every coin sharing its symbol with another, for assets without venue word."""
    ids: list[str] = []
    for asset in sorted(assets):
        coins = by_symbol.get(split_multiplier(asset, known)[0], [])
        if len(coins) > 1 and _venue_coin(asset, venue, known) is None:
            ids.extend(c.id for c in coins)
    return list(dict.fromkeys(ids))


async def _markets(source: CoinSource, ids: list[str]) -> tuple[dict[str, CoinMarket], int]:
    markets: dict[str, CoinMarket] = {}
    failed = 0
    batch: MarketBatch
    async for batch in source.iter_market_batches(ids):
        if batch.error is not None:
            failed += 1
            continue
        markets.update({m.id: m for m in batch.markets})
    return markets, failed


def _store(
    sessions: Sessions,
    exchange: str,
    decisions: list[MappingDecision],
    log_id: int,
    result: MappingRunResult,
    started: float,
) -> dict[str, str]:
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        outcome = MappingRepository(session).save_all(exchange, decisions, now)
        stored = {m.base_asset: m.status for m in MappingRepository(session).matching(exchange)}
        result.statuses.update(stored[d.base_asset] for d in decisions)
        result.duration_s = time.monotonic() - started
        ready = (
            result.statuses[MatchStatus.AUTO_MATCHED]
            + result.statuses[MatchStatus.MANUAL_CONFIRMED]
        )
        UpdateLogRepository(session).finish(
            log_id,
            total=result.total,
            succeeded=ready,
            failed=result.statuses[MatchStatus.NEEDS_REVIEW],
            duration_s=result.duration_s,
            details={
                "statuses": dict(result.statuses),
                "rules": dict(result.rules),
                "changes": dict(Counter(outcome.values())),
                "failed_batches": result.failed_batches,
            },
        )
    return outcome


def normalise_symbol(symbol: str) -> str:
    value = symbol.strip().upper().replace("/", "")
    if not SYMBOL.fullmatch(value):
        raise InvalidInput(
            f"symbol: {symbol!r} is not a symbol like BTC or BTCUSDT", field="symbol"
        )
    return value


def normalise_coin_id(coingecko_id: str) -> str:
    value = coingecko_id.strip().lower()
    if not COIN_ID.fullmatch(value):
        raise InvalidInput(
            f"coingecko_id: {coingecko_id!r} is not a CoinGecko id like 'bitcoin'",
            field="coingecko_id",
        )
    return value


def find_mapping(session: Session, symbol: str, exchange: str = EXCHANGE) -> MappingRecord | None:
    """The mapping of a base asset (``PEPE``) or of a pair's base (``PEPEUSDT``)."""
    repo = MappingRepository(session)
    found = repo.get(exchange, symbol)
    if found is None:
        base = repo.base_asset_of_pair(exchange, symbol)
        found = None if base is None else repo.get(exchange, base)
    return found


class CoinIds(Protocol):
    """Whether CoinGecko knows an id (the coin list, fetched once and kept)."""

    async def knows(self, coingecko_id: str) -> bool: ...


@dataclass
class CoinListIds:
    """``CoinIds`` over a coin source's list, refreshed after ``max_age_s``."""

    source: CoinSource
    max_age_s: float = 3600.0
    _ids: frozenset[str] = frozenset()
    _at: float = float("-inf")

    async def knows(self, coingecko_id: str) -> bool:
        if time.monotonic() - self._at > self.max_age_s:
            self._ids = frozenset(c.id for c in await self.source.fetch_coins_list())
            self._at = time.monotonic()
        return coingecko_id in self._ids


async def confirm_mapping(
    sessions: Sessions,
    ids: CoinIds,
    symbol: str,
    coingecko_id: str | None = None,
    exchange: str = EXCHANGE,
) -> MappingRecord:
    """Confirm a mapping's id, or set another: it becomes ``manual_confirmed``. An
    unknown symbol is ``NotFound``; an id CoinGecko does not know is ``InvalidInput``;
    either way nothing changes."""
    wanted = normalise_symbol(symbol)
    chosen = None if coingecko_id is None else normalise_coin_id(coingecko_id)
    current = await asyncio.to_thread(_read_mapping, sessions, wanted, exchange)
    if current is None:
        raise NotFound(f"no mapping for {wanted}: run generate-mappings first", field="symbol")
    if chosen is None:
        chosen = current.coingecko_id
        if chosen is None:
            names = ", ".join(c["coingecko_id"] for c in current.candidates[:10]) or "none"
            raise InvalidInput(
                f"coingecko_id: {wanted} has no id to confirm; pick one (candidates: {names})",
                field="coingecko_id",
            )
    listed = {c.get("coingecko_id") for c in current.candidates}
    if chosen != current.coingecko_id and chosen not in listed and not await ids.knows(chosen):
        raise InvalidInput(f"coingecko_id: CoinGecko has no coin {chosen!r}", field="coingecko_id")
    evidence = {
        "rule": Evidence.MANUAL.value,
        "previous_id": current.coingecko_id,
        "previous_status": current.status,
        "previous_rule": current.evidence.get("rule"),
    }
    return await asyncio.to_thread(
        _write_confirm, sessions, exchange, current.base_asset, chosen, evidence
    )


def _read_mapping(sessions: Sessions, symbol: str, exchange: str) -> MappingRecord | None:
    with transaction(sessions) as session:
        return find_mapping(session, symbol, exchange)


def _write_confirm(
    sessions: Sessions, exchange: str, base_asset: str, coingecko_id: str, evidence: dict[str, Any]
) -> MappingRecord:
    with transaction(sessions) as session:
        record = MappingRepository(session).confirm(
            exchange, base_asset, coingecko_id, evidence, datetime.now(UTC)
        )
    log.info("mapping_confirmed", base_asset=base_asset, coingecko_id=coingecko_id)
    return record


def list_mappings(
    sessions: Sessions,
    status: str | None = None,
    market_type: str | None = None,
    symbol: str | None = None,
    exchange: str = EXCHANGE,
) -> list[dict[str, Any]]:
    """Mappings as the review screens show them, each with its candidates' volume and
    rank; filters are checked (``InvalidInput`` names a bad one)."""
    if status is not None and status not in {s.value for s in MatchStatus}:
        known = ", ".join(s.value for s in MatchStatus)
        raise InvalidInput(f"status: {status!r} is not one of {known}", field="status")
    if market_type is not None and market_type not in ("spot", "futures"):
        raise InvalidInput(
            f"market_type: {market_type!r} is not spot or futures", field="market_type"
        )
    with transaction(sessions) as session:
        repo = MappingRepository(session)
        markets = repo.base_assets(exchange)
        wanted: list[str] | None = None
        if symbol is not None:
            found = find_mapping(session, normalise_symbol(symbol), exchange)
            wanted = [found.base_asset] if found is not None else []
        records = repo.matching(exchange, status, wanted)
    if market_type is not None:
        records = [r for r in records if market_type in markets.get(r.base_asset, set())]
    return [mapping_view(r, sorted(markets.get(r.base_asset, set()))) for r in records]


def mapping_view(record: MappingRecord, market_types: list[str] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "base_asset": record.base_asset,
        "exchange": record.exchange,
        "coin_symbol": record.coin_symbol,
        "multiplier": record.multiplier,
        "coingecko_id": record.coingecko_id,
        "status": record.status,
        "evidence": record.evidence,
        "candidates": record.candidates,
        "updated_at": _iso(record.updated_at),
    }
    if market_types is not None:
        view["market_types"] = market_types
    return view


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def unmapped_assets(sessions: Sessions, exchange: str = EXCHANGE) -> int:
    """How many active base assets have no mapping row yet (new listings)."""
    with transaction(sessions) as session:
        repo = MappingRepository(session)
        mapped = {m.base_asset for m in repo.matching(exchange)}
        return len(set(repo.base_assets(exchange)) - mapped)

"""Seed 002 flow 1: keep the contract list in step with the exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.exchanges.port import ContractInfo, ExchangeClient
from klinewatch.logs import get_logger
from klinewatch.storage.contracts import ContractRepository
from klinewatch.storage.engine import transaction
from klinewatch.storage.models import Contract

log = get_logger(__name__)


@dataclass
class ContractSyncResult:
    exchange: str
    market_type: str
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    delisted: list[str] = field(default_factory=list)
    unchanged: int = 0


def wanted(info: ContractInfo, market_type: str, quote_assets: set[str]) -> bool:
    """TRADING pairs of the configured quote assets; futures must be perpetual."""
    if not info.is_trading or info.quote_asset not in quote_assets:
        return False
    return market_type != "futures" or info.contract_type == "PERPETUAL"


async def sync_contracts(
    sessions: sessionmaker[Session],
    client: ExchangeClient,
    quote_assets: set[str],
) -> ContractSyncResult:
    listed = {
        c.symbol: c
        for c in await client.fetch_contracts()
        if wanted(c, client.market_type, quote_assets)
    }
    result = ContractSyncResult(client.exchange, client.market_type)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        repo = ContractRepository(session)
        stored = repo.all(client.exchange, client.market_type)
        fresh = [
            _new_contract(client, info, now) for sym, info in listed.items() if sym not in stored
        ]
        repo.add(fresh)
        result.new = sorted(c.symbol for c in fresh)
        for symbol, row in stored.items():
            info = listed.get(symbol)
            if info is None:
                if row.delisted_at is None:
                    result.delisted.append(symbol)
                continue
            if _refresh(row, info):
                result.updated.append(symbol)
            else:
                result.unchanged += 1
        repo.mark_delisted((stored[s] for s in result.delisted), now)
    log.info(
        "contracts_synced",
        exchange=client.exchange,
        market_type=client.market_type,
        new=len(result.new),
        updated=len(result.updated),
        delisted=len(result.delisted),
    )
    return result


def _new_contract(client: ExchangeClient, info: ContractInfo, now: datetime) -> Contract:
    return Contract(
        exchange=client.exchange,
        market_type=client.market_type,
        symbol=info.symbol,
        base_asset=info.base_asset,
        quote_asset=info.quote_asset,
        status=info.status,
        contract_type=info.contract_type,
        onboard_date_ms=info.onboard_date_ms,
        first_seen_at=now,
    )


def _refresh(row: Contract, info: ContractInfo) -> bool:
    """Copy what changed; a relisted contract comes back to life."""
    changed = False
    for attr, value in (
        ("base_asset", info.base_asset),
        ("quote_asset", info.quote_asset),
        ("status", info.status),
        ("contract_type", info.contract_type),
    ):
        if getattr(row, attr) != value:
            setattr(row, attr, value)
            changed = True
    if row.delisted_at is not None:
        row.delisted_at = None
        changed = True
    return changed

"""Token mappings: which CoinGecko coin each Binance base asset is, with its evidence.

A ``manual_confirmed`` row is a person's word: ``save`` never overwrites it. Rows are
handed out as ``MappingRecord`` values so that callers never hold ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from klinewatch.domain.mapping import MappingDecision, MatchStatus
from klinewatch.storage.models import Contract, TokenMapping

READY = (MatchStatus.AUTO_MATCHED.value, MatchStatus.MANUAL_CONFIRMED.value)


@dataclass(frozen=True, slots=True)
class MappingRecord:
    exchange: str
    base_asset: str
    coin_symbol: str
    multiplier: int
    coingecko_id: str | None
    status: str
    evidence: dict[str, Any]
    candidates: list[dict[str, Any]]
    matched_at: datetime
    updated_at: datetime


def _record(row: TokenMapping) -> MappingRecord:
    return MappingRecord(
        exchange=row.exchange,
        base_asset=row.base_asset,
        coin_symbol=row.coin_symbol,
        multiplier=int(row.multiplier),
        coingecko_id=row.coingecko_id,
        status=row.match_status,
        evidence=dict(row.evidence or {}),
        candidates=list(row.alternatives or []),
        matched_at=row.matched_at,
        updated_at=row.updated_at,
    )


class MappingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def base_assets(self, exchange: str) -> dict[str, set[str]]:
        """Base asset -> the market types it trades in (active contracts only)."""
        rows = self.session.execute(
            select(Contract.base_asset, Contract.market_type).where(
                Contract.exchange == exchange,
                Contract.status == "TRADING",
                Contract.delisted_at.is_(None),
            )
        )
        found: dict[str, set[str]] = {}
        for base, market in rows:
            found.setdefault(str(base).upper(), set()).add(str(market))
        return found

    def base_asset_of_pair(self, exchange: str, symbol: str) -> str | None:
        """``BTCUSDT`` -> ``BTC`` through the contracts table (any status)."""
        row = self.session.execute(
            select(Contract.base_asset)
            .where(Contract.exchange == exchange, Contract.symbol == symbol)
            .limit(1)
        ).scalar_one_or_none()
        return None if row is None else str(row).upper()

    def get(self, exchange: str, base_asset: str) -> MappingRecord | None:
        row = self._row(exchange, base_asset)
        return None if row is None else _record(row)

    def matching(
        self,
        exchange: str,
        status: str | None = None,
        base_assets: Iterable[str] | None = None,
    ) -> list[MappingRecord]:
        query = select(TokenMapping).where(TokenMapping.exchange == exchange)
        if status is not None:
            query = query.where(TokenMapping.match_status == status)
        if base_assets is not None:
            query = query.where(TokenMapping.base_asset.in_(list(base_assets)))
        return [_record(r) for r in self.session.scalars(query.order_by(TokenMapping.base_asset))]

    def ready(self, exchange: str, base_assets: Iterable[str] | None = None) -> list[MappingRecord]:
        """Mappings whose market data may be fetched: matched or confirmed, with an id."""
        query = select(TokenMapping).where(
            TokenMapping.exchange == exchange,
            TokenMapping.match_status.in_(READY),
            TokenMapping.coingecko_id.is_not(None),
        )
        if base_assets is not None:
            query = query.where(TokenMapping.base_asset.in_(list(base_assets)))
        return [_record(r) for r in self.session.scalars(query.order_by(TokenMapping.base_asset))]

    def save_all(
        self, exchange: str, decisions: Iterable[MappingDecision], now: datetime
    ) -> dict[str, str]:
        """Store decisions; per base asset ``created``, ``updated``, ``unchanged`` or
        ``kept_manual`` (a manual confirmation stays exactly as it is)."""
        stored = {
            row.base_asset: row
            for row in self.session.scalars(
                select(TokenMapping).where(TokenMapping.exchange == exchange)
            )
        }
        outcome: dict[str, str] = {}
        for decision in decisions:
            row = stored.get(decision.base_asset)
            if row is None:
                row = TokenMapping(exchange=exchange, base_asset=decision.base_asset)
                _apply(row, decision, now)
                self.session.add(row)
                stored[decision.base_asset] = row
                outcome[decision.base_asset] = "created"
            elif row.match_status == MatchStatus.MANUAL_CONFIRMED.value:
                outcome[decision.base_asset] = "kept_manual"
            elif _same(row, decision):
                outcome[decision.base_asset] = "unchanged"
            else:
                _apply(row, decision, now)
                outcome[decision.base_asset] = "updated"
        self.session.flush()
        return outcome

    def confirm(
        self, exchange: str, base_asset: str, coingecko_id: str, evidence: dict[str, Any],
        now: datetime,
    ) -> MappingRecord:  # fmt: skip
        """Set the id by hand: the mapping becomes ``manual_confirmed``."""
        row = self._row(exchange, base_asset)
        if row is None:
            raise LookupError(base_asset)
        row.coingecko_id = coingecko_id
        row.match_status = MatchStatus.MANUAL_CONFIRMED.value
        row.evidence = evidence
        row.matched_at = row.updated_at = now
        self.session.flush()
        return _record(row)

    def _row(self, exchange: str, base_asset: str) -> TokenMapping | None:
        return self.session.scalars(
            select(TokenMapping).where(
                TokenMapping.exchange == exchange, TokenMapping.base_asset == base_asset
            )
        ).one_or_none()


def _values(decision: MappingDecision) -> dict[str, Any]:
    return {
        "coin_symbol": decision.coin_symbol,
        "multiplier": decision.multiplier,
        "coingecko_id": decision.coingecko_id,
        "match_status": decision.status.value,
        "evidence": dict(decision.evidence),
        "alternatives": [c.as_dict() for c in decision.candidates],
    }


def _same(row: TokenMapping, decision: MappingDecision) -> bool:
    return all(getattr(row, name) == value for name, value in _values(decision).items())


def _apply(row: TokenMapping, decision: MappingDecision, now: datetime) -> None:
    for name, value in _values(decision).items():
        setattr(row, name, value)
    row.matched_at = row.updated_at = now

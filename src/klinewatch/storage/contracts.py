"""Spot pairs and futures contracts: upserted from exchangeInfo, delisted never deleted."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from klinewatch.storage.models import Contract


class ContractRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def all(self, exchange: str, market_type: str) -> dict[str, Contract]:
        rows = self.session.scalars(
            select(Contract).where(
                Contract.exchange == exchange, Contract.market_type == market_type
            )
        )
        return {row.symbol: row for row in rows}

    def active_symbols(self, exchange: str, market_type: str) -> list[str]:
        rows = self.session.scalars(
            select(Contract.symbol)
            .where(
                Contract.exchange == exchange,
                Contract.market_type == market_type,
                Contract.status == "TRADING",
                Contract.delisted_at.is_(None),
            )
            .order_by(Contract.symbol)
        )
        return list(rows)

    def add(self, contracts: Iterable[Contract]) -> None:
        self.session.add_all(contracts)
        self.session.flush()

    def mark_delisted(self, contracts: Iterable[Contract], when: datetime) -> None:
        for contract in contracts:
            contract.delisted_at = when
            contract.status = "DELISTED"
        self.session.flush()

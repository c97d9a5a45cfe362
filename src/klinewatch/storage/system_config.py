"""The system-config singleton row (``id = 1``): read, create once, replace sections.

Two processes starting at once may both find no row: the insert is ``ON CONFLICT DO
NOTHING`` so the loser simply reads the winner's row. The repository never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from klinewatch.storage.models import SystemConfig, utcnow

SINGLETON_ID = 1


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """A detached copy of the row: safe to keep after the session closes."""

    market_data: dict[str, Any]
    encrypted_secrets: dict[str, Any]
    updated_at: datetime
    volume_trap: dict[str, Any] | None = None


class SystemConfigRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, *, for_update: bool = False) -> StoredConfig | None:
        """The row; ``for_update`` locks it (PostgreSQL) for a read-modify-write."""
        row = self.session.get(
            SystemConfig, SINGLETON_ID, populate_existing=True, with_for_update=for_update
        )
        return None if row is None else _detached(row)

    def get_or_create(self, market_data: dict[str, Any]) -> StoredConfig:
        """The stored row, created with ``market_data`` when there is none yet."""
        found = self.get()
        if found is not None:
            return found
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert(SystemConfig)
            .values(
                id=SINGLETON_ID,
                market_data=market_data,
                volume_trap={},
                market_cap={},
                prices={},
                encrypted_secrets={},
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        created = self.get()
        assert created is not None
        return created

    def updated_at(self) -> datetime | None:
        """The cheap "did anything change" probe other processes poll."""
        value: datetime | None = self.session.scalar(
            select(SystemConfig.updated_at).where(SystemConfig.id == SINGLETON_ID)
        )
        return None if value is None else _aware(value)

    def save(
        self,
        market_data: dict[str, Any],
        encrypted_secrets: dict[str, Any],
        volume_trap: dict[str, Any] | None = None,
    ) -> StoredConfig:
        """Replace the market-data section and the secrets, and the volume-trap section
        when given (the row must exist)."""
        row = self.session.get(SystemConfig, SINGLETON_ID, with_for_update=True)
        if row is None:
            raise LookupError("the system_config row does not exist yet")
        row.market_data = market_data
        row.encrypted_secrets = encrypted_secrets
        if volume_trap is not None:
            row.volume_trap = volume_trap
        row.updated_at = utcnow()
        self.session.flush()
        return _detached(row)


def _detached(row: SystemConfig) -> StoredConfig:
    return StoredConfig(
        market_data=dict(row.market_data or {}),
        encrypted_secrets=dict(row.encrypted_secrets or {}),
        updated_at=_aware(row.updated_at),
        volume_trap=dict(row.volume_trap or {}),
    )


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

"""Migrations: up, no drift against the models, down, and up again, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from klinewatch.storage import migrate
from klinewatch.storage.engine import build_engine
from klinewatch.storage.models import Base


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
def test_upgrade_check_downgrade_roundtrip(empty_database_url: str) -> None:
    url = empty_database_url
    migrate.upgrade(url)
    assert migrate.current(url) is not None
    migrate.check(url)  # raises on any drift between models and migrations
    engine = build_engine(url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        migrate.downgrade(url, "base")
        assert migrate.current(url) is None
        remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        migrate.upgrade(url)
        migrate.check(url)
    finally:
        engine.dispose()

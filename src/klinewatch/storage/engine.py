"""Engines and sessions, built by the composition roots from the database URL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.errors import ConfigurationError, DatabaseUnreachable


def _normalise(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver with COPY we rely on)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def build_engine(url: str, *, check: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``; with ``check`` a first connection proves it is reachable,
    so a wrong URL fails here with one clear message instead of deep inside a command."""
    url = _normalise(url)
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigurationError(
            f"KLINEWATCH_DATABASE_URL is not a database URL: {url!r}", field="database_url"
        ) from e
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError) as e:
        raise ConfigurationError(
            f"KLINEWATCH_DATABASE_URL names an unsupported database: {redact(url)}",
            field="database_url",
        ) from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if check:
        check_connection(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError) as e:
        reason = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e) else type(e).__name__
        raise DatabaseUnreachable(
            f"cannot reach the database at KLINEWATCH_DATABASE_URL={redact(str(engine.url))}: "
            f"{reason}",
            field="database_url",
        ) from e


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error. Services use this;
    repositories never commit."""
    with factory() as session, session.begin():
        yield session

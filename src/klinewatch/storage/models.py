"""One schema for every entity the seeds store, identical on SQLite and PostgreSQL.

Candle times are integer milliseconds (``*_ms``) because candles move in bulk as NumPy
columns and are written with PostgreSQL's binary COPY; everything else uses timezone-aware
timestamps. A candle series is one row of ``kline_series``; candles reference it, so the
unique key (exchange, market_type, symbol, interval, open_time) is ``(series_id,
open_time_ms)``, which is also the index that serves "the latest N candles of a series".
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
        float: Double,
    }


Timestamp = DateTime(timezone=True)
MARKET_TYPES = "market_type IN ('spot', 'futures')"


class Exchange(Base):
    __tablename__ = "exchanges"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contract(Base):
    """A spot pair or a futures contract (seed 002's SpotContract / FuturesContract)."""

    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("exchange", "market_type", "symbol"),
        CheckConstraint(MARKET_TYPES, name="market_type"),
        Index(None, "market_type", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(ForeignKey("exchanges.name"))
    market_type: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    base_asset: Mapped[str] = mapped_column(String(24))
    quote_asset: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    contract_type: Mapped[str | None] = mapped_column(String(24))
    current_price: Mapped[float | None]
    price_updated_at: Mapped[datetime | None]
    onboard_date_ms: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    delisted_at: Mapped[datetime | None]


class KlineSeries(Base):
    __tablename__ = "kline_series"
    __table_args__ = (
        UniqueConstraint("exchange", "market_type", "symbol", "interval"),
        CheckConstraint(MARKET_TYPES, name="market_type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(ForeignKey("exchanges.name"))
    market_type: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Kline(Base):
    """Every Binance kline field; fields a source did not record are 0.

    ``series_id`` has no foreign key on purpose: a per-row FK check costs PostgreSQL's
    COPY more than half its speed, and series rows are never deleted while candles exist
    (``KlineRepository`` is the only writer of both)."""

    __tablename__ = "klines"
    __table_args__ = {"sqlite_with_rowid": False}

    series_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    open_time_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]
    volume: Mapped[float]
    close_time_ms: Mapped[int] = mapped_column(BigInteger)
    quote_volume: Mapped[float]
    trade_count: Mapped[int] = mapped_column(BigInteger)
    taker_buy_base_volume: Mapped[float]
    taker_buy_quote_volume: Mapped[float]


class KlineRange(Base):
    """The ledger: ranges of open times fetched from a source, and ranges the exchange
    confirmed empty (outages, halts, before listing) so they are never re-requested and
    never mistaken for holes."""

    __tablename__ = "kline_ranges"
    __table_args__ = (
        CheckConstraint("kind IN ('fetched', 'empty')", name="kind"),
        CheckConstraint("start_ms < end_ms", name="ordered"),
        Index(None, "series_id", "kind", "start_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("kline_series.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="rest")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class TechnicalIndicator(Base):
    """Seed 001 section 4.1; the parameters are keyed by their hash (JSON is not indexable
    on every backend)."""

    __tablename__ = "technical_indicators"
    __table_args__ = (
        UniqueConstraint("series_id", "open_time_ms", "indicator_type", "params_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("kline_series.id", ondelete="CASCADE"))
    open_time_ms: Mapped[int] = mapped_column(BigInteger)
    indicator_type: Mapped[str] = mapped_column(String(20))
    params_hash: Mapped[str] = mapped_column(String(32))
    indicator_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    indicator_values: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SystemConfig(Base):
    """The configuration singleton (seed 001 section 4.1): one row, id 1, enforced."""

    __tablename__ = "system_config"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    market_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    volume_trap: Mapped[dict[str, Any]] = mapped_column(default=dict)
    market_cap: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prices: Mapped[dict[str, Any]] = mapped_column(default=dict)
    encrypted_secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


ACTIVE_MONITOR = "status IN ('pending', 'suspected_abandonment')"


class VolumeTrapMonitor(Base):
    """One burst followed through the three phases (seed 002, spec volume-trap.md)."""

    __tablename__ = "volume_trap_monitors"
    __table_args__ = (
        CheckConstraint(MARKET_TYPES, name="market_type"),
        CheckConstraint(
            "status IN ('pending', 'suspected_abandonment', 'confirmed_abandonment', "
            "'invalidated', 'expired')",
            name="status",
        ),
        Index(
            "uq_volume_trap_monitors_active_series",
            "exchange",
            "market_type",
            "symbol",
            "interval",
            unique=True,
            sqlite_where=text(ACTIVE_MONITOR),
            postgresql_where=text(ACTIVE_MONITOR),
        ),
        Index(None, "status", "market_type", "trigger_open_time_ms"),
        # The monitor list's orderings (id breaks ties, so pages never overlap) and its
        # symbol filter.
        Index(None, "trigger_open_time_ms", "id"),
        Index(None, "rvol", "id"),
        Index(None, "drawdown_pct", "id"),
        Index(None, "symbol", "interval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(ForeignKey("exchanges.name"))
    market_type: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(4))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))
    status: Mapped[str] = mapped_column(String(24))
    trigger_open_time_ms: Mapped[int] = mapped_column(BigInteger)
    trigger_open: Mapped[float]
    trigger_high: Mapped[float]
    trigger_low: Mapped[float]
    trigger_close: Mapped[float]
    trigger_volume: Mapped[float]
    key_level: Mapped[float]
    rvol: Mapped[float]
    amplitude_pct: Mapped[float]
    drawdown_pct: Mapped[float] = mapped_column(default=0.0)
    last_transition_open_time_ms: Mapped[int] = mapped_column(BigInteger)
    last_evaluated_open_time_ms: Mapped[int] = mapped_column(BigInteger)
    later_bursts: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VolumeTrapScanCursor(Base):
    """Where the scan of a series stopped, monitor or not, so a missed run catches up
    candle by candle and a live run agrees with a history replay."""

    __tablename__ = "volume_trap_scan_cursors"

    exchange: Mapped[str] = mapped_column(ForeignKey("exchanges.name"), primary_key=True)
    market_type: Mapped[str] = mapped_column(String(8), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    interval: Mapped[str] = mapped_column(String(4), primary_key=True)
    cursor_open_time_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VolumeTrapIndicators(Base):
    """A snapshot of every detector's values at the candle of a transition."""

    __tablename__ = "volume_trap_indicators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(
        ForeignKey("volume_trap_monitors.id", ondelete="CASCADE"), index=True
    )
    open_time_ms: Mapped[int] = mapped_column(BigInteger)
    detector_values: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VolumeTrapStateTransition(Base):
    __tablename__ = "volume_trap_state_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(
        ForeignKey("volume_trap_monitors.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    open_time_ms: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    detector_values: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TokenMapping(Base):
    """A Binance base asset -> CoinGecko coin (seed 000), with its evidence and status."""

    __tablename__ = "token_mappings"
    __table_args__ = (
        UniqueConstraint("exchange", "base_asset"),
        CheckConstraint(
            "match_status IN ('auto_matched', 'needs_review', 'manual_confirmed')",
            name="match_status",
        ),
        Index(None, "match_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(ForeignKey("exchanges.name"))
    base_asset: Mapped[str] = mapped_column(String(24))
    coin_symbol: Mapped[str] = mapped_column(String(24))
    multiplier: Mapped[int] = mapped_column(BigInteger, default=1)
    coingecko_id: Mapped[str | None] = mapped_column(String(128))
    match_status: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    alternatives: Mapped[list[Any]] = mapped_column(default=list)
    matched_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CoinMarketData(Base):
    """Market cap / FDV of one CoinGecko coin (seed 000's MarketData)."""

    __tablename__ = "coin_market_data"

    coingecko_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(24))
    price_usd: Mapped[float | None]
    market_cap: Mapped[float | None]
    fully_diluted_valuation: Mapped[float | None]
    total_volume: Mapped[float | None]
    market_cap_rank: Mapped[int | None]
    circulating_supply: Mapped[float | None]
    total_supply: Mapped[float | None]
    max_supply: Mapped[float | None]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class UpdateLog(Base):
    """One batch of work (mapping run, market-data fetch, kline update) and its totals."""

    __tablename__ = "update_logs"
    __table_args__ = (Index(None, "kind", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="running")
    total: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    duration_s: Mapped[float | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class UpdateLogError(Base):
    """A per-symbol failure inside a batch; a failure never stops the batch."""

    __tablename__ = "update_log_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    log_id: Mapped[int] = mapped_column(
        ForeignKey("update_logs.id", ondelete="CASCADE"), index=True
    )
    symbol: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CachedPrice(Base):
    """The last good price of a token (seed 004's local cache, served stale on failure)."""

    __tablename__ = "cached_prices"
    __table_args__ = (UniqueConstraint("symbol", "network"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    network: Mapped[str] = mapped_column(String(32), default="")
    price_usdt: Mapped[Decimal] = mapped_column(Numeric(38, 18))
    source: Mapped[str] = mapped_column(String(16))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)

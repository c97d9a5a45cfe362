"""Composition helpers shared by the composition roots (CLI, API app, scheduler).

Builds engines, governors and exchange clients from settings; nothing here runs at
import time, and no layer below the roots imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache.memory import DEFAULT_MAX_BYTES, MemoryCache
from klinewatch.cache.port import Cache
from klinewatch.cache.redis_cache import RedisCache
from klinewatch.clock import Clock, SystemClock
from klinewatch.domain.intervals import MarketType, parse_market_type
from klinewatch.errors import InvalidInput
from klinewatch.exchanges.binance.archive import BinanceArchive, build_binance_archive
from klinewatch.exchanges.binance.client import BinanceClient, build_binance_client
from klinewatch.exchanges.ccxt_venues import CCXT_EXCHANGES, VENUES
from klinewatch.exchanges.coingecko import (
    CallPacer,
    CoingeckoClient,
    coingecko_client_from_settings,
)
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.exchanges.ratelimit import MemoryWeightLedger, WeightGovernor, WeightLedger
from klinewatch.exchanges.ratelimit_redis import RedisWeightLedger
from klinewatch.settings import Settings
from klinewatch.storage.engine import build_engine, session_factory

SUPPORTED_EXCHANGES = ("binance", *CCXT_EXCHANGES)


@dataclass
class Runtime:
    """What one process builds once: the database, the governors, the clock."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    ledger: WeightLedger | None = None
    governors: dict[str, WeightGovernor] = field(default_factory=dict)
    coingecko_pacer: CallPacer | None = None

    def governor(
        self, key: str, budget_per_min: int, window_ms: int | None = None
    ) -> WeightGovernor:
        """One governor per exchange host, shared by every client in the process (and by
        every process through Redis when ``KLINEWATCH_REDIS_URL`` is set). ``window_ms``
        defaults to the Binance minute (``weight_window_s``)."""
        if key not in self.governors:
            self.governors[key] = WeightGovernor(
                key=key,
                budget_per_min=budget_per_min,
                margin=self.settings.weight_safety_margin,
                ledger=self.weight_ledger(),
                clock=self.clock,
                window_ms=window_ms or int(self.settings.weight_window_s * 1000),
            )
        return self.governors[key]

    def weight_ledger(self) -> WeightLedger:
        """Redis books when ``redis_url`` is set (shared by processes), else this
        process's books with bans persisted to ``var/bans.json``."""
        if self.ledger is None:
            if self.settings.redis_url:
                self.ledger = RedisWeightLedger.from_url(self.settings.redis_url, clock=self.clock)
            else:
                self.ledger = MemoryWeightLedger(ban_file=Path("var") / "bans.json")
        return self.ledger

    @overload
    def exchange_client(self, exchange: Literal["binance"], market_type: str) -> BinanceClient: ...

    @overload
    def exchange_client(self, exchange: str, market_type: str) -> ExchangeClient: ...

    def exchange_client(self, exchange: str, market_type: str) -> ExchangeClient:
        if exchange not in SUPPORTED_EXCHANGES:
            raise InvalidInput(
                f"unknown exchange {exchange!r}; expected one of {', '.join(SUPPORTED_EXCHANGES)}",
                field="exchange",
            )
        if exchange in VENUES:
            return self.ccxt_client(exchange, market_type)
        return self.binance_client(market_type)

    def ccxt_client(self, exchange: str, market_type: str) -> ExchangeClient:
        """OKX, Bybit or Bitget through CCXT, at ``<exchange>_url`` via ``<exchange>_proxy``,
        paced by one governor per host with the venue's documented request budget."""
        from klinewatch.exchanges.ccxt_exchange import build_ccxt_client  # CCXT loads slowly

        market = parse_market_type(market_type).value
        base: str = getattr(self.settings, f"{exchange}_url")
        proxy = getattr(self.settings, f"{exchange}_proxy")
        limits = VENUES[exchange]
        governor = self.governor(
            f"{exchange}@{urlsplit(base).netloc}",
            limits.governor_budget,
            window_ms=limits.governor_window_ms,
        )
        return build_ccxt_client(
            exchange,
            market,
            base,
            governor,
            self.clock,
            timeout_s=self.settings.http_timeout_s,
            proxy=proxy.get_secret_value() if proxy else None,
        )

    def binance_client(self, market_type: str) -> BinanceClient:
        market = MarketType(market_type).value
        base = (
            self.settings.binance_spot_url
            if market == "spot"
            else self.settings.binance_futures_url
        )
        proxy = self.settings.binance_proxy
        budget = (
            self.settings.binance_spot_weight_limit
            if market == "spot"
            else self.settings.binance_futures_weight_limit
        )
        return build_binance_client(
            "spot" if market == "spot" else "futures",
            base,
            self.governor(f"binance-{market}@{urlsplit(base).netloc}", budget),
            self.clock,
            timeout_s=self.settings.http_timeout_s,
            proxy=proxy.get_secret_value() if proxy else None,
        )

    def archive_client(self, exchange: str, enabled: bool | None = None) -> BinanceArchive | None:
        """The exchange's public-data archive for long backfills, or None when it has
        none or it is off (``enabled``, else ``KLINEWATCH_ARCHIVE_ENABLED``)."""
        use = self.settings.archive_enabled if enabled is None else enabled
        if not use or exchange != "binance":
            return None
        proxy = self.settings.binance_proxy
        return build_binance_archive(
            self.settings.binance_archive_url,
            timeout_s=max(self.settings.http_timeout_s, 30.0),
            proxy=proxy.get_secret_value() if proxy else None,
        )

    def coingecko_client(self) -> CoingeckoClient:
        """A CoinGecko client (the caller closes it). Every client of the process shares
        one pacer, so that mappings, market data and prices together stay under
        CoinGecko's calls-per-minute limit. It paces on real time, not ``self.clock``."""
        client = coingecko_client_from_settings(self.settings, pacer=self.coingecko_pacer)
        if self.coingecko_pacer is None:
            self.coingecko_pacer = client.pacer
        return client

    def close(self) -> None:
        self.engine.dispose()


def build_cache(settings: Settings, clock: Clock, max_bytes: int = DEFAULT_MAX_BYTES) -> Cache:
    """Redis under ``cache_prefix`` when ``redis_url`` is set, shared by every process on
    it (the API's workers and ``klinewatch scheduler`` read each other's values), else
    this process's memory, bounded to ``max_bytes``. The caller closes it."""
    if settings.redis_url:
        return RedisCache.from_url(settings.redis_url, prefix=settings.cache_prefix)
    return MemoryCache(max_bytes=max_bytes, clock=clock)


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    engine = build_engine(settings.database_url)
    return Runtime(settings, engine, session_factory(engine), clock or SystemClock())

"""Composition helpers shared by the composition roots (CLI, API app, scheduler).

Builds engines, governors and exchange clients from settings; nothing here runs at
import time, and no layer below the roots imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import Clock, SystemClock
from klinewatch.domain.intervals import MarketType
from klinewatch.errors import InvalidInput
from klinewatch.exchanges.binance.client import BinanceClient, build_binance_client
from klinewatch.exchanges.ratelimit import MemoryWeightLedger, WeightGovernor, WeightLedger
from klinewatch.settings import Settings
from klinewatch.storage.engine import build_engine, session_factory

SUPPORTED_EXCHANGES = ("binance",)


@dataclass
class Runtime:
    """What one process builds once: the database, the governors, the clock."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    ledger: WeightLedger | None = None
    governors: dict[str, WeightGovernor] = field(default_factory=dict)

    def governor(self, key: str, budget_per_min: int) -> WeightGovernor:
        """One governor per exchange host, shared by every client in the process."""
        if key not in self.governors:
            if self.ledger is None:
                self.ledger = MemoryWeightLedger(ban_file=Path("var") / "bans.json")
            self.governors[key] = WeightGovernor(
                key=key,
                budget_per_min=budget_per_min,
                margin=self.settings.weight_safety_margin,
                ledger=self.ledger,
                clock=self.clock,
                window_ms=int(self.settings.weight_window_s * 1000),
            )
        return self.governors[key]

    def exchange_client(self, exchange: str, market_type: str) -> BinanceClient:
        if exchange not in SUPPORTED_EXCHANGES:
            raise InvalidInput(
                f"unknown exchange {exchange!r}; expected one of {', '.join(SUPPORTED_EXCHANGES)}",
                field="exchange",
            )
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

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    engine = build_engine(settings.database_url)
    return Runtime(settings, engine, session_factory(engine), clock or SystemClock())

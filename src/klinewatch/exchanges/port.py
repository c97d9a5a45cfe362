"""The port every exchange client implements, in domain terms (columnar candles).

Exchange quirks are a typed capability record, not ``if`` branches in callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import Interval


@dataclass(frozen=True, slots=True)
class ContractInfo:
    symbol: str
    base_asset: str
    quote_asset: str
    status: str  # the exchange's own word: TRADING, BREAK, SETTLING, ...
    contract_type: str | None = None  # PERPETUAL for USDT-M perpetuals
    onboard_date_ms: int | None = None

    @property
    def is_trading(self) -> bool:
        return self.status == "TRADING"


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    last_price: float
    price_change_pct: float
    high: float
    low: float
    volume: float
    quote_volume: float
    close_time_ms: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one market of one exchange allows: how many candles a request may carry, and
    what a request of a given size costs in weight (to pick the cheapest size)."""

    max_candles_per_request: int
    klines_weight: Callable[[int], int]
    best_candles_per_request: int

    def request_sizes(self, count: int) -> list[int]:
        """Split ``count`` candles into request sizes of the least total weight."""
        sizes: list[int] = []
        while count > 0:
            size = min(count, self.best_candles_per_request)
            sizes.append(size)
            count -= size
        return sizes


class ExchangeClient(Protocol):
    """One market (spot or futures) of one exchange."""

    exchange: str
    market_type: str
    capabilities: Capabilities

    async def fetch_klines(
        self, symbol: str, interval: Interval, start_ms: int, end_ms: int, limit: int
    ) -> Candles:
        """Candles with open time in ``[start_ms, end_ms)``, at most ``limit``, oldest
        first, including the still-open candle if the range reaches "now"."""
        ...

    async def fetch_contracts(self) -> list[ContractInfo]: ...

    async def fetch_ticker(self, symbol: str) -> Ticker: ...

    async def server_time_ms(self) -> int: ...

    async def aclose(self) -> None: ...

"""Tier two: a Binance market as an ``ExchangeClient`` returning domain values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from klinewatch.clock import Clock
from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import Interval
from klinewatch.errors import ExchangeRejected, ExchangeUnavailable
from klinewatch.exchanges.binance.http import HttpShards
from klinewatch.exchanges.binance.parse import (
    parse_contracts,
    parse_kline_body,
    parse_ticker,
    rate_limit_budget,
)
from klinewatch.exchanges.binance.rest import PATHS, BinanceRest, Market, klines_weight
from klinewatch.exchanges.port import Capabilities, ContractInfo, Ticker
from klinewatch.exchanges.ratelimit import WeightGovernor
from klinewatch.exchanges.retry import exchange_retrying

# Candles per weight: spot 1000 for 2; futures 499 for 2 beats 1000 for 5 and 1500 for 10.
BEST_REQUEST = {"spot": 1000, "futures": 499}
T = TypeVar("T")


def capabilities(market: Market) -> Capabilities:
    return Capabilities(
        max_candles_per_request=PATHS[market].max_klines,
        klines_weight=lambda limit: klines_weight(market, limit),
        best_candles_per_request=BEST_REQUEST[market],
    )


class BinanceClient:
    exchange = "binance"

    def __init__(self, rest: BinanceRest, clock: Clock) -> None:
        self.rest = rest
        self.market_type: str = rest.market
        self.capabilities = capabilities(rest.market)
        self.clock = clock
        self._calibrated = False

    async def calibrate(self) -> None:
        """Align the governor's windows with Binance's clock (once)."""
        if self._calibrated:
            return
        sent = self.clock.now_ms()
        answer = await self._retry(self.rest.get_time)
        self.rest.governor.calibrate(int(answer["serverTime"]), sent, self.clock.now_ms())
        self._calibrated = True

    async def server_time_ms(self) -> int:
        answer = await self._retry(self.rest.get_time)
        return int(answer["serverTime"])

    async def fetch_klines(
        self, symbol: str, interval: Interval, start_ms: int, end_ms: int, limit: int
    ) -> Candles:
        await self.calibrate()
        limit = min(limit, self.capabilities.max_candles_per_request)

        async def call() -> Candles:
            body = await self.rest.get_klines_body(
                symbol, interval.name, start_ms, end_ms - 1, limit
            )
            try:
                return parse_kline_body(body)
            except (ValueError, TypeError, IndexError) as e:
                raise ExchangeUnavailable(
                    f"binance {self.market_type} klines: truncated or malformed body"
                ) from e

        return await self._retry(call)

    async def fetch_contracts(self) -> list[ContractInfo]:
        await self.calibrate()
        info: dict[str, Any] = await self._retry(self.rest.get_exchange_info)
        declared = rate_limit_budget(info)
        governor = self.rest.governor
        if declared is not None and declared < governor.budget_per_min:
            governor.budget_per_min = declared  # the exchange's own word wins when lower
        return parse_contracts(info)

    async def fetch_ticker(self, symbol: str) -> Ticker:
        await self.calibrate()
        item = await self._retry(lambda: self.rest.get_ticker_24hr(symbol))
        if not isinstance(item, dict):
            raise ExchangeRejected(f"binance {self.market_type} ticker: unexpected answer")
        return parse_ticker(item)

    async def aclose(self) -> None:
        await self.rest.http.aclose()

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        async for attempt in exchange_retrying():
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover


def build_binance_client(
    market: Market,
    base_url: str,
    governor: WeightGovernor,
    clock: Clock,
    timeout_s: float = 10.0,
    proxy: str | None = None,
    max_connections: int = 64,
) -> BinanceClient:
    """A client whose connections are spread over small pools (``http.HttpShards``):
    as many requests in flight as the caller's concurrency asks, each cheap in CPU."""
    http = HttpShards(max_connections, timeout_s, proxy, headers={"User-Agent": "klinewatch"})
    return BinanceClient(BinanceRest(market, base_url, http, governor), clock)

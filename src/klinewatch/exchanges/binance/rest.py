"""Tier one: Binance's endpoints as they are, with their documented weights.

Every call goes through the weight governor, reads ``X-MBX-USED-WEIGHT-1M`` back into it,
and translates what went wrong into the klinewatch error tree: 5xx, timeouts, resets and
truncated bodies -> ``ExchangeUnavailable``; 429 -> ``RateLimited``; 418 -> ``IpBanned``;
other 4xx -> ``ExchangeRejected`` with Binance's code and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import httpx
import orjson

from klinewatch.errors import ExchangeRejected, ExchangeUnavailable, IpBanned, RateLimited
from klinewatch.exchanges.binance.http import HttpShards
from klinewatch.exchanges.ratelimit import WeightGovernor

Market = Literal["spot", "futures"]
_BAN_UNTIL = re.compile(r"banned until (\d{13})")


@dataclass(frozen=True, slots=True)
class MarketPaths:
    prefix: str
    exchange_info_weight: int
    ticker_weight_one: int
    ticker_weight_all: int
    max_klines: int


PATHS: dict[Market, MarketPaths] = {
    "spot": MarketPaths("/api/v3", 20, 2, 80, 1000),
    "futures": MarketPaths("/fapi/v1", 1, 1, 40, 1500),
}


def klines_weight(market: Market, limit: int) -> int:
    """Spot: 2 whatever the limit. Futures: by limit band [1,100) [100,500) [500,1000] >1000."""
    if market == "spot":
        return 2
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


class BinanceRest:
    """Raw endpoint calls of one Binance market; answers are parsed JSON."""

    def __init__(
        self,
        market: Market,
        base_url: str,
        http: httpx.AsyncClient | HttpShards,
        governor: WeightGovernor,
    ) -> None:
        self.market = market
        self.paths = PATHS[market]
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.governor = governor

    async def get_time(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("time", {}, 1)
        return result

    async def get_exchange_info(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(
            "exchangeInfo", {}, self.paths.exchange_info_weight
        )
        return result

    async def get_klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int
    ) -> list[list[Any]]:
        body = await self.get_klines_body(symbol, interval, start_ms, end_ms, limit)
        result: list[list[Any]] = self._json(body, "klines")
        return result

    async def get_klines_body(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int
    ) -> bytes:
        """The klines answer's bytes unparsed: ``parse.parse_kline_body`` reads them
        straight into columns."""
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": limit,
        }
        return await self._get_body("klines", params, klines_weight(self.market, limit))

    async def get_ticker_24hr(self, symbol: str | None = None) -> Any:
        params = {"symbol": symbol} if symbol else {}
        weight = self.paths.ticker_weight_one if symbol else self.paths.ticker_weight_all
        return await self._get("ticker/24hr", params, weight)

    async def _get(self, endpoint: str, params: dict[str, Any], weight: int) -> Any:
        return self._json(await self._get_body(endpoint, params, weight), endpoint)

    def _json(self, body: bytes, endpoint: str) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ExchangeUnavailable(
                f"binance {self.market} {endpoint}: truncated or malformed body"
            ) from e

    async def _get_body(self, endpoint: str, params: dict[str, Any], weight: int) -> bytes:
        """A 200's body, after the governor let the request go; errors translated."""
        window = await self.governor.acquire(weight)
        url = f"{self.base_url}{self.paths.prefix}/{endpoint}"
        try:
            response = await self.http.get(url, params=params)
        except httpx.TimeoutException as e:
            raise ExchangeUnavailable(f"binance {self.market} {endpoint}: timed out") from e
        except httpx.TransportError as e:
            raise ExchangeUnavailable(
                f"binance {self.market} {endpoint}: {type(e).__name__}"
            ) from e
        used = response.headers.get("x-mbx-used-weight-1m")
        await self.governor.observe(int(used) if used and used.isdigit() else None, window, weight)
        if response.status_code == 200:
            return response.content
        await self._raise_for(response, endpoint)

    async def _raise_for(self, response: httpx.Response, endpoint: str) -> NoReturn:
        status = response.status_code
        code, message = _error_body(response)
        where = f"binance {self.market} {endpoint}"
        retry_after = _retry_after_s(response)
        if status == 418:
            match = _BAN_UNTIL.search(message)
            now = self.governor.exchange_now_ms()
            until = int(match.group(1)) if match else now + int((retry_after or 120) * 1000)
            until = max(until, now + int((retry_after or 0) * 1000))
            await self.governor.banned(until)
            raise IpBanned(f"{where}: IP banned ({message})", retry_after_s=(until - now) / 1000)
        if status == 429:
            wait = retry_after if retry_after is not None else 60.0
            await self.governor.rate_limited(wait)
            raise RateLimited(f"{where}: rate limited ({message})", retry_after_s=wait)
        if status >= 500:
            raise ExchangeUnavailable(f"{where}: HTTP {status}", status=status)
        raise ExchangeRejected(f"{where}: {message or f'HTTP {status}'}", status=status, code=code)


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, response.text[:200]
    if isinstance(body, dict):
        code = body.get("code")
        return (code if isinstance(code, int) else None), str(body.get("msg", ""))
    return None, str(body)[:200]


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

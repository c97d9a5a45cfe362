"""CoinGecko's v3 API (demo plan) as domain values.

Every call passes a sliding-window pacer (``CallPacer``) that keeps under CoinGecko's
calls per minute, so a full update normally meets no 429 at all; the one retry policy
(``exchanges/retry.py``) then covers what still goes wrong:

    status        error                      retried
    429           RateLimited                yes, after its Retry-After (60 s if absent)
    5xx, timeout  ExchangeUnavailable        yes, exponential backoff
    401           CoingeckoKeyRejected       never: a ConfigurationError, the run stops
    400, 404      ExchangeRejected           never

The demo key travels in ``x-cg-demo-api-key`` and is never logged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx
import orjson

from klinewatch.clock import Clock, SystemClock
from klinewatch.domain.mapping import CoinListing, CoinMarket, VenueTicker
from klinewatch.errors import (
    ConfigurationError,
    ExchangeError,
    ExchangeRejected,
    ExchangeUnavailable,
    InvalidInput,
    RateLimited,
)
from klinewatch.exchanges.retry import exchange_retrying
from klinewatch.logs import get_logger
from klinewatch.settings import Settings

log = get_logger(__name__)
KEY_HEADER = "x-cg-demo-api-key"
MAX_IDS_PER_CALL = 250
TICKERS_PER_PAGE = 100
MAX_TICKER_PAGES = 200
DEFAULT_RETRY_AFTER_S = 60.0
DEFAULT_TIMEOUT_S = 30.0  # seed 000: CoinGecko answers slowly under load
ATTEMPTS = 4  # seed 000: three retries after the first call
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class CoingeckoKeyRejected(ConfigurationError):
    """CoinGecko answered 401: retrying cannot help, the key must be fixed."""

    code = "COINGECKO_KEY_REJECTED"


@dataclass
class CallPacer:
    """At most ``calls`` calls in any ``window_s`` seconds (a sliding window).

    A sliding window is stricter than CoinGecko's clock-aligned minute: any aligned minute
    lies inside some sliding one, so whatever CoinGecko's clock, it never counts more
    than ``calls``. A 429 pauses every caller until its Retry-After has passed.
    """

    calls: int = 45
    window_s: float = 60.0
    clock: Clock = field(default_factory=SystemClock)
    sleep: Sleep = asyncio.sleep
    waited_s: float = 0.0
    _sent: deque[int] = field(default_factory=deque)
    _paused_until_ms: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def acquire(self) -> None:
        async with self._lock:
            window_ms = int(self.window_s * 1000)
            while True:
                now = self.clock.now_ms()
                while self._sent and self._sent[0] <= now - window_ms:
                    self._sent.popleft()
                wait_ms = self._paused_until_ms - now
                if wait_ms <= 0 and len(self._sent) < max(1, self.calls):
                    self._sent.append(now)
                    return
                if wait_ms <= 0:
                    wait_ms = self._sent[0] + window_ms - now + 1
                self.waited_s += wait_ms / 1000
                await self.sleep(wait_ms / 1000)

    def pause(self, seconds: float) -> None:
        until = self.clock.now_ms() + int(seconds * 1000)
        self._paused_until_ms = max(self._paused_until_ms, until)


@dataclass(frozen=True, slots=True)
class MarketBatch:
    """One ``coins/markets`` batch: the ids asked, the coins answered, or its error."""

    ids: tuple[str, ...]
    markets: tuple[CoinMarket, ...]
    error: ExchangeError | None = None


class CoingeckoClient:
    """CoinGecko's endpoints klinewatch uses, answering domain values."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        pacer: CallPacer,
        batch_pause_s: float = 1.2,
        sleep: Sleep = asyncio.sleep,
        batch_size: int = MAX_IDS_PER_CALL,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.batch_size = max(1, min(batch_size, MAX_IDS_PER_CALL))
        self.http = http
        self.pacer = pacer
        self.batch_pause_s = batch_pause_s
        self.sleep = sleep
        self.calls = 0
        self.rate_limited = 0

    async def fetch_coins_list(self) -> list[CoinListing]:
        rows = await self._get("coins/list", {"include_platform": "true"})
        if not isinstance(rows, list):
            raise ExchangeUnavailable("coingecko coins/list: not a list")
        return [
            CoinListing(id=str(r["id"]), symbol=str(r["symbol"]), name=str(r.get("name", "")))
            for r in rows
            if isinstance(r, dict) and r.get("id") and r.get("symbol") is not None
        ]

    async def fetch_simple_prices(
        self, ids: Sequence[str], vs_currency: str = "usd"
    ) -> dict[str, Decimal]:
        """Price of each id in ``vs_currency``; ids CoinGecko does not know are absent."""
        wanted = list(dict.fromkeys(i.strip().lower() for i in ids if i.strip()))
        currency = vs_currency.strip().lower()
        prices: dict[str, Decimal] = {}
        for start in range(0, len(wanted), MAX_IDS_PER_CALL):
            chunk = wanted[start : start + MAX_IDS_PER_CALL]
            body = await self._get(
                "simple/price", {"ids": ",".join(chunk), "vs_currencies": currency}
            )
            if not isinstance(body, dict):
                raise ExchangeUnavailable("coingecko simple/price: not an object")
            for coin_id, entry in body.items():
                value = _decimal(entry.get(currency)) if isinstance(entry, dict) else None
                if value is not None:
                    prices[str(coin_id)] = value
        return prices

    async def fetch_markets(self, ids: Sequence[str]) -> list[CoinMarket]:
        """One ``coins/markets`` call for at most 250 ids (USD); unknown ids are absent."""
        if len(ids) > MAX_IDS_PER_CALL:
            raise InvalidInput(
                f"at most {MAX_IDS_PER_CALL} ids per coins/markets call", field="ids"
            )
        if not ids:
            return []
        params = {
            "vs_currency": "usd",
            "ids": ",".join(ids),
            "per_page": str(MAX_IDS_PER_CALL),
            "page": "1",
        }
        rows = await self._get("coins/markets", params)
        if not isinstance(rows, list):
            raise ExchangeUnavailable("coingecko coins/markets: not a list")
        return [_market(r) for r in rows if isinstance(r, dict) and r.get("id")]

    async def iter_market_batches(
        self, ids: Sequence[str], batch_size: int | None = None
    ) -> AsyncIterator[MarketBatch]:
        """``coins/markets`` in batches with ``batch_pause_s`` between them; a batch that
        still fails after its retries is yielded with its error and the next one goes
        on. A rejected key (401) stops everything: no later batch could succeed."""
        unique = list(dict.fromkeys(ids))
        size = max(1, min(batch_size or self.batch_size, MAX_IDS_PER_CALL))
        for start in range(0, len(unique), size):
            if start:
                await self.sleep(self.batch_pause_s)
            batch = tuple(unique[start : start + size])
            try:
                markets = await self.fetch_markets(batch)
            except CoingeckoKeyRejected:
                raise
            except ExchangeError as e:
                log.warning("coingecko_batch_failed", ids=len(batch), error=e.message)
                yield MarketBatch(batch, (), e)
                continue
            yield MarketBatch(batch, tuple(markets))

    async def fetch_exchange_tickers(self, exchange_id: str = "binance") -> list[VenueTicker]:
        """Every page of ``exchanges/{id}/tickers``: the coin CoinGecko names per pair."""
        tickers: list[VenueTicker] = []
        for page in range(1, MAX_TICKER_PAGES + 1):
            body = await self._get(
                f"exchanges/{exchange_id}/tickers", {"page": str(page), "depth": "false"}
            )
            rows = body.get("tickers") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise ExchangeUnavailable("coingecko exchange tickers: no tickers list")
            tickers.extend(
                VenueTicker(
                    base=str(r["base"]).upper(),
                    target=str(r["target"]).upper(),
                    coin_id=str(r["coin_id"]),
                )
                for r in rows
                if isinstance(r, dict) and r.get("base") and r.get("target") and r.get("coin_id")
            )
            if len(rows) < TICKERS_PER_PAGE:
                break
        return tickers

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _get(self, endpoint: str, params: dict[str, str]) -> Any:
        async for attempt in exchange_retrying(ATTEMPTS):
            with attempt:
                return await self._call(endpoint, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, endpoint: str, params: dict[str, str]) -> Any:
        await self.pacer.acquire()
        self.calls += 1
        try:
            response = await self.http.get(f"{self.base_url}/{endpoint}", params=params)
        except httpx.TimeoutException as e:
            raise ExchangeUnavailable(f"coingecko {endpoint}: timed out") from e
        except httpx.TransportError as e:
            raise ExchangeUnavailable(f"coingecko {endpoint}: {type(e).__name__}") from e
        if response.status_code == 200:
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError as e:
                raise ExchangeUnavailable(f"coingecko {endpoint}: malformed body") from e
        raise self._error(response, endpoint)

    def _error(self, response: httpx.Response, endpoint: str) -> Exception:
        status, message = response.status_code, _message(response)
        where = f"coingecko {endpoint}"
        if status == 401:
            return CoingeckoKeyRejected(
                f"CoinGecko refused the API key ({message}): set KLINEWATCH_COINGECKO_API_KEY "
                "to a valid demo key",
                status=status,
            )
        if status == 429:
            wait = _retry_after_s(response)
            self.rate_limited += 1
            self.pacer.pause(wait)
            log.warning("coingecko_rate_limited", endpoint=endpoint, retry_after_s=wait)
            return RateLimited(f"{where}: rate limited", retry_after_s=wait)
        if status >= 500:
            return ExchangeUnavailable(f"{where}: HTTP {status}", status=status)
        return ExchangeRejected(f"{where}: {message}", status=status)


def build_coingecko_client(
    base_url: str,
    api_key: str | None,
    calls_per_min: int = 50,
    window_s: float = 60.0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    batch_pause_s: float = 1.2,
    clock: Clock | None = None,
    batch_size: int = MAX_IDS_PER_CALL,
    pacer: CallPacer | None = None,
) -> CoingeckoClient:
    """A client with the demo key header (when given) and a pacer at 90% of the limit
    (``pacer``: one shared with the process's other CoinGecko clients)."""
    headers = {"User-Agent": "klinewatch", "Accept": "application/json"}
    if api_key:
        headers[KEY_HEADER] = api_key
    http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), headers=headers)
    if pacer is None:
        pacer = CallPacer(
            calls=max(1, int(calls_per_min * 0.9)), window_s=window_s, clock=clock or SystemClock()
        )
    return CoingeckoClient(
        base_url, http, pacer, batch_pause_s=batch_pause_s, batch_size=batch_size
    )


def coingecko_client_from_settings(
    settings: Settings, clock: Clock | None = None, pacer: CallPacer | None = None
) -> CoingeckoClient:
    """The client a composition root builds: URL, key, limit, timeout, pause from settings
    (``weight_window_s`` shortens the pacer's minute to match a time-scaled simulator)."""
    key = settings.coingecko_api_key
    return build_coingecko_client(
        settings.coingecko_url,
        key.get_secret_value() if key is not None else None,
        calls_per_min=settings.coingecko_calls_per_min,
        window_s=settings.weight_window_s,
        timeout_s=settings.coingecko_timeout_s,
        batch_pause_s=settings.coingecko_batch_pause_s,
        clock=clock,
        pacer=pacer,
    )


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _market(row: dict[str, Any]) -> CoinMarket:
    rank = row.get("market_cap_rank")
    updated = row.get("last_updated")
    return CoinMarket(
        id=str(row["id"]),
        symbol=str(row.get("symbol", "")),
        name=str(row.get("name", "")),
        price=_decimal(row.get("current_price")),
        market_cap=_decimal(row.get("market_cap")),
        fdv=_decimal(row.get("fully_diluted_valuation")),
        volume_24h=_decimal(row.get("total_volume")),
        market_cap_rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
        last_updated=_timestamp(updated),
    )


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and status.get("error_message"):
            return str(status["error_message"])
        if body.get("error"):
            return str(body["error"])
    return f"HTTP {response.status_code}"


def _retry_after_s(response: httpx.Response) -> float:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S

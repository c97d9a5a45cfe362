"""OKX, Bybit and Bitget (spot and USDT perpetual swaps) through CCXT, behind the port.

Every HTTP request CCXT makes (markets, time, candles, tickers) goes through the weight
governor: the client wraps the CCXT instance's ``fetch`` (CCXT's own limiter is off). The
wrapper also reads each answer's status and ``Retry-After`` (CCXT's exceptions carry
neither) to pause the governor on 429 and silence it on a ban, and refuses a body that is
not JSON: CCXT reads a truncated candle page as an empty one, a fake hole.

Symbols are the exchange's own ids (``BTCUSDT``, ``BTC-USDT-SWAP``). Volumes are in the
base asset: CCXT 4.5's OKX ``parse_ohlcv`` already reads ``volCcy`` (base), not ``vol``
(contracts), for swaps; its swap *ticker* passes contracts on, converted here with the
contract size. Unified candles carry OHLCV only; the other columns are 0.

Some venues answer the newest ``limit`` candles of the range CCXT asks, so asking more
than a page holds skips candles silently: ``fetch_klines`` asks at most ``page_size``
candles per request and bounds each with ``until``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import numpy as np

from klinewatch.clock import Clock
from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import slice_range
from klinewatch.domain.intervals import Interval, MarketType
from klinewatch.errors import (
    ConfigurationError,
    ExchangeRejected,
    ExchangeUnavailable,
    InvalidInput,
    IpBanned,
    KlinewatchError,
    RateLimited,
)
from klinewatch.exchanges.ccxt_urls import ccxt_api_urls
from klinewatch.exchanges.ccxt_venues import VENUES, VenueLimits
from klinewatch.exchanges.port import Capabilities, ContractInfo, Ticker
from klinewatch.exchanges.ratelimit import WeightGovernor
from klinewatch.exchanges.retry import exchange_retrying
from klinewatch.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


# The status and headers of the answer CCXT is handling in this task (CCXT's exceptions
# carry neither); set by the ``on_rest_response`` hook, read by the ``fetch`` wrapper.
_ANSWER: ContextVar[tuple[int, Mapping[str, str]] | None] = ContextVar(
    "klinewatch_ccxt_answer", default=None
)


def capabilities(exchange: str) -> Capabilities:
    """One page per request, weight 1 each (CCXT venues publish no weights)."""
    page = VENUES[exchange].page
    return Capabilities(
        max_candles_per_request=page,
        klines_weight=lambda count: max(1, math.ceil(count / page)),
        best_candles_per_request=page,
    )


def translate(
    error: BaseException,
    where: str,
    limits: VenueLimits,
    answer: tuple[int, Mapping[str, str]] | None = None,
) -> KlinewatchError:
    """A CCXT exception as the klinewatch error saying what the caller should do; the
    HTTP status, when known, wins over CCXT's guess (it maps OKX's 429 to "not available"
    and unknown 4xx to "network error")."""
    status = answer[0] if answer else None
    retry_after = _retry_after_s(answer[1]) if answer else None
    text = str(error)[:300]
    if status in limits.ban_statuses:
        wait = retry_after if retry_after is not None else limits.ban_s
        return IpBanned(f"{where}: IP banned ({text})", retry_after_s=wait, status=status)
    if status == 429 or isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        wait = retry_after if retry_after is not None else limits.window_s
        return RateLimited(f"{where}: rate limited ({text})", retry_after_s=wait)
    if isinstance(error, ccxt.BadSymbol):
        return InvalidInput(f"{where}: unknown symbol ({text})", field="symbol")
    if status is not None and 400 <= status < 500 and status != 408:
        return ExchangeRejected(f"{where}: HTTP {status} ({text})", status=status)
    if (status is not None and status >= 500) or isinstance(error, ccxt.OperationFailed):
        return ExchangeUnavailable(f"{where}: {type(error).__name__} ({text})", status=status)
    return ExchangeRejected(f"{where}: {type(error).__name__} ({text})", status=status)


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def ohlcv_candles(rows: list[list[Any]], interval: Interval) -> Candles:
    """CCXT's ``[ts, open, high, low, close, volume]`` rows as columnar candles; a missing
    number becomes NaN, which validation then refuses instead of storing a made-up 0."""
    if not rows:
        return Candles.empty()
    times = np.array([int(row[0]) for row in rows], dtype=np.int64)
    table = np.array([row[1:6] for row in rows], dtype=np.float64).reshape(len(rows), 5)
    if interval.length_ms is not None:
        close = times + (interval.length_ms - 1)
    else:
        close = np.array([interval.close_time(int(t)) for t in times], dtype=np.int64)
    return Candles.from_columns(
        open_time_ms=times,
        open=table[:, 0],
        high=table[:, 1],
        low=table[:, 2],
        close=table[:, 3],
        volume=table[:, 4],
        close_time_ms=close,
    )


class CcxtClient:
    """One market (spot or USDT perpetuals) of OKX, Bybit or Bitget."""

    def __init__(
        self,
        exchange: str,
        market_type: str,
        api: Any,
        governor: WeightGovernor,
        clock: Clock,
    ) -> None:
        self.exchange = exchange
        self.market_type = MarketType(market_type).value
        self.capabilities = capabilities(exchange)
        self.limits = VENUES[exchange]
        self.api = api
        self.governor = governor
        self.clock = clock
        self._by_id: dict[str, dict[str, Any]] = {}
        self._install_hooks()

    @property
    def where(self) -> str:
        return f"{self.exchange} {self.market_type}"

    async def fetch_klines(
        self, symbol: str, interval: Interval, start_ms: int, end_ms: int, limit: int
    ) -> Candles:
        market = await self._market(symbol)
        timeframe = self._timeframe(interval)
        first = interval.ceil(start_ms)
        if limit < 1 or first >= end_ms:
            return Candles.empty()
        end_ms = min(end_ms, _open_after(interval, first, limit))
        page = self.limits.page_size(self.market_type, interval)
        parts = []
        for lo, hi in slice_range(interval, (first, end_ms), page):
            rows = await self._page(market["symbol"], timeframe, lo, hi, interval.count(lo, hi))
            parts.append(ohlcv_candles(rows, interval).sorted_unique().between(lo, hi))
        return Candles.concat(parts)

    async def _page(
        self, unified: str, timeframe: str, lo: int, hi: int, count: int
    ) -> list[list[Any]]:
        """One request: ``until`` = ``hi - 1`` bounds the range on every venue, whether it
        reads its end as inclusive (Bybit, Bitget) or exclusive (OKX)."""

        async def call() -> list[list[Any]]:
            rows: list[list[Any]] = await self.api.fetch_ohlcv(
                unified, timeframe, since=lo, limit=count, params={"until": hi - 1}
            )
            return rows

        return await self._call(call)

    async def fetch_contracts(self) -> list[ContractInfo]:
        await self._load_markets(reload=True)
        return [_contract(m) for m in self._by_id.values()]

    async def fetch_ticker(self, symbol: str) -> Ticker:
        market = await self._market(symbol)
        t: dict[str, Any] = await self._call(lambda: self.api.fetch_ticker(market["symbol"]))
        return Ticker(
            symbol=symbol,
            last_price=_number(t.get("last")),
            price_change_pct=_number(t.get("percentage")),
            high=_number(t.get("high")),
            low=_number(t.get("low")),
            volume=self._base_volume(market, t.get("baseVolume")),
            quote_volume=_number(t.get("quoteVolume")),
            close_time_ms=int(t.get("timestamp") or self.clock.now_ms()),
        )

    async def server_time_ms(self) -> int:
        """The exchange's clock; our own when the venue has no time endpoint."""
        if not self.api.has.get("fetchTime"):
            return self.clock.now_ms()
        answer = await self._call(lambda: self.api.fetch_time())
        return int(answer)

    async def aclose(self) -> None:
        await self.api.close()

    # --- internals ------------------------------------------------------------------

    def _base_volume(self, market: Mapping[str, Any], volume: object) -> float:
        """OKX swap tickers count contracts (CCXT passes ``vol24h`` on): times the
        contract size, in exact decimal, they are base units like everywhere else."""
        size = market.get("contractSize")
        if volume is None or not (self.limits.ticker_volume_in_contracts and size):
            return _number(volume)
        return float(Decimal(str(volume)) * Decimal(str(size)))

    def _install_hooks(self) -> None:
        """Route every CCXT request through the governor and the answer checks."""
        raw_fetch = self.api.fetch
        raw_on_response = self.api.on_rest_response

        def on_response(
            code: int, reason: str, url: str, method: str, headers: Any, *rest: Any
        ) -> Any:
            _ANSWER.set((int(code), dict(headers or {})))
            return raw_on_response(code, reason, url, method, headers, *rest)

        async def fetch(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            await self.governor.acquire(1)
            _ANSWER.set(None)
            where = f"{self.where} {urlsplit(url).path}"
            try:
                answer = await raw_fetch(url, method, headers, body)
            except ccxt.BaseError as e:
                error = translate(e, where, self.limits, _ANSWER.get())
                await self._silence(error)
                raise error from e
            if not isinstance(answer, dict | list):
                raise ExchangeUnavailable(f"{where}: truncated or malformed body")
            return answer

        self.api.on_rest_response = on_response
        self.api.fetch = fetch

    async def _silence(self, error: KlinewatchError) -> None:
        if isinstance(error, IpBanned):
            until = self.governor.exchange_now_ms() + int(error.retry_after_s * 1000)
            await self.governor.banned(until)
        elif isinstance(error, RateLimited):
            await self.governor.rate_limited(error.retry_after_s)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One CCXT call under the one retry policy, its errors in klinewatch's terms."""
        async for attempt in exchange_retrying():
            with attempt:
                try:
                    return await call()
                except ccxt.BaseError as e:  # raised outside ``fetch`` (a local check)
                    raise translate(e, self.where, self.limits) from e
                except (TypeError, KeyError, ValueError, IndexError) as e:
                    raise ExchangeUnavailable(f"{self.where}: unexpected answer ({e})") from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def _load_markets(self, reload: bool = False) -> None:
        markets: dict[str, dict[str, Any]] = await self._call(lambda: self.api.load_markets(reload))
        self._by_id = {m["id"]: m for m in markets.values() if self._wanted(m)}

    def _wanted(self, market: Mapping[str, Any]) -> bool:
        if self.market_type == "spot":
            return bool(market.get("spot"))
        return bool(market.get("swap")) and bool(market.get("linear"))

    async def _market(self, symbol: str) -> dict[str, Any]:
        if not self._by_id:
            await self._load_markets()
        market = self._by_id.get(symbol)
        if market is None:
            raise InvalidInput(
                f"{self.where}: no market {symbol!r} (give the exchange's own id)",
                field="symbol",
            )
        return market

    def _timeframe(self, interval: Interval) -> str:
        if interval.name not in (self.api.timeframes or {}):
            raise InvalidInput(f"{self.where} has no {interval.name} candles", field="interval")
        return interval.name


def _open_after(interval: Interval, first_ms: int, count: int) -> int:
    """The open time ``count`` candles after ``first_ms``."""
    if interval.length_ms is not None:
        return first_ms + count * interval.length_ms
    for _ in range(count):
        first_ms = interval.next_open(first_ms)
    return first_ms


def _contract(market: Mapping[str, Any]) -> ContractInfo:
    created = market.get("created")
    return ContractInfo(
        symbol=str(market["id"]),
        base_asset=str(market["base"]),
        quote_asset=str(market["quote"]),
        status="TRADING" if market.get("active") else "BREAK",
        contract_type="PERPETUAL" if market.get("swap") else None,
        onboard_date_ms=int(created) if created else None,
    )


def _number(value: object) -> float:
    """A ticker figure; one the venue does not give is 0, as for candles' columns."""
    return 0.0 if value is None else float(value)  # type: ignore[arg-type]


def build_ccxt_client(
    exchange: str,
    market_type: str,
    base_url: str,
    governor: WeightGovernor,
    clock: Clock,
    timeout_s: float = 10.0,
    proxy: str | None = None,
) -> CcxtClient:
    """A CCXT client of ``exchange`` sending every call to ``base_url`` (the real host, a
    proxy in front of it, or the simulator), through ``proxy`` when given."""
    if exchange not in VENUES:
        raise InvalidInput(
            f"unknown exchange {exchange!r}; CCXT venues are {', '.join(VENUES)}",
            field="exchange",
        )
    market = MarketType(market_type).value
    try:
        urls = ccxt_api_urls(exchange, base_url)
    except ValueError as e:
        raise ConfigurationError(f"{exchange} URL: {e}", field=f"{exchange}_url") from e
    config: dict[str, Any] = {
        "urls": {"api": urls},
        "enableRateLimit": False,  # the governor paces every request
        "timeout": int(timeout_s * 1000),
        "options": {"fetchMarkets": {"types": [VENUES[exchange].markets[market]]}},
    }
    config.update(_proxy_config(exchange, proxy))
    api = getattr(ccxt_async, exchange)(config)
    return CcxtClient(exchange, market, api, governor, clock)


def _proxy_config(exchange: str, proxy: str | None) -> dict[str, str]:
    """CCXT 4.5 takes one proxy setting: ``httpsProxy`` for an HTTP(S) proxy (aiohttp
    tunnels https through it), ``socksProxy`` for SOCKS; setting two is an error."""
    if not proxy:
        return {}
    scheme = urlsplit(proxy).scheme
    if scheme in ("http", "https"):
        return {"httpsProxy": proxy}
    if scheme.startswith("socks"):
        return {"socksProxy": proxy}
    raise ConfigurationError(
        f"{exchange} proxy must be http://, https:// or socks5://", field=f"{exchange}_proxy"
    )

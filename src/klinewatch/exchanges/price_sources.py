"""The primary price source: DeBank Cloud's token API (or anything shaped like it).

Tier one, ``DebankRest``, mirrors the endpoints: ``GET /v1/token/list_by_ids?chain_id=
&ids=`` (at most 100 ids) with the key in the ``AccessKey`` header, answers as parsed
JSON. Tier two, ``PriceSourceClient.fetch_prices``, speaks the domain: symbols in, a
``Decimal`` per symbol the source priced out, in as few requests as the id limit allows
(sent together). A token the source does not know is simply absent from the answer.

Errors are translated here: timeouts, resets, 5xx and unreadable bodies ->
``ExchangeUnavailable`` (``network=True`` for the transport ones); 429 ->
``RateLimited``; 401/403 (no or a wrong key) and other 4xx -> ``ExchangeRejected``. No
retry: the price service has a fallback for every failure, and a user is waiting.

Token ids are lower-case symbols (``eth``, ``btc``): what DeBank takes for a chain's
native token and what the simulator takes for any recorded pair. Real DeBank prices an
ERC-20 by its contract address, which a wallet would pass instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx
import orjson

from klinewatch.domain.prices import valid_price
from klinewatch.errors import ExchangeRejected, ExchangeUnavailable, RateLimited

MAX_IDS_PER_REQUEST = 100
SOURCE = "debank"


class DebankRest:
    """Raw calls of the DeBank-shaped API; answers are parsed JSON."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.api_key = api_key

    async def get_token_list_by_ids(self, chain_id: str, ids: Sequence[str]) -> list[Any]:
        params = {"chain_id": chain_id, "ids": ",".join(ids)}
        body = await self._get("/v1/token/list_by_ids", params)
        if not isinstance(body, list):
            raise ExchangeUnavailable(f"{SOURCE} list_by_ids: expected a list")
        return body

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        headers = {"AccessKey": self.api_key} if self.api_key else {}
        where = f"{SOURCE} {path}"
        try:
            response = await self.http.get(self.base_url + path, params=params, headers=headers)
        except httpx.TimeoutException as e:
            raise ExchangeUnavailable(f"{where}: timed out", network=True) from e
        except httpx.TransportError as e:
            raise ExchangeUnavailable(f"{where}: {type(e).__name__}", network=True) from e
        status = response.status_code
        if status == 200:
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError as e:
                raise ExchangeUnavailable(f"{where}: truncated or malformed body") from e
        reason = _message(response)
        if status == 429:
            wait = _retry_after_s(response)
            raise RateLimited(f"{where}: rate limited ({reason})", retry_after_s=wait)
        if status >= 500:
            raise ExchangeUnavailable(f"{where}: HTTP {status}", status=status)
        if status in (401, 403):
            reason = f"the AccessKey was refused ({reason}); set KLINEWATCH_PRICE_SOURCE_API_KEY"
        raise ExchangeRejected(f"{where}: {reason}", status=status)


class PriceSourceClient:
    """Prices in USD(T) of many symbols on one chain, batched."""

    source = SOURCE

    def __init__(self, rest: DebankRest) -> None:
        self.rest = rest

    async def fetch_prices(self, symbols: Sequence[str], chain_id: str) -> dict[str, Decimal]:
        """``{SYMBOL: price}`` for the symbols the source priced (others are absent)."""
        ids = list(dict.fromkeys(symbol.lower() for symbol in symbols))
        if not ids:
            return {}
        chunks = [ids[i : i + MAX_IDS_PER_REQUEST] for i in range(0, len(ids), MAX_IDS_PER_REQUEST)]
        answers = await asyncio.gather(
            *(self.rest.get_token_list_by_ids(chain_id, chunk) for chunk in chunks)
        )
        wanted = set(ids)
        prices: dict[str, Decimal] = {}
        for token in (t for answer in answers for t in answer if isinstance(t, dict)):
            token_id = str(token.get("id", "")).lower()
            price = valid_price(token.get("price"))
            if token_id in wanted and price is not None:
                prices[token_id.upper()] = price
        return prices

    async def aclose(self) -> None:
        await self.rest.http.aclose()


def build_price_source(
    base_url: str, api_key: str | None, timeout_s: float, proxy: str | None = None
) -> PriceSourceClient:
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        proxy=proxy,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        headers={"User-Agent": "klinewatch"},
    )
    return PriceSourceClient(DebankRest(base_url, http, api_key))


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:200]
    return str(body)[:200]


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", "60"))
    except ValueError:
        return 60.0

"""The primary price source, in the shape of DeBank Cloud's token API, priced from the
recorded Binance candles so that prices move with the simulator clock.

``GET /v1/token?chain_id=&id=`` and ``GET /v1/token/list_by_ids?chain_id=&ids=`` (comma
separated, at most 100), with an ``AccessKey`` header (401 without it, or with another
value than ``SimOptions.price_source_api_key`` when that is set). Answers carry DeBank's
token fields (``id, chain, name, symbol, decimals, price, price_24h_change, ...``).

Token ids: a symbol (``btc``, ``eth``, ``pepe``...) on any known chain maps to the
recorded ``<SYMBOL>USDT`` pair; a few real Ethereum contracts map too (WETH -> ETHUSDT,
WBTC -> BTCUSDT, PEPE, OM). The price is the close of the newest candle closed at the
clock's now among the pair's recorded 1m/5m/1h series (spot before futures, the finer
series on a tie). A token without such a candle has no price: ``list_by_ids`` leaves it
out, ``/v1/token`` answers 404 with a message (our choice: DeBank's public docs do not
show this case). Stablecoins are not priced: no USDT candle was recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.domain.intervals import DAY_MS
from klinewatch.sim.context import SimContext
from klinewatch.sim.venues.wire import json_response

SOURCE = "binance"
MAX_IDS = 100
CHAINS = frozenset({"eth", "bsc", "arb", "op", "matic", "base", "avax", "ftm"})
PRICE_INTERVALS = ("1m", "5m", "1h")  # finest first
MARKETS = ("spot", "futures")


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    name: str
    decimals: int
    pair: str  # the recorded Binance symbol that prices it


# Real Ethereum contract addresses (checked against CoinGecko's recorded coins list).
ETH_CONTRACTS: dict[str, Token] = {
    "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2": Token("WETH", "Wrapped Ether", 18, "ETHUSDT"),
    "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599": Token("WBTC", "Wrapped BTC", 8, "BTCUSDT"),
    "0x6982508145454ce325ddbe47a25d4ec3d2311933": Token("PEPE", "Pepe", 18, "PEPEUSDT"),
    "0x3593d125a4f7849a1b059e64f4517a86dd60c95d": Token("OM", "MANTRA DAO", 18, "OMUSDT"),
}
NAMES = {"btc": ("Bitcoin", 8), "eth": ("ETH", 18), "sol": ("Solana", 9), "doge": ("Dogecoin", 8)}

Handler = Callable[[Request], Response]


def _invalid(field: str, message: str) -> Response:
    body = {"errors": {field: message}, "message": "Input payload validation failed"}
    return json_response(body, status=400)


@dataclass(frozen=True, slots=True)
class Quote:
    price: float
    price_24h_change: float | None


class DeBank:
    """The price-source routes over one simulator context."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    def gate(self, handler: Handler) -> Handler:
        """``AccessKey`` and a known ``chain_id`` before ``handler`` runs."""

        def endpoint(request: Request) -> Response:
            key = request.headers.get("AccessKey")
            expected = self.ctx.options.price_source_api_key
            if not key or (expected is not None and key != expected):
                return json_response({"message": "Invalid or missing AccessKey"}, status=401)
            chain = request.query_params.get("chain_id", "")
            if chain not in CHAINS:
                return _invalid("chain_id", f"{chain!r} is not a supported chain id")
            return handler(request)

        endpoint.__name__ = handler.__name__
        return endpoint

    def token(self, request: Request) -> Response:
        token_id = request.query_params.get("id", "").lower()
        if not token_id:
            return _invalid("id", "Missing required parameter in the query string")
        body = self.describe(request.query_params["chain_id"], token_id)
        if body is None:
            return json_response({"message": f"token {token_id} not found"}, status=404)
        return json_response(body)

    def list_by_ids(self, request: Request) -> Response:
        ids = [i for i in request.query_params.get("ids", "").lower().split(",") if i]
        if not ids:
            return _invalid("ids", "Missing required parameter in the query string")
        if len(ids) > MAX_IDS:
            return _invalid("ids", f"at most {MAX_IDS} ids per request")
        chain = request.query_params["chain_id"]
        found = [self.describe(chain, i) for i in dict.fromkeys(ids)]
        return json_response([body for body in found if body is not None])

    def resolve(self, chain: str, token_id: str) -> Token | None:
        token = ETH_CONTRACTS.get(token_id) if chain == "eth" else None
        if token is not None:
            return token
        if token_id.startswith("0x") or not token_id.isalnum():
            return None  # an unknown contract; or not a symbol (never a path to the data)
        name, decimals = NAMES.get(token_id, (token_id.upper(), 18))
        return Token(token_id.upper(), name, decimals, f"{token_id.upper()}USDT")

    def describe(self, chain: str, token_id: str) -> dict[str, Any] | None:
        token = self.resolve(chain, token_id)
        quote = None if token is None else self.quote(token.pair, self.ctx.clock.now_ms())
        if token is None or quote is None:
            return None
        return {
            "id": token_id, "chain": chain, "name": token.name, "symbol": token.symbol,
            "display_symbol": None, "optimized_symbol": token.symbol,
            "decimals": token.decimals, "logo_url": None, "protocol_id": "",
            "price": quote.price, "price_24h_change": quote.price_24h_change,
            "is_verified": True, "is_core": True, "is_wallet": True, "time_at": None,
        }  # fmt: skip

    def quote(self, pair: str, now_ms: int) -> Quote | None:
        """The newest closed candle's close among the pair's series, and its 24 h change."""
        best: tuple[int, float, float | None] | None = None
        store = self.ctx.store
        for market in MARKETS:
            for name in PRICE_INTERVALS:
                if not store.has(SOURCE, market, pair, name):
                    continue
                series = store.get(SOURCE, market, pair, name)
                latest = _closed_before(series.close_time_ms, now_ms)
                if latest is None or (best is not None and series.close_time_ms[latest] <= best[0]):
                    continue
                day_ago = _closed_before(series.close_time_ms, now_ms - DAY_MS)
                price = float(series.close[latest])
                earlier = None if day_ago is None else float(series.close[day_ago])
                change = price / earlier - 1 if earlier else None  # a ratio, as DeBank's
                best = (int(series.close_time_ms[latest]), price, change)
        return None if best is None else Quote(best[1], best[2])


def _closed_before(close_times: np.ndarray[Any, np.dtype[np.int64]], now_ms: int) -> int | None:
    """Index of the newest candle whose close time has passed at ``now_ms``."""
    index = int(np.searchsorted(close_times, now_ms, side="left")) - 1
    return index if index >= 0 else None


def routes(ctx: SimContext) -> list[BaseRoute]:
    """The price source's paths without the simulator's ``/debank`` prefix."""
    debank = DeBank(ctx)
    return [
        Route("/v1/token", debank.gate(debank.token)),
        Route("/v1/token/list_by_ids", debank.gate(debank.list_by_ids)),
    ]

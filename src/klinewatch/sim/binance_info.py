"""Binance ``exchangeInfo``: the newest recorded snapshot, completed from the candles.

Every symbol that has candles but is missing from the snapshot is listed as TRADING,
with base and quote split from its name (and, on futures, as a PERPETUAL contract whose
``onboardDate`` is its first recorded candle). The REQUEST_WEIGHT limit shown is the
simulator's budget, so a client that reads ``rateLimits`` follows the simulated limit.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from klinewatch.sim.store import SeriesStore

_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB",
    "EUR", "TRY", "BRL", "JPY", "GBP", "AUD", "USD",
)  # fmt: skip
_SPOT_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]
_FUTURES_ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT"]
_FAR_FUTURE_MS = 4133404800000  # Binance's deliveryDate of perpetuals (2100-12-25)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` -> (``BTC``, ``USDT``): the longest known quote suffix wins."""
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4] or symbol, symbol[-4:]


def _first_open_ms(store: SeriesStore, market: str, symbol: str) -> int:
    """Open time of the symbol's first candle, reading one line per series."""
    first: list[int] = []
    for interval in store.intervals("binance", market, symbol):
        with gzip.open(store.path("binance", market, symbol, interval), "rb") as handle:
            line = handle.readline()
        if line[:1].isdigit():
            first.append(int(line.split(b",", 1)[0]))
    return min(first) + store.shift_ms if first else 0


def _synthetic_symbol(store: SeriesStore, market: str, symbol: str) -> dict[str, Any]:
    base, quote = split_symbol(symbol)
    if market == "spot":
        return {
            "symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
            "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": _SPOT_ORDER_TYPES, "icebergAllowed": True, "ocoAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [], "permissions": ["SPOT"],
        }  # fmt: skip
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL",
        "deliveryDate": _FAR_FUTURE_MS, "onboardDate": _first_open_ms(store, market, symbol),
        "status": "TRADING", "baseAsset": base, "quoteAsset": quote, "marginAsset": quote,
        "pricePrecision": 8, "quantityPrecision": 8, "baseAssetPrecision": 8,
        "quotePrecision": 8, "underlyingType": "COIN", "filters": [],
        "orderTypes": _FUTURES_ORDER_TYPES, "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }  # fmt: skip


def _empty_snapshot(market: str) -> dict[str, Any]:
    body: dict[str, Any] = {"timezone": "UTC", "serverTime": 0, "rateLimits": []}
    if market == "futures":
        body["futuresType"] = "U_MARGINED"
        body["assets"] = []
    body["exchangeFilters"] = []
    body["symbols"] = []
    return body


@dataclass
class ExchangeInfo:
    """One market's exchangeInfo, built once per store generation."""

    store: SeriesStore
    market: str
    _body: dict[str, Any] | None = None
    _by_symbol: dict[str, dict[str, Any]] = field(default_factory=dict)
    _generation: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _load(self) -> dict[str, Any]:
        if self._body is not None and self._generation == self.store.generation:
            return self._body
        with self._lock:
            folder = self.store.exchange_file("binance", self.market, "exchangeInfo")
            snapshots = sorted(folder.glob("*.json.gz")) if folder.is_dir() else []
            body = (
                orjson.loads(gzip.decompress(snapshots[-1].read_bytes()))
                if snapshots
                else _empty_snapshot(self.market)
            )
            listed = {s["symbol"] for s in body["symbols"]}
            for symbol in self.store.symbols("binance", self.market):
                if symbol not in listed:
                    body["symbols"].append(_synthetic_symbol(self.store, self.market, symbol))
            self._by_symbol = {s["symbol"]: s for s in body["symbols"]}
            self._body, self._generation = body, self.store.generation
            return body

    def has_symbol(self, symbol: str) -> bool:
        self._load()
        return symbol in self._by_symbol

    def symbol_names(self) -> list[str]:
        self._load()
        return list(self._by_symbol)

    def body(self, now_ms: int, weight_limit: int, symbols: list[str] | None) -> bytes:
        """The JSON body at ``now_ms``; ``symbols`` restricts the list (already valid)."""
        base = self._load()
        limits = [
            {**rl, "limit": weight_limit} if rl.get("rateLimitType") == "REQUEST_WEIGHT" else rl
            for rl in base.get("rateLimits", [])
        ] or [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": weight_limit}
        ]  # fmt: skip
        chosen = base["symbols"] if symbols is None else [self._by_symbol[s] for s in symbols]
        body = {**base, "serverTime": now_ms, "rateLimits": limits, "symbols": chosen}
        return orjson.dumps(body)

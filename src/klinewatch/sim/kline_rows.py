"""Binance kline rows as JSON bytes, encoded once per series and sliced per request.

Serving 1000 candles must cost a slice, not 1000 encodings: each series is encoded
once into one blob (every row followed by a comma) with the offset of each row, so a
page is ``b"[" + blob[offsets[lo]:offsets[hi] - 1] + b"]"``.

Numbers follow Binance: times and the trade count are JSON numbers, prices and volumes
strings with a fixed number of decimals. Spot always shows 8 decimals; futures show the
symbol's precision, which we infer per column group as the fewest decimals that render
every recorded value exactly (so a client parsing the strings gets the CSV's floats).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from klinewatch.domain.candles import Candles
from klinewatch.sim.store import SeriesKey, SeriesStore

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
_MAX_DECIMALS = 12


@dataclass(frozen=True, slots=True)
class Decimals:
    """Decimals shown for prices, base volumes and quote volumes."""

    price: int
    base: int
    quote: int

    def row_format(self) -> str:
        p, b, q = (f"{{:.{d}f}}" for d in (self.price, self.base, self.quote))
        return f'[{{}},"{p}","{p}","{p}","{p}","{b}",{{}},"{q}",{{}},"{b}","{q}","0"]'


SPOT_DECIMALS = Decimals(8, 8, 8)


def fewest_decimals(*columns: F64) -> int:
    """The fewest decimals (0..12) that render every value of ``columns`` exactly."""
    values = np.abs(np.concatenate(columns)) if columns else np.empty(0)
    values = values[np.isfinite(values)]
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = values * 10.0**decimals
        tolerance = scaled * 1e-15 + 1e-9
        if np.all(np.abs(scaled - np.round(scaled)) <= tolerance):
            return decimals
    return _MAX_DECIMALS


def decimals_for(candles: Candles, market: str) -> Decimals:
    """Spot: Binance's fixed 8 (more only if the data needs it); futures: inferred."""
    c = candles
    price = fewest_decimals(c.open, c.high, c.low, c.close)
    base = fewest_decimals(c.volume, c.taker_buy_base_volume)
    quote = fewest_decimals(c.quote_volume, c.taker_buy_quote_volume)
    if market == "spot":
        return Decimals(max(8, price), max(8, base), max(8, quote))
    return Decimals(price, base, quote)


def encode_rows(candles: Candles, decimals: Decimals) -> list[str]:
    """One JSON array text per candle, in Binance's field order and types."""
    row = decimals.row_format().format
    c = candles
    return [
        row(*fields)
        for fields in zip(
            c.open_time_ms.tolist(),
            c.open.tolist(),
            c.high.tolist(),
            c.low.tolist(),
            c.close.tolist(),
            c.volume.tolist(),
            c.close_time_ms.tolist(),
            c.quote_volume.tolist(),
            c.trade_count.tolist(),
            c.taker_buy_base_volume.tolist(),
            c.taker_buy_quote_volume.tolist(),
            strict=True,
        )
    ]


def rows_json(candles: Candles, decimals: Decimals) -> bytes:
    """A whole klines body for a few candles (the slow path: faults, open candle)."""
    return ("[" + ",".join(encode_rows(candles, decimals)) + "]").encode()


@dataclass(frozen=True, slots=True)
class EncodedSeries:
    """A series' rows in one blob; ``offsets[i]`` is where row ``i`` starts."""

    blob: bytes
    offsets: I64
    decimals: Decimals

    @classmethod
    def build(cls, candles: Candles, decimals: Decimals) -> EncodedSeries:
        rows = encode_rows(candles, decimals)
        lengths = np.fromiter((len(r) + 1 for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        blob = "".join(r + "," for r in rows).encode()
        return cls(blob, offsets, decimals)

    def join(self, lo: int, hi: int, extra: bytes = b"") -> bytes:
        """Rows ``lo..hi-1`` as a JSON array, with ``extra`` (one encoded row) appended."""
        if lo >= hi:
            return b"[" + extra + b"]"
        body = self.blob[int(self.offsets[lo]) : int(self.offsets[hi]) - 1]
        return b"[" + body + (b"," + extra if extra else b"") + b"]"


@dataclass
class RowCache:
    """Encoded series per real series and store generation (aliases share one)."""

    store: SeriesStore
    _cache: dict[tuple[SeriesKey, int], EncodedSeries] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cached(self, exchange: str, market: str, symbol: str, interval: str) -> bool:
        """Whether ``get`` is instant (else it parses and encodes: run it off the loop)."""
        key = (self.store.real_key(exchange, market, symbol, interval), self.store.generation)
        return key in self._cache

    def get(self, exchange: str, market: str, symbol: str, interval: str) -> EncodedSeries:
        key = (self.store.real_key(exchange, market, symbol, interval), self.store.generation)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        candles = self.store.get(exchange, market, symbol, interval)
        encoded = EncodedSeries.build(candles, decimals_for(candles, market))
        with self._lock:
            if key[1] != self.store.generation:
                return encoded
            stale = [k for k in self._cache if k[1] != self.store.generation]
            for k in stale:
                del self._cache[k]
            return self._cache.setdefault(key, encoded)

"""Lazy access to recorded candle series laid out as in ``shared/data/README.md``.

``<exchange>/<market>/klines/<SYMBOL>/<interval>.csv.gz``: one gzipped CSV per series,
no header, the 12 Binance kline columns, times in ms, empty optional fields served as 0.
A series is parsed on first use and kept; listing the folder reads no CSV, so a large
data set starts fast.
"""

from __future__ import annotations

import gzip
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from klinewatch.domain.candles import COLUMNS, Candles

SeriesKey = tuple[str, str, str, str]  # exchange, market, symbol, interval


def read_kline_csv(data: bytes) -> Candles:
    """Parse Binance's 12-column kline CSV (ms times, no header; empty fields are 0)."""
    text = data.decode("ascii")
    if not text.strip():
        return Candles.empty()
    lines = text.strip().splitlines()
    if lines and not lines[0][:1].isdigit():
        lines = lines[1:]  # a header line, as in some archive files
    table = np.genfromtxt(
        io.StringIO("\n".join(lines)),
        delimiter=",",
        dtype=np.float64,
        filling_values=0.0,
        usecols=range(len(COLUMNS)),
        ndmin=2,
    )
    table = np.nan_to_num(table, nan=0.0)
    return Candles.from_columns(**{name: table[:, i] for i, name in enumerate(COLUMNS)})


@dataclass
class SeriesStore:
    """Every series under ``root``; ``aliases`` serve one real series under extra names
    (e.g. 500 symbols for a benchmark) as ``{(exchange, market, alias): real_symbol}``."""

    root: Path
    aliases: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _cache: dict[SeriesKey, Candles] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def path(self, exchange: str, market: str, symbol: str, interval: str) -> Path:
        real = self.aliases.get((exchange, market, symbol), symbol)
        return self.root / exchange / market / "klines" / real / f"{interval}.csv.gz"

    def symbols(self, exchange: str, market: str) -> list[str]:
        folder = self.root / exchange / market / "klines"
        found = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        extra = [alias for (ex, mk, alias) in self.aliases if ex == exchange and mk == market]
        return sorted({*found, *extra})

    def intervals(self, exchange: str, market: str, symbol: str) -> list[str]:
        folder = self.path(exchange, market, symbol, "x").parent
        if not folder.is_dir():
            return []
        return sorted(p.name.removesuffix(".csv.gz") for p in folder.glob("*.csv.gz"))

    def has(self, exchange: str, market: str, symbol: str, interval: str) -> bool:
        return self.path(exchange, market, symbol, interval).is_file()

    def get(self, exchange: str, market: str, symbol: str, interval: str) -> Candles:
        """The whole recorded series, oldest first (empty when there is none)."""
        key = (exchange, market, symbol, interval)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        path = self.path(exchange, market, symbol, interval)
        candles = (
            read_kline_csv(gzip.decompress(path.read_bytes())).sorted_unique()
            if path.is_file()
            else Candles.empty()
        )
        with self._lock:
            self._cache.setdefault(key, candles)
        return self._cache[key]

    def exchange_file(self, *parts: str) -> Path:
        """A non-kline recorded file (exchangeInfo, tickers, CoinGecko lists...)."""
        return self.root.joinpath(*parts)

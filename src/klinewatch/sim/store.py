"""Lazy access to recorded candle series laid out as in ``shared/data/README.md``.

``<exchange>/<market>/klines/<SYMBOL>/<interval>.csv.gz``: one gzipped CSV per series,
no header, the 12 Binance kline columns, times in ms, empty optional fields served as 0.
A series is parsed on first use and kept; listing the folder reads no CSV, so a large
data set starts fast.

History can be shifted by a constant (``set_shift``) so that recorded series end "now":
the shift lives here, not in the routes, so every venue serves the same shifted history
without knowing about it. ``generation`` changes with the shift so caches built from the
candles (encoded rows, archive zips) know when to rebuild.
"""

from __future__ import annotations

import gzip
import io
import math
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from klinewatch.domain.candles import COLUMNS, INT_COLUMNS, Candles
from klinewatch.domain.intervals import INTERVALS

SeriesKey = tuple[str, str, str, str]  # exchange, market, symbol, interval

_CSV_NAMES = [*COLUMNS, "ignore"]
_CSV_TYPES = {name: (pa.int64() if name in INT_COLUMNS else pa.float64()) for name in COLUMNS} | {
    "ignore": pa.string()
}


def read_kline_csv(data: bytes) -> Candles:
    """Parse Binance's 12-column kline CSV (ms times, no header; empty fields are 0).

    pyarrow parses ~10x faster than NumPy's text reader, which matters because a
    series is parsed while a client waits for its first page.
    """
    if not data.strip():
        return Candles.empty()
    skip = 0 if data[:1].isdigit() else 1  # a header line, as in some archive files
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=_CSV_NAMES, skip_rows=skip),
        convert_options=pacsv.ConvertOptions(column_types=_CSV_TYPES),
    )
    columns = {
        name: table.column(name).fill_null(0).to_numpy(zero_copy_only=False) for name in COLUMNS
    }
    return Candles.from_columns(**columns)


def _last_line(path: Path) -> bytes:
    """The last non-empty line of a gzipped file, without keeping it all in memory."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            tail = (tail + decompressor.decompress(chunk))[-4096:]
    tail += decompressor.flush()
    lines = [line for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else b""


@dataclass
class SeriesStore:
    """Every series under ``root``; ``aliases`` serve one real series under extra names
    (e.g. 500 symbols for a benchmark) as ``{(exchange, market, alias): real_symbol}``."""

    root: Path
    aliases: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _cache: dict[SeriesKey, Candles] = field(default_factory=dict, repr=False)
    _shifted: dict[SeriesKey, Candles] = field(default_factory=dict, repr=False)
    _shift_ms: int = 0
    generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def real_symbol(self, exchange: str, market: str, symbol: str) -> str:
        return self.aliases.get((exchange, market, symbol), symbol)

    def path(self, exchange: str, market: str, symbol: str, interval: str) -> Path:
        real = self.real_symbol(exchange, market, symbol)
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

    def real_key(self, exchange: str, market: str, symbol: str, interval: str) -> SeriesKey:
        """The key of the recorded series behind a (possibly aliased) symbol."""
        return (exchange, market, self.real_symbol(exchange, market, symbol), interval)

    def get(self, exchange: str, market: str, symbol: str, interval: str) -> Candles:
        """The whole series, oldest first, shifted by ``shift_ms`` (empty when none).

        Cached under the real symbol, so 500 aliases of one series cost one copy.
        """
        key = self.real_key(exchange, market, symbol, interval)
        shifted = self._shifted.get(key)
        if shifted is not None:
            return shifted
        raw = self._raw(key)
        with self._lock:
            if self._shift_ms:
                raw = _shift(raw, self._shift_ms)
            return self._shifted.setdefault(key, raw)

    def _raw(self, key: SeriesKey) -> Candles:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        exchange, market, symbol, interval = key
        path = self.root / exchange / market / "klines" / symbol / f"{interval}.csv.gz"
        candles = (
            read_kline_csv(gzip.decompress(path.read_bytes())).sorted_unique()
            if path.is_file()
            else Candles.empty()
        )
        with self._lock:
            return self._cache.setdefault(key, candles)

    def add_alias(self, exchange: str, market: str, alias: str, real_symbol: str) -> None:
        """Serve ``real_symbol``'s series also as ``alias`` (listings built from the
        store are rebuilt: ``generation`` moves)."""
        with self._lock:
            self.aliases[(exchange, market, alias)] = real_symbol
            self.generation += 1

    def clear_aliases(self) -> None:
        if self.aliases:
            with self._lock:
                self.aliases.clear()
                self.generation += 1

    def exchange_file(self, *parts: str) -> Path:
        """A non-kline recorded file (exchangeInfo, tickers, CoinGecko lists...)."""
        return self.root.joinpath(*parts)

    @property
    def shift_ms(self) -> int:
        return self._shift_ms

    def set_shift(self, shift_ms: int) -> None:
        """Move all history by ``shift_ms``; cached shifted views are rebuilt lazily."""
        with self._lock:
            self._shift_ms = shift_ms
            self._shifted = {}
            self.generation += 1

    def recorded_end_ms(self) -> int | None:
        """End of the newest recorded candle of any series (unshifted), or None."""
        end: int | None = None
        for path in self.root.glob("*/*/klines/*/*.csv.gz"):
            line = _last_line(path)
            if not line[:1].isdigit():
                continue
            interval = INTERVALS.get(path.name.removesuffix(".csv.gz"))
            open_ms = int(line.split(b",", 1)[0])
            close_ms = interval.close_time(open_ms) + 1 if interval else open_ms
            end = close_ms if end is None else max(end, close_ms)
        return end

    def shift_step_ms(self) -> int:
        """A shift step that keeps every recorded interval on its grid: the least common
        multiple of their lengths (a day for 1m..1d; a week once 1w is recorded)."""
        step = 1
        for path in self.root.glob("*/*/klines/*/*.csv.gz"):
            interval = INTERVALS.get(path.name.removesuffix(".csv.gz"))
            if interval is not None and interval.length_ms is not None:
                step = math.lcm(step, interval.length_ms)
        return step

    def shift_to(self, now_ms: int) -> int:
        """Shift history so that the newest series ends within one step after ``now_ms``
        (the candle containing "now" is then recorded, and closes as the clock moves)."""
        end = self.recorded_end_ms()
        if end is None:
            self.set_shift(0)
            return 0
        step = self.shift_step_ms()
        shift = -((end - now_ms) // step) * step
        self.set_shift(shift)
        return shift


def _shift(candles: Candles, shift_ms: int) -> Candles:
    columns = dict(zip(COLUMNS, candles.columns(), strict=True))
    columns["open_time_ms"] = candles.open_time_ms + np.int64(shift_ms)
    columns["close_time_ms"] = candles.close_time_ms + np.int64(shift_ms)
    return Candles.from_columns(**columns)


def replicate_symbols(store: SeriesStore, count: int) -> dict[tuple[str, str], list[str]]:
    """Serve each exchange/market's BTC series (else its first) under ``count`` extra names:
    ``BTCUSDT`` -> ``SIM0001USDT``..., ``BTC-USDT-SWAP`` -> ``SIM0001-USDT-SWAP``...

    For benchmarks over many pairs without many files. Returns the new names.
    """
    added: dict[tuple[str, str], list[str]] = {}
    for market_dir in sorted(store.root.glob("*/*/klines")):
        exchange, market = market_dir.parent.parent.name, market_dir.parent.name
        real = sorted(p.name for p in market_dir.iterdir() if p.is_dir())
        if not real or count <= 0:
            continue
        source = next((s for s in real if s.startswith("BTC")), real[0])
        suffix = source[3:] if source.startswith("BTC") else source
        names = [f"SIM{i:04d}{suffix}" for i in range(1, count + 1)]
        for name in names:
            store.add_alias(exchange, market, name, source)
        added[(exchange, market)] = names
    return added

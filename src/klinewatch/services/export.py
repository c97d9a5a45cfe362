"""Export a stored series: the recorded-data CSV layout, Parquet, or freqtrade's feather.

- ``csv`` is exactly ``shared/data/README.md``'s kline CSV (12 columns, no header, ms
  times, ``close_time = open_time + interval - 1``, ``ignore`` 0), gzipped under the
  simulator's layout ``<exchange>/<market>/klines/<SYMBOL>/<interval>.csv.gz`` when the
  target is a folder, so an export replays in the simulator. Numbers are written by
  Arrow's shortest round-trip formatting: re-reading gives the same float64 values, and
  integral values carry no ``.0``.
- ``parquet`` keeps every field, times as UTC timestamps.
- ``feather`` is freqtrade's layout (``date`` as UTC datetime, open, high, low, close,
  volume; lz4) and file names (``BTC_USDT-1h.feather``, ``futures/BTC_USDT_USDT-1h-
  futures.feather``), so a freqtrade data folder can be filled from the warehouse.

Rows stream in chunks, and a file appears only complete: it is written beside its
target and renamed at the end. Every option is checked before anything is read or
written, and a bad one is named.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, get_args

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import Interval, parse_interval, parse_market_type
from klinewatch.domain.market_config import Exchange
from klinewatch.errors import InvalidInput, NotFound
from klinewatch.storage.contracts import ContractRepository
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.series_stats import span_stats

FORMATS = ("csv", "parquet", "feather")
SUFFIXES = {"csv": (".csv", ".csv.gz"), "parquet": (".parquet",), "feather": (".feather",)}
CHUNK_ROWS = 500_000
COMMON_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
Progress = Callable[[int, int], None]
_UTC_MS = pa.timestamp("ms", tz="UTC")
_FAR_PAST, _FAR_FUTURE = -(2**62), 2**62


@dataclass(frozen=True, slots=True)
class ExportRequest:
    exchange: str
    market_type: str
    symbol: str
    interval: str
    fmt: str
    out: Path
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    rows: int
    first_ms: int
    last_ms: int
    size_bytes: int


def check_request(request: ExportRequest) -> Interval:
    """Refuse a bad option by name before anything is read or written."""
    if request.fmt not in FORMATS:
        raise InvalidInput(
            f"--format {request.fmt!r} is not supported; expected one of {', '.join(FORMATS)}",
            field="format",
        )
    interval = parse_interval(request.interval)
    parse_market_type(request.market_type)
    if request.exchange not in get_args(Exchange):
        raise InvalidInput(
            f"unknown exchange {request.exchange!r}; expected one of "
            f"{', '.join(get_args(Exchange))}",
            field="exchange",
        )
    since, until = request.since_ms, request.until_ms
    if since is not None and until is not None and since >= until:
        raise InvalidInput("--since is not before --until", field="since")
    name = request.out.name
    named = [s for suffixes in SUFFIXES.values() for s in suffixes if name.endswith(s)]
    if named and not name.endswith(SUFFIXES[request.fmt]):
        raise InvalidInput(
            f"--out {request.out} does not end in {' or '.join(SUFFIXES[request.fmt])} "
            f"(--format {request.fmt})",
            field="out",
        )
    if not named and request.out.is_file():
        raise InvalidInput(f"--out {request.out} is a file, not a folder", field="out")
    return interval


def freqtrade_pair(symbol: str, market_type: str, base: str | None, quote: str | None) -> str:
    """freqtrade's pair name: ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (USDT-M futures)."""
    if base is None or quote is None:
        parts = symbol.split("-")
        if len(parts) >= 2:
            base, quote = parts[0], parts[1]
        else:
            quote = next((q for q in COMMON_QUOTES if symbol.endswith(q) and symbol != q), "")
            base = symbol.removesuffix(quote) if quote else symbol
    pair = f"{base}/{quote}" if quote else base
    return f"{pair}:{quote}" if market_type == "futures" and quote else pair


def target_path(request: ExportRequest, pair: str) -> Path:
    """The file named by ``--out``, or the format's own layout inside that folder."""
    if request.out.name.endswith(SUFFIXES[request.fmt]):
        return request.out
    if request.fmt == "feather":
        stem = pair.replace("/", "_").replace(":", "_") + "-" + request.interval.replace("M", "Mo")
        if request.market_type == "futures":
            return request.out / "futures" / f"{stem}-futures.feather"
        return request.out / f"{stem}.feather"
    suffix = "csv.gz" if request.fmt == "csv" else "parquet"
    series_dir = request.out / request.exchange / request.market_type / "klines" / request.symbol
    return series_dir / f"{request.interval}.{suffix}"


def csv_table(candles: Candles) -> pa.Table:
    """The 12 columns of Binance's public-data kline files, in their order."""
    c = candles
    return pa.table(
        {
            "open_time": c.open_time_ms,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
            "close_time": c.close_time_ms,
            "quote_volume": c.quote_volume,
            "trades": c.trade_count,
            "taker_buy_base_volume": c.taker_buy_base_volume,
            "taker_buy_quote_volume": c.taker_buy_quote_volume,
            "ignore": np.zeros(len(c), dtype=np.int64),
        }
    )


def parquet_table(candles: Candles) -> pa.Table:
    c = candles
    return pa.table(
        {
            "open_time": pa.array(c.open_time_ms, type=pa.int64()).cast(_UTC_MS),
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
            "close_time": pa.array(c.close_time_ms, type=pa.int64()).cast(_UTC_MS),
            "quote_volume": c.quote_volume,
            "trade_count": c.trade_count,
            "taker_buy_base_volume": c.taker_buy_base_volume,
            "taker_buy_quote_volume": c.taker_buy_quote_volume,
        }
    )


def feather_table(candles: Candles) -> pa.Table:
    """freqtrade's DEFAULT_DATAFRAME_COLUMNS: date (UTC), open, high, low, close, volume."""
    c = candles
    return pa.table(
        {
            "date": pa.array(c.open_time_ms, type=pa.int64()).cast(_UTC_MS),
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
    )


class TableWriter(Protocol):
    def write(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...


class _CsvWriter:
    def __init__(self, path: Path, schema: pa.Schema, gzip: bool) -> None:
        self.sink = (
            pa.CompressedOutputStream(str(path), "gzip") if gzip else pa.OSFile(str(path), "wb")
        )
        options = pacsv.WriteOptions(include_header=False)
        self.writer = pacsv.CSVWriter(self.sink, schema, write_options=options)

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


_TABLES: dict[str, Callable[[Candles], pa.Table]] = {
    "csv": csv_table,
    "parquet": parquet_table,
    "feather": feather_table,
}


def open_writer(fmt: str, path: Path, final_name: str) -> TableWriter:
    schema = _TABLES[fmt](Candles.empty()).schema
    if fmt == "csv":
        return _CsvWriter(path, schema, gzip=final_name.endswith(".gz"))
    writer: TableWriter
    if fmt == "parquet":
        writer = pq.ParquetWriter(str(path), schema, compression="zstd")
    else:
        options = paipc.IpcWriteOptions(compression="lz4")
        writer = paipc.new_file(str(path), schema, options=options)
    return writer


def _resolve(session: Session, request: ExportRequest) -> tuple[int, str]:
    """The series id and freqtrade pair name; an unknown series is named by option."""
    r = request
    stored = KlineRepository(session).list_series(r.exchange, r.market_type, r.interval)
    if r.symbol not in stored:
        known = ", ".join(list(stored)[:10]) or "none"
        raise InvalidInput(
            f"no stored {r.exchange} {r.market_type} {r.interval} series for --symbol "
            f"{r.symbol} (stored: {known})",
            field="symbol",
        )
    contract = ContractRepository(session).all(r.exchange, r.market_type).get(r.symbol)
    base = contract.base_asset if contract else None
    quote = contract.quote_asset if contract else None
    return stored[r.symbol], freqtrade_pair(r.symbol, r.market_type, base, quote)


def export_klines(
    sessions: sessionmaker[Session], request: ExportRequest, on_progress: Progress | None = None
) -> ExportResult:
    """Write the series' candles in ``[since, until)`` to one file; return what was written."""
    check_request(request)
    start = _FAR_PAST if request.since_ms is None else request.since_ms
    end = _FAR_FUTURE if request.until_ms is None else request.until_ms
    with transaction(sessions) as session:
        series_id, pair = _resolve(session, request)
        stat = span_stats(session, [series_id], start, end).get(series_id)
        if stat is None:
            raise NotFound(f"{request.symbol} {request.interval} has no candles in that span")
        path = target_path(request, pair)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        writer = open_writer(request.fmt, partial, path.name)
        try:
            rows = _copy_rows(
                KlineRepository(session),
                series_id,
                (start, end),
                _TABLES[request.fmt],
                writer,
                lambda done: on_progress(done, stat.count) if on_progress else None,
            )
            writer.close()
        except BaseException:
            writer.close()
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, path)
    return ExportResult(path, rows, stat.first_ms, stat.last_ms, path.stat().st_size)


def _copy_rows(
    repo: KlineRepository,
    series_id: int,
    span: tuple[int, int],
    to_table: Callable[[Candles], pa.Table],
    writer: TableWriter,
    progress: Callable[[int], None],
) -> int:
    """Stream the span oldest first in chunks, so a 1m series never sits in memory."""
    start, end = span
    rows = 0
    while True:
        chunk = repo.read(series_id, start, end, limit=CHUNK_ROWS)
        if len(chunk) == 0:
            return rows
        writer.write(to_table(chunk))
        rows += len(chunk)
        progress(rows)
        start = int(chunk.open_time_ms[-1]) + 1

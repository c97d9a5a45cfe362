"""Bulk candle write: 1,000,000 real-shaped candles into SQLite and PostgreSQL, twice.

Real series from ``shared/data`` are tiled across symbol names and shifted in time until a
million candles are reached. Each backend gets: the idempotent write (first pass, all new),
the same million again (second pass, nothing new), and the reference: a plain binary COPY
(PostgreSQL) or a plain executemany INSERT (SQLite) of the same rows in the same batches
into an empty table with the same unique index.

    .venv/bin/python bench/bulk_write.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.common import print_figures, shared_data_dir, throwaway_pg_database
from klinewatch.domain.candles import Candles
from klinewatch.sim.store import SeriesStore
from klinewatch.storage import migrate
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.klines import KLINE_COLUMNS, KlineRepository, copy_rows_pg

SOURCES = [
    ("binance", "spot", "BTCUSDT", "5m"),
    ("binance", "spot", "ETHUSDT", "5m"),
    ("binance", "spot", "SOLUSDT", "5m"),
    ("binance", "futures", "BTCUSDT", "5m"),
    ("binance", "futures", "ETHUSDT", "5m"),
    ("binance", "spot", "KITEUSDT", "1m"),
]
BATCH = 50_000

Batches = list[tuple[str, Candles]]


def tiled_batches(total: int) -> Batches:
    """(symbol, candles) batches adding up to ``total`` rows, from the real series."""
    store = SeriesStore(shared_data_dir())
    out: Batches = []
    remaining, copy_no = total, 0
    while remaining > 0:
        for exchange, market, symbol, interval in SOURCES:
            series = store.get(exchange, market, symbol, interval)
            if len(series) == 0:
                continue
            take = series.take(slice(0, min(len(series), remaining)))
            name = f"{symbol[:-4]}{market[0].upper()}{copy_no:03d}USDT"
            for start in range(0, len(take), BATCH):
                out.append((name, take.take(slice(start, start + BATCH))))
            remaining -= len(take)
            if remaining <= 0:
                break
        copy_no += 1
    return out


def idempotent_pass(url: str, batches: Batches) -> tuple[float, int]:
    factory = session_factory(build_engine(url))
    added = 0
    started = time.perf_counter()
    for symbol, candles in batches:
        with transaction(factory) as session:
            repo = KlineRepository(session)
            series_id = repo.ensure_series("binance", "spot", symbol, "5m")
            added += repo.insert_new(series_id, candles)
    return time.perf_counter() - started, added


def series_ids(batches: Batches) -> list[int]:
    """The same series id per symbol as the idempotent write gets (first seen, first id)."""
    ids: dict[str, int] = {}
    return [ids.setdefault(symbol, len(ids) + 1) for symbol, _ in batches]


def pg_reference(url: str, batches: Batches) -> float:
    engine = build_engine(url)
    factory = session_factory(engine)
    with transaction(factory) as session:
        session.execute(text("CREATE TABLE klines_reference (LIKE klines INCLUDING ALL)"))
    started = time.perf_counter()
    for series_id, (_, candles) in zip(series_ids(batches), batches, strict=True):
        with transaction(factory) as session:
            copy_rows_pg(session, "klines_reference", series_id, candles)
    return time.perf_counter() - started


def sqlite_reference(path: Path, batches: Batches) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    cols = ", ".join(KLINE_COLUMNS)
    conn.execute(
        f"CREATE TABLE klines_reference ({cols}, PRIMARY KEY (series_id, open_time_ms)) "
        "WITHOUT ROWID"
    )
    sql = f"INSERT INTO klines_reference ({cols}) VALUES ({', '.join('?' * len(KLINE_COLUMNS))})"
    started = time.perf_counter()
    for series_id, (_, candles) in zip(series_ids(batches), batches, strict=True):
        columns = [col.tolist() for col in candles.columns()]
        with conn:
            conn.executemany(sql, zip([series_id] * len(candles), *columns, strict=True))
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def run_backend(name: str, url: str, batches: Batches, reference: float) -> dict[str, float]:
    migrate.upgrade(url)
    rows = sum(len(c) for _, c in batches)
    first_s, first_added = idempotent_pass(url, batches)
    second_s, second_added = idempotent_pass(url, batches)
    assert first_added == rows, f"{name}: first pass added {first_added} of {rows}"
    figures = {
        f"{name}_rows_per_s": round(rows / first_s),
        f"{name}_reference_rows_per_s": round(rows / reference),
        f"{name}_ratio": round(reference / first_s, 3),
        f"{name}_second_pass_rows_per_s": round(rows / second_s),
        f"{name}_second_pass_added": second_added,
    }
    print(f"{name}: {figures}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    batches = tiled_batches(args.rows)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ref = sqlite_reference(Path(tmp) / "reference.sqlite3", batches)
        figures |= run_backend("sqlite", f"sqlite:///{tmp}/bench.sqlite3", batches, ref)
    with throwaway_pg_database() as url:
        migrate.upgrade(url)
        ref = pg_reference(url, batches)
        figures |= run_backend("pg", url, batches, ref)
    figures["second_pass_added"] = (
        figures["pg_second_pass_added"] + figures["sqlite_second_pass_added"]
    )
    print_figures(figures)


if __name__ == "__main__":
    main()

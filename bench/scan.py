"""Volume-trap benchmarks on PostgreSQL (seed 002: 500 pairs in 30 s, the list in 500 ms).

``scan_500_s`` / ``scan_2000_s``: one scan of 500 (2,000) pairs with 200 closed 1h
    candles each, read from PostgreSQL, all eight detectors, monitors written. The pairs
    are windows of the real 1h series in ../shared/data tiled across symbol names, so
    the bursts, transitions and writes are those real candles cause. A warm-up scan of
    20 other pairs runs first (imports, statement caches), as in a long-running process,
    and the candles are vacuumed first, as candles stored a while ago would be. A second
    scan right after each must change nothing (checked).
``monitor_list_p50_ms``: GET /api/volume-trap/monitors/ over HTTP (uvicorn, the router
    alone) with 10,000 monitors stored, over a mix of filters, orderings and pages.

    .venv/bin/python -m bench.scan
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.common import print_figures, shared_data_dir, throwaway_pg_database
from klinewatch.api import errors
from klinewatch.api.routers import volume_trap as volume_trap_router
from klinewatch.domain.candles import Candles
from klinewatch.services.volume_trap import ScanSummary, scan
from klinewatch.sim.store import SeriesStore
from klinewatch.storage import migrate
from klinewatch.storage.batch_write import insert_many
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.models import Contract, VolumeTrapMonitor

CANDLES = 200
LIST_MONITORS = 10_000
LIST_REQUESTS = 600
LIST_QUERIES = (
    "",
    "?status=pending",
    "?market_type=futures&ordering=-rvol",
    "?ordering=drawdown&page=120",
    "?ordering=-drawdown&status=confirmed_abandonment&page=3",
    "?interval=4h&market_type=spot&ordering=rvol&page_size=50",
    "?symbol=M01234USDT",
    "?exchange=binance&status=expired&ordering=trigger_time&page=40",
)


def real_series() -> list[Candles]:
    root = shared_data_dir()
    store = SeriesStore(root)
    found = sorted(root.glob("binance/*/klines/*/1h.csv.gz"))
    series = [store.get("binance", f.parts[-4], f.parts[-2], "1h") for f in found]
    return [c for c in series if len(c) > 1000]


def store_pairs(
    sessions: sessionmaker[Session], exchange: str, market: str, n: int, source: list[Candles]
) -> None:
    """``n`` active contracts, each a 200-candle window of a real series."""
    rng = np.random.default_rng(n)
    symbols = [f"P{i:05d}USDT" for i in range(n)]
    with transaction(sessions) as session:
        fields = {"exchange": exchange, "market_type": market, "quote_asset": "USDT"}
        session.add_all(
            Contract(**fields, symbol=s, base_asset=s[:-4], status="TRADING") for s in symbols
        )
        klines = KlineRepository(session)
        parts = []
        for i, symbol in enumerate(symbols):
            c = source[i % len(source)]
            start = int(rng.integers(0, len(c) - CANDLES))
            sid = klines.ensure_series(exchange, market, symbol, "1h")
            parts.append((sid, c.take(slice(start, start + CANDLES))))
        insert_many(session, parts)


def timed_scan(sessions: sessionmaker[Session], exchange: str, market: str) -> float:
    started = time.perf_counter()
    summary = scan(sessions, exchange, market, "1h")
    elapsed = time.perf_counter() - started
    report(summary, elapsed)
    again = scan(sessions, exchange, market, "1h")
    assert again.scanned == 0, again  # a second scan changes nothing
    assert not again.errors, again
    return elapsed


def report(s: ScanSummary, elapsed: float) -> None:
    print(
        f"scan {s.exchange} {s.market_type} {s.interval}: {s.pairs} pairs, {s.candles} candles, "
        f"discovered {s.discovered}, confirmed {s.confirmed}, validated {s.validated}, "
        f"invalidated {s.invalidated}, expired {s.expired}, later bursts {s.later_bursts}, "
        f"errors {len(s.errors)}: {elapsed:.3f} s"
    )


def fill_monitors(sessions: sessionmaker[Session], total: int) -> None:
    """Clone the scans' real monitors under new symbols up to ``total`` rows."""
    with transaction(sessions) as session:
        m = VolumeTrapMonitor
        real = list(session.scalars(select(m)))
        have = len(real)
        skip = {"id", "symbol", "interval", "market_type", "created_at", "updated_at"}
        rnd = random.Random(7)
        rows: list[dict[str, Any]] = []
        for i in range(total - have):
            source = real[i % len(real)]
            row = {c.key: getattr(source, c.key) for c in m.__table__.columns if c.key not in skip}
            row.update(
                symbol=f"M{i:05d}USDT",
                interval=rnd.choice(("1h", "4h", "1d")),
                market_type=rnd.choice(("spot", "futures")),
                contract_id=None,
            )
            rows.append(row)
        session.execute(insert(m), rows)
        session.execute(text("ANALYZE volume_trap_monitors"))


def list_p50(sessions: sessionmaker[Session]) -> float:
    app = FastAPI()
    errors.install(app)
    app.include_router(volume_trap_router.router)
    app.state.sessions = sessions
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    times: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(LIST_REQUESTS + 50):
                query = LIST_QUERIES[i % len(LIST_QUERIES)]
                started = time.perf_counter()
                response = client.get(f"/api/volume-trap/monitors/{query}")
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (query, response.text)
                if i >= 50:
                    times.append(elapsed * 1000)
    finally:
        server.should_exit = True
        thread.join(10)
    p50 = statistics.median(times)
    p95 = sorted(times)[int(len(times) * 0.95)]
    print(f"monitor list: {LIST_MONITORS} monitors, p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    return p50


def main() -> None:
    source = real_series()
    figures: dict[str, float] = {}
    with throwaway_pg_database("kw_bench_scan") as url:
        migrate.upgrade(url)
        engine = build_engine(url)
        sessions = session_factory(engine)
        store_pairs(sessions, "okx", "spot", 20, source)
        store_pairs(sessions, "binance", "spot", 500, source)
        store_pairs(sessions, "binance", "futures", 2000, source)
        # As candles stored a while ago: no autovacuum of the fresh rows during the timing.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        scan(sessions, "okx", "spot", "1h")  # warm-up
        figures["scan_500_s"] = round(timed_scan(sessions, "binance", "spot"), 3)
        figures["scan_2000_s"] = round(timed_scan(sessions, "binance", "futures"), 3)
        fill_monitors(sessions, LIST_MONITORS)
        figures["monitor_list_p50_ms"] = round(list_p50(sessions), 2)
        engine.dispose()
    print_figures(figures)


if __name__ == "__main__":
    main()

"""Ingestion benchmarks against the simulator with Binance's real limits and 50 ms latency.

(a) ``incremental_500_spot_s``: 500 spot pairs (the real BTCUSDT 1h series served under
    500 names), 90 days stored, one new candle closes for each: the time of one update.
(b) ``rest_spot_share_of_ceiling`` / ``rest_futures_share_of_ceiling``: a REST backfill
    runs for two whole weight windows; candles stored / what the governor's budget allows
    in that time (spot: 6000 x 0.8 weight a minute at 1000 candles per weight 2; futures:
    2400 x 0.8 at 499 candles per weight 2). The real 5m series is served under 60 (spot)
    and 12 (futures) names, more than two windows can fetch, with the simulator's clock
    just after its last candle: every page asked for is a full one, as for a listed pair.
(c) ``archive_candles_per_s``: one year of 1m candles for one symbol from the archive into
    PostgreSQL (``bench/archive_backfill.py``).
``sim_429`` / ``sim_418``: what the simulator issued over (a) and (b); must be 0.

    .venv/bin/python -m bench.ingest [--only incremental,rest,archive]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import print_figures, shared_data_dir, sim_admin, start_sim, throwaway_pg_database
from klinewatch.domain.gaps import missing_ranges
from klinewatch.domain.intervals import HOUR_MS, parse_interval
from klinewatch.services.contracts import sync_contracts
from klinewatch.services.ingestion import KlineUpdater
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.settings import Settings
from klinewatch.sim.store import SeriesStore
from klinewatch.storage import migrate
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.wiring import Runtime, build_runtime

PAIRS = 500
MARGIN = 0.8
CEILING_PER_MIN = {"spot": 6000 * MARGIN / 2 * 1000, "futures": 2400 * MARGIN / 2 * 499}


def runtime_for(pg_url: str, sim: str) -> Runtime:
    migrate.upgrade(pg_url)
    settings = Settings(
        database_url=pg_url, binance_spot_url=sim, binance_futures_url=sim,
        weight_safety_margin=MARGIN,
    )  # fmt: skip
    return build_runtime(settings)


def prefill(rt: Runtime, symbols: list[str], source: Any, start: int, end: int) -> None:
    """Store [start, end) of the real series under every alias, holes in the ledger."""
    hour = parse_interval("1h")
    part = source.between(start, end)
    holes = missing_ranges(hour, (start, end), part.open_time_ms)
    for symbol in symbols:
        with transaction(rt.sessions) as session:
            write_candles(session, SeriesKey("binance", "spot", symbol, "1h"), part)
            sid = KlineRepository(session).ensure_series("binance", "spot", symbol, "1h")
            LedgerRepository(session).record(sid, "fetched", [(start, end)])
            LedgerRepository(session).record(sid, "empty", holes)


async def incremental(pg_url: str, sim: str, data: Path) -> float:
    source = SeriesStore(data).get("binance", "spot", "BTCUSDT", "1h")
    last = int(source.open_time_ms[-1])
    sim_admin(sim, "clock", {"now_ms": last + 30 * 60_000, "speed": 1.0})
    rt = runtime_for(pg_url, sim)
    client = rt.exchange_client("binance", "spot")
    await sync_contracts(rt.sessions, client, {"USDT"})
    symbols = [f"SIM{i:04d}USDT" for i in range(1, PAIRS + 1)]
    start = last - 90 * 24 * HOUR_MS
    prefill(rt, symbols, source, start, last)
    sim_admin(sim, "clock", {"now_ms": last + HOUR_MS + 1_000, "speed": 1.0})  # `last` closes
    warm = f"{sim}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=2"
    # The simulator loads its finer series on the first ask for an open candle: not timed.
    await asyncio.to_thread(lambda: urllib.request.urlopen(warm, timeout=60).read())
    updater = KlineUpdater(rt.sessions, client, rt.clock, concurrency=16)
    await client.calibrate()
    started = time.perf_counter()
    summary = await updater.update(symbols, parse_interval("1h"), start)
    elapsed = time.perf_counter() - started
    await client.aclose()
    rt.close()
    assert summary.candles_added == PAIRS, summary
    print(
        f"incremental: {summary.requests} requests, {summary.candles_added} candles, "
        f"{elapsed:.2f} s"
    )
    return elapsed


async def rest_share(
    pg_url: str, sim: str, market: str, symbols: list[str], interval: str, span: tuple[int, int]
) -> float:
    """Backfill for two whole governor windows; stored candles / the budget's ceiling.

    The simulator's clock stands just after the replicated series' last candle, as a
    listed pair's history reaches "now" on the exchange: every request of the span then
    has a full page to return (with the clock at today's date, 40 % of the requests asked
    for the months after the recorded data ends and came back empty)."""
    since, last = span
    iv = parse_interval(interval)
    sim_admin(sim, "clock", {"now_ms": iv.next_open(iv.next_open(last))})
    prefix = "/api/v3" if market == "spot" else "/fapi/v1"
    warm = f"{sim}{prefix}/klines?symbol={symbols[0]}&interval={interval}&limit=1"
    # The simulator encodes a series on its first ask (all aliases share it): not timed.
    await asyncio.to_thread(lambda: urllib.request.urlopen(warm, timeout=60).read())
    rt = runtime_for(pg_url, sim)
    client = rt.exchange_client("binance", market)
    await sync_contracts(rt.sessions, client, {"USDT"})
    await client.calibrate()
    governor = client.rest.governor
    updater = KlineUpdater(rt.sessions, client, rt.clock, concurrency=16)
    now = governor.exchange_now_ms()
    await asyncio.sleep((60_000 - now % 60_000 + 150) / 1000)  # start with a fresh window
    task = asyncio.create_task(updater.update(symbols, iv, since))
    started = time.perf_counter()
    await asyncio.sleep(120.0)
    task.cancel()
    elapsed = time.perf_counter() - started
    with transaction(rt.sessions) as session:
        stored = session.execute(text("SELECT count(*) FROM klines")).scalar_one()
    await client.aclose()
    rt.close()
    share = stored / (CEILING_PER_MIN[market] * elapsed / 60)
    print(
        f"rest {market}: {stored} candles in {elapsed:.1f} s; {governor.stats}; share {share:.3f}"
    )
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="incremental,rest,archive")
    parts = set(parser.parse_args().only.split(","))
    data = shared_data_dir()
    figures: dict[str, float] = {}
    proc, sim = start_sim(data, "--latency-ms", "50", "--replicate-symbols", str(PAIRS))
    try:
        if "incremental" in parts:
            with throwaway_pg_database() as url:
                figures["incremental_500_spot_s"] = round(
                    asyncio.run(incremental(url, sim, data)), 3
                )
        if "rest" in parts:
            # More candles than two windows' budget allows (spot 4.8M, futures 0.96M):
            # 60 x 120k 5m candles spot, 12 x 120k futures.
            spot = [f"SIM{i:04d}USDT" for i in range(1, 61)]
            futures = [f"SIM{i:04d}USDT" for i in range(1, 13)]
            for market, symbols in (("spot", spot), ("futures", futures)):
                with throwaway_pg_database() as url:
                    series = SeriesStore(data).get("binance", market, "BTCUSDT", "5m")
                    span = (int(series.open_time_ms[0]), int(series.open_time_ms[-1]))
                    share = asyncio.run(rest_share(url, sim, market, symbols, "5m", span))
                    figures[f"rest_{market}_share_of_ceiling"] = round(share, 3)
        totals: Any = sim_admin(sim, "stats")
        figures["sim_429"] = totals["totals"]["429"]
        figures["sim_418"] = totals["totals"]["418"]
    finally:
        proc.terminate()
        proc.wait(10)
    if "archive" in parts:
        try:
            from bench.archive_backfill import measure
        except ImportError:
            print("archive: bench/archive_backfill.py is not there yet")
        else:
            with throwaway_pg_database() as url:
                figures |= measure(url, data)
    print_figures(figures)


if __name__ == "__main__":
    main()

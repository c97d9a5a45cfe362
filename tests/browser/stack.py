"""The whole product for a browser: the simulator (clock frozen at ``NOW_MS``), the app
served by uvicorn on a free loopback port from a background thread, and a database
filled the way the offline demo fills it: the recorded Binance series up to "now", their
contracts, a volume-trap scan of them, and mappings (one to review) with market data.

Also used by ``bench/dashboard.py``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.api.app import create_app
from klinewatch.clock import FixedClock
from klinewatch.services.volume_trap import scan
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.app import url_settings
from klinewatch.sim.server import bind
from klinewatch.sim.testing import RunningSim
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.models import CoinMarketData, TokenMapping
from tests.api.conftest import NOW_MS, TOKEN, api_settings
from tests.integration.test_volume_trap_scan import add_contract

HOUR_MS = 3_600_000
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# Recorded series stored before the run; futures BTCUSDT 1d is left for a backfill.
SKIPPED = {("futures", "BTCUSDT", "1d"), ("spot", "BURGERUSDT", "5m")}
# A series stored only up to a few hours before "now": with the exchange down, its
# answer is stale.
BEHIND = ("futures", "ETHUSDT", "1h")
BEHIND_MS = 5 * 3_600_000
REVIEW_CANDIDATES = [
    {"coingecko_id": "pepe", "name": "Pepe", "symbol": "pepe", "volume_24h": 9.1e8,
     "market_cap_rank": 24},
    {"coingecko_id": "pepe-token", "name": "PEPE Token", "symbol": "pepe", "volume_24h": 1.2e4,
     "market_cap_rank": None},
]  # fmt: skip


@dataclass
class Stack:
    url: str
    sim: RunningSim
    app: FastAPI
    sessions: sessionmaker[Session]


def fill_database(database_url: str, sim: RunningSim) -> None:
    """Every recorded Binance series up to ``NOW_MS`` (but ``SKIPPED``), the contracts,
    a volume-trap scan, two mappings and their market data."""
    engine = build_engine(database_url)
    sessions = session_factory(engine)
    store = sim.ctx.store
    try:
        for market in ("spot", "futures"):
            for symbol in store.symbols("binance", market):
                add_contract(sessions, market, symbol)
        with transaction(sessions) as session:
            for market in ("spot", "futures"):
                for symbol in store.symbols("binance", market):
                    for interval in store.intervals("binance", market, symbol):
                        if (market, symbol, interval) in SKIPPED:
                            continue
                        candles = store.get("binance", market, symbol, interval)
                        until = NOW_MS - (BEHIND_MS if (market, symbol, interval) == BEHIND else 0)
                        candles = candles.take(candles.close_time_ms < until)
                        key = SeriesKey("binance", market, symbol, interval)
                        write_candles(session, key, candles)
        for market in ("spot", "futures"):
            for interval in ("1h", "4h", "1d"):
                scan(sessions, "binance", market, interval, clock=FixedClock(NOW_MS))
        with transaction(sessions) as session:
            session.add_all(_mappings())
    finally:
        engine.dispose()


def _mappings() -> list[Any]:
    return [
        TokenMapping(
            exchange="binance", base_asset="OM", coin_symbol="om", coingecko_id="mantra-dao",
            match_status="auto_matched", evidence={"rule": "unique_symbol"},
        ),
        TokenMapping(
            exchange="binance", base_asset="PEPE", coin_symbol="pepe", coingecko_id="pepe-token",
            match_status="needs_review", evidence={"rule": "needs_review", "candidates": 2},
            alternatives=REVIEW_CANDIDATES,
        ),
        CoinMarketData(
            coingecko_id="mantra-dao", symbol="om", market_cap=2.5e8,
            fully_diluted_valuation=4.0e8, market_cap_rank=120,
        ),
    ]  # fmt: skip


@contextlib.contextmanager
def running_stack(sim: RunningSim, database_url: str, **settings: Any) -> Iterator[Stack]:
    """The app on ``database_url`` pointed at ``sim``, served until the block ends."""
    config = api_settings(database_url, None, **settings)
    urls = {k.removeprefix("KLINEWATCH_").lower(): v for k, v in url_settings(sim.url).items()}
    config = config.model_copy(update=urls)
    app = create_app(config, clock=sim.ctx.clock)
    sock = bind()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="app-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()[:2]
    try:
        yield Stack(f"http://{host}:{port}", sim, app, app.state.ctx.runtime.sessions)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "HOUR_MS",
    "NOW_MS",
    "TOKEN",
    "Stack",
    "fill_database",
    "running_stack",
]

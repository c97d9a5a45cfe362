"""The whole product for a browser: the simulator (clock frozen at ``NOW_MS``), the app
served by uvicorn on a free loopback port from a background thread, and a database
filled the way the product fills it: the contracts synced from the simulator's
exchangeInfo, the recorded Binance series up to "now", a volume-trap scan of them, and the
mappings and market data generated from the simulator's CoinGecko (its recorded
snapshots: the coins list of 2024-01, the top 250 coins of 2022-08), so the coins those
recordings cover get their real figures and the others none (the pages show ``--``).

Also used by ``bench/dashboard.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.api.app import create_app
from klinewatch.api.settings import ApiSettings
from klinewatch.clock import FixedClock
from klinewatch.services.contracts import sync_contracts
from klinewatch.services.mapping import generate_mappings
from klinewatch.services.market_cap import update_all
from klinewatch.services.volume_trap import scan
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.app import url_settings
from klinewatch.sim.server import bind
from klinewatch.sim.testing import RunningSim
from klinewatch.storage.engine import transaction
from klinewatch.wiring import Runtime, build_runtime
from tests.api.conftest import NOW_MS, TOKEN, api_settings

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


@dataclass
class Stack:
    url: str
    sim: RunningSim
    app: FastAPI
    sessions: sessionmaker[Session]


def fill_database(database_url: str, sim: RunningSim) -> None:
    """The contracts, mappings and market data as the product makes them, every recorded
    Binance series up to ``NOW_MS`` (but ``SKIPPED``) and a volume-trap scan."""
    settings = stack_settings(database_url, sim, coingecko_api_key="k", coingecko_batch_pause_s=0)
    runtime = build_runtime(settings)
    sessions, store = runtime.sessions, sim.ctx.store
    try:
        # Playwright's sync API keeps an event loop running in this thread: use another.
        with ThreadPoolExecutor(1) as apart:
            apart.submit(lambda: asyncio.run(_contracts_and_market_data(runtime))).result()
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
    finally:
        runtime.close()


async def _contracts_and_market_data(runtime: Runtime) -> None:
    """``fetch-spot-contracts``, ``fetch-futures-contracts``, ``generate-mappings`` and
    ``update-market-data`` against the simulator. Symbols several coins share and no
    rule settles (PEPE, HYPE, ...) stay ``needs_review``, as they would for a person."""
    for market in ("spot", "futures"):
        client = runtime.binance_client(market)
        try:
            await sync_contracts(runtime.sessions, client, set(runtime.settings.quote_assets))
        finally:
            await client.aclose()
    coingecko = runtime.coingecko_client()
    try:
        await generate_mappings(runtime.sessions, coingecko)
        result = await update_all(runtime.sessions, coingecko)
    finally:
        await coingecko.aclose()
    if result.succeeded == 0 or result.failed_batches or result.stopped:
        raise RuntimeError(f"the market data update failed: {result}")


def stack_settings(database_url: str, sim: RunningSim, **settings: Any) -> ApiSettings:
    """The app's settings on ``database_url`` with every exchange URL pointed at ``sim``."""
    config = api_settings(database_url, None, **settings)
    urls = {k.removeprefix("KLINEWATCH_").lower(): v for k, v in url_settings(sim.url).items()}
    return config.model_copy(update=urls)


@contextlib.contextmanager
def running_stack(sim: RunningSim, database_url: str, **settings: Any) -> Iterator[Stack]:
    """The app on ``database_url`` pointed at ``sim``, served until the block ends."""
    app = create_app(stack_settings(database_url, sim, **settings), clock=sim.ctx.clock)
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
    "stack_settings",
]

"""The API against the simulator over real HTTP, on two real stacks: SQLite with the
in-process cache, and PostgreSQL with Redis (behind a TCP proxy a test can stop).

The simulator's clock stands still at ``NOW_MS`` and is the app's clock, so "the newest
closed candle" is known; the exchange governors still pace in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from klinewatch.api.app import AppContext, ClientsFor, LifespanHook, create_app
from klinewatch.api.settings import ApiSettings
from klinewatch.domain.candles import Candles
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.app import url_settings
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from tests.fixtures.redis_proxy import RedisProxy

REDIS_URL = os.environ.get("KLINEWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
NOW_MS = 1_748_781_030_500  # 2025-06-01T12:30:30.5Z: mid-candle for every interval
HOUR_MS = 3_600_000
TOKEN = "test-token-0123456789"
SECRET_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def sim_session() -> Iterator[RunningSim]:
    with running_sim() as sim:
        sim.ctx.store.get("binance", "spot", "BTCUSDT", "1h")  # parse once, up front
        yield sim


@pytest.fixture
def sim(sim_session: RunningSim) -> RunningSim:
    sim_session.reset(now_ms=NOW_MS)
    return sim_session


class ThreadedRedisProxy:
    """The Redis proxy on its own event loop thread, for synchronous tests."""

    def __init__(self) -> None:
        self.proxy = RedisProxy()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.proxy.port

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self._run(self.proxy.start())

    def stop(self) -> None:
        self._run(self.proxy.stop())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
            self._run(self._cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    async def _cancel_rest(self) -> None:
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)


@dataclass
class Api:
    """A running app (TestClient), its context, and the simulator behind it."""

    client: TestClient
    ctx: AppContext
    sim: RunningSim
    redis: ThreadedRedisProxy | None

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params={k: v for k, v in params.items() if v is not None})

    def klines(self, **params: Any) -> httpx.Response:
        return self.get("/api/v1/market/klines", **params)

    def indicators(self, **params: Any) -> httpx.Response:
        return self.get("/api/v1/market/indicators", **params)

    def put_config(self, body: Any, token: str | None = TOKEN) -> httpx.Response:
        headers = {"X-API-Token": token} if token is not None else {}
        return self.client.put("/api/v1/system/config", json=body, headers=headers)

    def run(self, coro_fn: Any, *args: Any) -> Any:
        """Run a coroutine function of the app's services on the app's event loop."""
        assert self.client.portal is not None
        return self.client.portal.call(coro_fn, *args)

    def seed(self, symbol: str, interval: str, until_ms: int, market: str = "spot") -> Candles:
        """Store the simulator's real series: the candles closed before ``until_ms``."""
        series = self.sim.ctx.store.get("binance", market, symbol, interval)
        candles = series.take(series.close_time_ms < until_ms)
        with transaction(self.ctx.runtime.sessions) as session:
            write_candles(session, SeriesKey("binance", market, symbol, interval), candles)
        return candles


def api_settings(database_url: str, redis_port: int | None, **extra: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": f"redis://127.0.0.1:{redis_port}/0" if redis_port else None,
        "cache_prefix": f"kwtest:{uuid.uuid4().hex}:",
        "http_timeout_s": 5.0,
        "api_rate_limit_per_min": 1_000_000,
        "near_cache_ttl_s": 0,  # tests see Redis itself; near_cache.py has its own test
        "api_tokens": [TOKEN],
        "secret_key": SECRET_KEY,
    }
    values.update(extra)
    return ApiSettings(**values)


@contextlib.contextmanager
def running_api(
    sim: RunningSim,
    database_url: str,
    *,
    exchange_factory: ClientsFor | None = None,
    hooks: tuple[LifespanHook, ...] = (),
    background: bool = False,
    **settings: Any,
) -> Iterator[Api]:
    """The app on ``database_url``: Redis (through a proxy) with PostgreSQL, the
    in-process cache with SQLite."""
    redis = ThreadedRedisProxy() if database_url.startswith("postgresql") else None
    if redis is not None:
        redis.start()
    try:
        config = api_settings(database_url, redis.port if redis else None, **settings)
        urls = {k.removeprefix("KLINEWATCH_").lower(): v for k, v in url_settings(sim.url).items()}
        config = config.model_copy(update={k: v for k, v in urls.items() if k not in settings})
        app = create_app(
            config,
            clock=sim.ctx.clock,
            exchange_factory=exchange_factory,
            lifespan_hooks=hooks,
            background=background,
        )
        with TestClient(app) as client:
            api = Api(client, app.state.ctx, sim, redis)
            try:
                yield api
            finally:
                if redis is not None:
                    redis.start()  # a test may have stopped it
                    api.run(api.ctx.cache.delete_prefix, "")
    finally:
        if redis is not None:
            redis.close()


@pytest.fixture
def api(sim: RunningSim, database_url: str) -> Iterator[Api]:
    with running_api(sim, database_url) as running:
        yield running

"""The price refresh of ``klinewatch scheduler`` (issue 8 point 2), against the simulator
over real HTTP: one round stores fresh prices of the tracked symbols where an API in
another process reads them, on SQLite with the in-process cache (the ``cached_prices``
table is what is shared) and on PostgreSQL with Redis (the cache keys too).

The simulator's clock stands still and is the runtime's clock, so "fresh" is exact; the
refresh's sleep is the test's, so the block ends after exactly one round.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from klinewatch.cache.memory import MemoryCache
from klinewatch.cache.port import Cache
from klinewatch.cache.redis_cache import RedisCache
from klinewatch.domain.prices import PricePoint
from klinewatch.errors import ConfigurationError
from klinewatch.scheduler.prices import build_price_service, price_refresh
from klinewatch.services.price_cache import decode, key_name
from klinewatch.settings import Settings
from klinewatch.sim.app import url_settings
from klinewatch.sim.faults import Fault
from klinewatch.sim.testing import RunningSim
from klinewatch.sim.venues.debank import DeBank
from klinewatch.storage.engine import transaction
from klinewatch.storage.prices import CachedPriceRepository, PriceKey
from klinewatch.wiring import Runtime, build_runtime
from tests.api.conftest import NOW_MS, REDIS_URL

KEY = "sim-key"
TRACKED = ("BTC", "ETH")


@pytest.fixture
def sim(sim_server: RunningSim) -> RunningSim:
    sim_server.reset(now_ms=NOW_MS)  # a clock that stands still: every age is exact
    return sim_server


@pytest.fixture
def runtime(sim: RunningSim, database_url: str) -> Iterator[Runtime]:
    """The scheduler's runtime: Redis (a private prefix) with PostgreSQL, none with SQLite."""
    urls = {k.removeprefix("KLINEWATCH_").lower(): v for k, v in url_settings(sim.url).items()}
    redis = database_url.startswith("postgresql")
    settings = Settings(
        database_url=database_url,
        redis_url=REDIS_URL if redis else None,
        cache_prefix=f"kwtest:{uuid.uuid4().hex}:",
        price_source_api_key=KEY,
        coingecko_api_key=KEY,
        price_symbols=",".join(TRACKED),
        price_timeout_s=10,
        **urls,
    )
    built = build_runtime(settings, clock=sim.ctx.clock)
    yield built
    built.close()


def debank_price(sim: RunningSim, symbol: str) -> Decimal:
    quote = DeBank(sim.ctx).quote(f"{symbol}USDT", sim.ctx.clock.now_ms())
    assert quote is not None
    return Decimal(str(quote.price))


async def one_round(runtime: Runtime) -> None:
    """Enter ``price_refresh`` as ``klinewatch scheduler`` does; leave after its first round."""
    rounds: list[float] = []
    done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        rounds.append(seconds)
        done.set()
        await asyncio.Event().wait()  # no second round: the block ends first

    async with price_refresh(runtime, sleep=sleep):
        await asyncio.wait_for(done.wait(), timeout=60)
    assert rounds == [runtime.settings.price_refresh_s]


def stored_prices(runtime: Runtime) -> dict[PriceKey, PricePoint]:
    """The ``cached_prices`` table (read as the service reads it: exact on SQLite too)."""
    with transaction(runtime.sessions) as session:
        return CachedPriceRepository(session).read([(s, None) for s in TRACKED])


async def shared_point(runtime: Runtime, symbol: str) -> PricePoint | None:
    settings = runtime.settings
    if not settings.redis_url:
        return None
    redis = RedisCache.from_url(settings.redis_url, prefix=settings.cache_prefix)
    try:
        return decode(await redis.get(key_name((symbol, None))))
    finally:
        await redis.close()


async def test_the_standalone_refresh_stores_fresh_prices_the_api_then_serves(
    runtime: Runtime, sim: RunningSim
) -> None:
    assert stored_prices(runtime) == {}
    await one_round(runtime)

    expected = {symbol: debank_price(sim, symbol) for symbol in TRACKED}
    points = {symbol: PricePoint(price, "debank", NOW_MS) for symbol, price in expected.items()}
    assert stored_prices(runtime) == {(symbol, None): p for symbol, p in points.items()}
    if runtime.settings.redis_url:  # the very key the API reads
        for symbol, point in points.items():
            assert await shared_point(runtime, symbol) == point

    # Another process, the API, with its own cache (Redis shared, else an empty memory
    # cache): with every source down it still answers fresh, from what the round stored.
    for source in ("debank", "coingecko"):
        sim.ctx.faults.add(Fault.from_mapping({"kind": "down", "exchange": source}))
    api_cache: Cache = (
        RedisCache.from_url(REDIS_URL, prefix=runtime.settings.cache_prefix)
        if runtime.settings.redis_url
        else MemoryCache(clock=sim.ctx.clock)
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(api_cache.close)
        api = build_price_service(runtime, api_cache, sim.ctx.clock, stack)
        answers = await api.get_prices(list(TRACKED))
    assert {a.symbol: (a.quote and a.quote.price) for a in answers} == expected
    assert {(a.quote.source, a.quote.origin, a.quote.is_stale) for a in answers if a.quote} == {
        ("cache", "debank", False)
    }


async def test_a_fresh_limit_over_the_stale_limit_is_refused_by_its_variable(
    runtime: Runtime,
) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={"price_fresh_s": 600.0, "price_max_stale_s": 300.0}
    )
    with pytest.raises(ConfigurationError, match="KLINEWATCH_PRICE_FRESH_S"):
        async with price_refresh(runtime):
            pass


async def test_klinewatch_scheduler_refreshes_prices_beside_its_jobs(runtime: Runtime) -> None:
    """``klinewatch scheduler`` in the foreground (no candle jobs), stopped by SIGINT as
    Ctrl-C stops it, once its first price round is stored."""
    from klinewatch.cli.scheduler import _foreground, config_of
    from klinewatch.services.system_config import SystemConfigService

    config = SystemConfigService(runtime.sessions, None)
    await config.load()
    running = asyncio.create_task(_foreground(runtime, [], config_of(config, refresh=True)))

    async def first_round() -> None:  # nothing signals the row: look, or see it fail
        while not stored_prices(runtime) and not running.done():
            await asyncio.wait({running}, timeout=0.05)

    await asyncio.wait_for(first_round(), timeout=60)
    if not running.done():  # else its error is raised below, not a KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(running, timeout=60)
    assert set(stored_prices(runtime)) == {(symbol, None) for symbol in TRACKED}

"""``create_app(settings)``: the composition root of the HTTP API.

Everything is built in the lifespan, never at import time: the runtime (database,
governors, clock), the cache (Redis when ``KLINEWATCH_REDIS_URL`` is set, with a
one-second copy of hot values in each worker, ``near_cache.py``; else in process), the
config, the exchange clients, failover, the market-data services. Then the background
work starts (health checks, config polling, cache warm-up) and the ``lifespan_hooks``
run, each an async context manager given the ``AppContext``: that is how ``klinewatch
serve`` can run the scheduler inside the app, e.g.::

    @asynccontextmanager
    async def scheduler(ctx: AppContext) -> AsyncIterator[None]:
        sched = build_scheduler(ctx.runtime)  # the serve command's own
        sched.on_update(ctx.live.publish_update)  # live push + cache invalidation
        await sched.start()
        yield
        await sched.stop()

    create_app(settings, lifespan_hooks=[scheduler])

``create_app_from_env`` is the factory for several worker processes:
``uvicorn --factory klinewatch.api.app:create_app_from_env --workers 2``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from klinewatch import __version__
from klinewatch.api import errors
from klinewatch.api.fast_path import CachedKlines
from klinewatch.api.metrics import Telemetry
from klinewatch.api.middleware import ApiMiddleware, TokenBuckets
from klinewatch.api.near_cache import NearCache
from klinewatch.api.routers import (
    dashboard,
    health,
    live,
    mappings,
    market,
    prices,
    system,
    volume_trap,
)
from klinewatch.api.settings import ApiSettings, api_settings
from klinewatch.cache.memory import MemoryCache
from klinewatch.cache.port import Cache
from klinewatch.cache.redis_cache import RedisCache
from klinewatch.clock import Clock, SystemClock
from klinewatch.domain.intervals import INTERVALS
from klinewatch.logs import configure_logging, get_logger
from klinewatch.services.failover import (
    ExchangeClients,
    ExchangeFactory,
    ExchangeGate,
    FailoverManager,
    RateLimitMarks,
)
from klinewatch.services.indicator_service import IndicatorService
from klinewatch.services.live import LiveHub, TickerService
from klinewatch.services.market_data import MarketDataService
from klinewatch.services.system_config import SystemConfigService
from klinewatch.settings import Settings
from klinewatch.storage.engine import build_engine, session_factory
from klinewatch.web import pages
from klinewatch.wiring import Runtime, build_cache

log = get_logger(__name__)
WARMUP_TIMEFRAME = "1h"  # seed 001 section 7.1
EXCHANGES = ("binance", "okx", "bybit", "bitget")
MB = 1024 * 1024


@dataclass
class AppContext:
    """What the app built; handed to lifespan hooks and read by the routes."""

    settings: ApiSettings
    runtime: Runtime
    cache: Cache
    config: SystemConfigService
    clients: ExchangeClients
    failover: FailoverManager
    marks: RateLimitMarks
    market: MarketDataService
    indicators: IndicatorService
    tickers: TickerService
    live: LiveHub
    telemetry: Telemetry
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)


LifespanHook = Callable[[AppContext], AbstractAsyncContextManager[None]]
ClientsFor = Callable[[Runtime], ExchangeFactory]


def create_app(
    settings: Settings,
    *,
    lifespan_hooks: Sequence[LifespanHook] = (),
    clock: Clock | None = None,
    exchange_factory: ClientsFor | None = None,
    background: bool = True,
) -> FastAPI:
    """The application. ``clock`` (default the system's) is the time the services take
    for "now" (which candle is the newest closed one, TTLs, rate-limit marks);
    ``exchange_factory(runtime)`` builds exchange clients (default
    ``Runtime.exchange_client``); ``background=False`` leaves health checks, config
    polling and warm-up to the caller (tests drive them)."""
    config = api_settings(settings)
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            ctx = await _build(config, telemetry, clock or SystemClock(), exchange_factory)
            stack.push_async_callback(_close, ctx)
            app.state.ctx = ctx
            app.state.settings = config
            app.state.engine = ctx.runtime.engine
            app.state.sessions = ctx.runtime.sessions
            mappings.install(app, stack, ctx.runtime)
            prices.install(app, stack, ctx, background=background)
            if background:
                _start_background(ctx)
            for hook in lifespan_hooks:
                await stack.enter_async_context(hook(ctx))
            # What startup built (CCXT's tables, models) leaves the collector's scans: a
            # full collection over it paused a worker for 100-300 ms under load.
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()

    app = FastAPI(
        title="klinewatch",
        version=__version__,
        description="Crypto market data: candles, indicators, volume-trap monitor, prices. "
        'Every answer is an envelope: {"success": true, "data": ...} or '
        '{"success": false, "error": {"code", "message", "details"}}.',
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(CachedKlines)  # inside the rate limit and the metrics
    app.add_middleware(
        ApiMiddleware, buckets=TokenBuckets(config.api_rate_limit_per_min), telemetry=telemetry
    )
    for router in (health.router, market.router, system.router, live.router, volume_trap.router):
        app.include_router(router)
    app.include_router(dashboard.router)
    app.include_router(mappings.router)
    app.include_router(prices.router)
    app.include_router(pages.build_router())  # the web dashboard at / (klinewatch.web)
    _without_422(app)
    return app


def create_app_from_env() -> FastAPI:
    """``uvicorn --factory`` entry point: settings from ``KLINEWATCH_*`` and ``.env``."""
    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


async def _build(
    settings: ApiSettings, telemetry: Telemetry, clock: Clock, factory: ClientsFor | None
) -> AppContext:
    engine = await asyncio.to_thread(build_engine, settings.database_url)
    # The governors pace requests in real time; ``clock`` is what the services take
    # "now" to be (the exchange's time: a test's simulator clock may stand still).
    runtime = Runtime(settings, engine, session_factory(engine), SystemClock())
    config = SystemConfigService(
        runtime.sessions,
        settings.secret_key,
        {
            "coingecko_api_key": settings.coingecko_api_key,
            "price_source_api_key": settings.price_source_api_key,
            **{f"{e}_proxy": getattr(settings, f"{e}_proxy") for e in EXCHANGES},
        },
    )
    try:
        await config.load()
    except BaseException:
        engine.dispose()
        raise
    cache = _cache(settings, clock, config.market_data.cache_config.max_size_mb)
    clients = ExchangeClients((factory or _default_factory)(runtime))
    failover = FailoverManager(
        clients,
        lambda: config.market_data,
        clock,
        on_health=telemetry.health,
        on_switch=telemetry.switched,
    )
    config.on_change(lambda _: _ignore(failover.decide()))
    for exchange in config.market_data.enabled_exchanges:
        telemetry.health(exchange, True)
    marks = RateLimitMarks(cache, clock)
    gate = ExchangeGate(
        failover,
        marks,
        lambda: config.market_data,
        clock,
        rate_limit_events=lambda exchange: _rate_limit_events(runtime, exchange),
        timeout_s=settings.http_timeout_s,
    )
    market_data = MarketDataService(
        sessions=runtime.sessions,
        cache=cache,
        clients=clients,
        failover=failover,
        gate=gate,
        config=lambda: config.market_data,
        clock=clock,
        telemetry=telemetry,
    )
    telemetry.governors = lambda: runtime.governors
    fallback = MemoryCache(clock=clock) if settings.redis_url else None
    hub = LiveHub(cache, fallback, runtime.sessions)
    market_data.on_cached = hub.watch
    return AppContext(
        settings=settings,
        runtime=runtime,
        cache=cache,
        config=config,
        clients=clients,
        failover=failover,
        marks=marks,
        market=market_data,
        indicators=IndicatorService(market_data, runtime.sessions),
        tickers=TickerService(market_data),
        live=hub,
        telemetry=telemetry,
    )


def _ignore(_: object) -> None:
    return None


def _cache(settings: ApiSettings, clock: Clock, max_size_mb: int) -> Cache:
    cache = build_cache(settings, clock, max_bytes=max_size_mb * MB)
    if isinstance(cache, RedisCache) and settings.near_cache_ttl_s > 0:
        return NearCache(cache, settings.near_cache_ttl_s)
    return cache


def _default_factory(runtime: Runtime) -> ExchangeFactory:
    return runtime.exchange_client


def _rate_limit_events(runtime: Runtime, exchange: str) -> int:
    """429s and 418s the governors of ``exchange`` have seen (keys are
    ``binance-spot@host`` or ``okx@host``)."""
    return sum(
        g.stats.rate_limited + g.stats.banned
        for key, g in list(runtime.governors.items())
        if key.split("@", 1)[0].split("-", 1)[0] == exchange
    )


def _start_background(ctx: AppContext) -> None:
    def start(name: str, work: Coroutine[Any, Any, Any]) -> None:
        ctx.tasks[name] = asyncio.create_task(work, name=f"klinewatch-{name}")

    start("health_checks", ctx.failover.run())
    start("config_poll", _poll_config(ctx))
    start("warm_up", ctx.market.warm_up(INTERVALS[WARMUP_TIMEFRAME]))


async def _poll_config(ctx: AppContext) -> None:
    """Pick up config changes made through another worker."""
    while True:
        await asyncio.sleep(ctx.settings.config_poll_s)
        try:
            await ctx.config.refresh()
        except Exception:  # the database may be away for a moment; keep the last config
            log.exception("config_poll_failed")


async def _close(ctx: AppContext) -> None:
    for task in ctx.tasks.values():
        task.cancel()
    for task in ctx.tasks.values():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await ctx.clients.aclose()
    await ctx.cache.close()
    ctx.runtime.close()


def _without_422(app: FastAPI) -> None:
    """Validation errors answer 400 (the envelope), so drop FastAPI's 422 entries."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
        return app.openapi_schema or original()

    app.openapi = openapi  # type: ignore[method-assign]

"""The price service as every process builds it, and its background refresh (issue 8
point 2): every ``KLINEWATCH_PRICE_REFRESH_S`` (60 s) the tracked symbols
(``KLINEWATCH_PRICE_SYMBOLS``, plus those asked for in the last hour in that process)
are asked of the sources again, whatever the cache holds.

The app builds its service here and refreshes it in the background; ``klinewatch
scheduler`` runs ``price_refresh`` next to the market-cap refresh, so prices stay warm
without the app. Its new prices go to the shared cache (Redis when
``KLINEWATCH_REDIS_URL`` is set, the very keys the API reads) and to the
``cached_prices`` table, which an API without Redis reads when its own cache misses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from klinewatch.cache.port import Cache
from klinewatch.clock import Clock
from klinewatch.domain.prices import PricePolicy
from klinewatch.errors import ConfigurationError
from klinewatch.exchanges.price_sources import build_price_source
from klinewatch.services.live import cancel_all
from klinewatch.services.price_chain import OwnMarkets
from klinewatch.services.prices import PriceOptions, PriceService
from klinewatch.settings import Settings
from klinewatch.wiring import Runtime, build_cache

Sleep = Callable[[float], Awaitable[None]]


def price_options(settings: Settings) -> PriceOptions:
    """The service's knobs from settings; ``ConfigurationError`` when the fresh limit
    exceeds the stale one (a stale price would then be younger than a fresh one)."""
    if settings.price_fresh_s > settings.price_max_stale_s:
        raise ConfigurationError(
            "KLINEWATCH_PRICE_FRESH_S must not exceed KLINEWATCH_PRICE_MAX_STALE_S",
            field="price_fresh_s",
        )
    return PriceOptions(
        policy=PricePolicy(
            int(settings.price_fresh_s * 1000), int(settings.price_max_stale_s * 1000)
        ),
        timeout_s=settings.price_timeout_s,
        refresh_s=settings.price_refresh_s,
        tracked=tuple(s.strip().upper() for s in settings.price_symbols if s.strip()),
        own=OwnMarkets(exchange="binance"),
    )


def build_price_service(
    runtime: Runtime, cache: Cache, clock: Clock, stack: AsyncExitStack
) -> PriceService:
    """The price service on ``runtime``'s database and ``cache``, taking ``clock`` for
    "now"; its sources' HTTP clients close with ``stack``. CoinGecko's client shares
    the process's one pacer (``Runtime.coingecko_client``)."""
    settings = runtime.settings
    options = price_options(settings)
    key = settings.price_source_api_key
    primary = build_price_source(
        settings.price_source_url,
        key.get_secret_value() if key else None,
        timeout_s=settings.price_timeout_s,
    )
    stack.push_async_callback(primary.aclose)
    coingecko = runtime.coingecko_client()
    stack.push_async_callback(coingecko.aclose)
    return PriceService(
        sessions=runtime.sessions,
        cache=cache,
        clock=clock,
        primary=primary,
        coingecko=coingecko,
        options=options,
    )


def start_refresh(
    service: PriceService, stack: AsyncExitStack, sleep: Sleep = asyncio.sleep
) -> asyncio.Task[None]:
    """Refresh ``service``'s tracked symbols until ``stack`` closes (the task is cancelled
    before the clients registered earlier on the stack close)."""
    task = asyncio.create_task(service.run_refresh(sleep), name="klinewatch-price-refresh")
    stack.push_async_callback(cancel_all, [task])
    return task


@asynccontextmanager
async def price_refresh(
    runtime: Runtime, cache: Cache | None = None, sleep: Sleep = asyncio.sleep
) -> AsyncIterator[PriceService]:
    """Refresh prices in the background until the block ends, on ``cache`` or else on one
    of its own (``build_cache``: Redis when ``redis_url`` is set, else in process), which
    closes with the block, as do the sources' clients. The first round starts at once."""
    async with AsyncExitStack() as stack:
        if cache is None:
            cache = build_cache(runtime.settings, runtime.clock)
            stack.push_async_callback(cache.close)
        service = build_price_service(runtime, cache, runtime.clock, stack)
        start_refresh(service, stack, sleep)
        yield service

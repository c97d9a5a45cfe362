"""When market cap / FDV are refreshed: every ``KLINEWATCH_MARKET_DATA_REFRESH_S``
(an hour by default), next to the kline scheduler in ``klinewatch scheduler`` and
``klinewatch serve``.

Each round first maps any active base asset that has no mapping yet (a new listing),
then updates the figures of every ready mapping. A round that fails is logged and the
next one comes at its time; a rejected CoinGecko key is logged as an error naming the
setting to fix. Time is injected (``sleep``) so tests need not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from klinewatch.errors import ConfigurationError, KlinewatchError
from klinewatch.exchanges.coingecko import CoingeckoClient
from klinewatch.logs import get_logger
from klinewatch.services.mapping import generate_mappings, unmapped_assets
from klinewatch.services.market_cap import MarketUpdateResult, update_all
from klinewatch.wiring import Runtime

log = get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]
FIRST_DELAY_S = 60.0  # let the contract syncs that start with the scheduler go first


@dataclass
class MarketCapRefresher:
    runtime: Runtime
    client: CoingeckoClient
    period_s: float
    sleep: Sleep = asyncio.sleep
    rounds: int = 0

    async def refresh_once(self) -> MarketUpdateResult | None:
        """One round; ``None`` when it failed (already logged)."""
        sessions = self.runtime.sessions
        self.rounds += 1
        try:
            if await asyncio.to_thread(unmapped_assets, sessions):
                await generate_mappings(sessions, self.client)
            return await update_all(sessions, self.client)
        except ConfigurationError as e:
            log.error("market_cap_refresh_stopped", error=e.message)
        except KlinewatchError as e:
            log.warning("market_cap_refresh_failed", error=e.message)
        return None

    async def run(self, first_delay_s: float = FIRST_DELAY_S) -> None:
        await self.sleep(first_delay_s)
        while True:
            await self.refresh_once()
            await self.sleep(self.period_s)


@asynccontextmanager
async def market_cap_refresh(
    runtime: Runtime, first_delay_s: float = FIRST_DELAY_S
) -> AsyncIterator[MarketCapRefresher]:
    """Refresh in the background until the block ends; the client closes with it."""
    client = runtime.coingecko_client()
    refresher = MarketCapRefresher(runtime, client, runtime.settings.market_data_refresh_s)
    task = asyncio.create_task(refresher.run(first_delay_s), name="klinewatch-market-cap")
    try:
        yield refresher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()

"""The scheduler's market-cap refresh: each round maps new listings, then updates the
figures; a failing round is logged and the loop goes on (time injected)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from klinewatch.exchanges.coingecko import coingecko_client_from_settings
from klinewatch.scheduler.market_cap import MarketCapRefresher, market_cap_refresh
from klinewatch.settings import Settings
from klinewatch.sim.app import url_settings
from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage import migrate
from klinewatch.storage.engine import transaction
from klinewatch.storage.models import UpdateLog
from klinewatch.wiring import Runtime, build_runtime
from tests.integration.test_market_cap_service import _sync_contracts


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with running_sim() as running:
        yield running


@pytest.fixture
def runtime(sim: RunningSim, tmp_path: Path) -> Iterator[Runtime]:
    sim.reset()
    urls = {k.removeprefix("KLINEWATCH_").lower(): v for k, v in url_settings(sim.url).items()}
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'kw.sqlite3'}",
        coingecko_api_key="demo-key",
        coingecko_batch_pause_s=0,
        market_data_refresh_s=1800,
        **urls,
    )
    migrate.upgrade(settings.database_url)
    rt = build_runtime(settings)
    asyncio.run(_sync_contracts(rt.sessions, sim.url))
    yield rt
    rt.close()


def kinds(runtime: Runtime) -> list[str]:
    with transaction(runtime.sessions) as session:
        return [log.kind for log in session.scalars(select(UpdateLog).order_by(UpdateLog.id))]


def test_rounds_map_new_listings_once_then_only_update(runtime: Runtime) -> None:
    async def two_rounds() -> list[int | None]:
        client = coingecko_client_from_settings(runtime.settings)
        refresher = MarketCapRefresher(runtime, client, period_s=1800)
        try:
            results = [await refresher.refresh_once(), await refresher.refresh_once()]
        finally:
            await client.aclose()
        return [None if r is None else r.succeeded for r in results]

    first, second = asyncio.run(two_rounds())
    assert first is not None and first > 0 and first == second
    assert kinds(runtime) == ["mapping_update", "market_data", "market_data"]


def test_a_rejected_key_is_logged_and_the_loop_goes_on(runtime: Runtime, sim: RunningSim) -> None:
    sim.reset(options=SimOptions(coingecko_api_key="the-right-key"))
    waits: list[float] = []

    async def loop() -> int:
        client = coingecko_client_from_settings(runtime.settings)
        refresher = MarketCapRefresher(runtime, client, period_s=1800)

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 3:
                raise asyncio.CancelledError

        refresher.sleep = sleep
        try:
            with pytest.raises(asyncio.CancelledError):
                await refresher.run(first_delay_s=60)
        finally:
            await client.aclose()
        return refresher.rounds

    with capture_logs() as events:
        rounds = asyncio.run(loop())
    assert waits == [60, 1800, 1800] and rounds == 2
    stopped = [e for e in events if e["event"] == "market_cap_refresh_stopped"]
    assert len(stopped) == 2 and "KLINEWATCH_COINGECKO_API_KEY" in stopped[0]["error"]


def test_the_refresh_stops_and_closes_its_client_with_its_block(runtime: Runtime) -> None:
    async def block() -> tuple[int, bool]:
        async with market_cap_refresh(runtime, first_delay_s=3600) as refresher:
            await asyncio.sleep(0)
        return refresher.rounds, refresher.client.http.is_closed

    assert asyncio.run(block()) == (0, True)

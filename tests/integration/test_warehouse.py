"""The candle warehouse against the simulator over real HTTP, on both backends: exact
backfills of real series with real outage holes, idempotent reruns, faults, bans."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import missing_ranges
from klinewatch.domain.intervals import HOUR_MS, parse_interval
from klinewatch.errors import InvalidInput
from klinewatch.services.ingestion import UpdateSummary
from klinewatch.services.warehouse_update import UpdateOptions, run_update
from klinewatch.settings import Settings
from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.wiring import Runtime, build_runtime

SINCE_MS = 1_496_275_200_000  # 2017-06-01, before every recorded spot series
SPOT = ["BTCUSDT", "OMUSDT", "KITEUSDT"]


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset()
    return sim_module


@pytest.fixture
def runtime(sim: RunningSim, database_url: str, tmp_path: object) -> Iterator[Runtime]:
    settings = Settings(
        database_url=database_url,
        binance_spot_url=sim.url,
        binance_futures_url=sim.url,
        http_timeout_s=2.0,
    )
    rt = build_runtime(settings)
    yield rt
    rt.close()


def update(
    runtime: Runtime, market: str, interval: str, symbols: list[str], since: int = SINCE_MS
) -> UpdateSummary:
    async def go() -> UpdateSummary:
        client = runtime.exchange_client("binance", market)
        try:
            options = UpdateOptions(
                interval=interval, symbols=symbols, since_parser=lambda now: since
            )
            return await run_update(runtime.sessions, client, runtime.clock, {"USDT"}, options)
        finally:
            await client.aclose()

    return asyncio.run(go())


def stored(
    runtime: Runtime, market: str, symbol: str, interval: str
) -> tuple[Candles, list[tuple[int, int]]]:
    with transaction(runtime.sessions) as session:
        repo = KlineRepository(session)
        sid = repo.find_series("binance", market, symbol, interval)
        assert sid is not None
        return repo.read(sid), LedgerRepository(session).ranges(sid, "empty")


def assert_exact(
    runtime: Runtime, sim: RunningSim, market: str, symbol: str, interval: str
) -> None:
    """The database holds exactly the simulator's candles, and every open time without a
    candle at the source (outages, before listing, after the data ends) is in the ledger."""
    source = sim.ctx.store.get("binance", market, symbol, interval)
    candles, empty = stored(runtime, market, symbol, interval)
    assert len(candles) == len(source)
    assert candles.equals(source), f"{symbol} {interval}: stored candles differ from the source"
    step = parse_interval(interval)
    end = int(source.open_time_ms[-1]) + step.nominal_ms
    uncovered = missing_ranges(step, (SINCE_MS, end), candles.open_time_ms, empty)
    assert uncovered == []


def test_backfill_is_exact_with_real_outage_holes_and_rerun_is_idle(
    runtime: Runtime, sim: RunningSim
) -> None:
    first = update(runtime, "spot", "1h", SPOT)
    assert first.errors == {}
    for symbol in SPOT:
        assert_exact(runtime, sim, "spot", symbol, "1h")
    btc_source = sim.ctx.store.get("binance", "spot", "BTCUSDT", "1h")
    assert int(np.sum(np.diff(btc_source.open_time_ms) != HOUR_MS)) == 27  # the real outages
    assert first.candles_added == sum(
        len(sim.ctx.store.get("binance", "spot", s, "1h")) for s in SPOT
    )
    second = update(runtime, "spot", "1h", SPOT)
    assert second.candles_added == 0
    assert second.requests <= len(SPOT)
    stats = httpx.get(f"{sim.url}/__sim/stats").json()["totals"]
    assert stats["429"] == 0
    assert stats["418"] == 0


def test_futures_backfill_is_exact(runtime: Runtime, sim: RunningSim) -> None:
    summary = update(runtime, "futures", "1h", ["SPACEUSDT", "RIVERUSDT"])
    assert summary.errors == {}
    assert summary.weight == 2 * summary.requests + 0  # 499-candle requests cost 2 each
    for symbol in ("SPACEUSDT", "RIVERUSDT"):
        assert_exact(runtime, sim, "futures", symbol, "1h")


def add_fault(sim: RunningSim, **fields: object) -> None:
    response = httpx.post(f"{sim.url}/__sim/faults", json=fields)
    assert response.status_code in (200, 201), response.text


def test_exact_despite_errors_timeouts_truncation_duplicates_and_disorder(
    runtime: Runtime, sim: RunningSim
) -> None:
    add_fault(sim, kind="500", route="/api/v3/klines", prob=0.05)
    add_fault(sim, kind="503", route="/api/v3/klines", prob=0.02)
    add_fault(sim, kind="timeout", route="/api/v3/klines", prob=0.02, sleep_s=3)
    add_fault(sim, kind="truncate", route="/api/v3/klines", prob=0.02)
    add_fault(sim, kind="reset", route="/api/v3/klines", prob=0.02)
    add_fault(sim, kind="duplicate", route="/api/v3/klines", prob=0.3)
    add_fault(sim, kind="out_of_order", route="/api/v3/klines", prob=0.3)
    summary = update(runtime, "spot", "1h", ["BTCUSDT", "OMUSDT"])
    assert summary.errors == {}
    fired = {f["kind"]: f["fired"] for f in httpx.get(f"{sim.url}/__sim/faults").json()["faults"]}
    assert fired["500"] > 0 and fired["duplicate"] > 0 and fired["out_of_order"] > 0
    for symbol in ("BTCUSDT", "OMUSDT"):
        assert_exact(runtime, sim, "spot", symbol, "1h")


def test_a_recent_window_missing_at_first_is_fetched_when_it_comes_back(
    runtime: Runtime, sim: RunningSim
) -> None:
    source = sim.ctx.store.get("binance", "spot", "OMUSDT", "1h")
    last = int(source.open_time_ms[-1])
    sim.ctx.clock.set(last + 2 * HOUR_MS, speed=0.0)  # the data ends "now"
    hole = (last - 10 * HOUR_MS, last - 4 * HOUR_MS)
    add_fault(
        sim,
        kind="missing",
        route="/api/v3/klines",
        start_ms=hole[0],
        end_ms=hole[1],
        until_ms=last + 3 * HOUR_MS,
    )
    update(runtime, "spot", "1h", ["OMUSDT"])
    candles, empty = stored(runtime, "spot", "OMUSDT", "1h")
    assert len(candles) == len(source) - 6  # the window is missing for now...
    assert not any(a < hole[1] and hole[0] < b for a, b in empty)  # ...and not written off
    sim.ctx.clock.set(last + 4 * HOUR_MS, speed=0.0)  # the exchange has caught up
    again = update(runtime, "spot", "1h", ["OMUSDT"])
    assert again.candles_added == 6
    assert_exact(runtime, sim, "spot", "OMUSDT", "1h")


def test_an_ip_ban_caused_by_another_process_is_waited_out(
    runtime: Runtime, sim: RunningSim
) -> None:
    # A 300-weight budget and scaled time: a 5-minute first ban lasts 6 s.
    sim.reset(options=SimOptions(spot_weight_per_min=300, time_scale=0.02, ban_base_s=300))
    runtime.settings.binance_spot_weight_limit = 300
    runtime.settings.weight_window_s = 60 * 0.02
    params = {"symbol": "OMUSDT", "interval": "1h", "limit": 1}
    now = sim.ctx.clock.now_ms()
    sim.ctx.clock.set(now, speed=0.0)  # one window, however slow this machine is today
    with httpx.Client(base_url=sim.url) as other:  # another process on the same IP
        statuses = [other.get("/api/v3/klines", params=params).status_code for _ in range(200)]
    assert 429 in statuses
    assert 418 in statuses
    sim.ctx.clock.set(now, speed=1.0)
    summary = update(runtime, "spot", "1h", ["OMUSDT"])
    assert summary.errors == {}
    assert sum(g.stats.banned for g in runtime.governors.values()) >= 1  # it met the ban
    assert_exact(runtime, sim, "spot", "OMUSDT", "1h")


def test_unknown_symbol_is_refused_and_nothing_changes(runtime: Runtime, sim: RunningSim) -> None:
    update(runtime, "spot", "1h", ["OMUSDT"])
    before, _ = stored(runtime, "spot", "OMUSDT", "1h")
    with pytest.raises(InvalidInput) as err:
        update(runtime, "spot", "1h", ["OMUSDT", "NOPEUSDT"])
    assert err.value.field == "symbols" and "NOPEUSDT" in err.value.message
    after, _ = stored(runtime, "spot", "OMUSDT", "1h")
    assert after.equals(before)

"""Mappings and market data end to end: the real Binance exchangeInfo and CoinGecko
snapshots served by the simulator over real HTTP, stored on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.errors import InvalidInput, NotFound
from klinewatch.exchanges.coingecko import (
    CoingeckoClient,
    CoingeckoKeyRejected,
    build_coingecko_client,
)
from klinewatch.exchanges.ratelimit import WeightGovernor
from klinewatch.services.contracts import sync_contracts
from klinewatch.services.mapping import (
    CoinListIds,
    confirm_mapping,
    generate_mappings,
    list_mappings,
)
from klinewatch.services.market_cap import market_caps, update_all, update_single
from klinewatch.sim.context import SimOptions
from klinewatch.sim.faults import Fault, FaultKind
from klinewatch.sim.testing import RunningSim
from klinewatch.storage import migrate
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.models import CoinMarketData, TokenMapping, UpdateLog, UpdateLogError

T = TypeVar("T")
Sessions = sessionmaker[Session]
MARKETS = "/coingecko/api/v3/coins/markets"


@pytest.fixture
def sim(sim_server: RunningSim) -> RunningSim:
    return sim_server  # a fresh simulator per test (tests/conftest.py)


@pytest.fixture
def sessions(database_url: str, sim: RunningSim) -> Iterator[Sessions]:
    """A database holding every active USDT contract of the recorded exchangeInfo."""
    engine = build_engine(database_url)
    factory = session_factory(engine)
    asyncio.run(_sync_contracts(factory, sim.url))
    yield factory
    engine.dispose()


async def _sync_contracts(sessions: Sessions, url: str) -> None:
    from klinewatch.clock import SystemClock
    from klinewatch.exchanges.binance.client import build_binance_client

    for market in ("spot", "futures"):
        governor = WeightGovernor(key=f"test-{market}", budget_per_min=2400)
        client = build_binance_client(market, url, governor, SystemClock())
        try:
            await sync_contracts(sessions, client, {"USDT"})
        finally:
            await client.aclose()


def with_client(sim: RunningSim, work: Callable[[CoingeckoClient], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        key = kw.pop("key", "demo-key")
        client = build_coingecko_client(f"{sim.url}/coingecko/api/v3", key, **kw)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def mappings(sessions: Sessions) -> dict[str, TokenMapping]:
    with transaction(sessions) as session:
        return {m.base_asset: m for m in session.scalars(select(TokenMapping))}


def logs(sessions: Sessions, kind: str) -> list[UpdateLog]:
    with transaction(sessions) as session:
        return list(session.scalars(select(UpdateLog).where(UpdateLog.kind == kind)))


def errors(sessions: Sessions) -> dict[str, str]:
    with transaction(sessions) as session:
        return {e.symbol: e.error for e in session.scalars(select(UpdateLogError))}


def test_generate_mappings_with_conflicts(sim: RunningSim, sessions: Sessions) -> None:
    result = with_client(sim, lambda c: generate_mappings(sessions, c))
    stored = mappings(sessions)
    assert result.total == len(stored) > 400  # every spot and futures base asset
    btc = stored["BTC"]  # two coins are "btc": the volume decides
    assert (btc.coingecko_id, btc.match_status) == ("bitcoin", "auto_matched")
    assert btc.evidence["rule"] == "volume_over_2x_runner_up"
    assert {c["coingecko_id"] for c in btc.alternatives} == {"bitcoin", "blackrocktradingcurrency"}
    pepe = stored["PEPE"]  # 13 coins, none with recorded figures: review
    assert (pepe.coingecko_id, pepe.match_status, len(pepe.alternatives)) == (
        None,
        "needs_review",
        13,
    )
    shib = stored["1000SHIB"]
    assert (shib.coingecko_id, shib.coin_symbol, shib.multiplier) == ("shiba-inu", "SHIB", 1000)
    assert all(
        m.alternatives or m.evidence["rule"] == "no_candidate"
        for m in stored.values()
        if m.match_status == "needs_review"
    )
    [log] = logs(sessions, "mapping_update")
    assert (log.status, log.total) == ("completed", result.total)
    assert log.succeeded + log.failed == result.total


def test_a_manual_confirmation_survives_a_new_run(sim: RunningSim, sessions: Sessions) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    record = with_client(
        sim, lambda c: confirm_mapping(sessions, CoinListIds(c), "PEPEUSDT", "pepe")
    )
    assert (record.base_asset, record.status, record.coingecko_id) == (
        "PEPE",
        "manual_confirmed",
        "pepe",
    )
    again = with_client(sim, lambda c: generate_mappings(sessions, c))
    assert again.changes["kept_manual"] == 1
    pepe = mappings(sessions)["PEPE"]
    assert (pepe.match_status, pepe.coingecko_id) == ("manual_confirmed", "pepe")
    assert pepe.evidence["previous_status"] == "needs_review"


def test_confirm_refuses_unknown_symbols_and_ids_and_changes_nothing(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    before = {k: (m.coingecko_id, m.match_status) for k, m in mappings(sessions).items()}
    with pytest.raises(NotFound):
        with_client(sim, lambda c: confirm_mapping(sessions, CoinListIds(c), "NOSUCHCOIN"))
    with pytest.raises(InvalidInput) as caught:
        with_client(
            sim, lambda c: confirm_mapping(sessions, CoinListIds(c), "PEPE", "not-a-real-coin")
        )
    assert caught.value.field == "coingecko_id"
    with pytest.raises(InvalidInput):  # nothing to confirm: the id must be given
        with_client(sim, lambda c: confirm_mapping(sessions, CoinListIds(c), "PEPE"))
    after = {k: (m.coingecko_id, m.match_status) for k, m in mappings(sessions).items()}
    assert after == before


def test_confirm_accepts_an_id_from_the_coin_list_outside_the_candidates(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    record = with_client(
        sim, lambda c: confirm_mapping(sessions, CoinListIds(c), "TOMO", "tomochain")
    )
    assert (record.coingecko_id, record.status) == ("tomochain", "manual_confirmed")


def test_update_all_stores_figures_and_logs_each_missing_id(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    result = with_client(sim, lambda c: update_all(sessions, c))
    assert result.total > 300 and result.succeeded > 100 and result.failed
    assert result.succeeded + len(result.failed) == result.total
    [log] = logs(sessions, "market_data")
    assert (log.total, log.succeeded, log.failed) == (
        result.total,
        result.succeeded,
        len(result.failed),
    )
    assert log.duration_s is not None and log.finished_at is not None
    logged = errors(sessions)
    assert set(logged) == set(result.failed)  # one row per symbol
    # AGIX maps uniquely, but the recorded top-250 markets snapshots do not hold it
    assert logged["AGIX"] == "CoinGecko returned no market data for singularitynet"
    [row] = market_caps(sessions, ["BTCUSDT"], stale_after_s=7200)
    assert row["coingecko_id"] == "bitcoin" and row["market_cap"] > 0 and row["fdv"] > 0
    assert row["is_stale"] is False


def test_update_single_refreshes_one_symbol_and_refuses_one_in_review(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    one = with_client(sim, lambda c: update_single(sessions, c, "ETHUSDT"))
    assert (one.total, one.succeeded, one.coins) == (1, 1, 1)
    with transaction(sessions) as session:
        assert session.scalars(select(CoinMarketData.coingecko_id)).all() == ["ethereum"]
    with pytest.raises(InvalidInput):
        with_client(sim, lambda c: update_single(sessions, c, "PEPE"))


def test_a_batch_failing_after_its_retries_is_logged_and_the_others_go_on(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    sim.ctx.faults.add(Fault(FaultKind.HTTP_503, route=MARKETS, count=4))  # 1 call + 3 retries
    result = with_client(sim, lambda c: update_all(sessions, c), batch_size=100, batch_pause_s=0)
    assert result.batches >= 3 and result.failed_batches == 1
    failed_in_batch = [s for s, why in result.failed.items() if why.startswith("batch failed")]
    assert failed_in_batch and set(failed_in_batch) <= set(errors(sessions))
    assert result.succeeded > 0  # the later batches went on
    statuses = sim.ctx.stats.snapshot()["clients"]["127.0.0.1"][MARKETS]["statuses"]
    assert statuses["503"] == 4


def test_a_rejected_key_stops_the_update_and_the_log_says_why(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    sim.reset(options=SimOptions(coingecko_api_key="the-right-key"))
    with pytest.raises(CoingeckoKeyRejected):
        with_client(sim, lambda c: update_all(sessions, c), key="wrong")
    [log] = logs(sessions, "market_data")
    assert "KLINEWATCH_COINGECKO_API_KEY" in log.details["stopped"]
    assert sim.ctx.stats.snapshot()["totals"]["statuses"] == {"401": 1}  # never retried
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(CoinMarketData)) == 0


def test_a_rejected_key_stops_the_mapping_run_and_changes_nothing(
    sim: RunningSim, sessions: Sessions
) -> None:
    sim.reset(options=SimOptions(coingecko_api_key="the-right-key"))
    with pytest.raises(CoingeckoKeyRejected):
        with_client(sim, lambda c: generate_mappings(sessions, c), key="wrong")
    assert mappings(sessions) == {}
    [log] = logs(sessions, "mapping_update")
    assert log.status == "failed" and "KLINEWATCH_COINGECKO_API_KEY" in log.details["stopped"]


def test_mapping_list_filters_by_status_market_and_symbol(
    sim: RunningSim, sessions: Sessions
) -> None:
    with_client(sim, lambda c: generate_mappings(sessions, c))
    review = list_mappings(sessions, status="needs_review")
    assert review and all(r["status"] == "needs_review" for r in review)
    futures = {r["base_asset"] for r in list_mappings(sessions, market_type="futures")}
    assert "1000PEPE" in futures and "BTC" in futures
    assert [r["base_asset"] for r in list_mappings(sessions, symbol="ETHUSDT")] == ["ETH"]
    with pytest.raises(InvalidInput):
        list_mappings(sessions, status="done")


def test_a_full_update_keeps_under_the_call_limit_and_meets_no_429(
    sim: RunningSim, tmp_path: Path
) -> None:
    """The limit tightened to 6 calls per 1.2 s window (time-scaled) and batches of 25
    ids, so the run needs many windows: the pacer must spread it, the simulator counts."""
    url = f"sqlite:///{tmp_path / 'kw.sqlite3'}"
    migrate.upgrade(url)
    engine = build_engine(url)
    factory = session_factory(engine)
    asyncio.run(_sync_contracts(factory, sim.url))
    sim.reset(options=SimOptions(coingecko_calls_per_min=6, time_scale=0.02))
    limits = {"calls_per_min": 6, "window_s": 1.2, "batch_size": 25, "batch_pause_s": 0}

    async def full(c: CoingeckoClient) -> int:
        await generate_mappings(factory, c)
        result = await update_all(factory, c)
        return result.total

    try:
        total = with_client(sim, full, **limits)
    finally:
        engine.dispose()
    totals = sim.ctx.stats.snapshot()["totals"]
    assert total > 300
    assert totals["requests"] > 4 * 6  # several windows' worth of calls
    assert totals["429"] == 0

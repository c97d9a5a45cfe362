"""The price service against the simulator over real HTTP, on SQLite and PostgreSQL.

The simulator's clock stands still and is the service's clock, so every age is exact:
the tests move it and take sources down (``down`` faults on ``debank`` and
``coingecko``) to walk the fall-through: cache (30 s) -> DeBank -> CoinGecko -> the
exchange's own data -> the stale cache (5 min) -> none. The simulator's DeBank prices
come from the recorded Binance candles, its CoinGecko ones from the 2022 snapshots, so
the two differ and the source of each answer shows in its price too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache import keys
from klinewatch.cache.memory import MemoryCache
from klinewatch.errors import ExchangeRejected, ExchangeUnavailable
from klinewatch.exchanges.coingecko import build_coingecko_client
from klinewatch.exchanges.port import Ticker
from klinewatch.exchanges.price_sources import build_price_source
from klinewatch.services.market_shapes import ticker_record
from klinewatch.services.prices import PriceAnswer, PriceOptions, PriceService
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.context import SimOptions
from klinewatch.sim.faults import Fault
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.sim.venues.debank import DeBank
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.models import Contract, TokenMapping

NOW = 1_748_781_030_500  # 2025-06-01T12:30:30.5Z
HOUR_START = 1_748_779_200_000  # 12:00:00: the 11:00 candle closed then
KEY = "sim-key"
COINGECKO_BTC = Decimal("24601")  # the newest 2022 snapshot before the clock
COINGECKO_SOL = Decimal("46.9")


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset(now_ms=NOW, options=SimOptions(coingecko_calls_per_min=1_000_000))
    return sim_module


@dataclass
class Harness:
    service: PriceService
    sim: RunningSim
    sessions: sessionmaker[Session]
    cache: MemoryCache

    def advance(self, ms: int) -> None:
        self.sim.ctx.clock.advance(ms)

    def down(self, *sources: str) -> None:
        for source in sources:
            self.sim.ctx.faults.add(Fault.from_mapping({"kind": "down", "exchange": source}))

    def up(self) -> None:
        self.sim.ctx.faults.clear()

    def requests(self, route: str) -> int:
        totals = self.sim.ctx.stats.snapshot()["clients"]
        return sum(int(routes.get(route, {}).get("requests", 0)) for routes in totals.values())

    def debank_price(self, pair: str) -> Decimal:
        quote = DeBank(self.sim.ctx).quote(pair, self.sim.ctx.clock.now_ms())
        assert quote is not None
        return Decimal(str(quote.price))

    async def price(self, symbol: str, network: str | None = None) -> PriceAnswer:
        return await self.service.get_price(symbol, network)


LIST_BY_IDS = "/debank/v1/token/list_by_ids"
SIMPLE_PRICE = "/coingecko/api/v3/simple/price"


def build(h_sim: RunningSim, sessions: sessionmaker[Session], **options: object) -> PriceService:
    base = h_sim.url
    primary = build_price_source(f"{base}/debank", KEY, timeout_s=10)
    coingecko = build_coingecko_client(f"{base}/coingecko/api/v3", KEY, calls_per_min=100_000)
    return PriceService(
        sessions=sessions,
        cache=MemoryCache(clock=h_sim.ctx.clock),
        clock=h_sim.ctx.clock,
        primary=primary,
        coingecko=coingecko,
        options=PriceOptions(**{"timeout_s": 10.0, **options}),  # type: ignore[arg-type]
    )


async def close(service: PriceService) -> None:
    for client in (service.sources.primary, service.sources.coingecko):
        await client.aclose()  # type: ignore[union-attr]


@pytest.fixture
async def prices(sim: RunningSim, database_url: str) -> AsyncIterator[Harness]:
    engine = build_engine(database_url)
    sessions = session_factory(engine)
    service = build(sim, sessions)
    assert isinstance(service.cache, MemoryCache)
    try:
        yield Harness(service, sim, sessions, service.cache)
    finally:
        await close(service)
        engine.dispose()


def store_candles(
    sessions: sessionmaker[Session], sim: RunningSim, pair: str, until_ms: int
) -> Decimal:
    """The last few recorded 1h candles of ``pair`` closed before ``until_ms``; the
    newest close."""
    series = sim.ctx.store.get("binance", "spot", pair, "1h")
    index = np.nonzero(series.close_time_ms < until_ms)[0][-5:]
    candles = series.take(index)
    with transaction(sessions) as session:
        write_candles(session, SeriesKey("binance", "spot", pair, "1h"), candles)
    return Decimal(str(float(candles.close[-1])))


# --- each step of the chain -----------------------------------------------------------


async def test_the_primary_source_answers_first_with_age_zero(prices: Harness) -> None:
    answer = await prices.price("BTC")
    assert answer.status == "ok" and answer.quote is not None
    assert answer.quote.source == "debank" and answer.quote.origin == "debank"
    assert answer.quote.price == prices.debank_price("BTCUSDT")
    assert answer.quote.age_ms == 0 and not answer.quote.is_stale


async def test_a_price_is_served_from_the_cache_for_30_seconds_then_asked_again(
    prices: Harness,
) -> None:
    first = await prices.price("ETH")
    asked = prices.requests(LIST_BY_IDS)
    prices.advance(30_000)
    cached = await prices.price("ETH")
    assert cached.quote is not None and first.quote is not None
    assert (cached.quote.source, cached.quote.origin) == ("cache", "debank")
    assert cached.quote.age_ms == 30_000 and not cached.quote.is_stale
    assert cached.quote.price == first.quote.price
    assert prices.requests(LIST_BY_IDS) == asked  # not asked again
    prices.advance(1)
    again = await prices.price("ETH")
    assert again.quote is not None and again.quote.source == "debank"
    assert again.quote.age_ms == 0
    assert prices.requests(LIST_BY_IDS) == asked + 1


async def test_primary_down_falls_through_to_coingecko(prices: Harness) -> None:
    prices.down("debank")
    answer = await prices.price("BTC")
    assert answer.quote is not None
    assert answer.quote.source == "coingecko" and answer.quote.price == COINGECKO_BTC
    assert answer.quote.age_ms == 0 and not answer.quote.is_stale


async def test_both_down_falls_through_to_the_stored_candles(prices: Harness) -> None:
    prices.sim.ctx.clock.set(HOUR_START + 60_000, speed=0.0)
    close = store_candles(prices.sessions, prices.sim, "BTCUSDT", HOUR_START + 60_000)
    prices.down("debank", "coingecko")
    answer = await prices.price("BTC")
    assert answer.quote is not None
    assert (answer.quote.source, answer.quote.price) == ("exchange", close)
    assert answer.quote.as_of_ms == HOUR_START  # the candle's close
    assert answer.quote.age_ms == 60_000 and answer.quote.is_stale


async def test_both_down_falls_through_to_the_cached_exchange_ticker(prices: Harness) -> None:
    ticker = Ticker("ETHUSDT", 2512.25, 1.5, 2600.0, 2400.0, 1e5, 2.5e8, NOW - 12_000)
    record = ticker_record("binance", "spot", ticker, NOW - 12_000)
    await prices.cache.set(keys.ticker("binance", "spot", "ETHUSDT"), orjson.dumps(record), 60)
    prices.down("debank", "coingecko")
    answer = await prices.price("ETH")
    assert answer.quote is not None
    assert (answer.quote.source, answer.quote.price) == ("exchange", Decimal("2512.25"))
    assert answer.quote.age_ms == 12_000 and not answer.quote.is_stale


async def test_exchange_data_older_than_5_minutes_is_not_served(prices: Harness) -> None:
    store_candles(prices.sessions, prices.sim, "BTCUSDT", NOW)  # closed 30 minutes ago
    prices.down("debank", "coingecko")
    answer = await prices.price("BTC")
    assert answer.status == "unavailable" and answer.quote is None


async def test_all_down_serves_the_last_price_stale_until_5_minutes_then_none(
    prices: Harness,
) -> None:
    fetched = await prices.price("PEPE")
    assert fetched.quote is not None and fetched.quote.source == "debank"
    prices.down("debank", "coingecko")
    prices.advance(30_001)
    stale = await prices.price("PEPE")
    assert stale.quote is not None
    assert (stale.quote.source, stale.quote.origin) == ("cache", "debank")
    assert stale.quote.age_ms == 30_001 and stale.quote.is_stale
    assert stale.quote.price == fetched.quote.price
    prices.advance(300_000 - 30_001)
    at_limit = await prices.price("PEPE")
    assert at_limit.quote is not None and at_limit.quote.age_ms == 300_000
    assert at_limit.quote.is_stale
    prices.advance(1)
    gone = await prices.price("PEPE")
    assert gone.status == "unavailable" and gone.quote is None


async def test_a_fresh_cached_price_is_served_even_when_every_source_is_down(
    prices: Harness,
) -> None:
    await prices.price("BTC")
    prices.down("debank", "coingecko")
    prices.advance(30_000)
    answer = await prices.price("BTC")
    assert answer.quote is not None and answer.quote.source == "cache"
    assert not answer.quote.is_stale


async def test_a_restart_keeps_the_stale_fallback_in_the_database(prices: Harness) -> None:
    fetched = await prices.price("OM")
    assert fetched.quote is not None
    restarted = build(prices.sim, prices.sessions)  # an empty cache, the same database
    try:
        prices.down("debank", "coingecko")
        prices.advance(120_000)
        answer = await restarted.get_price("OM")
        assert answer.quote is not None
        assert (answer.quote.source, answer.quote.origin) == ("cache", "debank")
        assert answer.quote.price == fetched.quote.price
        assert answer.quote.age_ms == 120_000 and answer.quote.is_stale
    finally:
        await close(restarted)


# --- batching, sharing, timeouts ------------------------------------------------------


async def test_many_symbols_go_to_each_source_in_one_request(prices: Harness) -> None:
    symbols = ["BTC", "ETH", "PEPE", "OM", "BIO", "HYPE", "SOL", "DOT", "ADA", "XRP"]
    answers = await prices.service.get_prices(symbols)
    sources = {a.symbol: a.quote.source for a in answers if a.quote}
    assert {s for s, src in sources.items() if src == "debank"} == {
        "BTC", "ETH", "PEPE", "OM", "BIO", "HYPE",
    }  # fmt: skip
    assert {s for s, src in sources.items() if src == "coingecko"} == {"SOL", "DOT", "ADA", "XRP"}
    assert prices.requests(LIST_BY_IDS) == 1
    assert prices.requests(SIMPLE_PRICE) == 1


async def test_concurrent_callers_share_one_request(prices: Harness) -> None:
    answers = await asyncio.gather(*(prices.service.get_prices(["BTC", "ETH"]) for _ in range(8)))
    assert all(a.quote is not None for batch in answers for a in batch)
    assert prices.requests(LIST_BY_IDS) == 1


async def test_a_slow_primary_is_skipped_after_the_timeout(
    sim: RunningSim, database_url: str
) -> None:
    engine = build_engine(database_url)
    service = build(sim, session_factory(engine), timeout_s=0.5)
    try:
        sim.ctx.faults.add(
            Fault.from_mapping({"kind": "timeout", "route": "/debank/", "sleep_s": 3})
        )
        answer = await service.get_price("BTC")
        assert answer.quote is not None and answer.quote.source == "coingecko"
    finally:
        await close(service)
        engine.dispose()


async def test_a_failed_source_rests_10_seconds_before_it_is_asked_again(
    prices: Harness,
) -> None:
    prices.down("debank")
    assert (await prices.price("BTC")).quote.source == "coingecko"  # type: ignore[union-attr]
    assert prices.requests(LIST_BY_IDS) == 1
    prices.up()
    prices.advance(9_999)
    assert (await prices.price("ETH")).quote.source == "coingecko"  # type: ignore[union-attr]
    assert prices.requests(LIST_BY_IDS) == 1  # resting: not asked
    prices.advance(1)
    assert (await prices.price("OM")).quote.source == "debank"  # type: ignore[union-attr]
    assert prices.requests(LIST_BY_IDS) == 2


async def test_a_network_debank_does_not_serve_goes_to_coingecko(prices: Harness) -> None:
    answer = await prices.price("BTC", "TRC20")
    assert answer.network == "trc20" and answer.quote is not None
    assert answer.quote.source == "coingecko"
    assert prices.requests(LIST_BY_IDS) == 0


async def test_the_primary_client_splits_past_100_ids_and_translates_errors(
    sim: RunningSim,
) -> None:
    client = build_price_source(f"{sim.url}/debank", KEY, timeout_s=10)
    try:
        symbols = ["BTC", "ETH", *(f"NONE{i}" for i in range(148))]
        assert set(await client.fetch_prices(symbols, "eth")) == {"BTC", "ETH"}
        assert sim.ctx.stats.snapshot()["totals"]["requests"] == 2  # 100 + 50 ids
        sim.ctx.faults.add(
            Fault.from_mapping({"kind": "truncate", "route": "/debank/", "count": 1})
        )
        with pytest.raises(ExchangeUnavailable, match="malformed"):
            await client.fetch_prices(["BTC"], "eth")
        sim.ctx.options.price_source_api_key = "another-key"
        with pytest.raises(ExchangeRejected, match="KLINEWATCH_PRICE_SOURCE_API_KEY"):
            await client.fetch_prices(["BTC"], "eth")
    finally:
        await client.aclose()


# --- unknown, unavailable, mappings ---------------------------------------------------


async def test_a_token_no_source_and_no_registry_knows_is_unknown(prices: Harness) -> None:
    answer = await prices.price("NOTACOIN")
    assert answer.status == "unknown" and answer.quote is None


async def test_a_known_token_without_any_price_is_unavailable(prices: Harness) -> None:
    with transaction(prices.sessions) as session:
        session.execute(
            insert(Contract).values(
                exchange="binance", market_type="spot", symbol="KITEUSDT", base_asset="KITE",
                quote_asset="USDT", status="TRADING",
            )
        )  # fmt: skip
    answer = await prices.price("KITE")  # recorded from 2025-11 on: no price in 2025-06
    assert answer.status == "unavailable" and answer.quote is None


async def test_a_token_without_a_price_is_not_asked_for_again_for_30_seconds(
    prices: Harness,
) -> None:
    assert (await prices.price("NOTACOIN")).status == "unknown"
    asked = prices.requests(LIST_BY_IDS)
    prices.advance(30_000)
    assert (await prices.price("NOTACOIN")).status == "unknown"
    assert prices.requests(LIST_BY_IDS) == asked
    prices.advance(1)
    assert (await prices.price("NOTACOIN")).status == "unknown"
    assert prices.requests(LIST_BY_IDS) == asked + 1


async def test_when_every_source_fails_nothing_is_called_unknown(prices: Harness) -> None:
    prices.down("debank", "coingecko")
    answer = await prices.price("NOTACOIN")
    assert answer.status == "unavailable"


async def test_a_ready_mapping_prices_through_coingecko_with_its_multiplier(
    prices: Harness,
) -> None:
    with transaction(prices.sessions) as session:
        session.execute(
            insert(TokenMapping),
            [
                {"exchange": "binance", "base_asset": "1000SOL", "coin_symbol": "sol",
                 "multiplier": 1000, "coingecko_id": "solana", "match_status": "auto_matched"},
                {"exchange": "binance", "base_asset": "SOLX", "coin_symbol": "sol",
                 "multiplier": 1, "coingecko_id": "solana", "match_status": "needs_review"},
            ],
        )  # fmt: skip
    scaled, review = await prices.service.get_prices(["1000SOL", "SOLX"])
    assert scaled.quote is not None and scaled.quote.source == "coingecko"
    assert scaled.quote.price == COINGECKO_SOL * 1000
    assert review.status == "unavailable"  # known, but its coin is not confirmed


# --- the background refresh and the notices -------------------------------------------


async def test_the_refresh_asks_again_for_configured_and_recently_asked_symbols(
    sim: RunningSim, database_url: str
) -> None:
    engine = build_engine(database_url)
    service = build(sim, session_factory(engine), tracked=("BTC",))
    try:
        await service.get_price("ETH")
        sim.ctx.clock.advance(60_000)
        assert await service.refresh_tracked() == 2
        ids = sim.ctx.stats.snapshot()["clients"]
        assert sum(r.get(LIST_BY_IDS, {}).get("requests", 0) for r in ids.values()) == 2
        cached = await service.get_price("ETH")
        assert cached.quote is not None and cached.quote.source == "cache"
        assert cached.quote.age_ms == 0  # refreshed just now
        sim.ctx.clock.advance(3_600_001)  # ETH was last asked for over an hour ago
        assert await service.refresh_tracked() == 1
    finally:
        await close(service)
        engine.dispose()


async def test_the_refresh_loop_runs_every_period_until_cancelled(
    sim: RunningSim, database_url: str
) -> None:
    engine = build_engine(database_url)
    service = build(sim, session_factory(engine), tracked=("BTC",), refresh_s=60.0)
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise asyncio.CancelledError

    try:
        with pytest.raises(asyncio.CancelledError):
            await service.run_refresh(sleep)
        assert naps == [60.0, 60.0, 60.0]
        ids = sim.ctx.stats.snapshot()["clients"]
        assert sum(r.get(LIST_BY_IDS, {}).get("requests", 0) for r in ids.values()) == 3
    finally:
        await close(service)
        engine.dispose()


async def test_a_banner_follows_5_minutes_of_failure_and_recovery_is_silent(
    prices: Harness,
) -> None:
    prices.down("debank", "coingecko")
    first = await prices.service.get_prices(["BTC"])
    notice = prices.service.notice(first, "en")
    assert notice is not None and notice.code == "PRICE_FETCH_FAILED"
    prices.advance(300_001)
    later = await prices.service.get_prices(["BTC"])
    notice = prices.service.notice(later, "zh")
    assert notice is not None and notice.code == "NETWORK_DEGRADED"
    prices.up()
    prices.advance(10_000)  # a failed source rests 10 s before it is asked again
    back = await prices.service.get_prices(["BTC"])
    assert prices.service.notice(back, "en") is None

"""OKX, Bybit and Bitget through CCXT against the simulator over real HTTP, on both database
backends: backfills through ``KlineUpdater`` equal the recorded series exactly.

What the recordings hold (``data/sample/README.md``): every CSV is normalised to Binance's
layout with volume in the base asset, OKX's included. The simulated OKX serves swap
candles as OKX does, volume in contracts (``vol`` = base / ``ctVal``) beside base
(``volCcy``); the client must store base units, so the stored volumes are compared with
the recorded CSV as they are, exactly. Bitget was not recorded: the simulator serves the
recorded Binance series under Bitget's wire format, so Bitget is compared with those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import ccxt
import httpx
import pytest
from pydantic import SecretStr

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import missing_ranges
from klinewatch.domain.intervals import DAY_MS, HOUR_MS, parse_interval
from klinewatch.errors import (
    ConfigurationError,
    ExchangeRejected,
    ExchangeUnavailable,
    InvalidInput,
    IpBanned,
    RateLimited,
)
from klinewatch.exchanges.ccxt_exchange import VENUES, CcxtClient, translate
from klinewatch.services.ingestion import KlineUpdater, UpdateSummary
from klinewatch.settings import Settings
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.wiring import Runtime, build_runtime

# (exchange, market, symbol, interval) -> whose recording the simulator serves
SOURCE = {"okx": "okx", "bybit": "bybit", "bitget": "binance"}


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset()
    return sim_module


def settings_for(sim: RunningSim, database_url: str = "sqlite://") -> Settings:
    return Settings(
        database_url=database_url,
        okx_url=f"{sim.url}/okx",
        bybit_url=f"{sim.url}/bybit",
        bitget_url=f"{sim.url}/bitget",
        http_timeout_s=2.0,
        redis_url=None,
    )


@pytest.fixture
def runtime(sim: RunningSim, database_url: str) -> Iterator[Runtime]:
    rt = build_runtime(settings_for(sim, database_url))
    yield rt
    rt.close()


@pytest.fixture
def bare(sim: RunningSim) -> Iterator[Runtime]:
    """A runtime for tests that store nothing (an in-memory SQLite it never touches)."""
    rt = build_runtime(settings_for(sim))
    yield rt
    rt.close()


def recorded(sim: RunningSim, exchange: str, market: str, symbol: str, interval: str) -> Candles:
    return sim.ctx.store.get(SOURCE[exchange], market, symbol, interval)


def backfill(
    runtime: Runtime, exchange: str, market: str, symbol: str, interval: str, span: tuple[int, int]
) -> UpdateSummary:
    async def go() -> UpdateSummary:
        client = runtime.exchange_client(exchange, market)
        try:
            updater = KlineUpdater(runtime.sessions, client, runtime.clock)
            return await updater.update([symbol], parse_interval(interval), *span)
        finally:
            await client.aclose()

    return asyncio.run(go())


def assert_exact(
    runtime: Runtime,
    sim: RunningSim,
    series: tuple[str, str, str, str],
    span: tuple[int, int],
) -> None:
    """The database holds exactly the recorded candles of ``span``, every value, and each
    open time of the span without a candle is in the empty-range ledger."""
    exchange, market, symbol, interval = series
    expected = recorded(sim, *series).between(*span)
    with transaction(runtime.sessions) as session:
        repo = KlineRepository(session)
        sid = repo.find_series(exchange, market, symbol, interval)
        assert sid is not None
        stored, empty = repo.read(sid), LedgerRepository(session).ranges(sid, "empty")
    assert len(stored) == len(expected)
    assert stored.equals(expected), f"{series}: stored candles differ from the recording"
    assert missing_ranges(parse_interval(interval), span, stored.open_time_ms, empty) == []


def freeze_after(sim: RunningSim, candles: Candles) -> None:
    """The clock a day after the recording ends: every candle closed, holes settled."""
    sim.ctx.clock.set(int(candles.close_time_ms[-1]) + DAY_MS, speed=0.0)


def okx_span(sim: RunningSim, days: int = 5) -> tuple[int, int]:
    series = recorded(sim, "okx", "futures", "BTC-USDT-SWAP", "5m")
    freeze_after(sim, series)
    start = int(series.open_time_ms[3_000]) // DAY_MS * DAY_MS
    return start, start + days * DAY_MS


def add_fault(sim: RunningSim, **fields: object) -> None:
    response = httpx.post(f"{sim.url}/__sim/faults", json=fields)
    assert response.status_code in (200, 201), response.text


def test_okx_swap_5m_backfill_is_exact_with_volumes_in_base_units(
    runtime: Runtime, sim: RunningSim
) -> None:
    span = okx_span(sim)
    summary = backfill(runtime, "okx", "futures", "BTC-USDT-SWAP", "5m", span)
    assert summary.errors == {}
    assert summary.candles_added == 5 * 288
    assert summary.requests == 5  # 1,440 candles in pages of 300
    assert_exact(runtime, sim, ("okx", "futures", "BTC-USDT-SWAP", "5m"), span)
    again = backfill(runtime, "okx", "futures", "BTC-USDT-SWAP", "5m", span)
    assert again.candles_added == 0 and again.requests == 0


@pytest.mark.parametrize(("market", "interval"), [("spot", "1h"), ("futures", "4h")])
def test_bybit_whole_series_backfill_is_exact(
    runtime: Runtime, sim: RunningSim, market: str, interval: str
) -> None:
    series = recorded(sim, "bybit", market, "BTCUSDT", interval)
    freeze_after(sim, series)
    step = parse_interval(interval).nominal_ms
    span = (int(series.open_time_ms[0]) - 10 * step, int(series.open_time_ms[-1]) + step)
    summary = backfill(runtime, "bybit", market, "BTCUSDT", interval, span)
    assert summary.errors == {}
    assert summary.candles_added == len(series)
    assert summary.requests == -(-(len(series) + 10) // 1000)  # pages of 1,000
    assert_exact(runtime, sim, ("bybit", market, "BTCUSDT", interval), span)


def test_bitget_spot_1h_backfill_is_exact_across_a_real_outage(
    runtime: Runtime, sim: RunningSim
) -> None:
    series = recorded(sim, "bitget", "spot", "BTCUSDT", "1h")
    freeze_after(sim, series)
    span = (1_517_443_200_000, 1_519_862_400_000)  # February 2018: 34 hours missing
    holes = missing_ranges(parse_interval("1h"), span, series.between(*span).open_time_ms)
    assert max(b - a for a, b in holes) >= 30 * HOUR_MS  # the real outage of 2018-02-08
    summary = backfill(runtime, "bitget", "spot", "BTCUSDT", "1h", span)
    assert summary.errors == {}
    assert summary.empty_ranges >= len(holes)
    assert_exact(runtime, sim, ("bitget", "spot", "BTCUSDT", "1h"), span)


@pytest.mark.parametrize("kind", ["500", "503", "truncate", "reset"])
def test_a_5xx_a_truncated_page_or_a_reset_on_the_okx_route_is_retried(
    runtime: Runtime, sim: RunningSim, kind: str
) -> None:
    """A truncated page must not pass for an empty one (CCXT reads it as no candles)."""
    span = okx_span(sim, days=3)
    route = "/okx/api/v5/market/history-candles"
    add_fault(sim, kind=kind, route=route, count=2)
    summary = backfill(runtime, "okx", "futures", "BTC-USDT-SWAP", "5m", span)
    assert summary.errors == {}
    assert summary.requests == 3  # 864 candles in pages of 300
    clients = httpx.get(f"{sim.url}/__sim/stats").json()["clients"].values()
    assert sum(c[route]["requests"] for c in clients if route in c) == 3 + 2  # 2 retried
    assert_exact(runtime, sim, ("okx", "futures", "BTC-USDT-SWAP", "5m"), span)


def test_every_request_ccxt_makes_passes_the_governor(bare: Runtime, sim: RunningSim) -> None:
    runtime = bare
    span = okx_span(sim, days=2)

    async def go() -> None:
        client = runtime.exchange_client("okx", "futures")
        interval = parse_interval("5m")
        try:
            await client.fetch_klines("BTC-USDT-SWAP", interval, *span, limit=10_000)
        finally:
            await client.aclose()

    asyncio.run(go())
    (governor,) = runtime.governors.values()
    assert governor.window_ms == 500 and governor.budget == 3  # 20 / 2 s, rolling-safe
    totals = httpx.get(f"{sim.url}/__sim/stats").json()["totals"]
    assert governor.stats.requests == totals["requests"] >= 3  # markets + 2 pages


def test_fetch_klines_gives_at_most_limit_candles_oldest_first(
    bare: Runtime, sim: RunningSim
) -> None:
    start, end = okx_span(sim, days=10)
    client = bare.exchange_client("okx", "futures")

    async def go() -> Candles:
        try:
            return await client.fetch_klines(
                "BTC-USDT-SWAP", parse_interval("5m"), start + 1, end, 7
            )
        finally:
            await client.aclose()

    got = asyncio.run(go())
    expected = recorded(sim, "okx", "futures", "BTC-USDT-SWAP", "5m").between(start + 1, end)
    assert got.equals(expected.take(slice(0, 7)))


@pytest.mark.parametrize(
    ("exchange", "market"),
    [("okx", "futures"), ("bybit", "spot"), ("bybit", "futures"), ("bitget", "spot"),
     ("bitget", "futures")],
)  # fmt: skip
def test_fetch_contracts_lists_the_recorded_symbols(
    bare: Runtime, sim: RunningSim, exchange: str, market: str
) -> None:
    client = bare.exchange_client(exchange, market)

    async def go() -> list[Any]:
        try:
            return await client.fetch_contracts()
        finally:
            await client.aclose()

    contracts = asyncio.run(go())
    assert sorted(c.symbol for c in contracts) == sim.ctx.store.symbols(SOURCE[exchange], market)
    for c in contracts:
        assert c.is_trading and c.quote_asset == "USDT" and c.symbol.startswith(c.base_asset)
        assert c.contract_type == ("PERPETUAL" if market == "futures" else None)


@pytest.mark.parametrize(
    ("exchange", "market", "symbol", "interval"),
    [("okx", "futures", "BTC-USDT-SWAP", "5m"), ("bybit", "spot", "BTCUSDT", "1h"),
     ("bitget", "spot", "BTCUSDT", "1h")],
)  # fmt: skip
def test_fetch_ticker_and_server_time_follow_the_clock(
    bare: Runtime, sim: RunningSim, exchange: str, market: str, symbol: str, interval: str
) -> None:
    series = recorded(sim, exchange, market, symbol, interval)
    k = len(series) // 2
    now = int(series.open_time_ms[k])  # candle k has just opened: last = its open
    sim.ctx.clock.set(now, speed=0.0)
    client = bare.exchange_client(exchange, market)

    async def go() -> tuple[Any, int]:
        try:
            return await client.fetch_ticker(symbol), await client.server_time_ms()
        finally:
            await client.aclose()

    ticker, server_time = asyncio.run(go())
    day = series.between(now - DAY_MS, now)
    assert server_time == now
    assert ticker.symbol == symbol
    assert ticker.last_price == series.open[k]
    assert ticker.high >= day.high.max() and ticker.low <= day.low.min()
    assert ticker.volume == pytest.approx(day.volume.sum(), rel=1e-9)


def test_bad_input_is_refused_by_name(bare: Runtime) -> None:
    runtime = bare
    with pytest.raises(InvalidInput) as err:
        runtime.exchange_client("kraken", "spot")
    assert err.value.field == "exchange"
    with pytest.raises(InvalidInput) as err:
        runtime.exchange_client("okx", "options")
    assert err.value.field == "market_type"
    client = runtime.exchange_client("okx", "futures")

    async def fetch(symbol: str, interval: str) -> Candles:
        return await client.fetch_klines(symbol, parse_interval(interval), 0, DAY_MS, 10)

    async def go() -> list[str | None]:
        fields = []
        for symbol, interval in (("BTC/USDT:USDT", "5m"), ("BTC-USDT-SWAP", "8h")):
            try:
                await fetch(symbol, interval)
            except InvalidInput as e:
                fields.append(e.field)
        await client.aclose()
        return fields

    # CCXT's unified name is not the exchange's id; OKX has no 8h candles
    assert asyncio.run(go()) == ["symbol", "interval"]


# --- how CCXT's exceptions become klinewatch's (pure) --------------------------------

OKX, BYBIT = VENUES["okx"], VENUES["bybit"]


@pytest.mark.parametrize(
    ("error", "limits", "answer", "expected", "wait_s"),
    [
        (ccxt.ExchangeNotAvailable("429"), OKX, (429, {"Retry-After": "3"}), RateLimited, 3.0),
        (ccxt.RateLimitExceeded("50011"), OKX, (200, {}), RateLimited, 2.0),
        (ccxt.RateLimitExceeded("403"), BYBIT, (403, {}), IpBanned, 600.0),
        (ccxt.DDoSProtection("418"), OKX, (418, {"retry-after": "90"}), IpBanned, 90.0),
        (ccxt.ExchangeNotAvailable("400"), OKX, (400, {}), ExchangeRejected, None),
        (ccxt.BadRequest("10001"), BYBIT, (200, {}), ExchangeRejected, None),
        (ccxt.AuthenticationError("401"), OKX, (401, {}), ExchangeRejected, None),
        (ccxt.BadSymbol("51001"), OKX, (400, {}), InvalidInput, None),
        (ccxt.ExchangeNotAvailable("502"), OKX, (502, {}), ExchangeUnavailable, None),
        (ccxt.RequestTimeout("timeout"), OKX, None, ExchangeUnavailable, None),
        (ccxt.NetworkError("reset"), OKX, None, ExchangeUnavailable, None),
    ],
)
def test_ccxt_errors_become_what_the_caller_should_do(
    error: Exception, limits: Any, answer: Any, expected: type, wait_s: float | None
) -> None:
    translated = translate(error, "okx futures /x", limits, answer)
    assert type(translated) is expected
    if wait_s is not None:
        assert isinstance(translated, RateLimited) and translated.retry_after_s == wait_s


def test_bitget_futures_1d_backfill_is_exact_in_pages_of_90_days(
    runtime: Runtime, sim: RunningSim
) -> None:
    """Bitget futures pages span at most 90 days (CCXT cuts a longer ask to the 90 days at
    one end of it): 200 daily candles asked at once would lose 110 without a word."""
    series = recorded(sim, "bitget", "futures", "BTCUSDT", "1d")
    freeze_after(sim, series)
    span = (int(series.open_time_ms[0]), int(series.open_time_ms[-1]) + DAY_MS)
    summary = backfill(runtime, "bitget", "futures", "BTCUSDT", "1d", span)
    assert summary.errors == {}
    assert_exact(runtime, sim, ("bitget", "futures", "BTCUSDT", "1d"), span)
    routes = httpx.get(f"{sim.url}/__sim/stats").json()["clients"].values()
    pages = sum(s["requests"] for r in routes for p, s in r.items() if "candles" in p)
    assert len(series) == 414 and pages == 7  # chunks of 200, 200, 14: 90 + 90 + 20 each


def test_the_proxy_setting_carries_every_request(sim: RunningSim) -> None:
    """A proxy on a closed port: the simulator is up, yet nothing gets through."""
    settings = settings_for(sim).model_copy(update={"okx_proxy": SecretStr("http://127.0.0.1:9")})
    runtime = build_runtime(settings)
    client = runtime.exchange_client("okx", "futures")
    assert isinstance(client, CcxtClient) and client.api.httpsProxy == "http://127.0.0.1:9"

    async def go() -> None:
        try:
            await client.api.fetch_time()  # one attempt: no retry policy around it
        finally:
            await client.aclose()

    with pytest.raises(ExchangeUnavailable):
        asyncio.run(go())
    bad = settings.model_copy(update={"okx_proxy": SecretStr("ftp://proxy")})
    with pytest.raises(ConfigurationError) as err:
        build_runtime(bad).exchange_client("okx", "spot")
    assert err.value.details["field"] == "okx_proxy"
    runtime.close()

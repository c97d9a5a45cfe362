"""Long backfills from the public-data archive, against the simulator over real HTTP, on
both backends: months and days come from archive files, the REST API serves only what
they lack, the result is exact, and every archive defect ends exact too."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import Range, missing_ranges
from klinewatch.domain.intervals import DAY_MS, HOUR_MS, MINUTE_MS, parse_interval
from klinewatch.exchanges.binance.archive import ArchiveFileError, build_binance_archive
from klinewatch.services.ingestion import KlineUpdater, UpdateSummary
from klinewatch.settings import Settings
from klinewatch.sim.app import url_settings
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.wiring import Runtime, build_runtime

NOV1 = 1_761_955_200_000  # 2025-11-01: DOTUSDT futures 1m covers exactly November 2025
DEC1 = 1_764_547_200_000
NOV20_NOON = NOV1 + 19 * DAY_MS + 12 * HOUR_MS
SINCE = NOV1 - 7 * DAY_MS
BURGER_SINCE = 1_618_876_800_000  # 2021-04-20; BURGERUSDT 5m runs 04-30 12:00 .. 07-17
BURGER_NOW = 1_626_566_400_000  # 2021-07-18
MONTH_GLOB = "/archive/*/DOTUSDT-1m-2025-11.zip"
DAY_GLOB = "/archive/*/DOTUSDT-1m-2025-11-07.zip"


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset(now_ms=DEC1 + MINUTE_MS)
    return sim_module


def make_runtime(sim: RunningSim, database_url: str) -> Runtime:
    return build_runtime(
        Settings(
            database_url=database_url,
            binance_spot_url=sim.url,
            binance_futures_url=sim.url,
            binance_archive_url=f"{sim.url}/archive",
            http_timeout_s=2.0,
        )
    )


@pytest.fixture
def runtime(sim: RunningSim, database_url: str) -> Iterator[Runtime]:
    rt = make_runtime(sim, database_url)
    yield rt
    rt.close()


def backfill(
    runtime: Runtime,
    market: str,
    interval: str,
    symbol: str,
    since: int = SINCE,
    *,
    archive: bool = True,
    attempts: int = 6,
) -> UpdateSummary:
    async def go() -> UpdateSummary:
        client = runtime.exchange_client("binance", market)
        files = build_binance_archive(runtime.settings.binance_archive_url, attempts=attempts)
        updater = KlineUpdater(
            runtime.sessions, client, runtime.clock, archive=files if archive else None
        )
        try:
            return await updater.update([symbol], parse_interval(interval), since)
        finally:
            await client.aclose()
            await files.aclose()

    return asyncio.run(go())


def requests_by_route(sim: RunningSim) -> Counter[str]:
    """Requests per route over every client (archive files grouped by folder kind)."""
    counts: Counter[str] = Counter()
    for routes in httpx.get(f"{sim.url}/__sim/stats").json()["clients"].values():
        for route, stats in routes.items():
            counts[route] += stats["requests"]
    return counts


def stored(
    runtime: Runtime, market: str, symbol: str, interval: str
) -> tuple[Candles, list[Range]]:
    with transaction(runtime.sessions) as session:
        repo = KlineRepository(session)
        sid = repo.find_series("binance", market, symbol, interval)
        assert sid is not None
        return repo.read(sid), LedgerRepository(session).ranges(sid, "empty")


def assert_exact(
    runtime: Runtime, sim: RunningSim, market: str, symbol: str, interval: str, since: int
) -> None:
    """The database holds exactly the simulator's closed candles since ``since``, and
    every open time without a candle at the source is in the empty ledger."""
    step = parse_interval(interval)
    closed_end = step.next_open(step.last_closed_open(sim.ctx.clock.now_ms()))
    source = sim.ctx.store.get("binance", market, symbol, interval).between(since, closed_end)
    candles, empty = stored(runtime, market, symbol, interval)
    assert len(candles) == len(source)
    assert candles.equals(source), f"{symbol} {interval}: stored candles differ from the source"
    end = int(source.open_time_ms[-1]) + step.nominal_ms
    assert missing_ranges(step, (since, end), candles.open_time_ms, empty) == []


def add_fault(sim: RunningSim, **fields: object) -> None:
    response = httpx.post(f"{sim.url}/__sim/faults", json=fields)
    assert response.status_code in (200, 201), response.text


def test_a_month_comes_from_the_archive_and_rest_serves_only_the_rest(
    runtime: Runtime, sim: RunningSim
) -> None:
    summary = backfill(runtime, "futures", "1m", "DOTUSDT")
    assert summary.errors == {}
    assert summary.archive_files == 1 and summary.candles_added == 43_200
    requests = requests_by_route(sim)
    # one to find the first candle, one to spot-check the file, one for the last minute
    assert requests["/fapi/v1/klines"] == 3  # REST alone: 88 requests of 499
    assert requests["/archive/data/futures/um/monthly/klines"] == 2  # the zip, its checksum
    assert_exact(runtime, sim, "futures", "DOTUSDT", "1m", SINCE)
    _, empty = stored(runtime, "futures", "DOTUSDT", "1m")
    assert (SINCE, NOV1) in empty  # before the listing: recorded from the REST answer
    sim.ctx.stats.reset()
    again = backfill(runtime, "futures", "1m", "DOTUSDT")
    assert again.candles_added == 0 and again.archive_files == 0
    assert requests_by_route(sim)["/archive/data/futures/um/monthly/klines"] == 0


def test_spot_5m_takes_whole_months_and_leaves_short_days_to_rest(
    runtime: Runtime, sim: RunningSim
) -> None:
    sim.reset(now_ms=BURGER_NOW)
    summary = backfill(runtime, "spot", "5m", "BURGERUSDT", BURGER_SINCE)
    assert summary.errors == {}
    assert summary.archive_files == 2  # May and June; a 5m day (288) fits one request
    assert summary.requests == requests_by_route(sim)["/api/v3/klines"] <= 9  # REST alone: 23
    assert_exact(runtime, sim, "spot", "BURGERUSDT", "5m", BURGER_SINCE)


DEFECTS = [
    pytest.param("archive_missing", DAY_GLOB, NOV20_NOON, 18, 0, id="missing-day"),
    pytest.param("archive_missing", MONTH_GLOB, DEC1 + MINUTE_MS, 30, 0, id="missing-month"),
    pytest.param("archive_truncated", DAY_GLOB, NOV20_NOON, 18, 1, id="truncated-day"),
    pytest.param("archive_truncated", MONTH_GLOB, DEC1 + MINUTE_MS, 30, 1, id="truncated-month"),
    pytest.param("archive_replaced", DAY_GLOB, NOV20_NOON, 18, 1, id="replaced-day"),
    pytest.param("archive_replaced", MONTH_GLOB, DEC1 + MINUTE_MS, 30, 1, id="replaced-month"),
]


@pytest.mark.parametrize(("kind", "route", "now", "files", "refused"), DEFECTS)
def test_every_archive_defect_still_ends_exact(
    runtime: Runtime, sim: RunningSim, kind: str, route: str, now: int, files: int, refused: int
) -> None:
    """A month that is missing or fails a check is taken day by day; such a day goes to
    REST. A replaced file passes its checksum but not the REST spot-check."""
    sim.reset(now_ms=now)
    add_fault(sim, kind=kind, route=route)
    summary = backfill(runtime, "futures", "1m", "DOTUSDT")
    assert summary.errors == {}
    assert (summary.archive_files, summary.archive_refused) == (files, refused)
    assert_exact(runtime, sim, "futures", "DOTUSDT", "1m", SINCE)


def test_transient_archive_errors_are_retried(runtime: Runtime, sim: RunningSim) -> None:
    add_fault(sim, kind="503", route="/archive/*.CHECKSUM", count=2)
    add_fault(sim, kind="truncate", route=MONTH_GLOB, count=1)  # cut in transfer, then whole
    summary = backfill(runtime, "futures", "1m", "DOTUSDT")
    assert (summary.archive_files, summary.archive_refused) == (1, 0)
    assert_exact(runtime, sim, "futures", "DOTUSDT", "1m", SINCE)


def test_an_unreachable_archive_leaves_everything_to_rest(
    runtime: Runtime, sim: RunningSim
) -> None:
    add_fault(sim, kind="down", exchange="binance_archive")
    summary = backfill(runtime, "futures", "1m", "DOTUSDT", attempts=2)
    assert summary.errors == {} and summary.archive_files == 0
    assert_exact(runtime, sim, "futures", "DOTUSDT", "1m", SINCE)
    assert requests_by_route(sim)["/archive/data/futures/um/monthly/klines"] <= 4


def write_series(root: Path, market: str, symbol: str, interval: str, candles: Candles) -> None:
    folder = root / "binance" / market / "klines" / symbol
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.column_stack([col.astype(object) for col in candles.columns()])
    text = "".join(",".join(repr(v) for v in row) + ",0\n" for row in rows)
    (folder / f"{interval}.csv.gz").write_bytes(gzip.compress(text.encode()))


def test_an_outage_inside_an_archive_month_is_confirmed_by_rest_and_ledgered(
    database_url: str, sim_module: RunningSim, tmp_path: Path
) -> None:
    source = sim_module.ctx.store.get("binance", "futures", "DOTUSDT", "1m")
    outage = (NOV1 + 9 * DAY_MS + 3 * HOUR_MS, NOV1 + 9 * DAY_MS + 6 * HOUR_MS)
    times = source.open_time_ms
    write_series(
        tmp_path,
        "futures",
        "DOTUSDT",
        "1m",
        source.take((times < outage[0]) | (times >= outage[1])),
    )
    with running_sim(data_dir=tmp_path) as sim:
        sim.reset(now_ms=DEC1 + MINUTE_MS)
        rt = make_runtime(sim, database_url)
        try:
            summary = backfill(rt, "futures", "1m", "DOTUSDT")
            assert summary.archive_files == 1 and summary.requests == 4  # + 1 for the hole
            assert_exact(rt, sim, "futures", "DOTUSDT", "1m", SINCE)
            _, empty = stored(rt, "futures", "DOTUSDT", "1m")
            assert outage in empty
        finally:
            rt.close()


def test_update_klines_cli_uses_the_archive(
    sim: RunningSim, database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLINEWATCH_")}
    env |= url_settings(sim.url) | {"KLINEWATCH_DATABASE_URL": database_url}
    args = ["update-klines", "-i", "1m", "-m", "futures", "-s", "DOTUSDT", "--since", "2025-10-25"]
    result = subprocess.run(
        [sys.executable, "-m", "klinewatch.cli.main", *args, "--archive"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "43200" in result.stdout  # candles added
    assert requests_by_route(sim)["/archive/data/futures/um/monthly/klines"] == 2
    rt = make_runtime(sim, database_url)
    try:
        assert_exact(rt, sim, "futures", "DOTUSDT", "1m", SINCE)
    finally:
        rt.close()


def test_archive_client_reads_micro_and_milli_seconds_with_and_without_header(
    sim: RunningSim,
) -> None:
    store = sim.ctx.store

    async def go() -> None:
        files = build_binance_archive(f"{sim.url}/archive")
        try:
            spot_2025 = await files.fetch_klines(
                "spot", "BTCUSDT", "1h", "monthly", 1_735_689_600_000
            )
            assert spot_2025 is not None  # microseconds, no header
            expected = store.get("binance", "spot", "BTCUSDT", "1h")
            assert spot_2025.equals(expected.between(1_735_689_600_000, 1_738_368_000_000))
            spot_2024 = await files.fetch_klines(
                "spot", "BTCUSDT", "1h", "daily", 1_735_603_200_000
            )
            assert spot_2024 is not None and len(spot_2024) == 24  # milliseconds
            assert spot_2024.equals(expected.between(1_735_603_200_000, 1_735_689_600_000))
            futures = await files.fetch_klines("futures", "DOTUSDT", "1m", "daily", NOV1)
            assert futures is not None  # the header line, milliseconds
            dot = store.get("binance", "futures", "DOTUSDT", "1m")
            assert futures.equals(dot.between(NOV1, NOV1 + DAY_MS))
            assert await files.fetch_klines("spot", "BTCUSDT", "1h", "monthly", 0) is None
            add_fault(sim, kind="archive_truncated", route=MONTH_GLOB)
            with pytest.raises(ArchiveFileError, match=r"DOTUSDT-1m-2025-11\.zip: checksum"):
                await files.fetch_klines("futures", "DOTUSDT", "1m", "monthly", NOV1)
        finally:
            await files.aclose()

    asyncio.run(go())

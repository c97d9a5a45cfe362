"""verify-klines against the simulator over real HTTP, on both backends: a backfilled real
series is corrupted in the database (a day deleted without a ledger entry, a volume
changed, an insane candle inserted); verify names each day, --repair re-fetches exactly
those days and a second verify is clean."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import text
from typer.testing import CliRunner

from klinewatch.cli.main import app
from klinewatch.domain.intervals import DAY_MS, HOUR_MS, MINUTE_MS, parse_interval
from klinewatch.services.ingestion import KlineUpdater
from klinewatch.services.verification import KlineVerifier, VerifyReport
from klinewatch.settings import Settings
from klinewatch.sim.app import url_settings
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.wiring import Runtime, build_runtime

SYMBOL = "OMUSDT"  # 1h from 2024-10-01, its daily candles to 2026-02-14
SINCE_MS = 1_727_740_800_000  # 2024-10-01
DELETED_DAY = 1_736_467_200_000  # 2025-01-10: every row deleted, no ledger entry
VOLUME_DAY = 1_741_132_800_000  # 2025-03-05: one volume changed
INSANE_DAY = 1_750_377_600_000  # 2025-06-20: an off-grid candle with high < low
KLINES = "/api/v3/klines"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points structlog at the stderr CliRunner captures; put it back after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def sim_module() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


@pytest.fixture
def sim(sim_module: RunningSim) -> RunningSim:
    sim_module.reset()
    return sim_module


@pytest.fixture
def runtime(sim: RunningSim, database_url: str) -> Iterator[Runtime]:
    settings = Settings(
        database_url=database_url,
        binance_spot_url=sim.url,
        binance_futures_url=sim.url,
        http_timeout_s=5.0,
    )
    rt = build_runtime(settings)
    client = rt.exchange_client("binance", "spot")

    async def backfill() -> None:
        try:
            updater = KlineUpdater(rt.sessions, client, rt.clock)
            await updater.update([SYMBOL], parse_interval("1h"), SINCE_MS)
        finally:
            await client.aclose()

    asyncio.run(backfill())
    yield rt
    rt.close()


def verify(
    runtime: Runtime,
    repair: bool = False,
    seen: list[httpx.URL] | None = None,
    span: tuple[int | None, int | None] = (None, None),
) -> VerifyReport:
    async def go() -> VerifyReport:
        client = runtime.exchange_client("binance", "spot")
        if seen is not None:

            async def record(request: httpx.Request) -> None:
                seen.append(request.url)

            client.rest.http.event_hooks["request"].append(record)
        try:
            verifier = KlineVerifier(runtime.sessions, client)
            return await verifier.verify(parse_interval("1h"), [SYMBOL], span, repair)
        finally:
            await client.aclose()

    return asyncio.run(go())


def series_id(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        sid = KlineRepository(session).find_series("binance", "spot", SYMBOL, "1h")
    assert sid is not None
    return sid


def corrupt(runtime: Runtime) -> None:
    sid = series_id(runtime)
    insane_open = INSANE_DAY + 30 * MINUTE_MS
    with transaction(runtime.sessions) as session:
        session.execute(
            text(
                "DELETE FROM klines WHERE series_id = :s "
                "AND open_time_ms >= :a AND open_time_ms < :b"
            ),
            {"s": sid, "a": DELETED_DAY, "b": DELETED_DAY + DAY_MS},
        )
        session.execute(
            text(
                "UPDATE klines SET volume = volume * 1.5 + 1 "
                "WHERE series_id = :s AND open_time_ms = :t"
            ),
            {"s": sid, "t": VOLUME_DAY + 5 * HOUR_MS},
        )
        session.execute(
            text(
                "INSERT INTO klines (series_id, open_time_ms, open, high, low, close, volume, "
                "close_time_ms, quote_volume, trade_count, taker_buy_base_volume, "
                "taker_buy_quote_volume) VALUES (:s, :t, 1, 0.5, 2, 1, 10, :c, 0, 0, 0, 0)"
            ),
            {"s": sid, "t": insane_open, "c": insane_open + HOUR_MS - 1},
        )


def klines_requests(sim: RunningSim) -> int:
    clients = sim.ctx.stats.snapshot()["clients"].values()
    return sum(routes.get(KLINES, {}).get("requests", 0) for routes in clients)


def assert_equals_source(runtime: Runtime, sim: RunningSim) -> None:
    source = sim.ctx.store.get("binance", "spot", SYMBOL, "1h").between(SINCE_MS, 2**62)
    with transaction(runtime.sessions) as session:
        stored = KlineRepository(session).read(series_id(runtime))
    assert stored.equals(source)


def test_a_backfilled_series_is_consistent(runtime: Runtime, sim: RunningSim) -> None:
    sim.ctx.stats.reset()
    report = verify(runtime)
    (series,) = report.series
    assert report.consistent and series.differing == {} and series.holes == []
    assert series.days_checked == 502  # every recorded daily candle of OMUSDT
    assert series.days_unchecked == 6  # 1h candles after the recorded daily ones end
    assert klines_requests(sim) == 1  # one 1d request covers the 508 days


def test_verify_finds_each_corruption_and_repair_fixes_exactly_those_days(
    runtime: Runtime, sim: RunningSim
) -> None:
    corrupt(runtime)
    found = verify(runtime).series[0]
    assert found.holes == [(DELETED_DAY, DELETED_DAY + DAY_MS)]
    assert [(r.open_time_ms, r.reason) for r in found.insane] == [
        (INSANE_DAY + 30 * MINUTE_MS, "open time is off the 1h grid")
    ]
    assert sorted(found.differing) == [DELETED_DAY, VOLUME_DAY, INSANE_DAY]
    assert any("volume" in reason for reason in found.differing[VOLUME_DAY])
    assert "0 candles, expected 24" in found.differing[DELETED_DAY]
    assert found.remaining == [DELETED_DAY, VOLUME_DAY, INSANE_DAY]
    one_day = verify(runtime, span=(VOLUME_DAY + HOUR_MS, VOLUME_DAY + 2 * HOUR_MS)).series[0]
    assert one_day.span == (VOLUME_DAY, VOLUME_DAY + DAY_MS)  # whole days
    assert one_day.days_checked == 1 and list(one_day.differing) == [VOLUME_DAY]

    sim.ctx.stats.reset()
    seen: list[httpx.URL] = []
    repaired = verify(runtime, repair=True, seen=seen)
    assert repaired.consistent
    assert repaired.series[0].repaired == [DELETED_DAY, VOLUME_DAY, INSANE_DAY]
    hourly = sorted(
        int(url.params["startTime"])
        for url in seen
        if url.path == KLINES and url.params["interval"] == "1h"
    )
    assert hourly == [DELETED_DAY, VOLUME_DAY, INSANE_DAY]
    assert klines_requests(sim) == 1 + 3  # the daily candles, then one request per day
    assert_equals_source(runtime, sim)

    again = verify(runtime).series[0]
    assert again.differing == {} and again.holes == [] and again.insane == []


def test_cli_reports_json_exits_1_on_differences_and_0_after_repair(
    runtime: Runtime, sim: RunningSim, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    corrupt(runtime)
    monkeypatch.chdir(tmp_path)
    env = {**url_settings(sim.url), "KLINEWATCH_DATABASE_URL": runtime.settings.database_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["verify-klines", "-i", "1h", "-m", "spot", "-s", SYMBOL.lower(), "--format", "json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 1, first.output
    body: dict[str, Any] = json.loads(first.stdout)
    days = [d["day"] for d in body["series"][0]["differing"]]
    assert days == ["2025-01-10", "2025-03-05", "2025-06-20"]
    fixed = CliRunner().invoke(app, [*args[:-2], "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "OMUSDT" in fixed.stdout and "consistent" in fixed.stdout


BAD_INPUT = [
    (["-i", "7m"], "interval"),
    (["-m", "options"], "market type"),
    (["--exchange", "kraken"], "exchange"),
    (["-s", "NOPEUSDT"], "--symbols"),
    (["--since", "2025-02-01", "--until", "2025-01-01"], "--since"),
    (["--since", "yesterday"], "--since"),
    (["--format", "xml"], "--format"),
]


def test_bad_input_names_the_option_and_changes_nothing(
    runtime: Runtime, sim: RunningSim, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    corrupt(runtime)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLINEWATCH_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("KLINEWATCH_BINANCE_SPOT_URL", sim.url)
    with transaction(runtime.sessions) as session:
        before = KlineRepository(session).read(series_id(runtime))
    sim.ctx.stats.reset()
    for args, option in BAD_INPUT:
        result = CliRunner().invoke(app, ["verify-klines", "-i", "1h", "--repair", *args])
        assert result.exit_code == 2, (args, result.output)
        assert option in result.stderr, (args, result.stderr)
    assert klines_requests(sim) == 0
    with transaction(runtime.sessions) as session:
        assert KlineRepository(session).read(series_id(runtime)).equals(before)


def test_an_answer_missing_candles_replaces_nothing(runtime: Runtime, sim: RunningSim) -> None:
    corrupt(runtime)
    with transaction(runtime.sessions) as session:
        day_before = KlineRepository(session).read(
            series_id(runtime), VOLUME_DAY, VOLUME_DAY + DAY_MS
        )
    fault = {
        "kind": "missing",
        "route": KLINES,
        "interval": "1h",
        "start_ms": VOLUME_DAY + 3 * HOUR_MS,
        "end_ms": VOLUME_DAY + 6 * HOUR_MS,
    }
    assert httpx.post(f"{sim.url}/__sim/faults", json=fault).status_code == 201
    partly = verify(runtime, repair=True).series[0]
    assert partly.repaired == [DELETED_DAY, INSANE_DAY]
    assert partly.remaining == [VOLUME_DAY] and not partly.consistent
    with transaction(runtime.sessions) as session:
        day_after = KlineRepository(session).read(
            series_id(runtime), VOLUME_DAY, VOLUME_DAY + DAY_MS
        )
    assert day_after.equals(day_before)  # the old rows stay, the ledger learns nothing
    httpx.delete(f"{sim.url}/__sim/faults")
    assert verify(runtime, repair=True).series[0].repaired == [VOLUME_DAY]
    assert_equals_source(runtime, sim)

"""export-klines on both backends: a csv export replays in the simulator (a fresh database
backfilled from it holds the same candles), feather is freqtrade's layout, parquet keeps
every field, and bad options are named without writing anything."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import structlog
from typer.testing import CliRunner

from klinewatch.cli.main import app
from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import HOUR_MS, parse_interval
from klinewatch.services.export import ExportRequest, export_klines
from klinewatch.services.ingestion import KlineUpdater
from klinewatch.settings import Settings
from klinewatch.sim.store import read_kline_csv
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.wiring import Runtime, build_runtime
from tests.fixtures.databases import _pg_admin, _pg_url

SINCE_MS = 1_727_740_800_000  # 2024-10-01
SERIES = [("spot", "OMUSDT"), ("futures", "SPACEUSDT")]


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


def build(url: str, sim_url: str) -> Runtime:
    return build_runtime(
        Settings(database_url=url, binance_spot_url=sim_url, binance_futures_url=sim_url)
    )


def backfill(runtime: Runtime, market: str, symbol: str) -> None:
    async def go() -> None:
        client = runtime.exchange_client("binance", market)
        try:
            updater = KlineUpdater(runtime.sessions, client, runtime.clock)
            await updater.update([symbol], parse_interval("1h"), SINCE_MS)
        finally:
            await client.aclose()

    asyncio.run(go())


def stored(runtime: Runtime, market: str, symbol: str) -> Candles:
    with transaction(runtime.sessions) as session:
        repo = KlineRepository(session)
        sid = repo.find_series("binance", market, symbol, "1h")
        assert sid is not None
        return repo.read(sid)


@pytest.fixture
def runtime(sim_module: RunningSim, database_url: str) -> Iterator[Runtime]:
    sim_module.reset()
    rt = build(database_url, sim_module.url)
    for market, symbol in SERIES:
        backfill(rt, market, symbol)
    yield rt
    rt.close()


@pytest.fixture
def fresh_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    """A second empty migrated database of the same backend as ``database_url``."""
    if database_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "fresh.sqlite3"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    name = f"kw_test_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{request.getfixturevalue("pg_template")}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def export(
    runtime: Runtime, out: Path, fmt: str, market: str = "spot", symbol: str = "OMUSDT", **span: int
) -> Path:
    request = ExportRequest("binance", market, symbol, "1h", fmt, out, **span)
    return export_klines(runtime.sessions, request).path


def test_csv_export_is_the_recorded_layout_and_replays_in_the_simulator(
    runtime: Runtime, fresh_database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for market, symbol in SERIES:
        path = export(runtime, data, "csv", market, symbol)
        assert path == data / "binance" / market / "klines" / symbol / "1h.csv.gz"
    lines = gzip.decompress((data / "binance/spot/klines/OMUSDT/1h.csv.gz").read_bytes()).split()
    original = stored(runtime, "spot", "OMUSDT")
    assert len(lines) == len(original)
    first = lines[0].decode().split(",")
    assert len(first) == 12 and first[0] == str(SINCE_MS)  # no header, ms times
    assert first[6] == str(SINCE_MS + HOUR_MS - 1) and first[11] == "0"
    assert not any(".0," in line.decode() for line in lines)  # integral values carry no .0
    assert read_kline_csv(gzip.decompress(path.read_bytes())).equals(
        stored(runtime, "futures", "SPACEUSDT")
    )

    with running_sim(data_dir=data) as replay:
        fresh = build(fresh_database_url, replay.url)
        try:
            for market, symbol in SERIES:
                backfill(fresh, market, symbol)
                assert stored(fresh, market, symbol).equals(stored(runtime, market, symbol))
        finally:
            fresh.close()


def test_feather_is_freqtrades_layout(runtime: Runtime, tmp_path: Path) -> None:
    spot = export(runtime, tmp_path / "ft", "feather")
    futures = export(runtime, tmp_path / "ft", "feather", "futures", "SPACEUSDT")
    assert spot == tmp_path / "ft" / "OM_USDT-1h.feather"
    assert futures == tmp_path / "ft" / "futures" / "SPACE_USDT_USDT-1h-futures.feather"
    table = feather.read_table(spot)
    assert table.column_names == ["date", "open", "high", "low", "close", "volume"]
    assert table.schema.field("date").type == pa.timestamp("ms", tz="UTC")
    candles = stored(runtime, "spot", "OMUSDT")
    dates = table.column("date").cast(pa.int64()).to_numpy()
    assert np.array_equal(dates, candles.open_time_ms)
    for name in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(table.column(name).to_numpy(), getattr(candles, name))


def test_parquet_and_plain_csv_files_with_a_span(runtime: Runtime, tmp_path: Path) -> None:
    since, until = SINCE_MS + 24 * HOUR_MS, SINCE_MS + 72 * HOUR_MS
    expected = stored(runtime, "spot", "OMUSDT").between(since, until)
    path = export(runtime, tmp_path / "om.parquet", "parquet", since_ms=since, until_ms=until)
    table = pq.read_table(path)
    assert table.num_rows == len(expected) == 48
    assert np.array_equal(
        table.column("open_time").cast(pa.int64()).to_numpy(), expected.open_time_ms
    )
    assert np.array_equal(table.column("quote_volume").to_numpy(), expected.quote_volume)
    plain = export(runtime, tmp_path / "om.csv", "csv", since_ms=since, until_ms=until)
    assert read_kline_csv(plain.read_bytes()).equals(expected)


BAD_INPUT = [
    (["-s", "NOPEUSDT", "-i", "1h"], "--symbol"),
    (["-s", "OMUSDT", "-i", "7m"], "interval"),
    (["-s", "OMUSDT", "-i", "1h", "-m", "options"], "market type"),
    (["-s", "OMUSDT", "-i", "1h", "--exchange", "kraken"], "exchange"),
    (["-s", "OMUSDT", "-i", "1h", "--since", "2025-02-01", "--until", "2025-01-01"], "--since"),
    (["-s", "OMUSDT", "-i", "1h", "--until", "soon"], "--until"),
    (["-s", "OMUSDT", "-i", "1h", "--format", "xlsx"], "--format"),
    (["-s", "OMUSDT", "-i", "1h", "--format", "csv", "-o", "x/om.parquet"], "--out"),
]


def test_bad_input_names_the_option_and_writes_nothing(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLINEWATCH_DATABASE_URL", runtime.settings.database_url)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = stored(runtime, "spot", "OMUSDT")
    for args, option in BAD_INPUT:
        result = CliRunner().invoke(app, ["export-klines", *args])
        assert result.exit_code == 2, (args, result.output)
        assert option in result.stderr, (args, result.stderr)
    assert list(work.iterdir()) == []
    assert stored(runtime, "spot", "OMUSDT").equals(before)
    good = CliRunner().invoke(app, ["export-klines", "-s", "omusdt", "-i", "1h", "-f", "feather"])
    assert good.exit_code == 0, good.output
    assert (work / "export" / "OM_USDT-1h.feather").is_file()
    assert "OMUSDT" in good.stdout and str(len(before)) in good.stdout

"""``klinewatch import-klines`` as a user runs it, on files made from the recorded data the
way data.binance.vision publishes them, on both backends."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from klinewatch.cli.main import app
from klinewatch.domain.candles import Candles
from klinewatch.sim.archive import build_zip, kline_csv
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.klines import KlineRepository

JAN_2025 = (1_735_689_600_000, 1_738_368_000_000)
DEC_2024 = (1_733_011_200_000, 1_735_689_600_000)
NOV_3 = (1_762_128_000_000, 1_762_214_400_000)  # 2025-11-03
NOV_4 = (1_762_214_400_000, 1_762_300_800_000)


@pytest.fixture(scope="module")
def store(sample_dir: Path) -> SeriesStore:
    return SeriesStore(sample_dir)


def series(
    store: SeriesStore, market: str, symbol: str, interval: str, span: tuple[int, int]
) -> Candles:
    return store.get("binance", market, symbol, interval).between(*span)


def publish(folder: Path, name: str, csv: bytes, *, checksum: bool = True) -> Path:
    """A zip as Binance publishes it (one CSV member, optional .CHECKSUM beside it)."""
    data = build_zip(name.removesuffix(".zip") + ".csv", csv)
    path = folder / name
    path.write_bytes(data)
    if checksum:
        digest = hashlib.sha256(data).hexdigest()
        (folder / f"{name}.CHECKSUM").write_text(f"{digest}  {name}\n")
    return path


def micros(csv: bytes) -> bytes:
    """The same CSV with both times in microseconds (as spot files from 2025 have)."""
    lines = []
    for line in csv.decode().splitlines(keepends=True):
        fields = line.split(",")
        if fields[0].isdigit():
            fields[0] = str(int(fields[0]) * 1000)
            fields[6] = str(int(fields[6]) * 1000 + 999)
        lines.append(",".join(fields))
    return "".join(lines).encode()


def import_klines(database_url: str, cwd: Path, *args: str) -> Result:
    """The command in-process through Typer's runner (a subprocess spends seconds
    importing), with only the database set, from ``cwd``."""
    env = {k: None for k in os.environ if k.startswith("KLINEWATCH_")}
    env |= {"KLINEWATCH_DATABASE_URL": database_url, "COLUMNS": "200"}
    here = Path.cwd()
    os.chdir(cwd)  # no stray .env from the repository
    try:
        return CliRunner().invoke(app, ["import-klines", *args], env=env)
    finally:
        os.chdir(here)


def table_row(stdout: str, first_cell: str) -> list[str]:
    """The cells of the summary table's row that starts with ``first_cell``."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row for {first_cell} in:\n{stdout}")


def read(database_url: str, market: str, symbol: str, interval: str) -> Candles:
    engine = build_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            repo = KlineRepository(session)
            sid = repo.find_series("binance", market, symbol, interval)
            return Candles.empty() if sid is None else repo.read(sid)
    finally:
        engine.dispose()


def test_import_reads_every_published_layout_and_a_rerun_adds_nothing(
    database_url: str, store: SeriesStore, tmp_path: Path
) -> None:
    btc_jan = series(store, "spot", "BTCUSDT", "1h", JAN_2025)
    btc_dec = series(store, "spot", "BTCUSDT", "1h", DEC_2024)
    btc = store.get("binance", "spot", "BTCUSDT", "1h")
    spot_csv = kline_csv(btc_jan, "spot", JAN_2025[0], btc)
    assert spot_csv[:16].decode().isdigit()  # microseconds, no header
    spot = tmp_path / "spot"
    spot.mkdir()
    publish(spot, "BTCUSDT-1h-2025-01.zip", spot_csv)
    (spot / "BTCUSDT-1h-2024-12.csv").write_bytes(kline_csv(btc_dec, "spot", DEC_2024[0], btc))
    result = import_klines(database_url, tmp_path, str(spot), "--market-type", "spot")
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "BTCUSDT-1h-2025-01.zip")[1:5] == [
        "BTCUSDT 1h",
        "744",
        "744",
        "0",
    ]
    assert read(database_url, "spot", "BTCUSDT", "1h").equals(Candles.concat([btc_dec, btc_jan]))

    dot = store.get("binance", "futures", "DOTUSDT", "1m")
    futures = tmp_path / "futures"
    futures.mkdir()
    day3 = kline_csv(dot.between(*NOV_3), "futures", NOV_3[0], dot)
    assert day3.startswith(b"open_time,")  # the header line, milliseconds
    publish(futures, "DOTUSDT-1m-2025-11-03.zip", day3)
    (futures / "DOTUSDT-1m-2025-11-04.csv").write_bytes(
        micros(kline_csv(dot.between(*NOV_4), "futures", NOV_4[0], dot))
    )
    paths = [str(p) for p in sorted(futures.iterdir())]  # the .CHECKSUM too, as a glob gives
    result = import_klines(database_url, tmp_path, *paths, "-m", "futures")
    assert result.exit_code == 0, result.output
    assert read(database_url, "futures", "DOTUSDT", "1m").equals(dot.between(NOV_3[0], NOV_4[1]))

    again = import_klines(database_url, tmp_path, str(spot), "-m", "spot")
    assert again.exit_code == 0
    assert table_row(again.stdout, "2 files")[2:4] == ["1488", "0"]  # rows, added


def test_a_corrupt_file_is_refused_by_name_and_nothing_of_it_is_written(
    database_url: str, store: SeriesStore, tmp_path: Path
) -> None:
    btc = store.get("binance", "spot", "BTCUSDT", "1h")
    good = publish(
        tmp_path,
        "BTCUSDT-1h-2025-01.zip",
        kline_csv(btc.between(*JAN_2025), "spot", JAN_2025[0], btc),
    )
    assert import_klines(database_url, tmp_path, str(good), "-m", "spot").exit_code == 0
    before = read(database_url, "spot", "BTCUSDT", "1h")

    bad = tmp_path / "bad"
    bad.mkdir()
    dec = kline_csv(btc.between(*DEC_2024), "spot", DEC_2024[0], btc)
    truncated = publish(bad, "BTCUSDT-1h-2024-12.zip", dec)
    truncated.write_bytes(truncated.read_bytes()[:-700])  # its CHECKSUM is of the whole file
    nov = publish(bad, "BTCUSDT-1h-2024-11.zip", dec, checksum=False)
    nov.write_bytes(nov.read_bytes()[:2000])  # no checksum: the zip itself is broken
    (bad / "BTCUSDT-1h-2024-10.csv").write_bytes(b"1727740800000,oops,1,1,1,1\n")
    (bad / "BTCUSDT-1h-2024-09.csv").write_bytes(dec)  # December's candles under September
    (bad / "klines.csv").write_bytes(dec)
    result = import_klines(database_url, tmp_path, str(bad), "-m", "spot")
    assert result.exit_code == 2
    for name, reason in [
        ("BTCUSDT-1h-2024-12.zip", "checksum mismatch"),
        ("BTCUSDT-1h-2024-11.zip", "not a readable zip"),
        ("BTCUSDT-1h-2024-10.csv", "not a Binance kline CSV"),
        ("BTCUSDT-1h-2024-09.csv", "outside 2024-09"),
        ("klines.csv", "not a Binance kline file name"),
    ]:
        line = next((x for x in result.stderr.splitlines() if name in x), "")
        assert reason in line, result.stderr
    assert read(database_url, "spot", "BTCUSDT", "1h").equals(before)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "margin"], "--market-type 'margin'"),
        (["-m", "spot", "--exchange", "okx"], "--exchange 'okx'"),
    ],
)
def test_bad_options_are_named_and_nothing_is_read(
    tmp_path: Path, args: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    result = import_klines(url, tmp_path, str(tmp_path / "BTCUSDT-1h-2025-01.zip"), *args)
    assert result.exit_code == 2 and message in result.stderr

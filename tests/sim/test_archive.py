"""The Binance public-data archive built from the same candles, and its defects."""

from __future__ import annotations

import hashlib
import io
import zipfile

import httpx
import pytest

from klinewatch.sim.testing import RunningSim
from tests.sim.recorded import Row, csv_rows

SPOT = "/archive/data/spot/{freq}/klines/BTCUSDT/1h/BTCUSDT-1h-{period}.zip"
FUTURES = "/archive/data/futures/um/{freq}/klines/ETHUSDT/1h/ETHUSDT-1h-{period}.zip"
MS_2025 = 1_735_689_600_000


def unzip(data: bytes) -> tuple[str, list[list[str]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode()
    return name, [line.split(",") for line in text.splitlines()]


def as_row(fields: list[str], scale: int) -> Row:
    """An archive CSV line in the REST row's units (times back to milliseconds)."""
    assert fields[11] == "0" and len(fields) == 12
    f = [float(x) for x in fields]
    return (
        int(fields[0]) // scale, f[1], f[2], f[3], f[4], f[5], int(fields[6]) // scale,
        f[7], int(fields[8]), f[9], f[10],
    )  # fmt: skip


def month_rows(rows: list[Row], start_ms: int, end_ms: int) -> list[Row]:
    return [r for r in rows if start_ms <= r[0] < end_ms]


def test_spot_monthly_zip_in_microseconds_from_2025(http: httpx.Client) -> None:
    response = http.get(SPOT.format(freq="monthly", period="2025-01"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    name, lines = unzip(response.content)
    assert name == "BTCUSDT-1h-2025-01.csv"
    assert lines[0][0] == "1735689600000000"  # microseconds, no header
    assert lines[0][6] == "1735693199999999"
    expected = month_rows(csv_rows("binance", "spot", "BTCUSDT", "1h"), MS_2025, 1_738_368_000_000)
    assert [as_row(line, 1000) for line in lines] == expected


def test_spot_daily_zip_before_2025_in_milliseconds(http: httpx.Client) -> None:
    _, lines = unzip(http.get(SPOT.format(freq="daily", period="2024-12-31")).content)
    expected = month_rows(
        csv_rows("binance", "spot", "BTCUSDT", "1h"), MS_2025 - 86_400_000, MS_2025
    )
    assert len(lines) == 24 and [as_row(line, 1) for line in lines] == expected


def test_futures_files_have_the_header_line_and_milliseconds(http: httpx.Client) -> None:
    rows = csv_rows("binance", "futures", "ETHUSDT", "1h")
    response = http.get(FUTURES.format(freq="monthly", period="2025-02"))
    _, lines = unzip(response.content)
    assert ",".join(lines[0]) == (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore"
    )
    expected = month_rows(rows, 1_738_368_000_000, 1_740_787_200_000)
    assert [as_row(line, 1) for line in lines[1:]] == expected


def test_checksum_file_matches_the_zip(http: httpx.Client) -> None:
    path = SPOT.format(freq="daily", period="2025-03-02")
    data = http.get(path).content
    checksum = http.get(path + ".CHECKSUM")
    assert checksum.text == f"{hashlib.sha256(data).hexdigest()}  BTCUSDT-1h-2025-03-02.zip\n"
    assert http.get(path).content == data  # reproducible bytes


def test_a_period_exists_only_once_it_has_ended(core_sim: RunningSim, http: httpx.Client) -> None:
    core_sim.reset(now_ms=1_740_787_200_000 - 1)  # the last ms of February 2025
    missing = http.get(SPOT.format(freq="monthly", period="2025-02"))
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    assert http.get(SPOT.format(freq="daily", period="2025-02-27")).status_code == 200
    assert http.get(SPOT.format(freq="daily", period="2025-02-28")).status_code == 404
    core_sim.ctx.clock.advance(1)
    assert http.get(SPOT.format(freq="monthly", period="2025-02")).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        SPOT.format(freq="monthly", period="2010-01"),  # no candles then
        SPOT.format(freq="daily", period="2025-02"),  # a month name in the daily folder
        "/archive/data/spot/monthly/klines/BTCUSDT/1h/ETHUSDT-1h-2025-01.zip",
        "/archive/data/spot/monthly/klines/BTCUSDT/7m/BTCUSDT-7m-2025-01.zip",
        "/archive/data/spot/monthly/klines/NOPE/1h/NOPE-1h-2025-01.zip.CHECKSUM",
    ],
)
def test_what_does_not_exist_is_no_such_key(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Error><Code>NoSuchKey</Code>" in response.text


def test_defect_missing_day(http: httpx.Client) -> None:
    path = SPOT.format(freq="daily", period="2025-03-05")
    http.post("/__sim/faults", json={"kind": "archive_missing", "route": path})
    assert http.get(path).status_code == 404
    assert http.get(path + ".CHECKSUM").status_code == 404
    assert http.get(SPOT.format(freq="daily", period="2025-03-06")).status_code == 200


def test_defect_truncated_file_fails_its_checksum(http: httpx.Client) -> None:
    path = SPOT.format(freq="daily", period="2025-03-07")
    http.post("/__sim/faults", json={"kind": "archive_truncated", "route": "/archive/*-03-07.zip"})
    data = http.get(path).content
    digest = http.get(path + ".CHECKSUM").text.split()[0]
    assert hashlib.sha256(data).hexdigest() != digest
    with pytest.raises(zipfile.BadZipFile):
        unzip(data)


def test_defect_replaced_file_is_valid_but_differs_from_the_candles(http: httpx.Client) -> None:
    path = SPOT.format(freq="daily", period="2025-03-08")
    good = [as_row(line, 1000) for line in unzip(http.get(path).content)[1]]
    http.post("/__sim/faults", json={"kind": "archive_replaced", "route": path})
    data = http.get(path).content
    assert http.get(path + ".CHECKSUM").text.split()[0] == hashlib.sha256(data).hexdigest()
    replaced = [as_row(line, 1000) for line in unzip(data)[1]]
    assert [r[:5] for r in replaced] == [r[:5] for r in good]
    assert [r[5] for r in replaced] == [2 * r[5] for r in good]

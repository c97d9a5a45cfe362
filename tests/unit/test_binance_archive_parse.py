"""Binance public-data kline files to columnar candles: every published layout, and what
makes a file unusable."""

from __future__ import annotations

import hashlib

import pytest

from klinewatch.exchanges.binance.archive import (
    ArchiveFileError,
    file_path,
    parse_kline_csv,
    read_kline_file,
    verify_checksum,
)
from klinewatch.sim.archive import FUTURES_HEADER, build_zip

MS_ROWS = (
    b"1735689600000,93576.00,93610.93,93537.50,93610.93,8.21827,1735689659999,"
    b"769067.26,1234,4.5,421137.0,0\n"
    b"1735689660000,93610.93,93652.00,93606.00,93640.00,11.5,1735689719999,"
    b"1077000.5,2000,6.25,585000.25,0\n"
)


def micros(rows: bytes) -> bytes:
    out = []
    for line in rows.decode().splitlines():
        fields = line.split(",")
        fields[0] = str(int(fields[0]) * 1000)
        fields[6] = str(int(fields[6]) * 1000 + 999)
        out.append(",".join(fields))
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize(
    "data",
    [
        MS_ROWS,
        micros(MS_ROWS),
        FUTURES_HEADER.encode() + MS_ROWS,
        FUTURES_HEADER.encode() + micros(MS_ROWS),
        b"\xef\xbb\xbf" + MS_ROWS.replace(b"\n", b"\r\n"),
    ],
    ids=["ms", "us", "header-ms", "header-us", "bom-crlf"],
)
def test_every_layout_gives_the_same_candles(data: bytes) -> None:
    candles = parse_kline_csv(data, "x.csv")
    assert candles.open_time_ms.tolist() == [1_735_689_600_000, 1_735_689_660_000]
    assert candles.close_time_ms.tolist() == [1_735_689_659_999, 1_735_689_719_999]
    assert candles.volume.tolist() == [8.21827, 11.5]
    assert candles.trade_count.tolist() == [1234, 2000]
    assert candles.taker_buy_quote_volume.tolist() == [421137.0, 585000.25]


def test_a_zip_with_its_checksum_is_read() -> None:
    data = build_zip("BTCUSDT-1m-2025-01-01.csv", MS_ROWS)
    checksum = f"{hashlib.sha256(data).hexdigest()}  BTCUSDT-1m-2025-01-01.zip\n"
    assert len(read_kline_file(data, "BTCUSDT-1m-2025-01-01.zip", checksum)) == 2


@pytest.mark.parametrize(
    ("data", "name", "checksum", "reason"),
    [
        (b"PK\x03\x04 broken", "a.zip", None, "not a readable zip"),
        (build_zip("a.csv", MS_ROWS)[:-30], "a.zip", None, "not a readable zip"),
        (b"1735689600000,x,1,1,1,1,1,1,1,1,1,0\n", "a.csv", None, "not a Binance kline CSV"),
        (b"1735689600000,1,1\n", "a.csv", None, "not a Binance kline CSV"),
        (MS_ROWS, "a.csv", "0" * 64 + "  a.csv", "checksum mismatch"),
        (MS_ROWS, "a.csv", "<html>", "CHECKSUM file is malformed"),
    ],
)
def test_an_unusable_file_is_refused_with_its_name_and_why(
    data: bytes, name: str, checksum: str | None, reason: str
) -> None:
    with pytest.raises(ArchiveFileError) as refused:
        read_kline_file(data, name, checksum)
    assert refused.value.name == name and reason in refused.value.reason
    assert refused.value.message.startswith(f"{name}: ")


def test_checksum_is_the_sha256_of_the_bytes() -> None:
    data = build_zip("a.csv", MS_ROWS)
    verify_checksum(data, hashlib.sha256(data).hexdigest().upper() + "  a.zip", "a.zip")


def test_archive_paths_are_the_real_ones() -> None:
    assert file_path("spot", "BTCUSDT", "1m", "monthly", 1_735_689_600_000) == (
        "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip"
    )
    assert file_path("futures", "ETHUSDT", "5m", "daily", 1_735_689_600_000) == (
        "data/futures/um/daily/klines/ETHUSDT/5m/ETHUSDT-5m-2025-01-01.zip"
    )

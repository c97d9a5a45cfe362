"""The recorded CSVs read with the standard library only, so tests check the simulator
against the files themselves, not against the simulator's own parser."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from klinewatch.sim.testing import default_data_dir

Row = tuple[int, float, float, float, float, float, int, float, int, float, float]


def csv_rows(exchange: str, market: str, symbol: str, interval: str) -> list[Row]:
    """Every candle of a recorded series (empty optional fields as 0), or skip."""
    path = default_data_dir() / exchange / market / "klines" / symbol / f"{interval}.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not in the test data")
    return [_typed(fields) for fields in csv.reader(gzip.open(path, "rt")) if fields]


def _typed(fields: list[str]) -> Row:
    def f(i: int) -> float:
        return float(fields[i] or 0)

    return (
        int(fields[0]), f(1), f(2), f(3), f(4), f(5), int(fields[6]), f(7),
        int(fields[8] or 0), f(9), f(10),
    )  # fmt: skip


def served(row: list[object]) -> Row:
    """A Binance klines row (strings for decimals) as the same typed tuple."""
    assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
    assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10))
    assert row[11] == "0" and len(row) == 12
    return (
        row[0], float(row[1]), float(row[2]), float(row[3]), float(row[4]),  # type: ignore[arg-type]
        float(row[5]), row[6], float(row[7]), row[8], float(row[9]), float(row[10]),  # type: ignore[arg-type]
    )  # fmt: skip


def data_dir() -> Path:
    return default_data_dir()

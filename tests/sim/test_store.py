"""The series store: fast CSV parsing that keeps every value, aliases, the history shift."""

from __future__ import annotations

import gzip

import numpy as np

from klinewatch.domain.intervals import DAY_MS
from klinewatch.sim.store import SeriesStore, read_kline_csv, replicate_symbols
from klinewatch.sim.testing import default_data_dir
from tests.sim.recorded import csv_rows


def test_parse_keeps_every_value_and_serves_empty_fields_as_zero() -> None:
    data = (
        b"1761955200000,2.88,2.882,2.88,2.881,12191.3,1761955259999,35123.5175,165,7458.8,21489.5229,0\n"
        b"1761955260000,2.881,2.883,2.879,2.88,100.5,1761955319999,,,,,0\n"
    )
    candles = read_kline_csv(data)
    assert candles.open_time_ms.tolist() == [1761955200000, 1761955260000]
    assert candles.trade_count.tolist() == [165, 0]
    assert candles.quote_volume.tolist() == [35123.5175, 0.0]
    assert candles.taker_buy_quote_volume.tolist() == [21489.5229, 0.0]
    assert candles.close.tolist() == [2.881, 2.88]


def test_parse_skips_a_header_line_and_reads_nothing_from_nothing() -> None:
    header = b"open_time,open,high,low,close,volume,close_time,quote_volume,count,a,b,ignore\n"
    row = b"1,2,3,1,2,5,59999,0,0,0,0,0\n"
    assert read_kline_csv(header + row).open_time_ms.tolist() == [1]
    assert len(read_kline_csv(b"")) == 0


def test_store_matches_the_csv_read_by_the_standard_library() -> None:
    store = SeriesStore(default_data_dir())
    candles = store.get("binance", "futures", "DOTUSDT", "1m")
    expected = np.array(csv_rows("binance", "futures", "DOTUSDT", "1m"), dtype=np.float64)
    got = np.column_stack([c.astype(np.float64) for c in candles.columns()])
    np.testing.assert_array_equal(got, expected)


def test_aliases_share_one_parsed_series() -> None:
    store = SeriesStore(default_data_dir())
    names = replicate_symbols(store, 2)[("binance", "spot")]
    assert names == ["SIM0001USDT", "SIM0002USDT"]
    assert store.get("binance", "spot", "SIM0002USDT", "1d") is store.get(
        "binance", "spot", "BTCUSDT", "1d"
    )
    assert "SIM0001USDT" in store.symbols("binance", "spot")


def test_shift_moves_open_and_close_times_only() -> None:
    store = SeriesStore(default_data_dir())
    before = store.get("binance", "spot", "BTCUSDT", "1d")
    store.set_shift(3 * DAY_MS)
    after = store.get("binance", "spot", "BTCUSDT", "1d")
    assert (after.open_time_ms - before.open_time_ms == 3 * DAY_MS).all()
    assert (after.close_time_ms - before.close_time_ms == 3 * DAY_MS).all()
    np.testing.assert_array_equal(after.close, before.close)


def test_recorded_end_reads_the_last_line_of_every_series() -> None:
    store = SeriesStore(default_data_dir())
    ends = []
    for path in default_data_dir().glob("*/*/klines/*/1d.csv.gz"):
        last = gzip.decompress(path.read_bytes()).strip().splitlines()[-1]
        ends.append(int(last.split(b",")[6]) + 1)
    end = store.recorded_end_ms()
    assert end is not None and end >= max(ends)

"""Columnar candles and their sanity rules."""

from __future__ import annotations

import numpy as np

from klinewatch.domain.candles import Candles, validate
from klinewatch.domain.intervals import HOUR_MS, parse_interval

hour = parse_interval("1h")


def make(n: int, start: int = 1_700_000_000_000 // HOUR_MS * HOUR_MS) -> Candles:
    t = start + np.arange(n, dtype=np.int64) * HOUR_MS
    base = 100 + np.arange(n, dtype=np.float64)
    return Candles.from_columns(
        open_time_ms=t,
        open=base,
        high=base + 2,
        low=base - 2,
        close=base + 1,
        volume=np.full(n, 10.0),
        close_time_ms=t + HOUR_MS - 1,
        quote_volume=base * 10,
        trade_count=np.full(n, 7),
        taker_buy_base_volume=np.full(n, 4.0),
        taker_buy_quote_volume=base * 4,
    )


def test_sorted_unique_orders_and_keeps_the_last_duplicate() -> None:
    c = make(5)
    shuffled = Candles.concat([c.take(np.array([3, 1])), c, c.take(np.array([2]))])
    changed = shuffled.columns()
    changed[5][-1] = 99.0  # the last copy of row 2 carries another volume
    result = Candles(*changed).sorted_unique()
    assert list(result.open_time_ms) == list(c.open_time_ms)
    assert result.volume[2] == 99.0


def test_from_rows_reads_binance_strings_and_blank_fields() -> None:
    rows = [[1700000000000, "1.5", "2", "1", "1.8", "10", 1700003599999, "", 3, "", "", "0"]]
    c = Candles.from_rows(rows)
    assert c.open[0] == 1.5 and c.quote_volume[0] == 0.0 and c.trade_count[0] == 3


def test_validate_rejects_each_bad_candle_with_its_reason_and_keeps_the_rest() -> None:
    c = make(6)
    cols = c.columns()
    cols[2][1] = cols[3][1] - 1  # high below low
    cols[5][2] = -1.0  # negative volume
    cols[0][3] += 60_000  # off the hourly grid
    cols[6][3] += 60_000
    cols[4][4] = float("nan")  # not finite
    valid, rejected = validate(Candles(*cols), hour)
    assert len(valid) == 2
    reasons = {r.open_time_ms: r.reason for r in rejected}
    assert reasons[int(cols[0][1])] == "high is below low"
    assert reasons[int(cols[0][2])] == "a volume or count is negative"
    assert "grid" in reasons[int(cols[0][3])]
    assert reasons[int(cols[0][4])] == "a value is not finite"


def test_real_candles_all_pass_validation(sample_dir: object) -> None:
    from klinewatch.sim.store import SeriesStore

    store = SeriesStore(sample_dir)  # type: ignore[arg-type]
    for market, symbol, name in [
        ("spot", "BTCUSDT", "1h"),
        ("futures", "DOTUSDT", "1m"),
        ("spot", "KITEUSDT", "1h"),
    ]:
        candles = store.get("binance", market, symbol, name)
        valid, rejected = validate(candles, parse_interval(name))
        assert rejected == [] and len(valid) == len(candles) > 1000

"""Indicators over a window equal TA-Lib over the full stored history, on real series."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from talib import abstract

from klinewatch.domain import indicators as ind
from klinewatch.domain.candles import Candles
from klinewatch.domain.indicators import (
    Indicator,
    IndicatorParams,
    InsufficientWarmup,
    candles_to_load_before,
    compute,
    index_at_or_after,
    output_keys,
    warmup_by_indicator,
    warmup_candles,
)
from klinewatch.errors import InvalidInput
from klinewatch.sim.store import SeriesStore

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
# The longest series, a 90% crash, one with 10-hour flat stretches, minute data, a tiny one.
SERIES = [
    ("binance", "spot", "BTCUSDT", "1h"),
    ("binance", "spot", "OMUSDT", "1h"),
    ("okx", "futures", "BTC-USDT-SWAP", "5m"),
    ("binance", "futures", "DOTUSDT", "1m"),
    ("binance", "spot", "PEPEUSDT", "1h"),
    ("binance", "futures", "SPACEUSDT", "1d"),
]
TOLERANCE = 1e-9


@functools.cache
def series(key: tuple[str, str, str, str]) -> Candles:
    return SeriesStore(SAMPLE).get(*key)


def as_array(values: list[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def load_window(c: Candles, start: int, end: int, p: IndicatorParams) -> tuple[dict[str, Any], int]:
    """What the service does: load the planned warm-up, load more while compute asks."""
    before = candles_to_load_before(start, p)
    while True:
        part = c.take(slice(start - before, end))
        try:
            return compute(part, p, before, series_start=before == start), before
        except InsufficientWarmup as e:
            before = min(start, e.needed)


def deviation(key: str, got: Any, want: Any, close: Any, volume_unit: float) -> float:
    """Error relative to the value, or to the unit the rounding lives in when larger:
    the price for MACD (a difference of two price EMAs, zero at each crossing), the
    series' typical volume for volume MA (its running sum leaves ~1e-12 residues where
    volume is 0), 1 RSI point for RSI."""
    floor: Any = volume_unit if key.startswith("volume") else 1.0 if key == "rsi" else np.abs(close)
    with np.errstate(invalid="ignore"):
        return float(np.nanmax(np.abs(got - want) / np.maximum(np.abs(want), floor), initial=0))


def assert_window_matches_full_history(
    c: Candles,
    p: IndicatorParams,
    start: int,
    length: int,
    full: dict[str, list[float | None]] | None = None,
) -> None:
    end = min(len(c), start + length)
    full = full or compute(c, p, 0, series_start=True)
    got, loaded_before = load_window(c, start, end, p)
    assert list(got) == list(full)
    volume_unit = float(np.median(c.volume)) or 1.0
    for key, values in got.items():
        mine, want = as_array(values), as_array(full[key][start:end])
        assert np.array_equal(np.isnan(mine), np.isnan(want)), key  # None exactly where TA-Lib
        if loaded_before == start or key in {"volume", "ema1", "ma1"}:
            assert np.array_equal(mine, want, equal_nan=True), key  # whole prefix: bit-exact
        else:
            assert deviation(key, mine, want, c.close[start:end], volume_unit) < TOLERANCE, key


def period_lists(lo: int = 1) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(lo, ind.PERIOD_MAX), min_size=1, max_size=3)


@st.composite
def params(draw: st.DrawFn) -> IndicatorParams:
    fast = draw(st.integers(2, 120))
    return IndicatorParams(
        indicators=tuple(draw(st.sets(st.sampled_from(list(Indicator)), min_size=1))),
        ma_periods=tuple(draw(period_lists())),
        ema_periods=tuple(draw(period_lists())),
        macd_fast=fast,
        macd_slow=draw(st.integers(fast + 1, 200)),
        macd_signal=draw(st.integers(1, 60)),
        rsi_period=draw(st.integers(2, 60)),
        boll_period=draw(st.integers(2, 200)),
        boll_std=draw(st.floats(0.5, 4)),
        vol_ma_period=draw(st.integers(1, 200)),
    )


# --- the key requirement --------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), key=st.sampled_from(SERIES), length=st.integers(1, 400))
def test_default_indicators_for_a_window_anywhere_equal_the_full_history(
    data: st.DataObject, key: tuple[str, str, str, str], length: int
) -> None:
    c = series(key)
    start = data.draw(st.integers(0, len(c) - 1), label="start")
    assert_window_matches_full_history(c, IndicatorParams(), start, length)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), key=st.sampled_from(SERIES), p=params(), length=st.integers(1, 300))
def test_any_parameters_for_a_window_anywhere_equal_the_full_history(
    data: st.DataObject, key: tuple[str, str, str, str], p: IndicatorParams, length: int
) -> None:
    c = series(key)
    start = data.draw(st.integers(0, len(c) - 1), label="start")
    assert_window_matches_full_history(c, p, start, length)


@pytest.mark.parametrize("key", SERIES)
def test_a_sweep_of_window_starts_stays_within_tolerance(key: tuple[str, str, str, str]) -> None:
    c = series(key)
    p = IndicatorParams()
    full = compute(c, p, 0, series_start=True)
    step = max(1, len(c) // 150)
    for start in [*range(warmup_candles(p) - 3, len(c), step), len(c) - 1]:
        assert_window_matches_full_history(c, p, max(0, start), 50, full)


def test_the_window_alone_gives_other_numbers_which_is_why_warmup_exists() -> None:
    c = series(SERIES[0])
    start = 40_000
    naive = talib.EMA(c.close[start : start + 100], timeperiod=26)[25:]
    full = talib.EMA(c.close, timeperiod=26)[start + 25 : start + 100]
    assert np.max(np.abs(naive - full) / full) > 1e-6


def test_loading_from_the_first_candle_is_bit_exact_for_every_indicator() -> None:
    c = series(SERIES[0])
    p = IndicatorParams(ema_periods=(12, 26, 200))
    full = compute(c, p, 0, series_start=True)
    prefix = c.take(slice(0, 3_000))
    got = compute(prefix, p, 2_800, series_start=True)
    for key, values in got.items():
        assert values == full[key][2_800:3_000], key


# --- warm-up -------------------------------------------------------------------------


def test_warmup_covers_talib_lookback_and_equals_it_for_simple_averages() -> None:
    p = IndicatorParams()
    lookback = {
        Indicator.MA: abstract.Function("SMA", timeperiod=30).lookback,
        Indicator.EMA: abstract.Function("EMA", timeperiod=26).lookback,
        Indicator.MACD: abstract.Function("MACD").lookback,
        Indicator.RSI: abstract.Function("RSI", timeperiod=14).lookback,
        Indicator.BOLL: abstract.Function("BBANDS", timeperiod=20).lookback,
        Indicator.VOL: abstract.Function("SMA", timeperiod=20).lookback,
    }
    warmup = warmup_by_indicator(p)
    for indicator in (Indicator.MA, Indicator.BOLL, Indicator.VOL):
        assert warmup[indicator] == lookback[indicator]
    for indicator in (Indicator.EMA, Indicator.MACD, Indicator.RSI):
        assert warmup[indicator] > lookback[indicator] + 100
    assert warmup_candles(p) == max(warmup.values()) == 517


def test_warmup_decay_reaches_the_target() -> None:
    for period in (2, 12, 26, 500):
        steps = warmup_by_indicator(IndicatorParams(ema_periods=(period,)))[Indicator.EMA]
        decayed = (1 - 2 / (period + 1)) ** (steps - period + 1)
        assert decayed <= ind.DECAY_TARGET


def test_warmup_only_counts_requested_indicators() -> None:
    assert warmup_candles(IndicatorParams(indicators=(Indicator.MA,), ma_periods=(7,))) == 6


def test_too_short_a_warmup_is_refused_rather_than_wrong() -> None:
    c = series(SERIES[0])
    p = IndicatorParams()
    with pytest.raises(InsufficientWarmup) as caught:
        compute(c.take(slice(1_000, 1_300)), p, 200)
    assert caught.value.needed == warmup_candles(p)


def test_rsi_through_a_flat_market_asks_for_more_history() -> None:
    rng = np.random.default_rng(7)
    active = 100 + np.cumsum(rng.normal(0, 1, 600))
    close = np.concatenate([active, np.full(800, active[-1])])
    c = candles_from_close(close)
    p = IndicatorParams(indicators=(Indicator.RSI,))
    w = warmup_candles(p)
    start = 1_300  # inside the flat stretch, which is longer than the warm-up
    with pytest.raises(InsufficientWarmup, match="moved"):
        compute(c.take(slice(start - w, start + 10)), p, w)
    got, _ = load_window(c, start, start + 10, p)
    assert got["rsi"] == compute(c, p, 0, series_start=True)["rsi"][start : start + 10]


def test_a_thousandfold_crash_during_the_warmup_is_caught_by_the_seed_check() -> None:
    n = 2_000
    close = np.concatenate([np.full(n // 2, 1e7), np.geomspace(1e7, 1e-2, n // 2)])
    c = candles_from_close(close)
    p = IndicatorParams(indicators=(Indicator.EMA,), ema_periods=(26,))
    w = warmup_candles(p)
    start = n - 50
    with pytest.raises(InsufficientWarmup, match="seeded"):
        compute(c.take(slice(start - w, n)), p, w)
    got, before = load_window(c, start, n, p)
    assert before > w
    want = as_array(compute(c, p, 0, series_start=True)["ema26"][start:])
    assert deviation("ema26", as_array(got["ema26"]), want, close[start:], 1.0) < TOLERANCE


def test_load_the_whole_prefix_when_it_is_short() -> None:
    p = IndicatorParams()
    assert candles_to_load_before(0, p) == 0
    assert candles_to_load_before(ind.EXACT_PREFIX_MAX, p) == ind.EXACT_PREFIX_MAX
    assert candles_to_load_before(ind.EXACT_PREFIX_MAX + 1, p) == warmup_candles(p)
    huge = IndicatorParams(macd_slow=500, macd_signal=500)
    assert candles_to_load_before(warmup_candles(huge), huge) == warmup_candles(huge)


# --- output shape --------------------------------------------------------------------


def test_lookback_points_are_none_and_keys_follow_the_seed() -> None:
    c = series(SERIES[0]).take(slice(0, 100))
    got = compute(c, IndicatorParams(), 0, series_start=True)
    assert list(got) == [
        "ma5", "ma10", "ma20", "ma30", "ema12", "ema26", "macd", "macd_signal",
        "macd_histogram", "rsi", "boll_upper", "boll_middle", "boll_lower", "volume",
        "volume_ma",
    ]  # fmt: skip
    assert got["ma5"][:4] == [None] * 4 and got["ma5"][4] is not None
    assert got["macd"][:33] == [None] * 33 and got["macd"][33] is not None
    assert got["rsi"][:14] == [None] * 14 and got["rsi"][14] is not None
    assert all(len(v) == 100 for v in got.values())


def test_bollinger_middle_band_is_the_simple_average() -> None:
    c = series(SERIES[0]).take(slice(0, 500))
    got = compute(c, IndicatorParams(), 0, series_start=True)
    assert got["boll_middle"] == got["ma20"]


def test_output_keys_group_what_compute_returns() -> None:
    p = IndicatorParams(ma_periods=(7, 99), indicators=(Indicator.MA, Indicator.MACD))
    assert output_keys(p) == {
        Indicator.MA: ["ma7", "ma99"],
        Indicator.MACD: ["macd", "macd_signal", "macd_histogram"],
    }
    c = series(SERIES[0]).take(slice(0, 200))
    got = compute(c, p, 0, series_start=True)
    assert list(got) == [key for keys in output_keys(p).values() for key in keys]


def test_a_time_range_window_starts_at_the_first_candle_at_or_after_it() -> None:
    c = series(SERIES[0]).take(slice(0, 10))
    t = c.open_time_ms
    assert index_at_or_after(c, int(t[3])) == 3
    assert index_at_or_after(c, int(t[3]) + 1) == 4
    assert index_at_or_after(c, 0) == 0
    assert index_at_or_after(c, int(t[-1]) + 1) == 10


def test_an_empty_window_and_a_negative_start() -> None:
    c = series(SERIES[0]).take(slice(0, 10))
    assert compute(c, IndicatorParams(), 10, series_start=True)["rsi"] == []
    with pytest.raises(ValueError, match="negative"):
        compute(c, IndicatorParams(), -1, series_start=True)


# --- parameters ----------------------------------------------------------------------


def test_defaults_are_the_seeds() -> None:
    p = IndicatorParams()
    assert p.indicators == tuple(Indicator)
    assert p.ma_periods == (5, 10, 20, 30)
    assert (p.macd_fast, p.macd_slow, p.macd_signal) == (12, 26, 9)
    assert (p.rsi_period, p.boll_period, p.boll_std, p.vol_ma_period) == (14, 20, 2.0, 20)


def test_query_strings_are_split_sorted_and_deduplicated() -> None:
    p = IndicatorParams.parse({"indicators": "macd, MA", "ma_periods": "20,5,5"})
    assert p.indicators == (Indicator.MA, Indicator.MACD)
    assert p.ma_periods == (5, 20)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"ma_periods": [5, 0]}, "ma_periods"),
        ({"ma_periods": "5,501"}, "ma_periods"),
        ({"ma_periods": []}, "ma_periods"),
        ({"ma_periods": list(range(1, 12))}, "ma_periods"),
        ({"ema_periods": "12,abc"}, "ema_periods"),
        ({"macd_fast": 26, "macd_slow": 12}, "macd_slow"),
        ({"macd_fast": 12, "macd_slow": 12}, "macd_slow"),
        ({"macd_fast": 1}, "macd_fast"),
        ({"macd_signal": 0}, "macd_signal"),
        ({"rsi_period": 1}, "rsi_period"),
        ({"rsi_period": 501}, "rsi_period"),
        ({"boll_period": 1}, "boll_period"),
        ({"boll_std": 0}, "boll_std"),
        ({"boll_std": float("inf")}, "boll_std"),
        ({"vol_ma_period": 0}, "vol_ma_period"),
        ({"indicators": "MA,FOO"}, "indicators"),
        ({"indicators": ""}, "indicators"),
        ({"periods": [5]}, "periods"),
    ],
)
def test_bad_parameters_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        IndicatorParams.parse(raw)
    assert caught.value.field == field
    assert caught.value.details["field"] == field
    assert caught.value.code == "INVALID_PARAMS"


def test_params_hash_is_stable_and_ignores_what_does_not_matter() -> None:
    p = IndicatorParams()
    assert p.params_hash() == IndicatorParams().params_hash()
    assert len(p.params_hash()) == 16
    assert p.params_hash() == "a8c4ecd260416823"  # pinned: caches survive restarts
    same = IndicatorParams.parse(
        {"ma_periods": "30,20,10,5", "indicators": "VOL,BOLL,RSI,MACD,EMA,MA"}
    )
    assert same.params_hash() == p.params_hash()
    ma_only = p.only(Indicator.MA)
    assert ma_only.params_hash() == ma_only.model_copy(update={"rsi_period": 30}).params_hash()
    assert ma_only.params_hash() != p.only(Indicator.MA, Indicator.RSI).params_hash()
    assert p.model_copy(update={"boll_std": 2.5}).params_hash() != p.params_hash()


def test_effective_parameters_echo_the_seed_cache_format() -> None:
    assert IndicatorParams().only(Indicator.MA).effective() == {"MA": {"periods": [5, 10, 20, 30]}}


def candles_from_close(close: Any) -> Candles:
    n = len(close)
    t = np.arange(n, dtype=np.int64) * 3_600_000
    return Candles.from_columns(
        open_time_ms=t,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=np.ones(n),
        close_time_ms=t + 3_599_999,
    )

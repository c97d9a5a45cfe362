"""The eight detectors: a normal case, the exact threshold, and too little data each."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klinewatch.domain.candles import Candles
from klinewatch.domain.volume_trap import detectors as d
from klinewatch.domain.volume_trap.params import VolumeTrapParams
from klinewatch.errors import InvalidInput
from tests.unit.volume_trap.factory import (
    Build,
    random_candles,
    ref_amplitude,
    ref_obv,
    ref_rvol,
    ref_scaled_slope,
    ref_sma,
    ref_wilder_atr,
)

P = VolumeTrapParams()


def below(x: float) -> float:
    """The largest float under x: the nearest miss of a threshold."""
    return float(np.nextafter(x, -math.inf))


def above(x: float) -> float:
    return float(np.nextafter(x, math.inf))


def assert_insufficient(err: pytest.ExceptionInfo[d.DataInsufficient]) -> None:
    assert err.value.code == "ERR_DATA_INSUFFICIENT"
    assert isinstance(err.value, InvalidInput)


# -- 1. RVOL ---------------------------------------------------------------------------


def test_rvol_matches_the_spec_formula_on_a_random_series() -> None:
    c = random_candles(3, 90)
    v = c.volume.tolist()
    for t in range(20, 90):
        r = d.rvol(c, t, P)
        assert r.ratio == pytest.approx(ref_rvol(v, t), rel=1e-12)
        assert r.passed is (r.ratio >= P.rvol_min)


def test_rvol_passes_a_burst_and_not_a_quiet_candle() -> None:
    c = Build().flat(20, volume=100).candle(100, 101, 99, 100, 1500).flat(1).candles()
    assert d.rvol(c, 20, P).passed
    assert d.rvol(c, 20, P).ratio == 15.0
    assert not d.rvol(c, 21, P).passed


def test_rvol_exactly_at_the_threshold_passes_and_just_under_fails() -> None:
    at = Build().flat(20, volume=1.0).candle(100, 101, 99, 100, 8.0).candles()
    assert d.rvol(at, 20, P).ratio == P.rvol_min
    assert d.rvol(at, 20, P).passed
    under = Build().flat(20, volume=1.0).candle(100, 101, 99, 100, below(8.0)).candles()
    assert not d.rvol(under, 20, P).passed


def test_rvol_needs_twenty_prior_candles() -> None:
    c = Build().flat(21).candles()
    with pytest.raises(d.DataInsufficient) as err:
        d.rvol(c, 19, P)
    assert_insufficient(err)
    assert err.value.details == {"field": "rvol", "needed": 20, "available": 19}
    d.rvol(c, 20, P)


def test_rvol_after_candles_without_volume_is_infinite_not_an_error() -> None:
    burst = Build().flat(20, volume=0.0).candle(100, 101, 99, 100, 5.0).candles()
    assert d.rvol(burst, 20, P).ratio == math.inf
    assert d.rvol(burst, 20, P).passed
    dead = Build().flat(21, volume=0.0).candles()
    assert d.rvol(dead, 20, P).ratio == 0.0
    assert not d.rvol(dead, 20, P).passed


def test_an_index_outside_the_series_is_a_caller_error_not_short_data() -> None:
    c = Build().flat(30).candles()
    with pytest.raises(InvalidInput) as err:
        d.rvol(c, 30, P)
    assert not isinstance(err.value, d.DataInsufficient)


@settings(max_examples=60, deadline=None)
@given(
    volume=st.lists(st.floats(0, 1e9, allow_subnormal=False), min_size=21, max_size=80),
    data=st.data(),
)
def test_the_whole_history_baseline_equals_every_window_bit_for_bit(
    volume: list[float], data: st.DataObject
) -> None:
    """What makes a replay agree with a live scan at an exact threshold."""
    v = np.asarray(volume)
    whole = d.trailing_mean(v, 20)
    t = data.draw(st.integers(20, len(v) - 1))
    start = data.draw(st.integers(0, t - 20))
    window = d.trailing_mean(v[start : t + 1], 20)
    assert whole[t].tobytes() == window[-1].tobytes()


# -- 2. Amplitude ----------------------------------------------------------------------


def test_amplitude_matches_the_spec_formula_and_passes_a_wide_candle() -> None:
    c = Build().flat(20, half_range=1.0).candle(100, 112, 100, 110, 100).candles()
    r = d.amplitude(c, 20, P)
    baseline = statistics.fmean(ref_amplitude(c, i) for i in range(20))
    assert r.amplitude_pct == pytest.approx(ref_amplitude(c, 20))
    assert r.baseline_pct == pytest.approx(baseline)
    assert r.ratio == pytest.approx(ref_amplitude(c, 20) / baseline)
    assert r.passed


def test_amplitude_exactly_ten_percent_passes() -> None:
    c = Build().flat(20, half_range=1.0).candle(100, 110, 100, 105, 100).candles()
    assert d.amplitude(c, 20, P).amplitude_pct == P.amplitude_min_pct
    assert d.amplitude(c, 20, P).passed
    c = Build().flat(20, half_range=1.0).candle(100, below(110), 100, 105, 100).candles()
    assert not d.amplitude(c, 20, P).passed


def test_amplitude_ratio_exactly_three_passes() -> None:
    c = Build().flat(20, half_range=2.0).candle(100, 112, 100, 105, 100).candles()
    r = d.amplitude(c, 20, P)
    assert (r.baseline_pct, r.ratio) == (4.0, P.amplitude_ratio_min)
    assert r.passed
    c = Build().flat(20, half_range=2.0).candle(100, 111.9, 100, 105, 100).candles()
    assert d.amplitude(c, 20, P).amplitude_pct >= P.amplitude_min_pct
    assert not d.amplitude(c, 20, P).passed


def test_amplitude_needs_twenty_prior_candles() -> None:
    c = Build().flat(20).candles()
    with pytest.raises(d.DataInsufficient) as err:
        d.amplitude(c, 19, P)
    assert_insufficient(err)


# -- 3. Volume retention ------------------------------------------------------------------


def burst_then(after_volumes: list[float], close: float = 100.0) -> tuple[Candles, int]:
    b = Build().flat(25).candle(100, 110, 90, 100, 100.0)
    for v in after_volumes:
        b.candle(close, close + 0.5, close - 0.5, close, v)
    return b.candles(), 25


def test_retention_is_mean_volume_after_over_the_trigger_volume() -> None:
    c, k = burst_then([5.0, 7.0, 3.0, 9.0])
    r = d.volume_retention(c, k, k + 4, P)
    assert r.retention == pytest.approx(statistics.fmean([5, 7, 3, 9]) / 100)
    assert (r.candles_after, r.passed) == (4, True)
    c, k = burst_then([50.0, 50.0, 50.0])
    assert not d.volume_retention(c, k, k + 3, P).passed


def test_retention_exactly_at_the_threshold_after_exactly_three_candles_passes() -> None:
    c, k = burst_then([15.0, 15.0, 15.0])
    r = d.volume_retention(c, k, k + 3, P)
    assert r.retention == P.retention_max
    assert r.passed
    c, k = burst_then([15.0, 15.0, 15.0001])
    assert not d.volume_retention(c, k, k + 3, P).passed


def test_retention_needs_three_candles_after_the_trigger() -> None:
    c, k = burst_then([1.0, 1.0, 1.0])
    with pytest.raises(d.DataInsufficient) as err:
        d.volume_retention(c, k, k + 2, P)
    assert_insufficient(err)
    assert err.value.details["needed"] == 3


# -- 4. Key-level breach ------------------------------------------------------------------


def test_breach_is_the_close_below_the_trigger_midpoint_in_percent() -> None:
    c, k = burst_then([1.0], close=95.0)
    r = d.key_level_breach(c, k, k + 1, P)
    assert (r.key_level, r.breach_pct, r.passed) == (100.0, 5.0, True)
    c, k = burst_then([1.0], close=100.5)
    assert not d.key_level_breach(c, k, k + 1, P).passed


def test_breach_of_exactly_one_percent_passes() -> None:
    c, k = burst_then([1.0], close=99.0)
    assert d.key_level_breach(c, k, k + 1, P).breach_pct == P.breach_min_pct
    assert d.key_level_breach(c, k, k + 1, P).passed
    c, k = burst_then([1.0], close=99.01)
    assert not d.key_level_breach(c, k, k + 1, P).passed


def test_breach_needs_a_candle_after_the_trigger() -> None:
    c, k = burst_then([1.0])
    with pytest.raises(d.DataInsufficient) as err:
        d.key_level_breach(c, k, k, P)
    assert_insufficient(err)


# -- 5. Price efficiency ------------------------------------------------------------------


def after_closes(closes: list[float]) -> tuple[Candles, int]:
    b = Build().flat(25, price=closes[0]).closes(closes)
    return b.candles(), 25


def test_efficiency_is_net_move_over_path_since_the_trigger() -> None:
    path = [10.0, 12.0, 11.0, 14.0, 13.0]
    c, k = after_closes(path)
    r = d.price_efficiency(c, k, k + 4, P)
    expected = abs(path[-1] - path[0]) / sum(
        abs(b - a) for a, b in zip(path[:-1], path[1:], strict=True)
    )
    assert r.efficiency == pytest.approx(expected)
    assert r.net_change_pct == pytest.approx(30.0)
    assert not r.passed  # an efficient move up: the trap's buyers were right


def test_efficiency_exactly_at_the_threshold_passes_and_a_fall_always_passes() -> None:
    c, k = after_closes([10.0, 16.5, 13.0])
    assert d.price_efficiency(c, k, k + 2, P).efficiency == P.efficiency_max
    assert d.price_efficiency(c, k, k + 2, P).passed
    c, k = after_closes([10.0, 16.5, 13.01])
    assert not d.price_efficiency(c, k, k + 2, P).passed
    c, k = after_closes([10.0, 9.0, 8.0])
    r = d.price_efficiency(c, k, k + 2, P)
    assert (r.efficiency, r.passed) == (1.0, True)


def test_efficiency_of_a_price_that_never_moved_is_zero() -> None:
    c, k = after_closes([10.0, 10.0, 10.0])
    assert d.price_efficiency(c, k, k + 2, P).efficiency == 0.0


def test_efficiency_needs_a_candle_after_the_trigger() -> None:
    c, k = after_closes([10.0, 11.0])
    with pytest.raises(d.DataInsufficient) as err:
        d.price_efficiency(c, k, k, P)
    assert_insufficient(err)


# -- 6. MA cross ------------------------------------------------------------------------


def test_ma_cross_is_found_where_the_plain_averages_cross() -> None:
    closes = [100.0 + i for i in range(40)] + [140.0 - 3 * i for i in range(1, 20)]
    c = Build().closes(closes).candles()
    k, t = 39, len(closes) - 1
    r = d.ma_cross(c, k, t, P)
    below_at = [ref_sma(closes, j, 7) < ref_sma(closes, j, 25) for j in range(k, t + 1)]
    j = next(k + i for i in range(1, len(below_at)) if below_at[i] and not below_at[i - 1])
    assert r.passed
    assert r.cross_open_time_ms == int(c.open_time_ms[j])
    assert r.ma_fast == pytest.approx(ref_sma(closes, t, 7))
    assert r.ma_slow == pytest.approx(ref_sma(closes, t, 25))


def test_ma_cross_from_exactly_equal_counts_and_equal_is_not_below() -> None:
    flat = [100.0] * 40
    c = Build().closes([*flat, 99.0]).candles()
    r = d.ma_cross(c, 39, 40, P)  # equal at the trigger, below on the next candle
    assert r.passed
    assert r.cross_open_time_ms == int(c.open_time_ms[40])
    c = Build().closes([*flat, 100.0, 100.0]).candles()
    assert not d.ma_cross(c, 39, 41, P).passed


def test_ma_already_below_at_the_trigger_is_not_a_cross() -> None:
    closes = [200.0 - i for i in range(60)]
    c = Build().closes(closes).candles()
    assert not d.ma_cross(c, 40, 59, P).passed


def test_ma_cross_needs_a_candle_after_the_trigger_and_a_slow_average() -> None:
    c = Build().closes([100.0 + i for i in range(30)]).candles()
    with pytest.raises(d.DataInsufficient) as err:
        d.ma_cross(c, 20, 20, P)
    assert_insufficient(err)
    with pytest.raises(d.DataInsufficient):
        d.ma_cross(c, 10, 24, P)  # MA(25) first exists at index 24: no pair yet
    d.ma_cross(c, 10, 25, P)


# -- 7. OBV divergence --------------------------------------------------------------------


def test_obv_slopes_match_the_plain_least_squares_fit() -> None:
    c = random_candles(11, 60)
    t = 59
    closes = c.close[t - 19 : t + 1].tolist()
    obv = ref_obv(closes, c.volume[t - 19 : t + 1].tolist())
    r = d.obv_divergence(c, t, P)
    assert r.obv_slope == pytest.approx(ref_scaled_slope(obv), rel=1e-9)
    assert r.price_slope == pytest.approx(ref_scaled_slope(closes), rel=1e-9)
    assert r.passed is (r.obv_slope < 0 and r.price_slope >= P.obv_price_slope_min)


def test_obv_falling_with_price_falling_exactly_at_the_floor_passes() -> None:
    closes = [39.0 - 2 * i for i in range(20)]  # slope -2, mean level 20: exactly -0.1
    c = Build().flat(5, price=41.0).closes(closes).candles()
    r = d.obv_divergence(c, len(c) - 1, P)
    assert r.price_slope == P.obv_price_slope_min
    assert r.obv_slope < 0
    assert r.passed
    steeper = [38.5 - 2 * i for i in range(20)]
    c = Build().flat(5, price=41.0).closes(steeper).candles()
    assert not d.obv_divergence(c, len(c) - 1, P).passed


def test_obv_rising_is_no_divergence() -> None:
    c = Build().closes([100.0 + (i % 2) * 0.1 + i * 0.01 for i in range(30)]).candles()
    r = d.obv_divergence(c, 29, P)
    assert r.obv_slope > 0
    assert not r.passed


def test_obv_needs_twenty_candles() -> None:
    c = Build().flat(25).candles()
    with pytest.raises(d.DataInsufficient) as err:
        d.obv_divergence(c, 18, P)
    assert_insufficient(err)
    d.obv_divergence(c, 19, P)


# -- 8. ATR compression -------------------------------------------------------------------


def test_atr_is_wilders_over_the_window_ending_at_each_candle() -> None:
    c = random_candles(5, 220)
    k, t = 120, 170
    r = d.atr_compression(c, k, t, P)
    assert r.atr_trigger == pytest.approx(ref_wilder_atr(c, k - 99, k), rel=1e-12)
    assert r.atr_now == pytest.approx(ref_wilder_atr(c, t - 99, t), rel=1e-12)
    assert r.ratio == pytest.approx(r.atr_now / r.atr_trigger)


def test_atr_compression_exactly_one_half_passes() -> None:
    p = VolumeTrapParams(atr_window=15)
    b = Build().flat(30, half_range=1.0)  # true range 2
    c = b.flat(20, half_range=0.5).candles()  # true range 1
    r = d.atr_compression(c, 29, 49, p)
    assert (r.atr_trigger, r.atr_now, r.ratio) == (2.0, 1.0, p.atr_ratio_max)
    assert r.passed
    c = Build().flat(30, half_range=1.0).flat(20, half_range=0.505).candles()
    assert not d.atr_compression(c, 29, 49, p).passed


def test_atr_needs_a_period_before_the_trigger() -> None:
    c = Build().flat(40).candles()
    with pytest.raises(d.DataInsufficient) as err:
        d.atr_compression(c, 13, 30, P)
    assert_insufficient(err)
    d.atr_compression(c, 14, 30, P)

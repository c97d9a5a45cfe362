"""The eight volume-trap detectors: candles and an index in, a typed result out.

``t`` is the candle evaluated, ``k`` the trigger candle; both index the ``Candles``
given. Each result carries the measured values and ``passed``; a series too short for
a detector raises ``DataInsufficient`` instead of passing or failing silently.

Determinism is designed in, because a history replay and a live scan must agree to the
last bit (a value exactly at a threshold must fall the same way in both):

* every value at candle i depends only on a fixed window of candles ending at i, or on
  a window anchored at the trigger, never on where the given array happens to start;
* rolling means use ``trailing_mean`` (fixed-order additions) rather than
  ``talib.SMA``, whose running sum makes the value at i depend, in its last bits, on
  the array's first candle;
* scalar sums use ``math.fsum`` (exactly rounded, so independent of memory layout).

Differences from the spec's plain wording are noted in each function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import talib

from klinewatch.domain.candles import F64, Candles
from klinewatch.domain.volume_trap.params import VolumeTrapParams
from klinewatch.errors import InvalidInput

Value = float | int | bool | None
Mask = npt.NDArray[np.bool_]


class DataInsufficient(InvalidInput):
    """The series is too short for a detector: not a pass, not a fail."""

    code = "ERR_DATA_INSUFFICIENT"

    def __init__(
        self, detector: str, *, needed: int, available: int, what: str = "candles"
    ) -> None:
        super().__init__(
            f"{detector} needs {needed} {what}, has {available}",
            field=detector,
            needed=needed,
            available=available,
        )
        self.detector = detector


@dataclass(frozen=True, slots=True)
class _Result:
    passed: bool

    def values(self) -> dict[str, Value]:
        """Measured values as a flat mapping, for the stored snapshot."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class RvolResult(_Result):
    volume: float
    baseline: float
    ratio: float


@dataclass(frozen=True, slots=True)
class AmplitudeResult(_Result):
    amplitude_pct: float
    baseline_pct: float
    ratio: float


@dataclass(frozen=True, slots=True)
class RetentionResult(_Result):
    retention: float
    mean_volume_after: float
    trigger_volume: float
    candles_after: int


@dataclass(frozen=True, slots=True)
class KeyLevelResult(_Result):
    key_level: float
    close: float
    breach_pct: float


@dataclass(frozen=True, slots=True)
class EfficiencyResult(_Result):
    efficiency: float
    net_change_pct: float


@dataclass(frozen=True, slots=True)
class MaCrossResult(_Result):
    ma_fast: float
    ma_slow: float
    cross_open_time_ms: int | None


@dataclass(frozen=True, slots=True)
class ObvResult(_Result):
    obv_slope: float
    price_slope: float


@dataclass(frozen=True, slots=True)
class AtrResult(_Result):
    atr_trigger: float
    atr_now: float
    ratio: float


DetectorResult = (
    RvolResult
    | AmplitudeResult
    | RetentionResult
    | KeyLevelResult
    | EfficiencyResult
    | MaCrossResult
    | ObvResult
    | AtrResult
)


# -- vectorised kernels (whole history at once) -------------------------------------


def trailing_mean(x: F64, window: int) -> F64:
    """``out[i] = mean(x[i-window .. i-1])`` (the window before i), NaN where short.

    The sum is built from power-of-two partial sums (x[i] + x[i+1], then pairs of
    those, ...) combined in a fixed order: the value at i is bit-identical whether it
    is computed over the whole history or over the ``window + 1`` candles ending at i,
    and costs O(log window) array operations instead of ``window``.
    """
    out = np.full(len(x), np.nan)
    m = len(x) - window  # how many complete windows (each ending before a candle)
    if m <= 0:
        return out
    total: F64 | None = None
    offset, block, level = 0, 1, x[: m + window - 1]
    while block <= window:
        if window & block:  # add the block-sum starting `offset` after each window start
            part = level[offset : offset + m]
            total = part.copy() if total is None else total + part
            offset += block
        if block * 2 <= window:
            level = level[:-block] + level[block:]
        block *= 2
    assert total is not None
    out[window:] = total / window
    return out


def _ratio(num: F64, den: F64) -> F64:
    """``num / den`` with a zero baseline read as infinitely abnormal (or 0 if num is 0):
    a burst after candles with no volume at all is still a burst."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[(den == 0) & (num == 0)] = 0.0
    return out


def rvol_series(volume: F64, window: int) -> tuple[F64, F64]:
    """(baseline, ratio) for every candle; NaN where fewer than ``window`` precede."""
    baseline = trailing_mean(volume, window)
    return baseline, _ratio(volume, baseline)


def amplitude_pct(open_: F64, high: F64, low: F64) -> F64:
    """``(high - low) / open * 100``, multiplied first so round inputs stay exact."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = (high - low) * 100.0 / open_
    return out


def amplitude_series(open_: F64, high: F64, low: F64, window: int) -> tuple[F64, F64, F64]:
    """(amplitude %, baseline %, ratio) for every candle."""
    amp = amplitude_pct(open_, high, low)
    baseline = trailing_mean(amp, window)
    return amp, baseline, _ratio(amp, baseline)


def rvol_passes(ratio: F64, p: VolumeTrapParams) -> Mask:
    """The one place RVOL's threshold is applied, for one candle or for all."""
    return ratio >= p.rvol_min


def amplitude_passes(amp: F64, ratio: F64, p: VolumeTrapParams) -> Mask:
    return (amp >= p.amplitude_min_pct) & (ratio >= p.amplitude_ratio_min)


# -- one candle ----------------------------------------------------------------------


def _check(name: str, c: Candles, t: int, k: int | None = None) -> None:
    """Indices out of range are a caller's bug, not a short series."""
    if not 0 <= t < len(c):
        raise InvalidInput(f"{name}: t={t} is outside 0..{len(c) - 1}", field="t")
    if k is not None and not 0 <= k <= t:
        raise InvalidInput(f"{name}: trigger k={k} is not in 0..t={t}", field="k")


def _need_before(name: str, t: int, window: int) -> None:
    if t < window:
        raise DataInsufficient(name, needed=window, available=t, what="candles before t")


def _need_after(name: str, k: int, t: int, candles: int) -> None:
    if t - k < candles:
        raise DataInsufficient(
            name, needed=candles, available=t - k, what="candles after the trigger"
        )


def rvol(c: Candles, t: int, p: VolumeTrapParams) -> RvolResult:
    """1. RVOL: volume[t] over the mean volume of the ``rvol_window`` candles before."""
    w = p.rvol_window
    _check("rvol", c, t)
    _need_before("rvol", t, w)
    baseline, ratio = rvol_series(c.volume[t - w : t + 1], w)
    r = float(ratio[-1])
    return RvolResult(
        passed=bool(rvol_passes(ratio[-1:], p)[0]),
        volume=float(c.volume[t]),
        baseline=float(baseline[-1]),
        ratio=r,
    )


def amplitude(c: Candles, t: int, p: VolumeTrapParams) -> AmplitudeResult:
    """2. Amplitude: the candle's range in % of its open, and its ratio to the mean
    range of the ``amplitude_window`` candles before."""
    w = p.amplitude_window
    _check("amplitude", c, t)
    _need_before("amplitude", t, w)
    s = slice(t - w, t + 1)
    amp, baseline, ratio = amplitude_series(c.open[s], c.high[s], c.low[s], w)
    return AmplitudeResult(
        passed=bool(amplitude_passes(amp[-1:], ratio[-1:], p)[0]),
        amplitude_pct=float(amp[-1]),
        baseline_pct=float(baseline[-1]),
        ratio=float(ratio[-1]),
    )


def volume_retention(c: Candles, k: int, t: int, p: VolumeTrapParams) -> RetentionResult:
    """3. Volume retention: mean volume after the trigger over the trigger's volume;
    needs ``retention_min_candles`` candles after it."""
    _check("volume_retention", c, t, k)
    _need_after("volume_retention", k, t, p.retention_min_candles)
    after = math.fsum(c.volume[k + 1 : t + 1].tolist()) / (t - k)
    trigger = float(c.volume[k])
    retention = after / trigger if trigger > 0 else math.inf
    return RetentionResult(
        passed=retention <= p.retention_max,
        retention=retention,
        mean_volume_after=after,
        trigger_volume=trigger,
        candles_after=t - k,
    )


def key_level(c: Candles, k: int) -> float:
    """The trigger candle's midpoint: the level a trap's buyers defend."""
    return (float(c.high[k]) + float(c.low[k])) / 2.0


def key_level_breach(c: Candles, k: int, t: int, p: VolumeTrapParams) -> KeyLevelResult:
    """4. Key-level breach: how far close[t] lies below the trigger's midpoint, in %;
    t must come after the trigger (the trigger's own close is not a breach)."""
    _check("key_level_breach", c, t, k)
    _need_after("key_level_breach", k, t, 1)
    key = key_level(c, k)
    close = float(c.close[t])
    depth = (key - close) * 100.0 / key if key > 0 else 0.0
    return KeyLevelResult(
        passed=depth >= p.breach_min_pct, key_level=key, close=close, breach_pct=depth
    )


def price_efficiency(c: Candles, k: int, t: int, p: VolumeTrapParams) -> EfficiencyResult:
    """5. Kaufman efficiency of the move since the trigger: net move over the path.

    A path of length 0 (price never moved) reads as efficiency 0: no directed move.
    """
    _check("price_efficiency", c, t, k)
    _need_after("price_efficiency", k, t, 1)
    closes = c.close[k : t + 1]
    path = math.fsum(np.abs(np.diff(closes)).tolist())
    net = float(closes[-1]) - float(closes[0])
    efficiency = abs(net) / path if path > 0 else 0.0
    change = net * 100.0 / float(closes[0]) if closes[0] > 0 else 0.0
    return EfficiencyResult(
        passed=efficiency <= p.efficiency_max or net < 0,
        efficiency=efficiency,
        net_change_pct=change,
    )


def ma_cross(c: Candles, k: int, t: int, p: VolumeTrapParams) -> MaCrossResult:
    """6. MA(fast) crossed below MA(slow) at some candle j in (k, t]: at or above at
    j-1, strictly below at j.

    ``talib.SMA`` runs over the closes from ``ma_slow`` candles before the trigger (or
    the first candle), an anchor fixed by k, so every run computes the same values.
    Crosses are looked for where both averages exist on both candles.
    """
    _check("ma_cross", c, t, k)
    _need_after("ma_cross", k, t, 1)
    start = max(0, k - p.ma_slow)
    closes = c.close[start : t + 1]
    fast = talib.SMA(closes, timeperiod=p.ma_fast)
    slow = talib.SMA(closes, timeperiod=p.ma_slow)
    first = max(k + 1 - start, p.ma_slow)  # first j (slice index) with slow[j-1] defined
    if first > t - start:
        raise DataInsufficient(
            "ma_cross", needed=p.ma_slow, available=t - start, what="candles before t"
        )
    below = fast < slow
    crossed = np.flatnonzero(below[first:] & ~below[first - 1 : -1])
    cross_at = None if len(crossed) == 0 else int(c.open_time_ms[start + first + crossed[0]])
    return MaCrossResult(
        passed=cross_at is not None,
        ma_fast=float(fast[-1]),
        ma_slow=float(slow[-1]),
        cross_open_time_ms=cross_at,
    )


def _scaled_slope(y: F64) -> float:
    """Least-squares slope per candle divided by the mean absolute level (0 if flat 0)."""
    slope = float(talib.LINEARREG_SLOPE(y, timeperiod=len(y))[-1])
    scale = math.fsum(np.abs(y).tolist()) / len(y)
    return slope / scale if scale > 0 else 0.0


def obv_divergence(c: Candles, t: int, p: VolumeTrapParams) -> ObvResult:
    """7. OBV divergence over the ``obv_window`` candles ending at t: OBV falls while
    price holds (volume leaves before price does).

    ``talib.OBV`` runs over the window only, so OBV starts at the window's first
    volume: the level is then a property of the window, not of the array's start (only
    the sign of OBV's slope decides the pass; the level only scales the value shown).
    """
    w = p.obv_window
    _check("obv_divergence", c, t)
    _need_before("obv_divergence", t, w - 1)
    s = slice(t - w + 1, t + 1)
    closes = c.close[s]
    obv = talib.OBV(closes, c.volume[s])
    obv_slope = _scaled_slope(obv)
    price_slope = _scaled_slope(closes)
    return ObvResult(
        passed=obv_slope < 0 and price_slope >= p.obv_price_slope_min,
        obv_slope=obv_slope,
        price_slope=price_slope,
    )


def atr_at(c: Candles, i: int, p: VolumeTrapParams) -> float:
    """Wilder ATR (``talib.ATR``) at candle i over the ``atr_window`` candles ending at i
    (fewer near the series' start, at least ``atr_period + 1``)."""
    _need_before("atr_compression", i, p.atr_period)
    s = slice(max(0, i - p.atr_window + 1), i + 1)
    atr = talib.ATR(c.high[s], c.low[s], c.close[s], timeperiod=p.atr_period)
    return float(atr[-1])


def atr_compression(c: Candles, k: int, t: int, p: VolumeTrapParams) -> AtrResult:
    """8. ATR compression: ATR now over ATR at the trigger (volatility dying out)."""
    _check("atr_compression", c, t, k)
    at_trigger = atr_at(c, k, p)
    now = atr_at(c, t, p)
    ratio = now / at_trigger if at_trigger > 0 else (0.0 if now == 0 else math.inf)
    return AtrResult(
        passed=ratio <= p.atr_ratio_max, atr_trigger=at_trigger, atr_now=now, ratio=ratio
    )

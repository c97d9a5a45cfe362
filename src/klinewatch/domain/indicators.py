"""Technical indicators (MA, EMA, MACD, RSI, BOLL, VOL) computed with TA-Lib over candles.

What a window shows must equal TA-Lib run over the *full stored history*, not over the
window alone: EMA, MACD and RSI are recursive, so a value depends on every candle before
it. Loading the window alone is the classic mistake. The rule used here:

* SMA, BOLL and the volume MA need ``period - 1`` candles before the window. TA-Lib
  keeps running sums, so the rounding still depends on where they started: values
  match the full history to ~1e-11 relative (measured), not bit for bit.
* A recursive indicator starts from a seed that differs from the full-history value by
  about the price range at most, and that difference shrinks by a constant factor each
  step (``1 - 2/(p+1)`` for an EMA, ``1 - 1/p`` for Wilder's RSI). The warm-up adds the
  steps that shrink it to ``DECAY_TARGET`` (1e-12): a 1000x margin under the promised
  1e-9 for prices that move 1000x during the warm-up. MACD adds the steps of its slow
  EMA and of its signal EMA, as the signal smooths an already-converging line.
* That static rule is then checked on the data (``compute``): RSI only forgets its seed
  while the price moves, and a crash can exceed the margin. When the data says the
  warm-up was short, ``InsufficientWarmup`` asks the caller to load more.
* Bit-exact equality needs the whole stored prefix. ``candles_to_load_before`` loads
  it whenever it is at most ``EXACT_PREFIX_MAX`` candles (or no more than the warm-up
  itself); TA-Lib is causal, so a prefix of the series gives the same bits.

The caller's loop (the service)::

    before = candles_to_load_before(stored_before_window, params)
    while True:
        candles = load(window_start - before, window_end)
        try:
            return compute(candles, params, before, series_start=before == stored_before_window)
        except InsufficientWarmup as e:
            before = min(stored_before_window, e.needed)

Points where TA-Lib has no value yet (its lookback) are ``None``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import talib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from klinewatch.domain.candles import Candles
from klinewatch.errors import InvalidInput

F64 = npt.NDArray[np.float64]
Series = dict[str, F64]

PERIOD_MAX = 500
MAX_PERIODS_PER_LIST = 10
DECAY_TARGET = 1e-12
EXACT_PREFIX_MAX = 5_000
SEED_CHECK_TOLERANCE = 1e-10
# Bump when the computation changes so cached results are not reused.
ALGORITHM_VERSION = 1

Period = Annotated[int, Field(ge=1, le=PERIOD_MAX)]
PeriodFrom2 = Annotated[int, Field(ge=2, le=PERIOD_MAX)]  # TA-Lib refuses 1 for these


class Indicator(StrEnum):
    MA = "MA"
    EMA = "EMA"
    MACD = "MACD"
    RSI = "RSI"
    BOLL = "BOLL"
    VOL = "VOL"


class IndicatorParams(BaseModel):
    """Which indicators to compute and their parameters; defaults are the seed's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indicators: tuple[Indicator, ...] = tuple(Indicator)
    ma_periods: tuple[Period, ...] = (5, 10, 20, 30)
    ema_periods: tuple[Period, ...] = (12, 26)
    macd_fast: PeriodFrom2 = 12
    macd_slow: PeriodFrom2 = 26
    macd_signal: Period = 9
    rsi_period: PeriodFrom2 = 14
    boll_period: PeriodFrom2 = 20
    boll_std: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 2.0
    vol_ma_period: Period = 20

    @field_validator("indicators", "ma_periods", "ema_periods", mode="before")
    @classmethod
    def _split_text(cls, value: object) -> object:
        """Accept ``"MA,MACD"`` and ``"5,10"`` as a query string gives them."""
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            return [p.upper() if not p.lstrip("-").isdigit() else int(p) for p in parts]
        return value

    @field_validator("indicators")
    @classmethod
    def _canonical_indicators(cls, value: tuple[Indicator, ...]) -> tuple[Indicator, ...]:
        if not value:
            raise ValueError("at least one indicator is required")
        return tuple(i for i in Indicator if i in value)

    @field_validator("ma_periods", "ema_periods")
    @classmethod
    def _canonical_periods(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        unique = tuple(sorted(set(value)))
        if not 1 <= len(unique) <= MAX_PERIODS_PER_LIST:
            raise ValueError(f"give 1 to {MAX_PERIODS_PER_LIST} distinct periods")
        return unique

    @field_validator("macd_slow")
    @classmethod
    def _slow_above_fast(cls, value: int, info: ValidationInfo) -> int:
        fast = info.data.get("macd_fast")
        if fast is not None and value <= fast:
            raise ValueError(f"macd_slow must be above macd_fast ({fast})")
        return value

    @classmethod
    def parse(cls, raw: Mapping[str, object]) -> IndicatorParams:
        """Validate user input; the error names the offending parameter."""
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as e:
            first = e.errors()[0]
            loc = first["loc"]
            field = ".".join(str(part) for part in loc[:1]) or "params"
            where = f" (item {loc[1]})" if len(loc) > 1 else ""
            raise InvalidInput(f"{field}{where}: {first['msg']}", field=field) from None

    def only(self, *indicators: Indicator) -> IndicatorParams:
        """The same parameters restricted to some indicators (one cache entry per type)."""
        return self.model_copy(
            update={"indicators": tuple(i for i in Indicator if i in indicators)}
        )

    def effective(self) -> dict[str, dict[str, Any]]:
        """The parameters that matter for the requested indicators, per indicator."""
        every: dict[Indicator, dict[str, Any]] = {
            Indicator.MA: {"periods": list(self.ma_periods)},
            Indicator.EMA: {"periods": list(self.ema_periods)},
            Indicator.MACD: {
                "fast": self.macd_fast,
                "slow": self.macd_slow,
                "signal": self.macd_signal,
            },
            Indicator.RSI: {"period": self.rsi_period},
            Indicator.BOLL: {"period": self.boll_period, "std": self.boll_std},
            Indicator.VOL: {"ma_period": self.vol_ma_period},
        }
        return {i.value: every[i] for i in self.indicators}

    def params_hash(self) -> str:
        """Stable across processes and Python versions; ignores unrequested parameters."""
        payload = {"v": ALGORITHM_VERSION, "params": self.effective()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- warm-up -------------------------------------------------------------------------


def _decay_steps(factor: float) -> int:
    """Steps for an error shrinking by ``factor`` per step to fall under DECAY_TARGET."""
    if factor <= 0.0:
        return 0
    return math.ceil(math.log(DECAY_TARGET) / math.log(factor))


def _ema_steps(period: int) -> int:
    return _decay_steps(1.0 - 2.0 / (period + 1))


def _wilder_steps(period: int) -> int:
    return _decay_steps(1.0 - 1.0 / period)


def warmup_by_indicator(params: IndicatorParams) -> dict[Indicator, int]:
    """Candles each requested indicator needs before the window (lookback + decay)."""
    p = params
    every = {
        Indicator.MA: max(p.ma_periods) - 1,
        Indicator.EMA: max(n - 1 + _ema_steps(n) for n in p.ema_periods),
        Indicator.MACD: (p.macd_slow - 1)
        + (p.macd_signal - 1)
        + _ema_steps(p.macd_slow)
        + _ema_steps(p.macd_signal),
        Indicator.RSI: p.rsi_period + _wilder_steps(p.rsi_period),
        Indicator.BOLL: p.boll_period - 1,
        Indicator.VOL: p.vol_ma_period - 1,
    }
    return {i: every[i] for i in p.indicators}


def warmup_candles(params: IndicatorParams) -> int:
    """Candles to load before the window so every value matches the full history."""
    return max(warmup_by_indicator(params).values(), default=0)


def candles_to_load_before(available_before: int, params: IndicatorParams) -> int:
    """How many of the ``available_before`` stored candles preceding the window to load.

    All of them (bit-exact values) when that is cheap, else just the warm-up. A caller can
    fetch ``max(warmup, EXACT_PREFIX_MAX) + 1`` candles before the window in one query:
    if fewer come back, they are the whole prefix.
    """
    need = warmup_candles(params)
    if available_before <= max(need, EXACT_PREFIX_MAX):
        return available_before
    return need


# --- computation ---------------------------------------------------------------------


class InsufficientWarmup(ValueError):
    """Too few candles before the window for the values to equal the full history.

    A caller-side contract error, not user input: load ``needed`` candles before the
    window (or the whole stored prefix, if fewer) and compute again.
    """

    def __init__(self, given: int, needed: int, reason: str) -> None:
        super().__init__(f"{given} warm-up candles given, {needed} needed: {reason}")
        self.given = given
        self.needed = needed


def _ma(close: F64, volume: F64, p: IndicatorParams) -> Series:
    return {f"ma{n}": talib.SMA(close, timeperiod=n) for n in p.ma_periods}


def _ema(close: F64, volume: F64, p: IndicatorParams) -> Series:
    return {f"ema{n}": talib.EMA(close, timeperiod=n) for n in p.ema_periods}


def _macd(close: F64, volume: F64, p: IndicatorParams) -> Series:
    macd, signal, hist = talib.MACD(
        close, fastperiod=p.macd_fast, slowperiod=p.macd_slow, signalperiod=p.macd_signal
    )
    return {"macd": macd, "macd_signal": signal, "macd_histogram": hist}


def _rsi(close: F64, volume: F64, p: IndicatorParams) -> Series:
    return {"rsi": talib.RSI(close, timeperiod=p.rsi_period)}


def _boll(close: F64, volume: F64, p: IndicatorParams) -> Series:
    # TA-Lib's default matype is SMA: the middle band is the simple average (tested).
    upper, middle, lower = talib.BBANDS(
        close,
        timeperiod=p.boll_period,
        nbdevup=p.boll_std,
        nbdevdn=p.boll_std,
    )
    return {"boll_upper": upper, "boll_middle": middle, "boll_lower": lower}


def _vol(close: F64, volume: F64, p: IndicatorParams) -> Series:
    return {"volume": volume.copy(), "volume_ma": talib.SMA(volume, timeperiod=p.vol_ma_period)}


@dataclass(frozen=True, slots=True)
class _Calculator:
    run: Callable[[F64, F64, IndicatorParams], Series]
    # Recursive indicators: how far to move the seed when checking that it no longer
    # matters, and whether their error is measured in price units (else in its own).
    seed_shift: Callable[[IndicatorParams], int] | None = None
    price_units: bool = False
    # Ratio-type recursions (RSI) only forget their seed while the price moves.
    moves_needed: Callable[[IndicatorParams], int] | None = None


_CALCULATORS: dict[Indicator, _Calculator] = {
    Indicator.MA: _Calculator(_ma),
    Indicator.EMA: _Calculator(_ema, lambda p: max(p.ema_periods), price_units=True),
    Indicator.MACD: _Calculator(_macd, lambda p: max(p.macd_slow, p.macd_signal), price_units=True),
    Indicator.RSI: _Calculator(
        _rsi,
        lambda p: p.rsi_period,
        moves_needed=lambda p: p.rsi_period + _wilder_steps(p.rsi_period),
    ),
    Indicator.BOLL: _Calculator(_boll),
    Indicator.VOL: _Calculator(_vol),
}


def output_keys(params: IndicatorParams) -> dict[Indicator, list[str]]:
    """The keys ``compute`` returns, grouped by indicator (the API nests them so)."""
    empty = np.empty(0, dtype=np.float64)
    return {i: list(_CALCULATORS[i].run(empty, empty, params)) for i in params.indicators}


def compute(
    candles: Candles,
    params: IndicatorParams,
    window_start_index: int,
    *,
    series_start: bool = False,
) -> dict[str, list[float | None]]:
    """Indicator values for ``candles[window_start_index:]``; lookback points are None.

    ``candles`` holds the warm-up then the window, oldest first. Unless it starts at the
    series' first stored candle (``series_start=True``: then the values are bit-exact),
    it must hold ``warmup_candles(params)`` candles before the window, and the data must
    confirm it was enough: RSI needs that many candles *with a price change* (in a flat
    market Wilder's gains and losses decay together, so the seed's ratio never fades),
    and every recursive indicator is re-run from a later seed that must change no
    window value. A failure raises ``InsufficientWarmup`` instead of wrong numbers.
    """
    w = window_start_index
    if w < 0:
        raise ValueError("window_start_index must not be negative")
    need = warmup_candles(params)
    if not series_start and w < need:
        raise InsufficientWarmup(w, need, "the static warm-up rule")
    close, volume = _f64(candles.close), _f64(candles.volume)
    result: dict[str, list[float | None]] = {}
    for indicator in params.indicators:
        calc = _CALCULATORS[indicator]
        values = calc.run(close, volume, params)
        if not series_start and w < len(close):
            _verify_warmup(calc, close, volume, params, values, w)
        for key, column in values.items():
            result[key] = _window(column, w)
    return result


def _verify_warmup(
    calc: _Calculator, close: F64, volume: F64, params: IndicatorParams, values: Series, w: int
) -> None:
    """Raise ``InsufficientWarmup`` when this data shows the warm-up was too short.

    The seed check: a seed ``shift`` candles later has an error ``decay**-shift`` times
    larger, so agreement to SEED_CHECK_TOLERANCE bounds the returned error well below it
    (unless both seeds saw the same flat prices: hence the count of price changes).
    """
    if calc.moves_needed is not None:
        needed, moved = calc.moves_needed(params), int(np.count_nonzero(np.diff(close[: w + 1])))
        if moved < needed:
            more = max(2 * w, w + needed - moved)
            raise InsufficientWarmup(w, more, f"only {moved} of {needed} warm-up candles moved")
    if calc.seed_shift is None:
        return
    shift = min(calc.seed_shift(params), w)
    later = calc.run(close[shift:], volume[shift:], params)
    floor = np.abs(close[w:]) if calc.price_units else 1.0
    for key, column in values.items():
        mine, theirs = column[w:], later[key][w - shift :]
        tolerance = SEED_CHECK_TOLERANCE * np.maximum(np.abs(mine), floor)
        if np.any(np.abs(mine - theirs) > tolerance):
            raise InsufficientWarmup(w, 2 * w, f"{key} still depends on where it was seeded")


def index_at_or_after(candles: Candles, open_time_ms: int) -> int:
    """Index of the first candle opening at or after ``open_time_ms`` (time-range windows)."""
    return int(np.searchsorted(candles.open_time_ms, open_time_ms, side="left"))


def _f64(column: npt.NDArray[Any]) -> F64:
    return np.ascontiguousarray(column, dtype=np.float64)


def _window(values: F64, start: int) -> list[float | None]:
    part = values[start:]
    out: list[float | None] = list(part.tolist())
    for i in np.flatnonzero(np.isnan(part)).tolist():
        out[i] = None
    return out

"""Hand-built candle series for the volume-trap tests, and plain reference formulas.

The references are written straight from the spec's wording (plain loops, ``statistics``)
and share no code with the implementation, so a test compares two derivations.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import HOUR_MS

START_MS = 1_700_000_000_000 // HOUR_MS * HOUR_MS
Row = tuple[float, float, float, float, float]  # open, high, low, close, volume


@dataclass
class Build:
    """A series written candle by candle, oldest first, one hour apart."""

    rows: list[Row] = field(default_factory=list)

    def candle(self, o: float, h: float, lo: float, c: float, v: float) -> Build:
        self.rows.append((o, h, lo, c, v))
        return self

    def flat(
        self, n: int, price: float = 100.0, volume: float = 100.0, half_range: float = 1.0
    ) -> Build:
        """``n`` quiet candles: open = close = price, range price +- half_range."""
        for _ in range(n):
            self.candle(price, price + half_range, price - half_range, price, volume)
        return self

    def closes(self, closes: list[float], volume: float = 100.0, half_range: float = 0.5) -> Build:
        """Candles opening at the previous close and closing at each value given."""
        for c in closes:
            o = self.rows[-1][3] if self.rows else c
            self.candle(o, max(o, c) + half_range, min(o, c) - half_range, c, volume)
        return self

    def __len__(self) -> int:
        return len(self.rows)

    def candles(self) -> Candles:
        a = np.array(self.rows, dtype=np.float64).reshape(len(self.rows), 5)
        times = START_MS + np.arange(len(self.rows), dtype=np.int64) * HOUR_MS
        return Candles.from_columns(
            open_time_ms=times,
            open=a[:, 0],
            high=a[:, 1],
            low=a[:, 2],
            close=a[:, 3],
            volume=a[:, 4],
            close_time_ms=times + HOUR_MS - 1,
        )


def random_candles(seed: int, n: int) -> Candles:
    """A random walk with random bursts (volume x5..x40, range up to 40 %) followed by
    random after-lives: fading, crashing, running away."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    volume = rng.lognormal(4, 0.3, n)
    spread = np.abs(rng.normal(0, 0.008, n)) * close
    for i in rng.choice(np.arange(30, n), size=max(1, n // 60), replace=False):
        volume[i] *= rng.uniform(5, 40)
        jump = rng.uniform(-0.1, 0.4)
        close[i:] *= 1 + jump
        spread[i] = abs(jump) * close[i] * rng.uniform(0.2, 1.0)
        fade = rng.uniform(0.02, 1.5)
        volume[i + 1 : i + 80] *= fade
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + spread
    low = np.maximum(np.minimum(open_, close) - spread, close * 0.01)
    times = START_MS + np.arange(n, dtype=np.int64) * HOUR_MS
    return Candles.from_columns(
        open_time_ms=times, open=open_, high=high, low=low, close=close, volume=volume
    )


# -- reference formulas, from the spec's table ---------------------------------------


def ref_rvol(v: list[float], t: int, window: int = 20) -> float:
    return v[t] / statistics.fmean(v[t - window : t])


def ref_amplitude(c: Candles, i: int) -> float:
    return float((c.high[i] - c.low[i]) / c.open[i] * 100)


def ref_sma(x: list[float], i: int, n: int) -> float:
    return statistics.fmean(x[i - n + 1 : i + 1])


def ref_wilder_atr(c: Candles, start: int, end: int, period: int = 14) -> float:
    """Wilder's ATR at ``end`` computed over candles ``start..end``: seed = mean of the
    first ``period`` true ranges, then atr = (atr * (period - 1) + tr) / period."""
    tr = [
        max(
            c.high[i] - c.low[i],
            abs(c.high[i] - c.close[i - 1]),
            abs(c.low[i] - c.close[i - 1]),
        )
        for i in range(start + 1, end + 1)
    ]
    atr = statistics.fmean(tr[:period])
    for x in tr[period:]:
        atr = (atr * (period - 1) + x) / period
    return float(atr)


def ref_obv(close: list[float], volume: list[float]) -> list[float]:
    obv = [volume[0]]
    for i in range(1, len(close)):
        sign = (close[i] > close[i - 1]) - (close[i] < close[i - 1])
        obv.append(obv[-1] + sign * volume[i])
    return obv


def ref_scaled_slope(y: list[float]) -> float:
    slope = float(np.polyfit(np.arange(len(y)), np.asarray(y), 1)[0])
    return slope / statistics.fmean(abs(v) for v in y)

"""Candles as columnar NumPy arrays: the warehouse moves millions, never one object each.

Column order is Binance's kline order. Fields a source did not record (quote volume,
trade count, taker volumes) are 0, as the simulator serves them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from klinewatch.domain.intervals import Interval

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# Names of the columns in Binance's order (the 12th, "ignore", is not kept).
COLUMNS: tuple[str, ...] = (
    "open_time_ms",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time_ms",
    "quote_volume",
    "trade_count",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)
INT_COLUMNS = frozenset({"open_time_ms", "close_time_ms", "trade_count"})


@dataclass(frozen=True, slots=True)
class Rejection:
    """A candle refused by ``validate``: its open time and why."""

    open_time_ms: int
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class Candles:
    """One series' candles (or a batch of them), one array per column, equal lengths."""

    open_time_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    close_time_ms: I64
    quote_volume: F64
    trade_count: I64
    taker_buy_base_volume: F64
    taker_buy_quote_volume: F64

    def __post_init__(self) -> None:
        n = len(self.open_time_ms)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"column {f.name} has {len(getattr(self, f.name))} rows, not {n}")

    def __len__(self) -> int:
        return len(self.open_time_ms)

    def columns(self) -> list[npt.NDArray[Any]]:
        return [getattr(self, name) for name in COLUMNS]

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice) -> Candles:
        """Rows selected by an index array, a boolean mask or a slice."""
        taken: list[Any] = [col[index] for col in self.columns()]
        return Candles(*taken)

    def sorted_unique(self) -> Candles:
        """Oldest first, one row per open time (the last one given wins)."""
        if len(self) == 0:
            return self
        reversed_times = self.open_time_ms[::-1]
        _, first_in_reversed = np.unique(reversed_times, return_index=True)
        index = len(self) - 1 - first_in_reversed
        return self.take(index)

    def between(self, start_ms: int, end_ms: int) -> Candles:
        """Rows with ``start_ms <= open_time < end_ms``, assuming oldest first."""
        lo = int(np.searchsorted(self.open_time_ms, start_ms, side="left"))
        hi = int(np.searchsorted(self.open_time_ms, end_ms, side="left"))
        return self.take(slice(lo, hi))

    def equals(self, other: Candles) -> bool:
        return len(self) == len(other) and all(
            np.array_equal(a, b) for a, b in zip(self.columns(), other.columns(), strict=True)
        )

    @classmethod
    def empty(cls) -> Candles:
        arrays: list[Any] = [_empty(name) for name in COLUMNS]
        return cls(*arrays)

    @classmethod
    def concat(cls, parts: Sequence[Candles]) -> Candles:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in COLUMNS))

    @classmethod
    def from_columns(cls, **columns: Iterable[float] | npt.ArrayLike) -> Candles:
        """Build from named columns; missing optional ones become 0, close times derived
        by the caller when absent is an error (they depend on the interval)."""
        n = len(np.asarray(columns["open_time_ms"]))
        arrays: list[Any] = []
        for name in COLUMNS:
            dtype = np.int64 if name in INT_COLUMNS else np.float64
            value = columns.get(name)
            arrays.append(
                np.zeros(n, dtype=dtype) if value is None else np.asarray(value, dtype=dtype)
            )
        return cls(*arrays)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[object]]) -> Candles:
        """From Binance-shaped rows (numbers or numeric strings; empty string means 0)."""
        if not rows:
            return cls.empty()
        table = [[_num(v) for v in row[: len(COLUMNS)]] for row in rows]
        width = len(table[0])
        matrix = np.array(table, dtype=np.float64).reshape(len(table), width)
        named = {name: matrix[:, i] for i, name in enumerate(COLUMNS[:width])}
        return cls.from_columns(**named)


def _num(value: object) -> float:
    if value is None or value == "":
        return 0.0
    return float(value)  # type: ignore[arg-type]


def _empty(name: str) -> npt.NDArray[Any]:
    return np.empty(0, dtype=np.int64 if name in INT_COLUMNS else np.float64)


def validate(candles: Candles, interval: Interval) -> tuple[Candles, list[Rejection]]:
    """Split a batch into the candles that pass every sanity rule and the rejections.

    Rules: open time on the interval's grid, close time = next open - 1, finite values,
    high >= low, high >= max(open, close), low <= min(open, close), no negative volume
    or count. One bad candle never sinks the batch.
    """
    if len(candles) == 0:
        return candles, []
    c = candles
    prices = np.stack([c.open, c.high, c.low, c.close])
    amounts = np.stack(
        [c.volume, c.quote_volume, c.taker_buy_base_volume, c.taker_buy_quote_volume]
    )
    checks: list[tuple[Any, str]] = [
        (~interval.aligned_mask(c.open_time_ms), f"open time is off the {interval} grid"),
        (
            ~np.isfinite(prices).all(axis=0) | ~np.isfinite(amounts).all(axis=0),
            "a value is not finite",
        ),
        (c.high < c.low, "high is below low"),
        (
            (c.high < np.maximum(c.open, c.close)) | (c.low > np.minimum(c.open, c.close)),
            "open or close lies outside high..low",
        ),
        ((amounts < 0).any(axis=0) | (c.trade_count < 0), "a volume or count is negative"),
        ((prices < 0).any(axis=0), "a price is negative"),
    ]
    if interval.length_ms is not None:
        checks.insert(
            1,
            (
                c.close_time_ms != c.open_time_ms + interval.length_ms - 1,
                "close time is not open time + interval - 1 ms",
            ),
        )
    bad = np.zeros(len(c), dtype=np.bool_)
    rejections: list[Rejection] = []
    for mask, reason in checks:
        new = mask & ~bad
        rejections.extend(Rejection(int(t), reason) for t in c.open_time_ms[new])
        bad |= mask
    if not bad.any():
        return c, []
    rejections.sort(key=lambda r: r.open_time_ms)
    return c.take(~bad), rejections

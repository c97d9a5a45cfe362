"""What a client sees of a recorded series at the clock's time.

Nothing after "now" exists, and the candle that contains "now" is served open, with
partial values. The partial candle is derived, in order of preference:

1. from the finest recorded interval of the same symbol that divides this one: the
   finer candles already closed are aggregated, plus the finer candle containing "now"
   scaled pro rata; this is what the exchange would show, within one finer candle;
2. else pro rata from the recorded candle itself: volumes, quote volume, trade count and
   taker volumes scale with the elapsed fraction; the close moves linearly from the open
   toward the recorded close, and high/low extend from that path toward the recorded
   extremes by the same fraction (so the partial never leaves the final high..low).

At the candle's last millisecond it equals the recorded candle (up to rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from klinewatch.domain.candles import COLUMNS, Candles
from klinewatch.domain.intervals import DAY_MS, INTERVALS, Interval
from klinewatch.sim.store import SeriesStore


def page_bounds(
    candles: Candles, now_ms: int, start_ms: int | None, end_ms: int | None, limit: int
) -> tuple[int, int, bool]:
    """Binance's page selection: rows ``[lo, hi)`` and whether row ``hi-1`` is still open.

    With ``start_ms`` the page runs forward from it; otherwise it is the newest ``limit``
    candles up to ``end_ms`` (or now). Open times are compared inclusively at both ends.
    """
    times = candles.open_time_ms
    hi = int(np.searchsorted(times, now_ms, side="right"))
    if end_ms is not None:
        hi = min(hi, int(np.searchsorted(times, end_ms, side="right")))
    if start_ms is not None:
        lo = int(np.searchsorted(times, start_ms, side="left"))
        hi = min(hi, lo + limit)
    else:
        lo = max(0, hi - limit)
    if lo >= hi:
        return lo, lo, False
    return lo, hi, bool(candles.close_time_ms[hi - 1] >= now_ms)


def visible(candles: Candles, now_ms: int) -> Candles:
    """Candles opened at or before ``now_ms``, the last one partial if still open."""
    lo, hi, is_open = page_bounds(candles, now_ms, None, None, len(candles))
    if not is_open:
        return candles.take(slice(lo, hi))
    return Candles.concat(
        [candles.take(slice(lo, hi - 1)), pro_rata(candles.take(slice(hi - 1, hi)), now_ms)]
    )


def partial_candle(
    store: SeriesStore,
    series: tuple[str, str, str],
    interval: Interval,
    recorded: Candles,
    now_ms: int,
) -> Candles:
    """The one-row open candle ``recorded`` as seen at ``now_ms`` (see module docstring)."""
    exchange, market, symbol = series
    open_ms = int(recorded.open_time_ms[0])
    finer = finest_divisor(store, series, interval)
    if finer is not None:
        fine = store.get(exchange, market, symbol, finer.name).between(open_ms, now_ms + 1)
        if len(fine):
            return aggregate(visible(fine, now_ms), int(recorded.close_time_ms[0]))
    return pro_rata(recorded, now_ms)


def finest_divisor(
    store: SeriesStore, series: tuple[str, str, str], interval: Interval
) -> Interval | None:
    """The finest recorded interval of the symbol that tiles ``interval`` exactly."""
    length = interval.length_ms or DAY_MS  # a month is tiled by days
    candidates = [
        INTERVALS[name]
        for name in store.intervals(*series)
        if name in INTERVALS and INTERVALS[name].length_ms is not None
    ]
    divisors = [
        i
        for i in candidates
        if i.length_ms is not None and i.length_ms < length and length % i.length_ms == 0
    ]
    return min(divisors, key=lambda i: i.nominal_ms, default=None)


def aggregate(parts: Candles, close_time_ms: int) -> Candles:
    """One candle from consecutive ones: first open, extremes, last close, sums."""
    return Candles.from_columns(
        open_time_ms=[parts.open_time_ms[0]],
        open=[parts.open[0]],
        high=[parts.high.max()],
        low=[parts.low.min()],
        close=[parts.close[-1]],
        volume=[parts.volume.sum()],
        close_time_ms=[close_time_ms],
        quote_volume=[parts.quote_volume.sum()],
        trade_count=[parts.trade_count.sum()],
        taker_buy_base_volume=[parts.taker_buy_base_volume.sum()],
        taker_buy_quote_volume=[parts.taker_buy_quote_volume.sum()],
    )


def pro_rata(row: Candles, now_ms: int) -> Candles:
    """A one-row candle scaled to the elapsed fraction of its span at ``now_ms``."""
    open_ms, close_ms = int(row.open_time_ms[0]), int(row.close_time_ms[0])
    fraction = min(1.0, max(0.0, (now_ms - open_ms) / (close_ms + 1 - open_ms)))
    o, h, lo, c = (float(x[0]) for x in (row.open, row.high, row.low, row.close))
    close = o + (c - o) * fraction
    high = max(o, close) + (h - max(o, c)) * fraction
    low = min(o, close) - (min(o, c) - lo) * fraction
    values: dict[str, Any] = dict(zip(COLUMNS, (c.copy() for c in row.columns()), strict=True))
    values.update(open=[o], high=[max(high, close)], low=[min(low, close)], close=[close])
    for name in ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume"):
        values[name] = values[name] * fraction
    values["trade_count"] = np.rint(row.trade_count * fraction).astype(np.int64)
    return Candles.from_columns(**values)

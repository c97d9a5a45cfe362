"""Binance 24-hour and price tickers computed from the candles at the clock's time.

The rolling window is the candles of the finest recorded interval up to 1h (else any)
opened in the 24 hours before "now", the last one partial. Fields the candles cannot
know are filled plausibly: bid and ask equal the last price with zero quantity, trade
ids run ``0..count-1`` (``-1`` without trades). When the source did not record quote
volume, it is estimated as volume times the typical price ``(high + low + close) / 3``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import DAY_MS, HOUR_MS, INTERVALS, Interval
from klinewatch.sim.candle_view import visible
from klinewatch.sim.kline_rows import fewest_decimals
from klinewatch.sim.store import SeriesStore


def _source(store: SeriesStore, market: str, symbol: str, now_ms: int) -> Candles:
    """Visible candles of the interval that best shows the last 24 hours."""
    names = [n for n in store.intervals("binance", market, symbol) if n in INTERVALS]
    ordered: list[Interval] = sorted((INTERVALS[n] for n in names), key=lambda i: i.nominal_ms)
    best: Candles = Candles.empty()
    best_close = -1
    for interval in [i for i in ordered if i.nominal_ms <= HOUR_MS] or ordered:
        series = store.get("binance", market, symbol, interval.name)
        recent = visible(series.between(now_ms - DAY_MS - interval.nominal_ms, now_ms + 1), now_ms)
        if len(recent) == 0:
            recent = visible(series, now_ms).take(slice(-1, None))
        last_close = int(recent.close_time_ms[-1]) if len(recent) else -1
        if last_close > best_close:
            best, best_close = recent, last_close
        if best_close >= now_ms - interval.nominal_ms:
            break  # the finest interval is current: no need to load coarser ones
    return best


def _fmt(decimals: int) -> Any:
    return lambda x: f"{x:.{decimals}f}"


def ticker_24hr(store: SeriesStore, market: str, symbol: str, now_ms: int) -> dict[str, Any]:
    """One symbol's ``/ticker/24hr`` object (spot or futures shape)."""
    candles = _source(store, market, symbol, now_ms)
    prev_close = float(candles.close[0]) if len(candles) else 0.0
    window = candles.take(candles.open_time_ms >= now_ms - DAY_MS)
    if len(window) == 0 and len(candles):
        window = candles.take(slice(-1, None))
    price = _fmt(8 if market == "spot" else fewest_decimals(candles.close))
    qty = _fmt(8 if market == "spot" else fewest_decimals(candles.volume))
    if len(window):
        o, last = float(window.open[0]), float(window.close[-1])
        high, low = float(window.high.max()), float(window.low.min())
        volume = float(window.volume.sum())
        quote = float(window.quote_volume.sum()) or float(
            np.sum(window.volume * (window.high + window.low + window.close) / 3)
        )
        count = int(window.trade_count.sum())
    else:
        o = last = high = low = volume = quote = 0.0
        count = 0
    body: dict[str, Any] = {
        "symbol": symbol,
        "priceChange": price(last - o),
        "priceChangePercent": f"{(last - o) / o * 100 if o else 0.0:.3f}",
        "weightedAvgPrice": price(quote / volume if volume else last),
    }
    if market == "spot":
        body["prevClosePrice"] = price(prev_close)
    body |= {"lastPrice": price(last), "lastQty": qty(0.0)}
    if market == "spot":
        body |= {"bidPrice": price(last), "bidQty": qty(0.0)}
        body |= {"askPrice": price(last), "askQty": qty(0.0)}
    body |= {
        "openPrice": price(o),
        "highPrice": price(high),
        "lowPrice": price(low),
        "volume": qty(volume),
        "quoteVolume": f"{quote:.8f}" if market == "spot" else f"{quote:.5f}",
        "openTime": now_ms - DAY_MS,
        "closeTime": now_ms,
        "firstId": 0 if count else -1,
        "lastId": count - 1 if count else -1,
        "count": count,
    }
    return body


def last_price(store: SeriesStore, market: str, symbol: str, now_ms: int) -> dict[str, Any]:
    """One symbol's ``/ticker/price`` object; futures add the price's ``time``."""
    candles = _source(store, market, symbol, now_ms)
    close = float(candles.close[-1]) if len(candles) else 0.0
    decimals = 8 if market == "spot" else fewest_decimals(candles.close)
    body: dict[str, Any] = {"symbol": symbol, "price": f"{close:.{decimals}f}"}
    if market == "futures":
        body["time"] = min(now_ms, int(candles.close_time_ms[-1])) if len(candles) else now_ms
    return body

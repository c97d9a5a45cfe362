"""What the simulated OKX, Bybit and Bitget share: candles picked by time and count under
the simulator clock, numbers as the exchanges print them, JSON responses, error plumbing.

Each exchange's envelope, parameter names and ordering stay in its own module; only the
logic that is the same everywhere lives here, so the three cannot drift apart on what
"nothing after now exists" or "the candle containing now is still open" means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from klinewatch.domain.candles import COLUMNS, Candles
from klinewatch.domain.intervals import DAY_MS, INTERVALS, Interval
from klinewatch.sim.candle_view import partial_candle
from klinewatch.sim.context import SimContext
from klinewatch.sim.faults import apply_candle_faults
from klinewatch.sim.kline_rows import fewest_decimals
from klinewatch.sim.store import SeriesStore

# Quote assets recognised when splitting a Binance-style symbol such as BTCUSDT.
QUOTES: tuple[str, ...] = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


class VenueError(Exception):
    """A request the exchange refuses; each venue renders it in its own envelope."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


Handler = Callable[[Request], Response]


def guarded(render: Callable[[VenueError], Response]) -> Callable[[Handler], Handler]:
    """Turn a venue's ``VenueError`` into its own error body, so bad input never 500s."""

    def wrap(handler: Handler) -> Handler:
        def endpoint(request: Request) -> Response:
            try:
                return handler(request)
            except VenueError as e:
                return render(e)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def fmt(value: float) -> str:
    """A number as exchanges print it: shortest round-trip digits, never an exponent."""
    return np.format_float_positional(value, trim="-")


def divide(value: float, by: str) -> str:
    """``value / by`` in exact decimal (OKX contract counts: 343.38 BTC / 0.01 = 34338)."""
    quotient = (Decimal(fmt(value)) / Decimal(by)).normalize()
    return format(quotient, "f")


def int_param(request: Request, name: str, error: VenueError) -> int | None:
    """An optional integer query parameter; anything unparsable raises ``error``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise error from None


def split_pair(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` -> (``BTC``, ``USDT``); an unknown quote leaves the base whole."""
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


@dataclass(frozen=True, slots=True)
class Series:
    """One recorded series as a venue names it: whose recording, market, symbol, interval."""

    exchange: str
    market: str
    symbol: str
    interval: Interval


def select(
    store: SeriesStore,
    series: Series,
    now_ms: int,
    *,
    lo_ms: int | None = None,
    hi_ms: int | None = None,
    limit: int,
    keep: Literal["oldest", "newest"],
) -> Candles:
    """Candles with ``lo_ms <= open_time < hi_ms`` that exist at ``now_ms`` (opened at or
    before it), at most ``limit``: the oldest or the newest of them, as the venue pages.

    Oldest first. The candle containing now is the open one, shown part-way exactly as the
    Binance routes show it (``candle_view.partial_candle``), so every venue agrees.
    """
    s = series
    candles = store.get(s.exchange, s.market, s.symbol, s.interval.name)
    times = candles.open_time_ms
    end = now_ms + 1 if hi_ms is None else min(hi_ms, now_ms + 1)
    first = 0 if lo_ms is None else int(np.searchsorted(times, lo_ms, side="left"))
    stop = max(first, int(np.searchsorted(times, end, side="left")))
    if stop - first > limit:
        first, stop = (first, first + limit) if keep == "oldest" else (stop - limit, stop)
    chosen = candles.take(slice(first, stop))
    if not len(chosen) or int(chosen.close_time_ms[-1]) < now_ms:
        return chosen
    key = (s.exchange, s.market, s.symbol)
    still_open = partial_candle(store, key, s.interval, chosen.take(slice(-1, None)), now_ms)
    return Candles.concat([chosen.take(slice(0, -1)), _rounded_like(still_open, chosen)])


def _rounded_like(row: Candles, recorded: Candles) -> Candles:
    """The partial candle rounded to the decimals the recorded candles use, so it reads
    like the exchange's own numbers (a price tick, a lot size), not like float noise."""
    r = recorded
    price = fewest_decimals(r.open, r.high, r.low, r.close)
    base = fewest_decimals(r.volume, r.taker_buy_base_volume)
    quote = fewest_decimals(r.quote_volume, r.taker_buy_quote_volume)
    columns: dict[str, Any] = dict(zip(COLUMNS, row.columns(), strict=True))
    for name in ("open", "high", "low", "close"):
        columns[name] = np.round(columns[name], price)
    for name in ("volume", "taker_buy_base_volume"):
        columns[name] = np.round(columns[name], base)
    for name in ("quote_volume", "taker_buy_quote_volume"):
        columns[name] = np.round(columns[name], quote)
    return Candles.from_columns(**columns)


def served(ctx: SimContext, request: Request, series: Series, candles: Candles) -> Candles:
    """The page after the candle faults active for this route (duplicates, gaps...)."""
    return apply_candle_faults(
        ctx, request.url.path, candles, symbol=series.symbol, interval=series.interval.name
    )


def ohlcv_rows(candles: Candles, now_ms: int) -> list[tuple[int, list[float], bool]]:
    """``(open_time, [open, high, low, close, volume, quote_volume], still_open)`` per row."""
    c = candles
    table = np.column_stack([c.open, c.high, c.low, c.close, c.volume, c.quote_volume])
    still_open = (c.close_time_ms >= now_ms).tolist()
    return list(zip(c.open_time_ms.tolist(), table.tolist(), still_open, strict=True))


def ticker_source(
    store: SeriesStore, exchange: str, market: str, symbol: str, now_ms: int
) -> Series | None:
    """The series whose newest candle at ``now_ms`` is the most recent, finer first on a
    tie, as the Binance tickers choose (series of one symbol may end months apart)."""
    names = [n for n in store.intervals(exchange, market, symbol) if n in INTERVALS]
    best: Series | None = None
    best_end = -1
    for interval in sorted((INTERVALS[n] for n in names), key=lambda i: i.nominal_ms):
        times = store.get(exchange, market, symbol, interval.name).open_time_ms
        newest = int(np.searchsorted(times, now_ms, side="right")) - 1
        end = -1 if newest < 0 else min(interval.close_time(int(times[newest])), now_ms)
        if end > best_end:
            best, best_end = Series(exchange, market, symbol, interval), end
        if best_end >= now_ms - interval.nominal_ms:
            break  # current already: coarser series cannot be newer
    return best


@dataclass(frozen=True, slots=True)
class DayStats:
    """A rolling 24-hour ticker computed from candles, as every exchange's ticker shows."""

    ts_ms: int
    last: float
    open: float
    high: float
    low: float
    volume: float
    quote_volume: float
    day_open: float  # the open of the first candle of the current UTC day
    day_open_utc8: float  # the same for the day in UTC+8 (OKX's sodUtc8)


def ticker_stats(
    store: SeriesStore, exchange: str, market: str, symbol: str, now_ms: int
) -> DayStats | None:
    """A symbol's rolling 24-hour ticker from its most current recorded series, the open
    candle part-way; a series that ended earlier shows its last close with no volume.
    ``None`` before the first candle exists. Quote volume, when not recorded, is
    estimated from the typical price as the Binance tickers do."""
    series = ticker_source(store, exchange, market, symbol, now_ms)
    if series is None:
        return None
    interval = series.interval
    lo = interval.floor(now_ms - DAY_MS + 1)
    window = select(store, series, now_ms, lo_ms=lo, limit=DAY_MS, keep="newest")  # no cap
    if not len(window):
        before = select(store, series, now_ms, limit=1, keep="newest")
        if not len(before):
            return None
        close = float(before.close[-1])
        return DayStats(now_ms, close, close, close, close, 0.0, 0.0, close, close)
    w = window
    typical = (w.high + w.low + w.close) / 3
    base = fewest_decimals(w.volume)

    def day_open(offset_ms: int) -> float:
        start = (now_ms + offset_ms) // DAY_MS * DAY_MS - offset_ms
        today = np.flatnonzero(w.open_time_ms >= start)
        return float(w.open[today[0]]) if len(today) else float(w.close[-1])

    return DayStats(
        ts_ms=now_ms,
        last=float(w.close[-1]),
        open=float(w.open[0]),
        high=float(w.high.max()),
        low=float(w.low.min()),
        volume=round(float(w.volume.sum()), base),
        quote_volume=round(float(w.quote_volume.sum()) or float(np.sum(w.volume * typical)), 4),
        day_open=day_open(0),
        day_open_utc8=day_open(8 * 3_600_000),
    )

"""Cache key and channel names (seed 001 section 4.3, with ``market_type`` added).

One series' entries share a prefix ending in ``:`` (so ``BTC`` never matches
``BTCUSDT``) and are dropped together with ``delete_prefix`` when a candle closes::

    klines:binance:spot:BTCUSDT:1h:latest:200
    klines:binance:spot:BTCUSDT:1h:range:1704067200000:1704153600000
    indicators:binance:spot:BTCUSDT:1h:MACD:3f2a9c0d1e4b5a67:latest:200
    ticker:binance:spot:BTCUSDT
    exchange:status:binance        exchange:rate_limited:binance
    live:klines:binance:spot:BTCUSDT:1h        live:ticker:binance:spot:BTCUSDT

Segments are checked: a ``:`` or a glob character in a symbol would let one series'
invalidation reach another's keys.
"""

from __future__ import annotations

import re

from klinewatch.errors import InvalidInput

_SEGMENT = re.compile(r"^[A-Za-z0-9_./\-]+$")


def _segment(value: str, field: str) -> str:
    if not _SEGMENT.match(value):
        raise InvalidInput(f"{field} {value!r} cannot be part of a cache key", field=field)
    return value


def _series(exchange: str, market_type: str, symbol: str, timeframe: str) -> str:
    return ":".join(
        (
            _segment(exchange, "exchange"),
            _segment(market_type, "market_type"),
            _segment(symbol, "symbol"),
            _segment(timeframe, "timeframe"),
        )
    )


def latest_window(limit: int) -> str:
    """The window of the newest ``limit`` candles."""
    if limit < 1:
        raise InvalidInput(f"limit must be positive, not {limit}", field="limit")
    return f"latest:{limit}"


def range_window(start_ms: int, end_ms: int) -> str:
    """The window of candles opening in ``[start_ms, end_ms)``."""
    return f"range:{start_ms}:{end_ms}"


def klines(exchange: str, market_type: str, symbol: str, timeframe: str, window: str) -> str:
    return f"{klines_prefix(exchange, market_type, symbol, timeframe)}{window}"


def klines_prefix(exchange: str, market_type: str, symbol: str, timeframe: str) -> str:
    return f"klines:{_series(exchange, market_type, symbol, timeframe)}:"


def indicators(
    exchange: str,
    market_type: str,
    symbol: str,
    timeframe: str,
    indicator_type: str,
    params_hash: str,
    window: str,
) -> str:
    prefix = indicators_prefix(exchange, market_type, symbol, timeframe)
    kind = _segment(indicator_type, "indicator_type")
    return f"{prefix}{kind}:{_segment(params_hash, 'params_hash')}:{window}"


def indicators_prefix(exchange: str, market_type: str, symbol: str, timeframe: str) -> str:
    return f"indicators:{_series(exchange, market_type, symbol, timeframe)}:"


def series_prefixes(exchange: str, market_type: str, symbol: str, timeframe: str) -> list[str]:
    """Every prefix to drop when one series gets a new candle."""
    return [
        klines_prefix(exchange, market_type, symbol, timeframe),
        indicators_prefix(exchange, market_type, symbol, timeframe),
    ]


def ticker(exchange: str, market_type: str, symbol: str) -> str:
    parts = (
        _segment(exchange, "exchange"),
        _segment(market_type, "market_type"),
        _segment(symbol, "symbol"),
    )
    return "ticker:" + ":".join(parts)


def exchange_status(exchange: str) -> str:
    return f"exchange:status:{_segment(exchange, 'exchange')}"


def exchange_rate_limited(exchange: str) -> str:
    """Set with the config's ``rate_limited_for_s`` TTL after a 429: its presence is the mark."""
    return f"exchange:rate_limited:{_segment(exchange, 'exchange')}"


def live_klines_channel(exchange: str, market_type: str, symbol: str, timeframe: str) -> str:
    return f"live:klines:{_series(exchange, market_type, symbol, timeframe)}"


def live_ticker_channel(exchange: str, market_type: str, symbol: str) -> str:
    return "live:" + ticker(exchange, market_type, symbol)

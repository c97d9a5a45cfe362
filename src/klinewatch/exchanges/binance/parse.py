"""Binance wire payloads -> domain values, in one place.

Kline rows are 12-field arrays (times as numbers, prices and volumes as strings); they are
turned into columns by NumPy in one pass, never one object per candle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from klinewatch.domain.candles import COLUMNS, Candles
from klinewatch.exchanges.port import ContractInfo, Ticker


def parse_kline_body(body: bytes) -> Candles:
    """A klines answer's body straight to columns.

    The backfill parses tens of thousands of candles a second, so the fast path skips
    the strings: with the quotes dropped every field is a JSON number, which orjson
    reads as floats and NumPy stacks into one table (about 1 ms per 1000 candles, 12x
    less than strings through NumPy). A body that does not fit that shape (a blank
    field, a non-numeric string) takes the general path; a truncated or malformed one
    raises ``ValueError`` either way.
    """
    try:
        table = np.array(orjson.loads(body.replace(b'"', b"")), dtype=np.float64)
    except (ValueError, TypeError):
        return parse_klines(orjson.loads(body))
    if table.shape == (0,):
        return Candles.empty()
    if table.ndim != 2 or table.shape[1] < len(COLUMNS):
        raise ValueError("kline rows do not have Binance's 12 fields")
    return Candles.from_columns(**{name: table[:, i] for i, name in enumerate(COLUMNS)})


def parse_klines(rows: list[list[Any]]) -> Candles:
    """Rows as ``json.loads`` gives them (blank fields read as 0)."""
    if not rows:
        return Candles.empty()
    width = len(COLUMNS)
    table = np.array([row[:width] for row in rows], dtype=np.str_)
    if table.ndim != 2 or table.shape[1] != width:
        raise ValueError("kline rows do not have Binance's 12 fields")
    table[table == ""] = "0"
    floats = table.astype(np.float64)
    return Candles.from_columns(**{name: floats[:, i] for i, name in enumerate(COLUMNS)})


def parse_contracts(exchange_info: dict[str, Any]) -> list[ContractInfo]:
    out: list[ContractInfo] = []
    for item in exchange_info.get("symbols", []):
        out.append(
            ContractInfo(
                symbol=str(item["symbol"]),
                base_asset=str(item.get("baseAsset", "")),
                quote_asset=str(item.get("quoteAsset", "")),
                status=str(item.get("status") or item.get("contractStatus") or ""),
                contract_type=item.get("contractType"),
                onboard_date_ms=item.get("onboardDate"),
            )
        )
    return out


def parse_ticker(item: dict[str, Any]) -> Ticker:
    return Ticker(
        symbol=str(item["symbol"]),
        last_price=float(item["lastPrice"]),
        price_change_pct=float(item.get("priceChangePercent", 0)),
        high=float(item.get("highPrice", 0)),
        low=float(item.get("lowPrice", 0)),
        volume=float(item.get("volume", 0)),
        quote_volume=float(item.get("quoteVolume", 0)),
        close_time_ms=int(item.get("closeTime", 0)),
    )


def rate_limit_budget(exchange_info: dict[str, Any]) -> int | None:
    """REQUEST_WEIGHT per minute as the exchange itself declares it."""
    for limit in exchange_info.get("rateLimits", []):
        if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
            return int(limit["limit"]) // max(int(limit.get("intervalNum", 1)), 1)
    return None

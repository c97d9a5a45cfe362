"""What the pages should show for market cap, FDV and volume, worked out from the data
rather than from the app: the mapping the real generation stored for a pair's base
asset, and the figures CoinGecko's recorded snapshots hold for that coin (the ones the
simulator serves), formatted as the pages' ``fmtMoney`` formats them in English."""

from __future__ import annotations

import gzip
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from klinewatch.storage.engine import transaction
from klinewatch.storage.models import Contract, TokenMapping
from tests.browser.stack import Stack

MARKETS_GLOB = "coins_markets_usd_top250_*.json.gz"
COMPACT_UNITS = ((12, "T"), (9, "B"), (6, "M"), (3, "K"))


def recorded_markets(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every recorded coin by id: the newest snapshot first, older ones fill in the coins
    it lacks (the simulator's clock, ``NOW_MS``, is after all of them)."""
    merged: dict[str, dict[str, Any]] = {}
    folder = stack.sim.ctx.store.root / "coingecko"
    for path in sorted(folder.glob(MARKETS_GLOB), reverse=True):
        for coin in json.loads(gzip.decompress(path.read_bytes())):
            merged.setdefault(coin["id"], coin)
    return merged


def coin_of(stack: Stack, market_type: str, symbol: str) -> str | None:
    """The CoinGecko id the stored mapping gives the pair's base asset, ``None`` while
    it needs review (or has no mapping)."""
    with transaction(stack.sessions) as session:
        row = session.execute(
            select(TokenMapping.coingecko_id, TokenMapping.match_status)
            .join(Contract, Contract.base_asset == TokenMapping.base_asset)
            .where(
                Contract.exchange == "binance",
                Contract.market_type == market_type,
                Contract.symbol == symbol,
                TokenMapping.exchange == "binance",
            )
        ).one_or_none()
    return None if row is None or row.match_status == "needs_review" else row.coingecko_id


def expected_figures(
    stack: Stack, market_type: str, symbol: str, recorded: dict[str, dict[str, Any]]
) -> tuple[str, str]:
    """(market cap, FDV) as the page should show them for a pair."""
    coin = recorded.get(coin_of(stack, market_type, symbol) or "", {})
    return compact_usd(coin.get("market_cap")), compact_usd(coin.get("fully_diluted_valuation"))


def compact_usd(value: float | None) -> str:
    """en-US compact currency with at most two decimals, as ``Intl.NumberFormat`` writes
    it: ``$470.64B``, ``$10.71B``, ``$910M``; ``--`` when absent. (A value that rounds up
    to the next unit, 999.996M, would read ``$1B`` there: none of the recorded ones do.)"""
    if value is None:
        return "--"
    amount = Decimal(str(value))
    unit, scaled = "", amount
    for exponent, name in COMPACT_UNITS:
        if abs(amount) >= Decimal(10) ** exponent:
            unit, scaled = name, amount / Decimal(10) ** exponent
            break
    text = f"{scaled.quantize(Decimal('0.01'), ROUND_HALF_UP):f}".rstrip("0").rstrip(".")
    return f"${text}{unit}"

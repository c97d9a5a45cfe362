"""Point a CCXT exchange at the simulator: the product's own ``ccxt_api_urls``, re-exported
so simulator code and tests keep one import path (the logic lives in
``klinewatch.exchanges.ccxt_urls``, which product code may import and the simulator may
not be imported by)."""

from __future__ import annotations

from klinewatch.exchanges.ccxt_urls import ccxt_api_urls

__all__ = ["ccxt_api_urls"]

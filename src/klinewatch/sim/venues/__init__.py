"""The simulator's non-Binance venues: OKX, Bybit and Bitget as CCXT calls them, CoinGecko,
and a DeBank-shaped price source, each under its own URL prefix.

``all_routes(ctx)`` is what ``sim.app.create_sim_app`` mounts. With the simulator at
``http://127.0.0.1:P``: ``/okx/api/v5/...``, ``/bybit/v5/...``, ``/bitget/api/v2/...``,
``/coingecko/api/v3/...``, ``/debank/v1/...``. Point CCXT at a venue with
``ccxt_urls.ccxt_api_urls("okx", "http://127.0.0.1:P/okx")``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount

from klinewatch.sim.context import SimContext
from klinewatch.sim.venues import bitget, bybit, coingecko, debank, okx

PREFIXES = {
    "/okx": okx.routes,
    "/bybit": bybit.routes,
    "/bitget": bitget.routes,
    "/coingecko": coingecko.routes,
    "/debank": debank.routes,
}


def all_routes(ctx: SimContext) -> list[BaseRoute]:
    """Every venue's routes, each mounted under its prefix; built per call, never at import."""
    return [Mount(prefix, routes=build(ctx)) for prefix, build in PREFIXES.items()]


__all__ = ["PREFIXES", "all_routes"]

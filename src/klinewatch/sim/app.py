"""The simulator's ASGI app: every venue's routes on one loopback server.

Path prefixes are the contract between the simulator, its venue modules and klinewatch's
URL settings (``<base>`` is ``http://127.0.0.1:<port>``)::

    KLINEWATCH_BINANCE_SPOT_URL     <base>                 /api/v3/...  (Binance spot)
    KLINEWATCH_BINANCE_FUTURES_URL  <base>                 /fapi/v1/... (USDT-M futures)
    KLINEWATCH_BINANCE_ARCHIVE_URL  <base>/archive         /archive/data/... (data.binance.vision)
    KLINEWATCH_OKX_URL              <base>/okx             /okx/api/v5/...
    KLINEWATCH_BYBIT_URL            <base>/bybit           /bybit/v5/...
    KLINEWATCH_BITGET_URL           <base>/bitget          /bitget/api/v2/...
    KLINEWATCH_COINGECKO_URL        <base>/coingecko/api/v3
    KLINEWATCH_PRICE_SOURCE_URL     <base>/debank          (DeBank-shaped price source)
    (admin)                         <base>/__sim/...       clock, faults, stats, limits

Binance spot and futures share the root because their paths differ. Venue modules in
``klinewatch.sim.venues`` (OKX, Bybit, Bitget, CoinGecko, DeBank) are mounted through
``venues.all_routes(ctx)`` when that package is present. ``SimMiddleware`` wraps all of
it, outermost, for faults, latency and stats.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from klinewatch.sim import admin, archive, binance
from klinewatch.sim.context import SimContext
from klinewatch.sim.middleware import SimMiddleware

URL_SETTINGS: dict[str, str] = {
    "KLINEWATCH_BINANCE_SPOT_URL": "",
    "KLINEWATCH_BINANCE_FUTURES_URL": "",
    "KLINEWATCH_BINANCE_ARCHIVE_URL": "/archive",
    "KLINEWATCH_OKX_URL": "/okx",
    "KLINEWATCH_BYBIT_URL": "/bybit",
    "KLINEWATCH_BITGET_URL": "/bitget",
    "KLINEWATCH_COINGECKO_URL": "/coingecko/api/v3",
    "KLINEWATCH_PRICE_SOURCE_URL": "/debank",
}


def url_settings(base_url: str) -> dict[str, str]:
    """Every ``KLINEWATCH_*_URL`` setting pointing at a simulator at ``base_url``."""
    base = base_url.rstrip("/")
    return {name: base + suffix for name, suffix in URL_SETTINGS.items()}


def venue_routes(ctx: SimContext) -> list[BaseRoute]:
    """The other venues' routes, if ``klinewatch.sim.venues`` exists yet."""
    try:
        venues = importlib.import_module("klinewatch.sim.venues")
    except ImportError:
        return []
    all_routes: Callable[[SimContext], list[BaseRoute]] = venues.all_routes
    return list(all_routes(ctx))


class SimApp(Starlette):
    """Starlette with ``SimMiddleware`` outside even its error handling, so a fault can
    reach the server's transport (see ``middleware.py``)."""

    def __init__(self, ctx: SimContext, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self.ctx = ctx

    def build_middleware_stack(self) -> ASGIApp:
        return SimMiddleware(super().build_middleware_stack(), self.ctx)


def create_sim_app(ctx: SimContext) -> Starlette:
    """The app serving ``ctx``: admin, Binance, the archive, then the other venues."""
    routes = [
        *admin.routes(ctx),
        *binance.routes(ctx),
        *archive.routes(ctx),
        *venue_routes(ctx),
    ]
    return SimApp(ctx, routes)

"""What every simulated venue's routes share: the recorded data, the clock, the options.

Each venue module exposes ``routes(ctx: SimContext) -> list[starlette.routing.BaseRoute]``;
``app.create_sim_app`` mounts them all. Faults, latency and per-client stats are applied
around every route by the app's middleware, so a venue module only speaks its wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from klinewatch.sim.clock import SimClock
from klinewatch.sim.store import SeriesStore


@dataclass
class SimOptions:
    """Limits that tests may tighten; defaults are the real exchanges' numbers."""

    spot_weight_per_min: int = 6000
    futures_weight_per_min: int = 2400
    coingecko_calls_per_min: int = 50
    ban_base_s: float = 120.0
    time_scale: float = 1.0  # < 1 shortens every ban and Retry-After, for tests
    latency_ms: float = 0.0
    coingecko_api_key: str | None = None  # None: any non-empty x-cg-demo-api-key works
    price_source_api_key: str | None = None  # None: any non-empty AccessKey works


@dataclass
class SimContext:
    store: SeriesStore
    clock: SimClock = field(default_factory=SimClock)
    options: SimOptions = field(default_factory=SimOptions)

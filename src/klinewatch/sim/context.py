"""What every simulated venue's routes share: the recorded data, the clock, the options.

Each venue module exposes ``routes(ctx: SimContext) -> list[starlette.routing.BaseRoute]``;
``app.create_sim_app`` mounts them all. Faults, latency and per-client stats are applied
around every route by the app's middleware, so a venue module only speaks its wire format
(and calls ``faults.apply_candle_faults`` on the candles it serves).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from klinewatch.sim.clock import SimClock
from klinewatch.sim.faults import FaultSet
from klinewatch.sim.limits import WeightGate
from klinewatch.sim.stats import Stats
from klinewatch.sim.store import SeriesStore


@dataclass
class SimOptions:
    """Limits that tests may tighten; defaults are the real exchanges' numbers."""

    spot_weight_per_min: int = 6000
    futures_weight_per_min: int = 2400
    coingecko_calls_per_min: int = 50
    ban_base_s: float = 120.0
    time_scale: float = 1.0  # < 1 shortens weight windows, Retry-After and bans, for tests
    latency_ms: float = 0.0
    coingecko_api_key: str | None = None  # None: any non-empty x-cg-demo-api-key works
    price_source_api_key: str | None = None  # None: any non-empty AccessKey works


@dataclass
class SimContext:
    store: SeriesStore
    clock: SimClock = field(default_factory=SimClock)
    options: SimOptions = field(default_factory=SimOptions)
    faults: FaultSet = field(default_factory=FaultSet)
    stats: Stats = field(default_factory=Stats)
    gates: dict[str, WeightGate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.faults.now_ms = self.clock.now_ms
        self.reset_limits()

    def reset_limits(self) -> None:
        """Fresh weight windows and no bans, built from the current options."""
        self.gates = {
            market: WeightGate(self.options.time_scale, self.options.ban_base_s)
            for market in ("spot", "futures")
        }

    def gate(self, market: str) -> WeightGate:
        return self.gates[market]

    def budget(self, market: str) -> int:
        """Binance's request-weight budget per minute for ``spot`` or ``futures``."""
        if market == "spot":
            return self.options.spot_weight_per_min
        return self.options.futures_weight_per_min

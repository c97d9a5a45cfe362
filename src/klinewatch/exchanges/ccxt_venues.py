"""The CCXT venues' documented public limits and page caps: plain data, importable
without importing CCXT (which takes seconds), so the CLI and the wiring stay fast."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from klinewatch.domain.intervals import DAY_MS, Interval

# Any rolling window of length W overlaps at most SLICES + 1 fixed windows of W / SLICES;
# a fixed budget of limit / (SLICES + 1) per slice therefore never exceeds a rolling limit.
SLICES = 4


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """One venue's documented public limits per IP and its candle page caps."""

    requests: int  # requests allowed per ``window_s``
    window_s: float
    page: int  # most candles one page returns counted from ``since``
    markets: Mapping[str, str]  # klinewatch market type -> CCXT fetchMarkets type
    ban_statuses: frozenset[int] = frozenset({418})
    ban_s: float = 120.0  # silence after a ban whose answer does not say how long
    futures_page_days: int | None = None  # a futures page spans at most this many days
    ticker_volume_in_contracts: bool = False  # CCXT's swap ticker baseVolume is contracts

    @property
    def governor_window_ms(self) -> int:
        return max(1, round(self.window_s * 1000 / SLICES))

    @property
    def governor_budget(self) -> int:
        """Requests per governor window, before the safety margin."""
        return max(1, self.requests // (SLICES + 1))

    def page_size(self, market_type: str, interval: Interval) -> int:
        if market_type == "futures" and self.futures_page_days is not None:
            span = self.futures_page_days * DAY_MS // interval.nominal_ms
            return max(1, min(self.page, span))
        return self.page


# The candle history endpoints are the tightest limits klinewatch meets, so they pace
# every call to the host. OKX: /market/history-candles 20 req / 2 s, 300 a page (what
# CCXT 4.5 asks; older docs said 100). Bybit: 600 req in any 5 s for all of
# api.bybit.com, 1,000 a page; over it, HTTP 403 "access too frequent" and an IP ban of
# 10 minutes or more. Bitget: history-candles 20 req / 1 s, 200 a page, and a futures
# history page spans at most 90 days.
VENUES: dict[str, VenueLimits] = {
    "okx": VenueLimits(
        20, 2.0, 300, {"spot": "spot", "futures": "swap"}, ticker_volume_in_contracts=True
    ),
    "bybit": VenueLimits(
        600,
        5.0,
        1000,
        {"spot": "spot", "futures": "linear"},
        ban_statuses=frozenset({403, 418}),
        ban_s=600.0,
    ),
    "bitget": VenueLimits(20, 1.0, 200, {"spot": "spot", "futures": "swap"}, futures_page_days=90),
}
CCXT_EXCHANGES = tuple(VENUES)

"""The weight governor: every request to an exchange host passes through it.

Binance counts request weight per IP in fixed one-minute windows aligned to its clock and
reports the window's total in ``X-MBX-USED-WEIGHT-1M``. The governor keeps the same books:
it reserves each request's documented weight in the current window (aligned to the
exchange's clock, learned from ``/time``), lets requests through at full speed while the
window has room under ``budget x margin``, and otherwise waits for the next window rather
than spreading weight thinly over the minute. Each response's header corrects the books
upwards (another process on the same IP shows up there). A 429 pauses every caller for its
``Retry-After``; a 418 ban silences the host until it ends, and the ban is persisted
(file, or Redis when configured) so a restart does not knock again.

The books live in a ``WeightLedger``: in memory for one process, in Redis to share one
budget between processes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from klinewatch.clock import Clock, SystemClock
from klinewatch.logs import get_logger

log = get_logger(__name__)
WINDOW_MS = 60_000
# Leave this much after a window's start before using it: clocks drift by a few ms.
_WINDOW_GUARD_MS = 100
# A budget no window reaches: ``reserve`` with it books weight unconditionally.
_UNLIMITED = 2**62


class WeightLedger(Protocol):
    async def reserve(self, key: str, window: int, weight: int, budget: int) -> bool:
        """Add ``weight`` to the window if the total stays within ``budget``."""
        ...

    async def raise_to(self, key: str, window: int, used: int) -> None: ...

    async def used(self, key: str, window: int) -> int: ...

    async def pause_until(self, key: str) -> int: ...

    async def set_pause_until(self, key: str, until_ms: int, persist: bool) -> None: ...


@dataclass
class MemoryWeightLedger:
    """One process's books; bans (not 429 pauses) are written to ``ban_file`` if given."""

    ban_file: Path | None = None
    _windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    _pauses: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ban_file is not None and self.ban_file.is_file():
            try:
                self._pauses.update(json.loads(self.ban_file.read_text()))
            except (OSError, ValueError):
                log.warning("ban_file_unreadable", path=str(self.ban_file))

    async def reserve(self, key: str, window: int, weight: int, budget: int) -> bool:
        current = await self.used(key, window)
        if current + weight > budget:
            return False
        self._windows[key] = (window, current + weight)
        return True

    async def raise_to(self, key: str, window: int, used: int) -> None:
        if used > await self.used(key, window):
            self._windows[key] = (window, used)

    async def used(self, key: str, window: int) -> int:
        start, used = self._windows.get(key, (window, 0))
        return used if start == window else 0

    async def pause_until(self, key: str) -> int:
        return self._pauses.get(key, 0)

    async def set_pause_until(self, key: str, until_ms: int, persist: bool) -> None:
        self._pauses[key] = max(until_ms, self._pauses.get(key, 0))
        if persist and self.ban_file is not None:
            self.ban_file.parent.mkdir(parents=True, exist_ok=True)
            self.ban_file.write_text(json.dumps(self._pauses))


@dataclass
class GovernorStats:
    requests: int = 0
    weight: int = 0
    waited_s: float = 0.0
    rate_limited: int = 0
    banned: int = 0


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class WeightGovernor:
    """Paces one exchange host's requests inside its weight budget."""

    key: str
    budget_per_min: int
    margin: float = 0.8
    ledger: WeightLedger = field(default_factory=MemoryWeightLedger)
    clock: Clock = field(default_factory=SystemClock)
    sleep: Sleep = asyncio.sleep
    offset_ms: int = 0  # exchange clock minus ours
    window_ms: int = WINDOW_MS  # Binance's is one minute; a time-scaled simulator's is shorter
    stats: GovernorStats = field(default_factory=GovernorStats)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def budget(self) -> int:
        return max(1, int(self.budget_per_min * self.margin))

    def exchange_now_ms(self) -> int:
        return self.clock.now_ms() + self.offset_ms

    def calibrate(self, exchange_time_ms: int, sent_ms: int, received_ms: int) -> None:
        """Learn the exchange's clock from a ``/time`` answer (mid-point of the round trip)."""
        self.offset_ms = exchange_time_ms - (sent_ms + received_ms) // 2

    async def acquire(self, weight: int) -> int:
        """Wait until ``weight`` fits in the current window, reserve it, and return that
        window's number (hand it to ``observe`` with the answer)."""
        if weight > self.budget:
            raise ValueError(f"a request of weight {weight} can never fit budget {self.budget}")
        async with self._lock:  # first come, first served: no starvation of big requests
            while True:
                now = self.exchange_now_ms()
                paused = await self.ledger.pause_until(self.key)
                if paused > now:
                    await self._wait_ms(paused - now, "paused")
                    continue
                window, into = divmod(now, self.window_ms)
                if into < _WINDOW_GUARD_MS:
                    await self._wait_ms(_WINDOW_GUARD_MS - into, "guard")
                    continue
                if await self.ledger.reserve(self.key, window, weight, self.budget):
                    self.stats.requests += 1
                    self.stats.weight += weight
                    return window
                await self._wait_ms(
                    (window + 1) * self.window_ms + _WINDOW_GUARD_MS - now, "window"
                )

    async def observe(
        self, used_weight: int | None, reserved_in: int | None = None, weight: int = 0
    ) -> None:
        """Correct the books from ``X-MBX-USED-WEIGHT-1M`` (never downwards: requests
        still in flight are in our books but not yet in the exchange's).

        ``reserved_in`` / ``weight``: the window ``acquire`` booked the request in, and
        its weight. An answer that comes back in a later window (a request sent just
        before the turn, or delayed on a busy machine) carries a header that may count
        either window: taken as this window's, the last window's full total would stop
        this one for a whole minute. Its weight is booked in this window as well
        instead (it may have been counted here), and the header is left unread."""
        window = self.exchange_now_ms() // self.window_ms
        if reserved_in is not None and reserved_in != window:
            if reserved_in < window and weight > 0:
                await self.ledger.reserve(self.key, window, weight, _UNLIMITED)
            return
        if used_weight is not None:
            await self.ledger.raise_to(self.key, window, used_weight)

    async def rate_limited(self, retry_after_s: float) -> None:
        self.stats.rate_limited += 1
        until = self.exchange_now_ms() + int(retry_after_s * 1000)
        log.warning("rate_limited", host=self.key, retry_after_s=retry_after_s)
        await self.ledger.set_pause_until(self.key, until, persist=False)

    async def banned(self, until_ms: int) -> None:
        self.stats.banned += 1
        log.error("ip_banned", host=self.key, until_ms=until_ms)
        await self.ledger.set_pause_until(self.key, until_ms, persist=True)

    async def _wait_ms(self, ms: int, reason: str) -> None:
        seconds = max(ms, 1) / 1000
        self.stats.waited_s += seconds
        if seconds > 5:
            log.info("governor_waiting", host=self.key, reason=reason, seconds=round(seconds, 1))
        await self.sleep(seconds)

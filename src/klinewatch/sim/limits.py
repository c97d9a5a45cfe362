"""Fixed one-minute windows aligned to the clock, per client, as Binance counts weight.

A request at 00:01:23 counts toward the 00:01 minute; the counter resets at 00:02:00.
Over budget a client gets 429 with ``Retry-After`` (seconds to the window's end); one
that sends again before then gets 418 and a ban that doubles with every repeat offence,
from ``ban_base_s`` (2 minutes) up to 3 days.

``time_scale`` multiplies every duration (the window, Retry-After, bans) so that a client
obeying the headers behaves exactly as against the real exchange, only faster.
``Retry-After`` is whole seconds, rounded up (at least 1); ``X-Sim-Retry-After-Ms``
carries the exact wait for tests. Windows and bans follow the simulated clock.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass, field

WINDOW_MS = 60_000
MAX_BAN_S = 3 * 24 * 3600.0


@dataclass
class FixedWindowCounter:
    """Per-client usage in the current clock-aligned window."""

    window_ms: int = WINDOW_MS
    _usage: dict[str, tuple[int, int]] = field(default_factory=lambda: defaultdict(lambda: (0, 0)))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, client: str, amount: int, now_ms: int) -> int:
        """Count ``amount`` for ``client`` and return the window's total so far."""
        window = now_ms // self.window_ms
        with self._lock:
            start, used = self._usage[client]
            used = used + amount if start == window else amount
            self._usage[client] = (window, used)
            return used

    def used(self, client: str, now_ms: int) -> int:
        start, used = self._usage.get(client, (0, 0))
        return used if start == now_ms // self.window_ms else 0

    def ms_to_reset(self, now_ms: int) -> int:
        return self.window_ms - now_ms % self.window_ms

    def seconds_to_reset(self, now_ms: int) -> float:
        return self.ms_to_reset(now_ms) / 1000

    def clear(self) -> None:
        with self._lock:
            self._usage.clear()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate decided: 200 (go on), 429 or 418, with the headers' numbers."""

    status: int
    used: int
    retry_after_ms: int = 0
    ban_until_ms: int = 0

    @property
    def retry_after_s(self) -> int:
        """``Retry-After`` is whole seconds: round up so obeying it is always enough."""
        return max(1, math.ceil(self.retry_after_ms / 1000))


@dataclass
class _Offender:
    retry_until_ms: int = 0
    ban_until_ms: int = 0
    offences: int = 0


@dataclass
class WeightGate:
    """One market's request-weight budget per client (spot and futures count apart)."""

    time_scale: float = 1.0
    ban_base_s: float = 120.0
    counter: FixedWindowCounter = field(init=False)
    _offenders: dict[str, _Offender] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.counter = FixedWindowCounter(max(1, round(WINDOW_MS * self.time_scale)))

    def admit(self, client: str, weight: int, budget: int, now_ms: int) -> Verdict:
        """Count one request of ``weight`` and say whether it may be served."""
        with self._lock:
            offender = self._offenders.setdefault(client, _Offender())
            if now_ms < offender.ban_until_ms:
                return self._banned(client, offender, now_ms)
            if now_ms < offender.retry_until_ms:
                offender.offences += 1
                ban_s = min(self.ban_base_s * 2 ** (offender.offences - 1), MAX_BAN_S)
                offender.ban_until_ms = now_ms + round(ban_s * 1000 * self.time_scale)
                offender.retry_until_ms = 0
                return self._banned(client, offender, now_ms)
            used = self.counter.add(client, weight, now_ms)
            if used > budget:
                wait_ms = self.counter.ms_to_reset(now_ms)
                offender.retry_until_ms = now_ms + wait_ms
                return Verdict(429, used, wait_ms)
            return Verdict(200, used)

    def _banned(self, client: str, offender: _Offender, now_ms: int) -> Verdict:
        used = self.counter.used(client, now_ms)
        wait_ms = offender.ban_until_ms - now_ms
        return Verdict(418, used, wait_ms, offender.ban_until_ms)

    def used(self, client: str, now_ms: int) -> int:
        return self.counter.used(client, now_ms)

    def reset(self) -> None:
        """Forget usage, warnings and bans (tests, and ``POST /__sim/limits/reset``)."""
        with self._lock:
            self.counter.clear()
            self._offenders.clear()

    def bans(self, now_ms: int) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                client: {"ban_until_ms": o.ban_until_ms, "offences": o.offences}
                for client, o in self._offenders.items()
                if o.ban_until_ms > now_ms or o.offences
            }

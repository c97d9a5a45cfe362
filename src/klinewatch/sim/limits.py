"""Fixed one-minute windows aligned to the clock, per client, as Binance counts weight.

A request at 00:01:23 counts toward the 00:01 minute; the counter resets at 00:02:00.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

WINDOW_MS = 60_000


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

    def seconds_to_reset(self, now_ms: int) -> float:
        return (self.window_ms - now_ms % self.window_ms) / 1000

"""The simulator's clock: real time by default; settable, advanceable and speedable."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class SimClock:
    """``now = anchor_sim + (wall - anchor_wall) * speed``; ``set``/``advance`` move it.

    Everything the simulator serves is filtered by this clock: nothing after "now"
    exists, and the candle containing "now" is served open with partial values.
    """

    speed: float = 1.0
    _anchor_sim_ms: float | None = None
    _anchor_wall_ms: float = field(default_factory=lambda: time.time() * 1000)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now_ms(self) -> int:
        wall = time.time() * 1000
        with self._lock:
            if self._anchor_sim_ms is None and self.speed == 1.0:
                return int(wall)
            base = self._anchor_sim_ms if self._anchor_sim_ms is not None else self._anchor_wall_ms
            return int(base + (wall - self._anchor_wall_ms) * self.speed)

    def set(self, now_ms: int, speed: float | None = None) -> None:
        with self._lock:
            self._anchor_sim_ms = float(now_ms)
            self._anchor_wall_ms = time.time() * 1000
            if speed is not None:
                self.speed = speed

    def set_speed(self, speed: float) -> None:
        self.set(self.now_ms(), speed)

    def advance(self, ms: int) -> None:
        self.set(self.now_ms() + ms)

    def reset(self) -> None:
        with self._lock:
            self._anchor_sim_ms = None
            self._anchor_wall_ms = time.time() * 1000
            self.speed = 1.0

"""Faults injected on request, per route, by count (the next N requests) or probability.

A fault's ``route`` is a path prefix (``/api/v3/klines``) or, when it holds ``*?[``, a
glob (``/archive/*/daily/*``). ``count`` limits how often it fires (then it is gone);
``prob`` makes each matching request fire with that probability; with neither it fires
on every matching request until cleared.

Kinds, and who applies them:
- HTTP level, in the app's middleware around every route (venues get them for free):
  ``500``/``502``/``503``, ``timeout`` (sleep ``sleep_s`` before answering),
  ``reset`` (close the socket without a response), ``truncate`` (cut the body in half),
  ``latency`` (add ``latency_ms``), ``down`` (every route of ``exchange`` answers 503,
  or resets with ``mode=reset``).
- Candle level, by whoever serves candles, through ``apply_candle_faults``:
  ``duplicate`` (every 10th candle twice), ``out_of_order`` (neighbours swapped),
  ``missing`` (candles opened in ``[start_ms, end_ms)`` left out until the clock reaches
  ``until_ms`` or the fault is cleared); optional ``symbol``/``interval`` filters.
- Archive files, by the archive routes: ``archive_missing``, ``archive_truncated``,
  ``archive_replaced``.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from klinewatch.domain.candles import Candles

if TYPE_CHECKING:
    from klinewatch.sim.context import SimContext


class FaultKind(StrEnum):
    HTTP_500 = "500"
    HTTP_502 = "502"
    HTTP_503 = "503"
    TIMEOUT = "timeout"
    RESET = "reset"
    TRUNCATE = "truncate"
    LATENCY = "latency"
    DOWN = "down"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    MISSING = "missing"
    ARCHIVE_MISSING = "archive_missing"
    ARCHIVE_TRUNCATED = "archive_truncated"
    ARCHIVE_REPLACED = "archive_replaced"


HTTP_KINDS = frozenset(
    {
        FaultKind.HTTP_500,
        FaultKind.HTTP_502,
        FaultKind.HTTP_503,
        FaultKind.TIMEOUT,
        FaultKind.RESET,
        FaultKind.TRUNCATE,
        FaultKind.LATENCY,
        FaultKind.DOWN,
    }
)
CANDLE_KINDS = frozenset({FaultKind.DUPLICATE, FaultKind.OUT_OF_ORDER, FaultKind.MISSING})
ARCHIVE_KINDS = frozenset(
    {FaultKind.ARCHIVE_MISSING, FaultKind.ARCHIVE_TRUNCATED, FaultKind.ARCHIVE_REPLACED}
)

# Path prefixes of each simulated exchange (the contract in ``app.py``'s docstring).
EXCHANGE_PREFIXES: dict[str, tuple[str, ...]] = {
    "binance": ("/api/", "/fapi/"),
    "binance_spot": ("/api/",),
    "binance_futures": ("/fapi/",),
    "binance_archive": ("/archive/",),
    "okx": ("/okx/",),
    "bybit": ("/bybit/",),
    "bitget": ("/bitget/",),
    "coingecko": ("/coingecko/",),
    "debank": ("/debank/",),
}


@dataclass
class Fault:
    """One fault rule; see the module docstring for the meaning of each field."""

    kind: FaultKind
    route: str = "/"
    count: int | None = None
    prob: float | None = None
    sleep_s: float = 30.0
    latency_ms: float = 0.0
    exchange: str | None = None
    mode: str = "503"
    start_ms: int | None = None
    end_ms: int | None = None
    until_ms: int | None = None
    symbol: str | None = None
    interval: str | None = None
    id: int = 0
    fired: int = 0

    def matches(self, path: str) -> bool:
        if self.kind is FaultKind.DOWN and self.exchange is not None:
            return path.startswith(EXCHANGE_PREFIXES[self.exchange])
        if any(ch in self.route for ch in "*?["):
            return fnmatch.fnmatchcase(path, self.route)
        return path.startswith(self.route)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if k == "kind" else v) for k, v in asdict(self).items()}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Fault:
        """Build and validate one fault from JSON or CLI ``key=value`` pairs."""
        known = {f.name: f for f in fields(cls)} | {"probability": None}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if "probability" in values:
            values["prob"] = values.pop("probability")
        if "kind" not in values:
            raise ValueError("a fault needs a kind")
        try:
            values["kind"] = FaultKind(str(values["kind"]))
        except ValueError:
            kinds = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"unknown fault kind {values['kind']!r}; one of {kinds}") from None
        fault = cls(**{k: _coerce(k, v) for k, v in values.items()})
        fault._validate()
        return fault

    def _validate(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.prob is not None and not 0.0 <= self.prob <= 1.0:
            raise ValueError("prob must lie in [0, 1]")
        if self.kind is FaultKind.DOWN:
            if self.exchange is not None and self.exchange not in EXCHANGE_PREFIXES:
                raise ValueError(f"unknown exchange; one of {', '.join(EXCHANGE_PREFIXES)}")
            if self.mode not in ("503", "reset"):
                raise ValueError("mode must be 503 or reset")
        if self.kind is FaultKind.MISSING and (self.start_ms is None or self.end_ms is None):
            raise ValueError("a missing-candles fault needs start_ms and end_ms")


_INT_FIELDS = {"count", "start_ms", "end_ms", "until_ms", "id", "fired"}
_FLOAT_FIELDS = {"prob", "sleep_s", "latency_ms"}


def _coerce(name: str, value: Any) -> Any:
    if value is None or name == "kind":
        return value
    if name in _INT_FIELDS:
        return int(value)
    if name in _FLOAT_FIELDS:
        return float(value)
    return str(value)


def parse_fault_spec(text: str) -> Fault:
    """``route=/api/v3/klines,kind=500,prob=0.05`` (the CLI's ``--fault``) to a Fault."""
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {part!r}")
        pairs[key.strip()] = value.strip()
    return Fault.from_mapping(pairs)


@dataclass
class FaultSet:
    """The active faults; ``take`` decides which fire for one request and counts them."""

    now_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    rng: random.Random = field(default_factory=random.Random)
    _faults: list[Fault] = field(default_factory=list)
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id, self._next_id = self._next_id, self._next_id + 1
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        self._expire()
        return list(self._faults)

    def any_of(self, kinds: Iterable[FaultKind]) -> bool:
        """Cheap check on the hot path: is any fault of these kinds active at all?"""
        wanted = set(kinds)
        return any(f.kind in wanted for f in self._faults)

    def peek(self, path: str, kinds: Iterable[FaultKind]) -> list[Fault]:
        """The faults of ``kinds`` matching ``path``, without firing or counting them."""
        self._expire()
        wanted = set(kinds)
        return [f for f in list(self._faults) if f.kind in wanted and f.matches(path)]

    def take(self, path: str, kinds: Iterable[FaultKind], **filters: str | None) -> list[Fault]:
        """The faults of ``kinds`` that fire for this request; counts are consumed."""
        if not self._faults:
            return []
        self._expire()
        wanted = set(kinds)
        fired: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if fault.kind not in wanted or not fault.matches(path):
                    continue
                if any(getattr(fault, k) not in (None, v) for k, v in filters.items()):
                    continue
                if fault.prob is not None and self.rng.random() >= fault.prob:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                fired.append(fault)
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return fired

    def _expire(self) -> None:
        now = self.now_ms()
        if any(f.until_ms is not None and f.until_ms <= now for f in self._faults):
            with self._lock:
                self._faults = [f for f in self._faults if f.until_ms is None or f.until_ms > now]


def apply_candle_faults(
    ctx_or_faults: SimContext | FaultSet,
    route: str,
    candles: Candles,
    *,
    symbol: str | None = None,
    interval: str | None = None,
) -> Candles:
    """The candles a client gets once the active candle faults for ``route`` are applied.

    For any venue's kline route: call it on the page about to be served (oldest first).
    """
    faults = ctx_or_faults if isinstance(ctx_or_faults, FaultSet) else ctx_or_faults.faults
    if not faults.any_of(CANDLE_KINDS):
        return candles
    for fault in faults.take(route, CANDLE_KINDS, symbol=symbol, interval=interval):
        candles = _apply_one(fault, candles)
    return candles


def _apply_one(fault: Fault, candles: Candles) -> Candles:
    n = len(candles)
    if fault.kind is FaultKind.DUPLICATE:
        index = np.sort(np.concatenate([np.arange(n), np.arange(0, n, 10)]))
        return candles.take(index)
    if fault.kind is FaultKind.OUT_OF_ORDER:
        index = np.arange(n)
        pairs = n - n % 2
        index[:pairs] = index[:pairs].reshape(-1, 2)[:, ::-1].ravel()
        return candles.take(index)
    start = fault.start_ms if fault.start_ms is not None else 0
    end = fault.end_ms if fault.end_ms is not None else 0
    times = candles.open_time_ms
    return candles.take(~((times >= start) & (times < end)))

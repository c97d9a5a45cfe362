"""Per client and route counters, so tests and benchmarks can assert what a client did
(for instance that it never caused a 429 or 418) instead of guessing from its logs.

A client is the ``X-Sim-Client`` header when sent (tests acting as several clients),
else the peer's IP address, as Binance counts weight per IP.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ARCHIVE_PREFIX = "/archive"
CLIENT_HEADER = b"x-sim-client"


def client_of(scope: dict[str, Any] | Any) -> str:
    """The client identity of an ASGI scope: ``X-Sim-Client`` or the peer host."""
    for name, value in scope.get("headers", ()):
        if name == CLIENT_HEADER:
            return bytes(value).decode("latin-1")
    peer = scope.get("client")
    return str(peer[0]) if peer else "unknown"


def route_key(path: str) -> str:
    """Stats key of a path: archive files group by their folder kind, not per file."""
    if path.startswith(ARCHIVE_PREFIX + "/") and "/klines/" in path:
        return path.split("/klines/", 1)[0] + "/klines"
    return path


@dataclass
class RouteStats:
    requests: int = 0
    weight: int = 0
    status_429: int = 0
    status_418: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "weight": self.weight,
            "429": self.status_429,
            "418": self.status_418,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


@dataclass
class Stats:
    _data: dict[str, dict[str, RouteStats]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _entry(self, client: str, path: str) -> RouteStats:
        routes = self._data.setdefault(client, {})
        return routes.setdefault(route_key(path), RouteStats())

    def record(self, client: str, path: str, status: int) -> None:
        """One finished request (status 0: the connection was dropped, no response)."""
        with self._lock:
            entry = self._entry(client, path)
            entry.requests += 1
            entry.statuses[status] += 1
            entry.status_429 += status == 429
            entry.status_418 += status == 418

    def add_weight(self, client: str, path: str, weight: int) -> None:
        with self._lock:
            self._entry(client, path).weight += weight

    def snapshot(self) -> dict[str, Any]:
        """``{"clients": {client: {route: {...}}}, "totals": {...}}``."""
        with self._lock:
            clients = {
                client: {route: s.to_dict() for route, s in sorted(routes.items())}
                for client, routes in sorted(self._data.items())
            }
            total = RouteStats()
            for routes in self._data.values():
                for s in routes.values():
                    total.requests += s.requests
                    total.weight += s.weight
                    total.status_429 += s.status_429
                    total.status_418 += s.status_418
                    total.statuses.update(s.statuses)
        return {"clients": clients, "totals": total.to_dict()}

    def reset(self) -> None:
        with self._lock:
            self._data.clear()

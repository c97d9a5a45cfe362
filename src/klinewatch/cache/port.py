"""The cache interface every backend implements, and the one error it raises.

Values are bytes (callers choose the encoding); keys and channels are strings built by
``klinewatch.cache.keys``. A cache is an optimisation: when it is unreachable, every
operation raises ``CacheUnavailable`` (quickly) so the caller reads the database instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from klinewatch.errors import KlinewatchError


class CacheUnavailable(KlinewatchError):
    """The cache backend cannot be reached or refused the command: skip the cache."""

    code = "CACHE_UNAVAILABLE"


class Subscription(Protocol):
    """Messages published on one channel after the subscription became active."""

    async def get(self, timeout_s: float | None = None) -> bytes | None:
        """The next message, or None when ``timeout_s`` passes first (None waits)."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """Store ``value``; it expires after ``ttl_s`` seconds (None: never)."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove one key; True when it existed."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (taken literally); how many."""
        ...

    async def publish(self, channel: str, message: bytes) -> int:
        """Send to the channel's current subscribers; how many received it."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """``async with cache.subscribe(ch) as sub``: active once the block is entered."""
        ...

    async def ping(self) -> None:
        """Raise ``CacheUnavailable`` unless the backend answers (health checks)."""
        ...

    async def close(self) -> None: ...


def validate_ttl(ttl_s: float | None) -> None:
    if ttl_s is not None and not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive or None, not {ttl_s!r}")

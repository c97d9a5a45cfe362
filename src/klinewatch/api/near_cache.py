"""A per-process copy of hot Redis values, kept for a second (client-side caching).

A cached klines answer is tens of kilobytes read thousands of times a second; each
Redis round trip costs a worker more than serving the bytes does. ``NearCache`` keeps a
value read from (or written to) Redis in this process for ``ttl_s`` (default 1 s), so
a hot key costs one Redis read per worker per second.

The price is bounded staleness: a deletion made by another process (a new candle
invalidating a series) reaches this process within ``ttl_s``; a deletion made here is
immediate. The local copy only ever mirrors what Redis held: when Redis is down, nothing
new is kept, so within ``ttl_s`` every answer comes from the database. Pub/sub, ping
and the rest go straight to Redis.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from klinewatch.cache.memory import MemoryCache
from klinewatch.cache.port import Cache, Subscription
from klinewatch.clock import Clock, SystemClock

if TYPE_CHECKING:
    _conforms: Cache


class NearCache:
    def __init__(
        self,
        remote: Cache,
        ttl_s: float = 1.0,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Clock | None = None,
    ) -> None:
        """``clock``: wall time (the default); the services' clock may stand still."""
        self.remote = remote
        self.ttl_s = ttl_s
        self.local = MemoryCache(max_bytes=max_bytes, clock=clock or SystemClock())

    async def get(self, key: str) -> bytes | None:
        value = await self.local.get(key)
        if value is not None:
            return value
        value = await self.remote.get(key)
        if value is not None:
            await self.local.set(key, value, self.ttl_s)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float | None) -> None:
        await self.remote.set(key, value, ttl_s)
        await self.local.set(key, value, self.ttl_s if ttl_s is None else min(ttl_s, self.ttl_s))

    async def delete(self, key: str) -> bool:
        await self.local.delete(key)
        return await self.remote.delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        await self.local.delete_prefix(prefix)
        return await self.remote.delete_prefix(prefix)

    async def publish(self, channel: str, message: bytes) -> int:
        return await self.remote.publish(channel, message)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        return self.remote.subscribe(channel)

    async def ping(self) -> None:
        await self.remote.ping()

    async def close(self) -> None:
        await self.local.close()
        await self.remote.close()


if TYPE_CHECKING:
    _conforms = NearCache(MemoryCache())

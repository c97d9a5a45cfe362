"""The per-worker copy of Redis values: kept for its TTL, dropped at once by a local
deletion, never kept when Redis refused the write (the clock is a test's)."""

from __future__ import annotations

import pytest

from klinewatch.api.near_cache import NearCache
from klinewatch.cache.memory import MemoryCache
from klinewatch.cache.port import CacheUnavailable
from klinewatch.clock import FixedClock


class DownCache(MemoryCache):
    async def set(self, key: str, value: bytes, ttl_s: float | None) -> None:
        raise CacheUnavailable("down")

    async def get(self, key: str) -> bytes | None:
        raise CacheUnavailable("down")


async def test_a_value_read_from_redis_is_kept_for_the_ttl() -> None:
    clock = FixedClock(1_000_000)
    remote = MemoryCache(clock=clock)
    near = NearCache(remote, ttl_s=1.0, clock=clock)
    await remote.set("k", b"v1", 60)
    assert await near.get("k") == b"v1"
    await remote.set("k", b"v2", 60)  # another worker writes
    assert await near.get("k") == b"v1"  # stale within the TTL
    clock.advance(1_001)
    assert await near.get("k") == b"v2"


async def test_a_local_deletion_is_immediate_everywhere_here() -> None:
    clock = FixedClock(1_000_000)
    near = NearCache(MemoryCache(clock=clock), ttl_s=1.0, clock=clock)
    await near.set("klines:binance:spot:BTCUSDT:1h:latest:200", b"v", 60)
    assert await near.delete_prefix("klines:binance:spot:BTCUSDT:1h:") == 1
    assert await near.get("klines:binance:spot:BTCUSDT:1h:latest:200") is None


async def test_nothing_is_kept_when_redis_refuses() -> None:
    clock = FixedClock(1_000_000)
    near = NearCache(DownCache(clock=clock), ttl_s=1.0, clock=clock)
    with pytest.raises(CacheUnavailable):
        await near.set("k", b"v", 60)
    with pytest.raises(CacheUnavailable):
        await near.get("k")

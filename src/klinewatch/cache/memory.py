"""The in-process cache: TTL per entry, LRU eviction by bytes, pub/sub between tasks.

The embedded default (no Redis): one process, one event loop. Time comes from an
injected ``Clock`` so tests expire entries without sleeping. Entries are charged their
key and value bytes plus a fixed overhead; the budget is approximate, as a cache's is.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from klinewatch.cache.port import Subscription, validate_ttl
from klinewatch.clock import Clock, SystemClock

if TYPE_CHECKING:
    from klinewatch.cache.port import Cache

ENTRY_OVERHEAD_BYTES = 64
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_QUEUE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    expires_ms: int | None
    size: int


class _MemorySubscription:
    """A bounded queue: a subscriber that falls behind loses the oldest messages,
    never blocks the publisher (live prices only matter while fresh)."""

    def __init__(self, queue_size: int) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)

    def push(self, message: bytes) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(message)

    async def get(self, timeout_s: float | None = None) -> bytes | None:
        if not self._queue.empty():
            return self._queue.get_nowait()
        if timeout_s is not None and timeout_s <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield await self._queue.get()


class MemoryCache:
    """``Cache`` in this process's memory, bounded to ``max_bytes``."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Clock | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.max_bytes = max_bytes
        self._clock = clock or SystemClock()
        self._queue_size = queue_size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._channels: dict[str, set[_MemorySubscription]] = {}
        self.used_bytes = 0

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_ms is not None and entry.expires_ms <= self._clock.now_ms():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def set(self, key: str, value: bytes, ttl_s: float | None) -> None:
        validate_ttl(ttl_s)
        self._remove(key)
        size = len(key.encode()) + len(value) + ENTRY_OVERHEAD_BYTES
        if size > self.max_bytes:
            return  # larger than the whole cache: not cached, the old value is gone
        expires = None if ttl_s is None else self._clock.now_ms() + max(1, round(ttl_s * 1000))
        self._entries[key] = _Entry(bytes(value), expires, size)
        self.used_bytes += size
        while self.used_bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    async def delete(self, key: str) -> bool:
        existed = await self.get(key) is not None
        self._remove(key)
        return existed

    async def delete_prefix(self, prefix: str) -> int:
        now = self._clock.now_ms()
        doomed = [k for k in self._entries if k.startswith(prefix)]
        live = sum(
            1 for k in doomed if (e := self._entries[k]).expires_ms is None or e.expires_ms > now
        )
        for key in doomed:
            self._remove(key)
        return live

    async def publish(self, channel: str, message: bytes) -> int:
        subscribers = self._channels.get(channel, set())
        for subscriber in subscribers:
            subscriber.push(bytes(message))
        return len(subscribers)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = _MemorySubscription(self._queue_size)
        self._channels.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._channels[channel]
            subscribers.discard(subscription)
            if not subscribers:
                del self._channels[channel]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
        self.used_bytes = 0

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.used_bytes -= entry.size


if TYPE_CHECKING:
    _conforms: Cache = MemoryCache()

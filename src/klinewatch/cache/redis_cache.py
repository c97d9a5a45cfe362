"""The Redis cache (``KLINEWATCH_REDIS_URL``): shared by every process, pub/sub included.

Timeouts are small and retries few on purpose: the database is the fallback, so a slow
or dead Redis must cost a request milliseconds, not seconds. Every Redis or socket error
becomes ``CacheUnavailable``. All keys and channels live under ``prefix`` (tests use a
random one; deployments may share a Redis).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from klinewatch.cache.port import CacheUnavailable, Subscription, validate_ttl

if TYPE_CHECKING:
    from klinewatch.cache.port import Cache

DEFAULT_TIMEOUT_S = 0.5
SCAN_BATCH = 1_000
_GLOB_SPECIAL = frozenset("*?[]\\")


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Redis and socket failures as ``CacheUnavailable``, the cause kept."""
    try:
        yield
    except (RedisError, OSError) as e:
        raise CacheUnavailable(
            f"redis {operation} failed: {type(e).__name__}", operation=operation
        ) from e


def _as_bytes(value: bytes | str) -> bytes:
    """Bytes whatever the client's ``decode_responses`` (an injected client may decode)."""
    return value.encode() if isinstance(value, str) else value


def _glob_literal(text: str) -> str:
    return "".join(f"\\{c}" if c in _GLOB_SPECIAL else c for c in text)


class _RedisSubscription:
    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def get(self, timeout_s: float | None = None) -> bytes | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            with _translated("subscribe"):
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=remaining
                )
            if message is not None and message["type"] == "message":
                return _as_bytes(message["data"])
            if deadline is not None and time.monotonic() >= deadline:
                return None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.get(None)
            if message is not None:
                yield message


class RedisCache:
    """``Cache`` over a ``redis.asyncio.Redis`` client (bytes in, bytes out)."""

    def __init__(
        self, client: Redis, *, prefix: str = "", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self._client = client
        self.prefix = prefix
        self._timeout_s = timeout_s

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> RedisCache:
        """A client that fails fast: short timeouts, one immediate retry for a pooled
        connection that died (e.g. Redis restarted), no backoff."""
        client = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            decode_responses=False,
        )
        return cls(client, prefix=prefix, timeout_s=timeout_s)

    async def get(self, key: str) -> bytes | None:
        with _translated("get"):
            value = await self._client.get(self.prefix + key)
        return _as_bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float | None) -> None:
        validate_ttl(ttl_s)
        px = None if ttl_s is None else max(1, math.ceil(ttl_s * 1000))
        with _translated("set"):
            await self._client.set(self.prefix + key, value, px=px)

    async def delete(self, key: str) -> bool:
        with _translated("delete"):
            removed: int = await self._client.delete(self.prefix + key)
        return removed > 0

    async def delete_prefix(self, prefix: str) -> int:
        """SCAN + UNLINK in batches: never blocks Redis the way KEYS would."""
        pattern = _glob_literal(self.prefix + prefix) + "*"
        removed = 0
        with _translated("delete_prefix"):
            batch: list[Any] = []
            async for key in self._client.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += await self._client.unlink(*batch)
                    batch = []
            if batch:
                removed += await self._client.unlink(*batch)
        return removed

    async def publish(self, channel: str, message: bytes) -> int:
        with _translated("publish"):
            receivers: int = await self._client.publish(self.prefix + channel, message)
        return receivers

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        pubsub = self._client.pubsub()
        try:
            with _translated("subscribe"):
                await pubsub.subscribe(self.prefix + channel)
                await self._confirmed(pubsub)
            yield _RedisSubscription(pubsub)
        finally:
            with suppress(RedisError, OSError):
                await pubsub.unsubscribe()
            with suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def _confirmed(self, pubsub: PubSub) -> None:
        """Wait for Redis to confirm SUBSCRIBE, so a publish right after is received."""
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            reply = await pubsub.get_message(timeout=deadline - time.monotonic())
            if reply is not None and reply["type"] == "subscribe":
                return
        raise CacheUnavailable("redis did not confirm the subscription", operation="subscribe")

    async def ping(self) -> None:
        with _translated("ping"):
            await self._client.ping()

    async def close(self) -> None:
        with suppress(RedisError, OSError):
            await self._client.aclose()


if TYPE_CHECKING:
    _conforms: Cache = RedisCache(Redis())

"""The weight governor's books in Redis (``KLINEWATCH_REDIS_URL``): one budget per exchange
host shared by every process on the machine (they share its IP, so they share its limit).

Each step is one atomic Lua script, so two processes can never both take the last room
in a window: ``reserve`` adds a request's weight only if the total stays within budget;
``raise_to`` lifts a window to what the exchange reported, never lowers it. Windows are
keys that expire on their own shortly after they end. A 429 pause and a 418 ban are a
key holding the end time, expiring when it has passed; since Redis keeps it, a process
started during a ban (or after a restart) stays silent too.

Key layout under ``prefix``: ``w:<host key>:<window number>`` (weight used) and
``pause:<host key>`` (epoch ms until which nobody may call). Redis failures become
``ExchangeUnavailable``: the caller backs off and retries rather than calling the
exchange unpaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from klinewatch.clock import Clock, SystemClock
from klinewatch.errors import ExchangeUnavailable

DEFAULT_PREFIX = "klinewatch:ratelimit:"
DEFAULT_TIMEOUT_S = 1.0
# Window keys outlive their window by this much (a window is at most a minute long).
WINDOW_TTL_MS = 120_000
# Pause keys outlive the pause by this much, so clock skew between hosts cannot end it early.
PAUSE_SLACK_MS = 5_000

_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local weight = tonumber(ARGV[1])
if used + weight > tonumber(ARGV[2]) then
  return 0
end
redis.call('INCRBY', KEYS[1], weight)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RAISE_TO = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > used then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""
_PAUSE_UNTIL = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


@dataclass
class _Bound:
    """A Redis client and its scripts, bound to the event loop that created them."""

    loop: asyncio.AbstractEventLoop
    redis: Redis
    reserve: AsyncScript
    raise_to: AsyncScript
    pause_until: AsyncScript


@dataclass
class RedisWeightLedger:
    """``WeightLedger`` in Redis. ``connect`` builds a client; one is made per event loop
    (the CLI runs one loop per command and a client cannot cross loops)."""

    connect: Callable[[], Redis]
    prefix: str = DEFAULT_PREFIX
    clock: Clock = field(default_factory=SystemClock)
    _bound: _Bound | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None
    ) -> RedisWeightLedger:
        def connect() -> Redis:
            return Redis.from_url(
                url, socket_timeout=DEFAULT_TIMEOUT_S, socket_connect_timeout=DEFAULT_TIMEOUT_S
            )

        return cls(connect, prefix, clock or SystemClock())

    async def reserve(self, key: str, window: int, weight: int, budget: int) -> bool:
        bound = self._client()
        keys = [self._window_key(key, window)]
        result = await self._run(bound.reserve, keys, [weight, budget, WINDOW_TTL_MS])
        return bool(result)

    async def raise_to(self, key: str, window: int, used: int) -> None:
        bound = self._client()
        await self._run(bound.raise_to, [self._window_key(key, window)], [used, WINDOW_TTL_MS])

    async def used(self, key: str, window: int) -> int:
        value = await self._get(self._window_key(key, window))
        return int(value or 0)

    async def pause_until(self, key: str) -> int:
        return int(await self._get(self._pause_key(key)) or 0)

    async def set_pause_until(self, key: str, until_ms: int, persist: bool) -> None:
        """Pauses and bans alike live in Redis until they end: every process shares the
        IP, so every process must hold back (``persist`` matters only to file books)."""
        ttl = until_ms - self.clock.now_ms() + PAUSE_SLACK_MS
        if ttl <= PAUSE_SLACK_MS:
            return  # already over
        bound = self._client()
        await self._run(bound.pause_until, [self._pause_key(key)], [until_ms, ttl])

    async def aclose(self) -> None:
        if self._bound is not None:
            bound, self._bound = self._bound, None
            await bound.redis.aclose()

    def _window_key(self, key: str, window: int) -> str:
        return f"{self.prefix}w:{key}:{window}"

    def _pause_key(self, key: str) -> str:
        return f"{self.prefix}pause:{key}"

    def _client(self) -> _Bound:
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound.loop is not loop:
            redis = self.connect()
            self._bound = _Bound(
                loop,
                redis,
                redis.register_script(_RESERVE),
                redis.register_script(_RAISE_TO),
                redis.register_script(_PAUSE_UNTIL),
            )
        return self._bound

    async def _run(self, script: AsyncScript, keys: list[str], args: list[int]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as e:
            raise ExchangeUnavailable(
                f"rate-limit ledger in Redis unavailable: {type(e).__name__}"
            ) from e

    async def _get(self, name: str) -> Any:
        try:
            return await self._client().redis.get(name)
        except (RedisError, OSError) as e:
            raise ExchangeUnavailable(
                f"rate-limit ledger in Redis unavailable: {type(e).__name__}"
            ) from e

"""Where prices are kept between requests (``services/prices.py`` step 1 and step 5):
this worker's copy, the shared cache (Redis or in-process) and the ``cached_prices``
table, newest first. Every layer holds the price with the time it held, so its age is
known whatever layer answers.

A cache that is away is skipped; a database that is away only costs the table (the
caches still hold the prices, and the next round writes them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import orjson
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache.port import Cache, CacheUnavailable
from klinewatch.domain.prices import PricePoint, PricePolicy, valid_price
from klinewatch.services.price_chain import guarded
from klinewatch.storage.engine import transaction
from klinewatch.storage.prices import CachedPriceRepository, PriceKey

MAX_LOCAL = 10_000


def key_name(key: PriceKey) -> str:
    """``price:<network or ->:<SYMBOL>`` (symbols and networks are validated names)."""
    return f"price:{key[1] or '-'}:{key[0]}"


def encode(point: PricePoint) -> bytes:
    return orjson.dumps({"p": str(point.price), "o": point.origin, "t": point.observed_ms})


def decode(raw: bytes | None) -> PricePoint | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        price = valid_price(data["p"])
        return None if price is None else PricePoint(price, str(data["o"]), int(data["t"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class PriceCache:
    def __init__(self, sessions: sessionmaker[Session], cache: Cache, policy: PricePolicy) -> None:
        self.sessions = sessions
        self.cache = cache
        self.policy = policy
        self._local: dict[PriceKey, PricePoint] = {}

    def local(self, key: PriceKey) -> PricePoint | None:
        return self._local.get(key)

    async def shared(self, keys: Sequence[PriceKey]) -> dict[PriceKey, PricePoint]:
        """The shared cache's points of ``keys`` (kept here too)."""
        points = await asyncio.gather(*(self._get(key) for key in keys))
        found = {key: point for key, point in zip(keys, points, strict=True) if point}
        for key, point in found.items():
            self.remember(key, point)
        return found

    async def stored(self, keys: list[PriceKey]) -> dict[PriceKey, PricePoint]:
        """The table's points of ``keys`` (empty when the database is away)."""
        return await guarded("cached_prices_read", {}, self._read, keys)

    async def save(self, points: dict[PriceKey, PricePoint]) -> None:
        """Into every layer; the shared cache keeps them twice the stale limit."""
        if not points:
            return
        ttl = 2 * self.policy.max_stale_ms / 1000
        for key, point in points.items():
            self.remember(key, point)
            with contextlib.suppress(CacheUnavailable):
                await self.cache.set(key_name(key), encode(point), ttl)
        await guarded("cached_prices_write", None, self._write, points)

    def remember(self, key: PriceKey, point: PricePoint) -> None:
        """This worker's copy: the newest point wins; the least recently set goes first."""
        current = self._local.get(key)
        if current is None or current.observed_ms <= point.observed_ms:
            self._local.pop(key, None)
            self._local[key] = point
        while len(self._local) > MAX_LOCAL:
            del self._local[next(iter(self._local))]

    async def _get(self, key: PriceKey) -> PricePoint | None:
        try:
            return decode(await self.cache.get(key_name(key)))
        except CacheUnavailable:
            return None

    def _read(self, keys: list[PriceKey]) -> dict[PriceKey, PricePoint]:
        with transaction(self.sessions) as session:
            return CachedPriceRepository(session).read(keys)

    def _write(self, points: dict[PriceKey, PricePoint]) -> None:
        with transaction(self.sessions) as session:
            CachedPriceRepository(session).save(points)

"""One cache suite, run against the in-process cache and the real Redis at 127.0.0.1:6379.

Memory time is an injected clock; Redis expiry uses a real 100 ms TTL. Redis failures are
real sockets: a closed port, a server that never answers, a proxy stopped mid-test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from klinewatch.cache import keys
from klinewatch.cache.memory import ENTRY_OVERHEAD_BYTES, MemoryCache
from klinewatch.cache.port import Cache, CacheUnavailable
from klinewatch.cache.redis_cache import RedisCache
from klinewatch.clock import FixedClock
from klinewatch.errors import InvalidInput
from tests.fixtures.redis_proxy import RedisProxy

REDIS_URL = os.environ.get("KLINEWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")


@dataclass
class Backend:
    cache: Cache
    # Moves time past a TTL: the memory clock jumps, Redis really waits.
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FixedClock(1_700_000_000_000)

        async def jump(seconds: float) -> None:
            clock.advance(round(seconds * 1000))

        yield Backend(MemoryCache(clock=clock), jump)
        return
    cache = RedisCache.from_url(REDIS_URL, prefix=f"kwtest:{uuid.uuid4().hex}:")
    try:
        yield Backend(cache, asyncio.sleep)
    finally:
        await cache.delete_prefix("")  # only this test's keys: everything is under its prefix
        await cache.close()


# --- the same behaviour from both ----------------------------------------------------


async def test_set_then_get_returns_the_same_bytes(backend: Backend) -> None:
    cache = backend.cache
    value = b"\x00\xffbinary \xe4\xb8\xad"
    await cache.set("k", value, 60)
    assert await cache.get("k") == value
    assert await cache.get("missing") is None
    await cache.set("k", b"second", 60)
    assert await cache.get("k") == b"second"


async def test_an_entry_expires_after_its_ttl(backend: Backend) -> None:
    cache = backend.cache
    await cache.set("short", b"1", 0.1)
    await cache.set("long", b"2", 60)
    await cache.set("forever", b"3", None)
    assert await cache.get("short") == b"1"
    await backend.advance(0.25)
    assert await cache.get("short") is None
    assert await cache.get("long") == b"2"
    assert await cache.get("forever") == b"3"


async def test_setting_again_replaces_the_ttl(backend: Backend) -> None:
    cache = backend.cache
    await cache.set("k", b"1", 0.1)
    await cache.set("k", b"2", 60)
    await backend.advance(0.25)
    assert await cache.get("k") == b"2"


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_a_ttl_must_be_positive(backend: Backend, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        await backend.cache.set("k", b"v", ttl)


async def test_delete_says_whether_the_key_existed(backend: Backend) -> None:
    cache = backend.cache
    await cache.set("k", b"v", 60)
    assert await cache.delete("k") is True
    assert await cache.get("k") is None
    assert await cache.delete("k") is False


async def test_delete_prefix_removes_exactly_that_series(backend: Backend) -> None:
    cache = backend.cache
    btc = keys.klines_prefix("binance", "spot", "BTC", "1h")
    btcusdt = keys.klines_prefix("binance", "spot", "BTCUSDT", "1h")
    for window in ("latest:200", "latest:500", "range:1:2"):
        await cache.set(btc + window, b"x", 60)
        await cache.set(btcusdt + window, b"y", 60)
    assert await cache.delete_prefix(btc) == 3
    assert await cache.get(btc + "latest:200") is None
    assert await cache.get(btcusdt + "latest:200") == b"y"


async def test_delete_prefix_takes_glob_characters_literally(backend: Backend) -> None:
    cache = backend.cache
    await cache.set("a*b", b"1", 60)
    await cache.set("axb", b"2", 60)
    await cache.set("a[x]", b"3", 60)
    assert await cache.delete_prefix("a*") == 1
    assert await cache.delete_prefix("a[") == 1
    assert await cache.get("axb") == b"2"


async def test_delete_prefix_handles_more_keys_than_one_batch(backend: Backend) -> None:
    cache = backend.cache
    for i in range(2_500):
        await cache.set(f"many:{i}", b"v", 60)
    await cache.set("other", b"v", 60)
    assert await cache.delete_prefix("many:") == 2_500
    assert await cache.get("many:1234") is None
    assert await cache.get("other") == b"v"


async def test_a_subscriber_receives_what_is_published_after_it_subscribed(
    backend: Backend,
) -> None:
    cache = backend.cache
    channel = keys.live_klines_channel("binance", "spot", "BTCUSDT", "1m")
    assert await cache.publish(channel, b"before") == 0
    async with cache.subscribe(channel) as first, cache.subscribe(channel) as second:
        assert await cache.publish(channel, b"candle-1") == 2
        await cache.publish("another-channel", b"noise")
        await cache.publish(channel, b"candle-2")
        assert await first.get(2.0) == b"candle-1"
        assert await first.get(2.0) == b"candle-2"
        assert await second.get(2.0) == b"candle-1"
        assert await first.get(0.05) is None  # nothing else: a timeout, not an error
    assert await cache.publish(channel, b"after") == 0


async def test_a_subscription_is_an_async_iterator(backend: Backend) -> None:
    cache = backend.cache
    async with cache.subscribe("live:ticker") as sub:
        await cache.publish("live:ticker", b"p1")
        await cache.publish("live:ticker", b"p2")
        received = []
        async for message in sub:
            received.append(message)
            if len(received) == 2:
                break
    assert received == [b"p1", b"p2"]


async def test_ping_answers_when_the_backend_is_up(backend: Backend) -> None:
    await backend.cache.ping()


# --- memory only: the byte budget ----------------------------------------------------


async def test_memory_evicts_the_least_recently_used_bytes_first() -> None:
    entry = len(b"k0") + 100 + ENTRY_OVERHEAD_BYTES
    cache = MemoryCache(max_bytes=3 * entry, clock=FixedClock())
    for i in range(3):
        await cache.set(f"k{i}", bytes(100), 60)
    assert await cache.get("k0") is not None  # k0 is now the most recently used
    await cache.set("k3", bytes(100), 60)
    assert await cache.get("k1") is None
    assert [await cache.get(k) is not None for k in ("k0", "k2", "k3")] == [True] * 3
    assert cache.used_bytes == 3 * entry


async def test_memory_does_not_keep_a_value_larger_than_the_budget() -> None:
    cache = MemoryCache(max_bytes=1_000, clock=FixedClock())
    await cache.set("k", b"small", 60)
    await cache.set("k", bytes(2_000), 60)
    assert await cache.get("k") is None
    assert cache.used_bytes == 0


async def test_memory_counts_expired_entries_out_of_the_budget_when_read() -> None:
    clock = FixedClock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", bytes(100), 1)
    clock.advance(1_000)
    assert await cache.get("k") is None
    assert cache.used_bytes == 0
    assert await cache.delete_prefix("") == 0


async def test_memory_drops_the_oldest_messages_of_a_slow_subscriber() -> None:
    cache = MemoryCache(queue_size=2)
    async with cache.subscribe("c") as sub:
        for i in range(3):
            await cache.publish("c", b"%d" % i)
        assert [await sub.get(0), await sub.get(0), await sub.get(0)] == [b"1", b"2", None]


# --- Redis down ----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def every_operation_is_unavailable(cache: Cache, within_s: float) -> None:
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: cache.get("k"),
        lambda: cache.set("k", b"v", 60),
        lambda: cache.delete("k"),
        lambda: cache.delete_prefix("k"),
        lambda: cache.publish("c", b"m"),
        cache.ping,
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(CacheUnavailable) as caught:
            await operation()
        assert time.monotonic() - started < within_s
        assert caught.value.code == "CACHE_UNAVAILABLE"
        assert caught.value.__cause__ is not None
    started = time.monotonic()
    with pytest.raises(CacheUnavailable):
        async with cache.subscribe("c"):
            pass
    assert time.monotonic() - started < within_s


async def test_redis_on_a_closed_port_is_unavailable_at_once() -> None:
    cache = RedisCache.from_url(f"redis://127.0.0.1:{closed_port()}/0", timeout_s=0.2)
    try:
        await every_operation_is_unavailable(cache, within_s=0.5)
    finally:
        await cache.close()


async def test_a_redis_that_never_answers_is_unavailable_after_the_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, read, never reply
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cache = RedisCache.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.1)
    try:
        await every_operation_is_unavailable(cache, within_s=0.5)  # 0.1 s, retried once
    finally:
        await cache.close()
        server.close()


@pytest.mark.redis
async def test_redis_stopping_mid_test_is_unavailable_then_recovers() -> None:
    proxy = RedisProxy()
    await proxy.start()
    cache = RedisCache.from_url(
        f"redis://127.0.0.1:{proxy.port}/0", prefix=f"kwtest:{uuid.uuid4().hex}:", timeout_s=0.2
    )
    try:
        await cache.set("k", b"v", 60)
        assert await cache.get("k") == b"v"
        await proxy.stop()
        await every_operation_is_unavailable(cache, within_s=0.5)
        await proxy.start()
        assert await cache.get("k") == b"v"  # the pool reconnects by itself
    finally:
        with contextlib.suppress(CacheUnavailable):
            await cache.delete_prefix("")
        await cache.close()
        await proxy.stop()


# --- key names -----------------------------------------------------------------------


def test_key_names_follow_the_seed_with_the_market_type() -> None:
    latest = keys.latest_window(200)
    assert keys.klines("binance", "spot", "BTCUSDT", "1h", latest) == (
        "klines:binance:spot:BTCUSDT:1h:latest:200"
    )
    assert keys.klines("binance", "futures", "BTCUSDT", "1h", keys.range_window(1, 2)) == (
        "klines:binance:futures:BTCUSDT:1h:range:1:2"
    )
    assert keys.indicators("okx", "spot", "BTC/USDT", "4h", "MACD", "ab12", latest) == (
        "indicators:okx:spot:BTC/USDT:4h:MACD:ab12:latest:200"
    )
    assert keys.ticker("binance", "spot", "BTCUSDT") == "ticker:binance:spot:BTCUSDT"
    assert keys.exchange_status("binance") == "exchange:status:binance"
    assert keys.exchange_rate_limited("bybit") == "exchange:rate_limited:bybit"
    assert keys.live_ticker_channel("binance", "spot", "X") == "live:ticker:binance:spot:X"


def test_series_prefixes_cover_its_klines_and_indicators_only() -> None:
    prefixes = keys.series_prefixes("binance", "spot", "BTCUSDT", "1h")
    mine = keys.indicators("binance", "spot", "BTCUSDT", "1h", "RSI", "h", "latest:5")
    other = keys.klines("binance", "spot", "BTCUSDT", "4h", "latest:5")
    assert any(mine.startswith(p) for p in prefixes)
    assert not any(other.startswith(p) for p in prefixes)


@pytest.mark.parametrize(
    ("symbol", "field"), [("BTC:USDT", "symbol"), ("BTC*", "symbol"), ("", "symbol")]
)
def test_a_segment_that_could_collide_is_refused(symbol: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        keys.klines_prefix("binance", "spot", symbol, "1h")
    assert caught.value.field == field
    with pytest.raises(InvalidInput):
        keys.latest_window(0)

"""Exchange health, failover and rate-limit marks (seed 001 sections 3.3 and 3.4).

``FailoverManager`` probes every enabled exchange (its server time, through the
``ExchangeClient`` port) every ``health_check.interval_s`` with a ``timeout_s`` deadline.
``failures_to_unhealthy`` failures in a row mark an exchange unhealthy,
``successes_to_recover`` successes in a row bring it back. The current exchange is the
first healthy one of ``[default_exchange, *enabled_exchanges]`` when ``auto_failover`` is
on, else the default; with none healthy it is the default (the seed's rule). Every
switch is logged and counted. The probe also learns each exchange's clock offset, so
"which candle is the newest closed one" follows the exchange, not this machine.

``RateLimitMarks`` remembers "this exchange answered 429, leave it alone" for the
config's ``rate_limited_for_s``: in this process, and in the cache so that every worker
sharing a Redis sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from klinewatch.cache import keys
from klinewatch.cache.port import Cache, CacheUnavailable
from klinewatch.clock import Clock
from klinewatch.domain.market_config import MarketDataConfig
from klinewatch.errors import (
    ExchangeRejected,
    ExchangeUnavailable,
    InvalidInput,
    KlinewatchError,
    RateLimited,
)
from klinewatch.exchanges.port import ExchangeClient
from klinewatch.logs import get_logger

log = get_logger(__name__)

ExchangeFactory = Callable[[str, str], ExchangeClient]
HealthListener = Callable[[str, bool], None]
SwitchListener = Callable[[str, str], None]
PROBE_MARKET = "spot"


class ExchangeClients:
    """One client per (exchange, market type), built on first use by the composition
    root's factory; an exchange this build has no client for is reported unavailable."""

    def __init__(self, factory: ExchangeFactory) -> None:
        self._factory = factory
        self._clients: dict[tuple[str, str], ExchangeClient] = {}

    def get(self, exchange: str, market_type: str) -> ExchangeClient:
        key = (exchange, market_type)
        client = self._clients.get(key)
        if client is None:
            try:
                client = self._factory(exchange, market_type)
            except InvalidInput as e:
                raise ExchangeUnavailable(
                    f"no {exchange} {market_type} client in this build: {e.message}",
                    exchange=exchange,
                ) from e
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


@dataclass
class ExchangeHealth:
    """What the probes have seen of one exchange; unknown counts as healthy."""

    healthy: bool = True
    failures: int = 0
    successes: int = 0
    checks: int = 0
    last_error: str | None = None
    last_check_ms: int | None = None
    latency_ms: float | None = None
    offset_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "healthy" if self.healthy else "unhealthy",
            "error": self.last_error,
            "consecutive_failures": self.failures,
            "consecutive_successes": self.successes,
            "checks": self.checks,
            "last_check_ms": self.last_check_ms,
            "latency_ms": self.latency_ms,
        }


@dataclass
class FailoverManager:
    clients: ExchangeClients
    config: Callable[[], MarketDataConfig]
    clock: Clock
    on_health: HealthListener = lambda exchange, healthy: None
    on_switch: SwitchListener = lambda old, new: None
    health: dict[str, ExchangeHealth] = field(default_factory=dict)
    current_exchange: str = ""
    switches: int = 0

    def __post_init__(self) -> None:
        self.current_exchange = self.current_exchange or self.config().default_exchange

    def state(self, exchange: str) -> ExchangeHealth:
        return self.health.setdefault(exchange, ExchangeHealth())

    def is_healthy(self, exchange: str) -> bool:
        return self.state(exchange).healthy

    def now_ms(self, exchange: str) -> int:
        """This machine's time corrected by the exchange's clock, as last measured."""
        found = self.health.get(exchange)
        return self.clock.now_ms() + (found.offset_ms if found else 0)

    async def check(self, exchange: str) -> bool:
        """Probe one exchange once and update its counters; True if it answered."""
        rules = self.config().health_check
        state = self.state(exchange)
        started = time.perf_counter()
        sent = self.clock.now_ms()
        try:
            client = self.clients.get(exchange, PROBE_MARKET)
            async with asyncio.timeout(rules.timeout_s):
                server_ms = await client.server_time_ms()
        except Exception as e:  # any failure of a probe means "not healthy", never a crash
            if isinstance(e, TimeoutError):
                reason = f"no answer within {rules.timeout_s} s"
            elif isinstance(e, KlinewatchError):
                reason = e.message
            else:
                reason = f"{type(e).__name__}: {str(e)[:200]}"
            self._failed(exchange, state, reason)
            return False
        state.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        state.offset_ms = server_ms - (sent + self.clock.now_ms()) // 2
        self._succeeded(exchange, state)
        return True

    def _failed(self, exchange: str, state: ExchangeHealth, error: str) -> None:
        rules = self.config().health_check
        state.checks += 1
        state.failures += 1
        state.successes = 0
        state.last_error = error
        state.last_check_ms = self.clock.now_ms()
        log.warning(
            "exchange_check_failed", exchange=exchange, error=error, failures=state.failures
        )
        if state.healthy and state.failures >= rules.failures_to_unhealthy:
            state.healthy = False
            log.error("exchange_unhealthy", exchange=exchange, error=error)
            self.on_health(exchange, False)

    def _succeeded(self, exchange: str, state: ExchangeHealth) -> None:
        rules = self.config().health_check
        state.checks += 1
        state.successes += 1
        state.failures = 0
        state.last_check_ms = self.clock.now_ms()
        if not state.healthy and state.successes >= rules.successes_to_recover:
            state.healthy = True
            state.last_error = None
            log.info("exchange_recovered", exchange=exchange)
            self.on_health(exchange, True)
        elif state.healthy:
            state.last_error = None

    async def check_all(self) -> str:
        """Probe every enabled exchange at once, then pick the current one."""
        enabled = list(self.config().enabled_exchanges)
        await asyncio.gather(*(self.check(exchange) for exchange in enabled))
        return self.decide()

    def decide(self) -> str:
        """Apply the failover rule to what is known now; log and count a switch."""
        config = self.config()
        preferred = [config.default_exchange] + [
            e for e in config.enabled_exchanges if e != config.default_exchange
        ]
        target = config.default_exchange
        if config.auto_failover:
            target = next((e for e in preferred if self.is_healthy(e)), target)
        if target != self.current_exchange:
            old, self.current_exchange = self.current_exchange, target
            self.switches += 1
            reason = "unhealthy" if not self.is_healthy(old) else "preferred"
            log.warning("exchange_failover", exchange=old, failover_to=target, reason=reason)
            self.on_switch(old, target)
        return self.current_exchange

    async def run(self) -> None:
        """Check forever at the configured interval (read again before each wait)."""
        while True:
            try:
                await self.check_all()
            except Exception:  # a probe bug must not end the health loop
                log.exception("health_check_loop_failed")
            await asyncio.sleep(self.config().health_check.interval_s)

    def report(self) -> dict[str, dict[str, Any]]:
        return {e: self.state(e).as_dict() for e in self.config().enabled_exchanges}


class RateLimitMarks:
    """After a 429: "do not ask this exchange before ``until``", shared via the cache."""

    def __init__(self, cache: Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock
        self._until: dict[str, int] = {}

    async def mark(self, exchange: str, for_s: float) -> int:
        until = self.clock.now_ms() + int(for_s * 1000)
        self._until[exchange] = max(until, self._until.get(exchange, 0))
        log.warning("exchange_rate_limited", exchange=exchange, for_s=for_s, until_ms=until)
        with contextlib.suppress(CacheUnavailable):  # this process still remembers
            await self.cache.set(keys.exchange_rate_limited(exchange), str(until).encode(), for_s)
        return until

    async def until_ms(self, exchange: str) -> int | None:
        """When the mark ends, if one is active here or in another worker."""
        now = self.clock.now_ms()
        local = self._until.get(exchange, 0)
        if local > now:
            return local
        try:
            shared = await self.cache.get(keys.exchange_rate_limited(exchange))
        except CacheUnavailable:
            return None
        if shared is None:
            return None
        until = int(shared)
        return until if until > now else None

    async def clear(self, exchange: str) -> None:
        self._until.pop(exchange, None)
        with contextlib.suppress(CacheUnavailable):
            await self.cache.delete(keys.exchange_rate_limited(exchange))


class ExchangeGate:
    """Exchange calls made on a request's behalf (seed 001 sections 3.4 and 7.4): at
    most ``concurrency`` at once, each bounded by ``timeout_s`` (the client's own retries
    happen inside it), never while the exchange is marked rate limited or unhealthy.

    The client waits out a 429 itself (``Retry-After``); a request cannot, so a call cut
    short while the exchange's governors counted a 429 (``rate_limit_events``) is one,
    and sets the mark for the config's ``rate_limited_for_s``.
    """

    def __init__(
        self,
        failover: FailoverManager,
        marks: RateLimitMarks,
        config: Callable[[], MarketDataConfig],
        clock: Clock,
        *,
        rate_limit_events: Callable[[str], int] = lambda exchange: 0,
        timeout_s: float = 10.0,
        concurrency: int = 10,
    ) -> None:
        self.failover = failover
        self.marks = marks
        self.config = config
        self.clock = clock
        self.rate_limit_events = rate_limit_events
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(concurrency)

    async def ask(self, exchange: str, call: Awaitable[Any], *, field: str) -> Any:
        """One exchange call on a request's behalf: never while marked rate-limited or
        unhealthy, bounded in time; a 429 (even one the client retried) sets the mark."""
        config = self.config()
        until = await self.marks.until_ms(exchange)
        if until is not None or not self.failover.is_healthy(exchange):
            _close(call)
            if until is not None:
                wait_s = max(0.0, (until - self.clock.now_ms()) / 1000)
                raise RateLimited(
                    f"{exchange} is rate limited for {wait_s:.0f} s more",
                    retry_after_s=wait_s,
                    exchange=exchange,
                )
            error = self.failover.state(exchange).last_error
            raise ExchangeUnavailable(f"{exchange} is unhealthy: {error}", exchange=exchange)
        before = self.rate_limit_events(exchange)
        try:
            async with self._slots, asyncio.timeout(self.timeout_s):
                result = await call
        except RateLimited as e:
            await self.marks.mark(exchange, config.rate_limited_for_s)
            raise RateLimited(e.message, retry_after_s=config.rate_limited_for_s) from e
        except TimeoutError as e:
            if self.rate_limit_events(exchange) > before:  # waiting out a 429
                await self.marks.mark(exchange, config.rate_limited_for_s)
                raise RateLimited(
                    f"{exchange} answered 429", retry_after_s=config.rate_limited_for_s
                ) from e
            raise ExchangeUnavailable(
                f"{exchange} did not answer within {self.timeout_s:g} s",
                exchange=exchange,
                network=True,
            ) from e
        except ExchangeRejected as e:  # invalid symbol (-1121) and the like: the input's fault
            raise InvalidInput(f"{exchange} refused the request: {e.message}", field=field) from e
        if self.rate_limit_events(exchange) > before:
            await self.marks.mark(exchange, config.rate_limited_for_s)
        return result


def _close(call: Awaitable[Any]) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    close = getattr(call, "close", None)
    if close is not None:
        close()

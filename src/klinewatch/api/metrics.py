"""Prometheus metrics (seed 001 section 8.1), one registry per app.

Requests and latency per route template, cache hits and misses, answers per data
source, exchange health and failovers, candles written, and the weight each exchange
host's governor has spent (read at scrape time). Each worker process has its own
registry: with several workers a scrape shows the worker that answered it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from klinewatch.exchanges.ratelimit import WeightGovernor

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _GovernorCollector(Collector):
    """Weight used and 429/418 answers per exchange host, from the live governors."""

    def __init__(self, governors: Callable[[], Mapping[str, WeightGovernor]]) -> None:
        self._governors = governors

    def collect(self) -> Iterator[Metric]:
        weight = CounterMetricFamily(
            "klinewatch_exchange_weight_used",
            "Request weight spent per exchange host",
            labels=["host"],
        )
        limited = CounterMetricFamily(
            "klinewatch_exchange_rate_limited",
            "429 and 418 answers per exchange host",
            labels=["host"],
        )
        for key, governor in dict(self._governors()).items():
            weight.add_metric([key], governor.stats.weight)
            limited.add_metric([key], governor.stats.rate_limited + governor.stats.banned)
        yield weight
        yield limited


class Telemetry:
    """Implements the services' ``Telemetry`` and the failover listeners."""

    def __init__(self, governors: Callable[[], Mapping[str, WeightGovernor]] = dict) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "klinewatch_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "klinewatch_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter("klinewatch_cache_hits", "Cache hits", ["kind"], registry=r)
        self.cache_misses = Counter("klinewatch_cache_misses", "Cache misses", ["kind"], registry=r)
        self.answers = Counter(
            "klinewatch_answers", "Answers per data source", ["kind", "source"], registry=r
        )
        self.exchange_health = Gauge(
            "klinewatch_exchange_health", "1 healthy, 0 unhealthy", ["exchange"], registry=r
        )
        self.failovers = Counter(
            "klinewatch_exchange_failovers",
            "Exchange switches",
            ["from_exchange", "to"],
            registry=r,
        )
        self.candles = Counter(
            "klinewatch_candles_written",
            "Candles written through to the database",
            ["exchange", "market_type", "interval"],
            registry=r,
        )
        self.governors = governors  # replaced once the runtime exists
        r.register(_GovernorCollector(lambda: self.governors()))
        self._http: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished request; label children are cached (this runs on every request)."""
        key = (method, route, status)
        children = self._http.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def cache_lookup(self, kind: str, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).labels(kind).inc()

    def candles_written(self, exchange: str, market_type: str, interval: str, n: int) -> None:
        self.candles.labels(exchange, market_type, interval).inc(n)

    def served(self, kind: str, source: str) -> None:
        self.answers.labels(kind, source).inc()

    def health(self, exchange: str, healthy: bool) -> None:
        self.exchange_health.labels(exchange).set(1 if healthy else 0)

    def switched(self, old: str, new: str) -> None:
        self.failovers.labels(old, new).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Benchmark: ``GET /api/v1/prices`` for 100 symbols from a warm cache (issue 8).

Processes: the simulator (``klinewatch sim serve --replicate-symbols 100``, its data
shifted to end now, so its DeBank-shaped source prices ``SIM0001`` ... ``SIM0100``) and
the API (``uvicorn --factory klinewatch.api.app:create_app_from_env``, one worker:
PostgreSQL + Redis, or SQLite + the in-process cache with ``--embedded``).

One cold request fills the caches from the primary source (one batched request); then
``--samples`` requests, one at a time on one keep-alive connection, are timed. A sample
counts only when all 100 prices came from the cache (fresh for 30 s; the run re-warms
and drops a sample that was not).

    .venv/bin/python bench/prices.py [--samples 300] [--embedded]

Figures: ``prices_100_p50_ms`` (target < 10 ms), ``prices_100_p95_ms``,
``prices_100_cold_ms`` (the first request: sources asked). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script or as python -m bench.prices

from bench.api import start_api  # noqa: E402
from bench.common import print_figures  # noqa: E402

SYMBOLS = [f"SIM{i:04d}" for i in range(1, 101)]
PATH = "/api/v1/prices?symbols=" + ",".join(SYMBOLS)


def start(args: argparse.Namespace, stack: ExitStack, tmp: Path) -> str:
    """The simulator with 100 more names for its BTC series, and the API (one worker)."""
    args.workers = 1
    keys = {"KLINEWATCH_PRICE_SOURCE_API_KEY": "bench", "KLINEWATCH_COINGECKO_API_KEY": "bench"}
    base, _ = start_api(args, stack, tmp, ("--replicate-symbols", "100"), keys)
    return base


def get(connection: http.client.HTTPConnection) -> tuple[float, list[dict[str, object]]]:
    started = time.perf_counter()
    connection.request("GET", PATH)
    answer = connection.getresponse()
    body = answer.read()
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status != 200:
        raise RuntimeError(f"{answer.status}: {body[:300]!r}")
    prices: list[dict[str, object]] = json.loads(body)["data"]["prices"]
    if len(prices) != len(SYMBOLS) or any(p["price"] is None for p in prices):
        raise RuntimeError(f"not every symbol priced: {body[:300]!r}")
    return elapsed, prices


def measure(base: str, samples: int) -> tuple[float, list[float]]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    timings: list[float] = []
    try:
        cold, prices = get(connection)
        if {p["source"] for p in prices} == {"cache"}:
            raise RuntimeError("the first request was already cached")
        for _ in range(samples * 3):
            if len(timings) == samples:
                break
            elapsed, prices = get(connection)
            if {p["source"] for p in prices} == {"cache"}:
                timings.append(elapsed)
    finally:
        connection.close()
    if len(timings) < samples:
        raise RuntimeError(f"only {len(timings)} of {samples} answers came from the cache")
    return cold, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--embedded", action="store_true", help="SQLite + in-process cache")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base = start(args, stack, tmp)
        cold, timings = measure(base, args.samples)
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(0.95 * (len(timings) - 1))]
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    stack_name = "SQLite + in-process cache" if args.embedded else "PostgreSQL + Redis"
    print(f"{stack_name}; {os.cpu_count()} CPUs, load {load_avg}; {len(timings)} samples")
    print(f"100 symbols: cold {cold:.1f} ms; warm p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    print_figures({
        "prices_100_p50_ms": round(p50, 2),
        "prices_100_p95_ms": round(p95, 2),
        "prices_100_cold_ms": round(cold, 1),
    })  # fmt: skip


if __name__ == "__main__":
    main()

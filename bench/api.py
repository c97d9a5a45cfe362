"""Benchmark: the market-data API as production serves it, against a bare endpoint.

Processes: the simulator (``klinewatch sim serve``, its data shifted to end now), the API
(``uvicorn --factory klinewatch.api.app:create_app_from_env --workers N``: PostgreSQL +
Redis, or SQLite + the in-process cache with ``--embedded``), a bare FastAPI app with
the same workers that returns the very bytes of a cached klines answer from memory, and
the load generator (``wrk`` when installed, else an asyncio raw-socket client in its
own process). Both targets are loaded by the same generator in the same run.

Figures:
- ``cached_klines_rps`` / ``bare_rps`` / ``cached_klines_ratio``: 200 cached candles at
  ``--connections`` (64) concurrent connections, each sending as soon as it has its
  answer; ``cached_klines_p99_ms`` and ``bare_p99_ms`` their p99. Flooded so, a p99 is
  mostly queueing (64 requests waiting on 2 shared cores, the generator among them).
- ``cached_klines_cpu_us`` / ``bare_cpu_us``: CPU time (user + system, all workers) each
  server spent per request in those runs: how cheap a path is, whatever else runs.
- ``cached_klines_paced_p99_ms``: the same 64 connections paced to a quarter of the bare
  endpoint's rate (the issue's throughput target), each latency counted from when its
  request was due (Python generator, open loop).
- ``db_klines_p50_ms``: 200 candles of random windows (cache misses, database-served),
  one request at a time; ``indicators_p50_ms``: MA, MACD, RSI, BOLL and VOL over 1000
  candles of random windows, database-served. Answers not from the database are not
  counted (the run fails if there are any).

    .venv/bin/python bench/api.py [--duration 10] [--workers 2] [--embedded]

Last line printed: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import redis
from fastapi import FastAPI
from fastapi.responses import Response

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script or as python -m bench.api

from bench.common import (  # noqa: E402
    print_figures,
    shared_data_dir,
    sim_admin,
    start_sim,
    throwaway_pg_database,
)
from klinewatch.sim.app import url_settings  # noqa: E402

SYMBOL, INTERVAL = "BTCUSDT", "1h"
KLINES = f"/api/v1/market/klines?symbol={SYMBOL}&timeframe={INTERVAL}&limit=200"
HOUR_MS = 3_600_000
SEED_CANDLES = 20_000
REDIS_URL = os.environ.get("KLINEWATCH_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SERVERS: dict[str, int] = {}  # base URL -> process group of the uvicorn serving it
Figures = tuple[float, float, float]  # requests/s, p99 ms, server CPU us per request
# The paced run asks the throughput target: a quarter of the bare endpoint's rate.
PACED_SHARE = 0.25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) the processes of a process group have used so far."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def uvicorn_app(factory: str, workers: int, env: dict[str, str]) -> Iterator[str]:
    """``uvicorn --factory`` in its own process group; the base URL once it answers."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
        "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    SERVERS[base] = proc.pid  # its workers share its process group
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(f"{base}/openapi.json", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not start")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --- the bare endpoint (imported by uvicorn in its workers) ---------------------------


def bare_app() -> FastAPI:
    """A FastAPI app answering the klines path with the bytes in $BENCH_BARE_BODY."""
    body = Path(os.environ["BENCH_BARE_BODY"]).read_bytes()
    app = FastAPI()

    @app.get("/api/v1/market/klines")
    async def klines() -> Response:
        return Response(body, media_type="application/json")

    return app


# --- load generators ------------------------------------------------------------------


def wrk_load(url: str, connections: int, duration: float) -> tuple[float, float]:
    """(requests/s, p99 ms) from ``wrk --latency``; any non-2xx answer fails the run."""
    threads = str(min(2, connections))
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{duration:g}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def python_load(
    url: str, connections: int, duration: float, rate: float = 0.0
) -> tuple[float, float]:
    """The same figures from an asyncio raw-socket client in its own process; with a
    ``rate`` (requests/s over all connections) it paces instead of flooding."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); from bench.api import _socket_load; "
        "print(json.dumps(_socket_load(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), "
        "float(sys.argv[5]))))"
    )
    args = [str(REPO), url, str(connections), str(duration), str(rate)]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    rps, p99 = json.loads(out.stdout.strip().splitlines()[-1])
    return float(rps), float(p99)


def _socket_load(
    url: str, connections: int, duration: float, rate: float = 0.0
) -> tuple[float, float]:
    """Closed loop (each connection sends as soon as it has its answer), or with ``rate``
    open loop: each connection sends on its own schedule and a latency counts from when
    the request was due, so a stall is not hidden by the requests it delayed (what wrk2
    calls coordinated omission)."""
    import uvloop

    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    request = f"GET /{path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    latencies: list[float] = []

    async def one(deadline: float, index: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 22)
        every = connections / rate if rate > 0 else 0.0
        due = time.perf_counter() + every * index / connections
        while time.perf_counter() < deadline:
            if every and due >= deadline:
                break
            if every:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                started, due = due, due + every
            else:
                started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"200":
                raise RuntimeError(head[:12])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
        writer.close()

    async def run() -> None:
        deadline = time.perf_counter() + duration
        await asyncio.gather(*(one(deadline, i) for i in range(connections)))

    uvloop.run(run())
    latencies.sort()
    return len(latencies) / duration, 1000 * latencies[int(0.99 * (len(latencies) - 1))]


def load(url: str, connections: int, duration: float) -> tuple[float, float]:
    if shutil.which("wrk"):
        return wrk_load(url, connections, duration)
    return python_load(url, connections, duration)


def p50_ms(base: str, paths: list[str], source: str = "database") -> float:
    """Median latency of ``paths`` one at a time on one keep-alive connection; every
    answer must come from ``source``."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    timings = []
    try:
        for path in paths:
            started = time.perf_counter()
            connection.request("GET", path)
            answer = connection.getresponse()
            body = answer.read()
            elapsed = time.perf_counter() - started
            if answer.status != 200 or answer.getheader("x-data-source") != source:
                raise RuntimeError(f"{path}: {answer.status} {body[:200]!r}")
            timings.append(elapsed * 1000)
    finally:
        connection.close()
    return statistics.median(timings)


# --- the run --------------------------------------------------------------------------


def seed(base: str, newest_open_ms: int) -> int:
    """Fill the database through the API itself (windows of 1000, written through)."""
    start = newest_open_ms - SEED_CANDLES * HOUR_MS
    stored = 0
    for window in range(start, newest_open_ms, 1000 * HOUR_MS):
        status, _, body = http_get(
            f"{base}/api/v1/market/klines?symbol={SYMBOL}&timeframe={INTERVAL}"
            f"&start={window}&limit=1000"
        )
        if status == 200:
            stored += len(json.loads(body)["data"]["candles"])
    return stored


def random_paths(first_ms: int, last_ms: int, count: int, indicators: bool) -> list[str]:
    """Windows at distinct starts, so each one misses the cache."""
    paths = []
    for hour in random.sample(range(first_ms // HOUR_MS, last_ms // HOUR_MS), count):
        start = hour * HOUR_MS
        if indicators:
            paths.append(
                f"/api/v1/market/indicators?symbol={SYMBOL}&timeframe={INTERVAL}&limit=1000"
                f"&start={start}&indicators=MA,MACD,RSI,BOLL,VOL"
            )
        else:
            paths.append(
                f"/api/v1/market/klines?symbol={SYMBOL}&timeframe={INTERVAL}&limit=200"
                f"&start={start}"
            )
    return paths


def analyze(database_url: str) -> None:
    """Planner statistics after the bulk seed, as autovacuum would have them in service
    (without them PostgreSQL sorts the whole series for a 1000-candle window)."""
    if database_url.startswith("postgresql"):
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def cache_prefix(stack: ExitStack, embedded: bool) -> str:
    """A prefix of this run's own (a PID of an earlier run may come back while its
    answers are still cached); its Redis keys are deleted when the run ends."""
    prefix = f"kwbench:{uuid.uuid4().hex[:12]}:"
    if not embedded:
        stack.callback(forget_keys, prefix)
    return prefix


def forget_keys(prefix: str) -> None:
    """Delete the run's cached answers (hundreds of 250 KB indicator bodies) from Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def start_api(
    args: argparse.Namespace,
    stack: ExitStack,
    tmp: Path,
    sim_args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> tuple[str, str]:
    """The simulator (data shifted to end now; ``sim_args`` added to its command), the
    database and the API (``extra_env`` added to its environment); its URL."""
    sim, sim_url = start_sim(shared_data_dir(), "--spot-weight-per-min", "100000000", *sim_args)
    stack.callback(lambda: (sim.terminate(), sim.wait(timeout=10)))
    sim_admin(sim_url, "clock", {"shift_to_now": True})
    env = {
        **url_settings(sim_url),
        "KLINEWATCH_API_RATE_LIMIT_PER_MIN": "1000000000",
        "KLINEWATCH_CACHE_PREFIX": cache_prefix(stack, args.embedded),
        "KLINEWATCH_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    if args.embedded:
        env["KLINEWATCH_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    else:
        env["KLINEWATCH_DATABASE_URL"] = stack.enter_context(throwaway_pg_database())
        env["KLINEWATCH_REDIS_URL"] = REDIS_URL
    subprocess.run(
        [sys.executable, "-m", "klinewatch.cli.main", "db", "upgrade"],
        cwd=REPO, env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip
    factory = "klinewatch.api.app:create_app_from_env"
    base = stack.enter_context(uvicorn_app(factory, args.workers, env))
    return base, env["KLINEWATCH_DATABASE_URL"]


def loaded(base: str, args: argparse.Namespace) -> Figures:
    """``load`` on ``base``'s klines path, and the CPU its server spent per request (all
    workers, user + system): what the other work on the machine changes least."""
    before = group_cpu_s(SERVERS[base])
    rps, p99 = load(base + KLINES, args.connections, args.duration)
    spent = group_cpu_s(SERVERS[base]) - before
    return rps, p99, 1e6 * spent / max(1.0, rps * args.duration)


def cached_versus_bare(
    args: argparse.Namespace, stack: ExitStack, tmp: Path, base: str
) -> tuple[Figures, Figures, int]:
    """(cached, bare, body size): same generator, same run."""
    http_get(base + KLINES)
    status, headers, body = http_get(base + KLINES)
    if status != 200 or headers.get("x-data-source") != "cache":
        raise RuntimeError(f"the klines answer is not cached: {status} {headers}")
    (tmp / "body.json").write_bytes(body)
    bare_env = {"BENCH_BARE_BODY": str(tmp / "body.json")}
    bare = stack.enter_context(uvicorn_app("bench.api:bare_app", args.workers, bare_env))
    if http_get(bare + KLINES)[2] != body:
        raise RuntimeError("the bare endpoint does not answer the same bytes")
    load(base + KLINES, args.connections, 2.0)  # warm both up
    load(bare + KLINES, args.connections, 2.0)
    cached = loaded(base, args)
    return cached, loaded(bare, args), len(body)


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Every figure of one run (and the lines that explain them, printed as they come)."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base, database_url = start_api(args, stack, tmp)
        newest = int(time.time() * 1000) // HOUR_MS * HOUR_MS - HOUR_MS
        stored = seed(base, newest)
        analyze(database_url)
        generator = "wrk" if shutil.which("wrk") else "python"
        print(f"stored {stored} candles; generator {generator}; {os.cpu_count()} CPUs")
        cached, bare, size = cached_versus_bare(args, stack, tmp, base)
        for name, (rps, p99, cpu) in (("cached klines", cached), ("bare endpoint", bare)):
            print(f"{name}: {rps:.0f} req/s, p99 {p99:.2f} ms, {cpu:.0f} us CPU ({size} B)")
        rate = PACED_SHARE * bare[0]
        paced_rps, paced_p99 = python_load(base + KLINES, args.connections, args.duration, rate)
        print(
            f"cached klines paced at {PACED_SHARE:.0%} of the bare rate ({rate:.0f} req/s "
            f"asked, {paced_rps:.0f} served): p99 {paced_p99:.2f} ms from when each was due"
        )
        first = newest - (SEED_CANDLES - 1200) * HOUR_MS
        last = newest - 1000 * HOUR_MS
        db_p50 = p50_ms(base, random_paths(first, last, args.samples, indicators=False))
        ind_p50 = p50_ms(base, random_paths(first, last, args.samples, indicators=True))
    print(f"database klines p50 {db_p50:.2f} ms; indicators p50 {ind_p50:.2f} ms")
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load_avg}")
    return {
        "cached_klines_rps": round(cached[0], 1),
        "bare_rps": round(bare[0], 1),
        "cached_klines_ratio": round(cached[0] / bare[0], 3),
        "cached_klines_p99_ms": round(cached[1], 2),
        "bare_p99_ms": round(bare[1], 2),
        "cached_klines_cpu_us": round(cached[2], 1),
        "bare_cpu_us": round(bare[2], 1),
        "cached_klines_paced_p99_ms": round(paced_p99, 2),
        "db_klines_p50_ms": round(db_p50, 2),
        "indicators_p50_ms": round(ind_p50, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--embedded", action="store_true", help="SQLite + in-process cache")
    args = parser.parse_args()
    random.seed(1)
    print_figures(measure(args))


if __name__ == "__main__":
    main()

"""Benchmark: Binance ``klines`` pages of 1000 candles served per second by the simulator.

The simulator runs as ``klinewatch sim serve`` in its own process (as deployed); this
process is the load generator: asyncio on uvloop with raw keep-alive HTTP/1.1
connections (httpx would spend more CPU than the server on a 2-core machine). Each
request asks a random 1000-candle page of a long recorded series; a response counts
only if it is a 200 holding exactly 1000 rows. The weight budget is raised for the run
and ``/__sim/stats`` must show no 429 or 418.

    .venv/bin/python bench/sim.py [--duration 10] [--connections 16]

Last line printed: ``{"klines_1000_rps": <float>, ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script or as python -m bench.sim

from bench.common import start_sim  # noqa: E402
from klinewatch.sim.testing import default_data_dir  # noqa: E402


@dataclass
class Tally:
    ok: int = 0
    bad: int = 0
    latency_s: float = 0.0


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def connection(
    host: str, port: int, paths: list[bytes], deadline: float, tally: Tally
) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    while time.perf_counter() < deadline:
        path = random.choice(paths)
        started = time.perf_counter()
        writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: sim\r\n\r\n")
        status, body = await read_response(reader)
        if status == 200 and body.count(b"],[") == 999:
            tally.ok += 1
            tally.latency_s += time.perf_counter() - started
        else:
            tally.bad += 1
    writer.close()


async def load(base: str, paths: list[bytes], connections: int, duration: float) -> Tally:
    host, port = base.removeprefix("http://").split(":")
    tally = Tally()
    deadline = time.perf_counter() + duration
    await asyncio.gather(
        *(connection(host, int(port), paths, deadline, tally) for _ in range(connections))
    )
    return tally


def page_paths(base: str, symbol: str, interval: str, count: int) -> list[bytes]:
    """Random 1000-candle pages inside the series' recorded range."""
    url = f"{base}/api/v3/klines?symbol={symbol}&interval={interval}"
    first = get_json(f"{url}&startTime=0&limit=1")
    last = get_json(f"{url}&limit=1")
    assert isinstance(first, list)
    assert isinstance(last, list)
    start, end = int(first[0][0]), int(last[0][0])
    step = (end - start) // 2000
    return [
        f"/api/v3/klines?symbol={symbol}&interval={interval}&limit=1000"
        f"&startTime={random.randrange(start, start + step * 1000)}".encode()
        for _ in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--interval", default="1h")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    proc, base = start_sim(args.data, "--spot-weight-per-min", "100000000")
    try:
        paths = page_paths(base, args.symbol, args.interval, 500)
        uvloop.run(load(base, paths, args.connections, 1.0))  # warm up
        get_json_post(f"{base}/__sim/stats/reset")
        tally = uvloop.run(load(base, paths, args.connections, args.duration))
        totals = get_json(f"{base}/__sim/stats")
        assert isinstance(totals, dict)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rps = tally.ok / args.duration
    print(f"ok={tally.ok} bad={tally.bad} over {args.duration:.0f}s, {args.connections} conns")
    print(f"server totals: {totals['totals']}")
    print(json.dumps({
        "klines_1000_rps": round(rps, 1),
        "mean_latency_ms": round(1000 * tally.latency_s / max(tally.ok, 1), 2),
        "errors": tally.bad,
        "rate_limited": totals["totals"]["429"] + totals["totals"]["418"],
    }))  # fmt: skip


def get_json_post(url: str) -> object:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


if __name__ == "__main__":
    main()

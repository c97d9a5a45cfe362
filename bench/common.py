"""What the benchmarks share: where the real data is, throwaway databases, the JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "KLINEWATCH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def shared_data_dir() -> Path:
    """``../shared/data`` beside the clone when present, else the bundled sample."""
    shared = REPO.parent / "shared" / "data"
    return shared if shared.is_dir() else REPO / "data" / "sample"


@contextmanager
def throwaway_pg_database(prefix: str = "kw_bench") -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_figures(figures: dict[str, float | int]) -> None:
    """The last line of every benchmark: one JSON object of its figures."""
    print(json.dumps(figures, sort_keys=True))


def start_sim(data: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``klinewatch sim serve`` in its own process on a free port; (process, base URL)."""
    cmd = [
        sys.executable, "-m", "klinewatch.cli.main", "sim", "serve", "--data", str(data),
        "--port", "0", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "KLINEWATCH_BINANCE_SPOT_URL=" not in line:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    return proc, line.strip().split("=", 1)[1]


def sim_admin(base: str, path: str, body: object | None = None) -> object:
    """GET (or POST ``body`` to) an admin endpoint of the simulator."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}/__sim/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())

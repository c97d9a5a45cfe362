"""Killed with SIGKILL at random points and rerun: the warehouse still ends exact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.klines import KlineRepository

SYMBOLS = ["BTCUSDT", "OMUSDT", "PEPEUSDT"]


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[RunningSim]:
    with running_sim(options=SimOptions(latency_ms=20)) as sim:
        yield sim


def update_cmd() -> list[str]:
    return [sys.executable, "-m", "klinewatch.cli.main", "update-klines", "-i", "1h",
            "-m", "spot", "--since", "2017-06-01", "--concurrency", "2",
            "--symbols", ",".join(SYMBOLS)]  # fmt: skip


def stored_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM klines")).scalar_one())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_sigkill_at_ten_random_points_then_rerun_is_exact(
    slow_sim: RunningSim, database_url: str, tmp_path: Path
) -> None:
    slow_sim.reset(options=SimOptions(latency_ms=20))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLINEWATCH_")}
    env |= {
        "KLINEWATCH_DATABASE_URL": database_url,
        "KLINEWATCH_BINANCE_SPOT_URL": slow_sim.url,
        "KLINEWATCH_BINANCE_FUTURES_URL": slow_sim.url,
    }
    poll = build_engine(database_url)
    total = sum(len(slow_sim.ctx.store.get("binance", "spot", s, "1h")) for s in SYMBOLS)
    rng = random.Random(20261121)
    # Ten random points of the work, whatever the machine's speed: each run is killed
    # as soon as the stored rows pass its point.
    for target in sorted(rng.uniform(0.02, 0.95) * total for _ in range(10)):
        proc = subprocess.Popen(
            update_cmd(), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while stored_rows(poll) < target and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the update ended before it could be killed: {proc.stderr.read()!r}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert 0 < stored_rows(poll) < total, "the kills should leave the work unfinished"
    final = subprocess.run(
        update_cmd(),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    poll.dispose()
    assert final.returncode == 0, final.stderr
    engine = build_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            repo = KlineRepository(session)
            for symbol in SYMBOLS:
                source = slow_sim.ctx.store.get("binance", "spot", symbol, "1h")
                sid = repo.find_series("binance", "spot", symbol, "1h")
                assert sid is not None
                assert repo.read(sid).equals(source), symbol
    finally:
        engine.dispose()

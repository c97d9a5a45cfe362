"""The quickstart's main job as a user runs it: ``klinewatch serve`` (and ``scheduler``)
with no exchange configured start the simulator on the bundled data, backfill and keep
current; real subprocesses in a throwaway working folder."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from klinewatch.domain.intervals import parse_interval
from klinewatch.sim.store import SeriesStore

KLINEWATCH = [sys.executable, "-m", "klinewatch.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any KLINEWATCH_* setting: nothing configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLINEWATCH_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_candles(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM klines").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def wait_for(condition: object, deadline: float, proc: subprocess.Popen[str]) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if callable(condition) and condition():
            return
        time.sleep(0.25)
    raise AssertionError("timed out")


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_in_demo_mode_answers_health_stores_candles_and_stops_on_sigint(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*KLINEWATCH, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # ~60 s in the quickstart; more here, where every import compiles from source
        # (PYTHONDONTWRITEBYTECODE) on a shared, loaded machine
        deadline = time.monotonic() + 90
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}/health"), deadline, proc)
        db = tmp_path / "var" / "klinewatch.sqlite3"
        wait_for(lambda: stored_candles(db) > 0, deadline, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "demo: no exchange configured" in out and "simulated at http://127.0.0.1:" in out
    assert "Traceback" not in err
    assert "scheduler_stopped" in err
    assert stored_candles(db) > 0


def closed_counts(sample: Path, shift_ms: int, interval: str, now_ms: int) -> dict[str, int]:
    """Candles of every recorded series at ``interval`` that have closed at ``now_ms``
    once shifted by ``shift_ms``: what the demo's exchange has served by then."""
    store = SeriesStore(sample)
    counts = {}
    for market in ("spot", "futures"):
        for symbol in store.symbols("binance", market):
            if store.has("binance", market, symbol, interval):
                opens = store.get("binance", market, symbol, interval).open_time_ms
                closes = opens + shift_ms + parse_interval(interval).nominal_ms
                counts[f"{market} {symbol}"] = int(np.sum(closes <= now_ms))
    return counts


def test_scheduler_once_in_demo_mode_backfills_the_recorded_series(
    tmp_path: Path, sample_dir: Path
) -> None:
    started_ms = time.time_ns() // 1_000_000
    result = subprocess.run(
        [*KLINEWATCH, "scheduler", "--once", "--jobs", "binance:spot:1d;binance:futures:1d"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    ended_ms = time.time_ns() // 1_000_000
    assert result.returncode == 0, result.stderr
    assert "spot 1d" in result.stdout and "futures 1d" in result.stdout
    shift = re.search(r"history shifted ([+-]\d+) days", " ".join(result.stdout.split()))
    assert shift is not None, result.stdout
    shift_ms = int(shift.group(1)) * 86_400_000
    with sqlite3.connect(tmp_path / "var" / "klinewatch.sqlite3") as conn:
        stored = dict(
            conn.execute(
                "SELECT s.market_type || ' ' || s.symbol, count(*) FROM klines k "
                "JOIN kline_series s ON s.id = k.series_id GROUP BY 1"
            ).fetchall()
        )
    # every recorded 1d series, whole, up to the newest candle closed at the exchange
    # (the run may straddle a midnight: then either count is right)
    expected = [closed_counts(sample_dir, shift_ms, "1d", t) for t in (started_ms, ended_ms)]
    assert stored in expected
    assert stored["spot BTCUSDT"] == 488


def test_bad_scheduler_options_name_the_option_and_change_nothing(tmp_path: Path) -> None:
    def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KLINEWATCH, "scheduler", "--once", *args],
            cwd=tmp_path,
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    bad_jobs = run(["--jobs", "binance:spot:2x"])
    assert bad_jobs.returncode == 2 and "--jobs" in bad_jobs.stderr
    assert "unknown interval '2x'" in bad_jobs.stderr
    configured = run(["--data", str(tmp_path)], KLINEWATCH_BINANCE_SPOT_URL="http://127.0.0.1:9")
    assert configured.returncode == 2 and "--data" in configured.stderr
    empty = run(["--data", str(tmp_path)])
    assert empty.returncode == 2 and "holds no recorded Binance candles" in empty.stderr
    bad_setting = run(
        [], KLINEWATCH_SCHEDULER_JOBS="binance", KLINEWATCH_BINANCE_SPOT_URL="http://127.0.0.1:9"
    )
    assert bad_setting.returncode == 2 and "KLINEWATCH_SCHEDULER_JOBS" in bad_setting.stderr
    for result in (bad_jobs, configured, empty, bad_setting):
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()  # refused before touching any database

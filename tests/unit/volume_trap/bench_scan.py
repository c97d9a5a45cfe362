"""Speed of the pure scan over 2,000 series (not a test: run it by hand).

    .venv/bin/python -m tests.unit.volume_trap.bench_scan

Series are windows of the recorded 1h candles in data/sample. "live" times one new
candle per series with the history a service would load (``history_before_cursor``)
and the state a previous scan left; "replay" evaluates 200 candles per series from
nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from klinewatch.domain.candles import Candles
from klinewatch.domain.volume_trap import SeriesState, VolumeTrapParams, advance
from klinewatch.domain.volume_trap.scan import history_before_cursor
from klinewatch.sim.store import SeriesStore

PAIRS = 2000
REPLAY_CANDLES = 200


def load(root: Path) -> list[Candles]:
    store = SeriesStore(root)
    found = sorted(root.glob("binance/*/klines/*/1h.csv.gz"))
    series = [store.get("binance", f.parts[-4], f.parts[-2], "1h") for f in found]
    return [c for c in series if len(c) > 1000]


def main() -> None:
    p = VolumeTrapParams()
    series = load(Path(__file__).resolve().parents[3] / "data" / "sample")
    rng = np.random.default_rng(0)
    history = history_before_cursor(p)
    live_inputs: list[tuple[Candles, SeriesState]] = []
    replay_inputs: list[Candles] = []
    for i in range(PAIRS):
        c = series[i % len(series)]
        end = int(rng.integers(history + 200, len(c)))
        window = c.take(slice(end - history - 200, end + 1))
        before = advance(window.take(slice(0, -1)), SeriesState(), p, from_series_start=True)
        live_inputs.append((window.take(slice(-history - 1, None)), before.state))
        replay_inputs.append(c.take(slice(end - REPLAY_CANDLES, end)))
    active = sum(state.monitor is not None for _, state in live_inputs)

    start = time.perf_counter()
    for candles, state in live_inputs:
        advance(candles, state, p)
    live_s = time.perf_counter() - start

    start = time.perf_counter()
    steps = 0
    for candles in replay_inputs:
        steps += len(advance(candles, SeriesState(), p, from_series_start=True).steps)
    replay_s = time.perf_counter() - start

    print(f"{len(series)} real 1h series, {PAIRS} windows, {active} with an active monitor")
    print(
        f"live:   {PAIRS} series x 1 new candle ({history + 1} loaded): "
        f"{live_s * 1000:.0f} ms, {live_s / PAIRS * 1e6:.0f} us/series"
    )
    print(
        f"replay: {PAIRS} series x {REPLAY_CANDLES} candles: {replay_s * 1000:.0f} ms, "
        f"{replay_s / PAIRS * 1e6:.0f} us/series, {steps} steps"
    )


if __name__ == "__main__":
    main()

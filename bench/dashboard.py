"""Benchmark: the chart page in headless Chromium, from navigation to drawn.

The app serves the simulator's data from a fresh SQLite database (tests/browser/stack.py:
the recorded series up to the simulator's "now", as the browser tests use). Each run
opens a new browser context (nothing cached in the browser) on
``/chart?symbol=BTCUSDT&interval=1h&limit=1000&overlays=MA,BOLL&panes=MACD,RSI``:
1,000 candles with volume, two overlays (MA 7/25/99, Bollinger bands), two panes (MACD,
RSI). The page sets ``window.__chartReady = performance.now()`` once the last series is
drawn (two animation frames after the last ``setData``); ``performance.now()`` counts
from the navigation's start.

Figures (seconds): ``chart_1000_render_s``, the median over the runs after the first;
``chart_1000_render_cold_s``, the first run (the server computes the indicators and
fills its cache); ``chart_1000_render_max_s``, the slowest run.

    .venv/bin/python bench/dashboard.py [--runs 7]

Last line printed: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script or as python -m bench.dashboard

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.browser.stack import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    NOW_MS,
    fill_database,
    running_stack,
)

from bench.common import print_figures  # noqa: E402
from klinewatch.sim.testing import running_sim  # noqa: E402
from klinewatch.storage import migrate  # noqa: E402

PAGE = (
    "/chart?symbol=BTCUSDT&interval=1h&market_type=spot&limit=1000&overlays=MA,BOLL&panes=MACD,RSI"
)


def measure(url: str, runs: int) -> list[float]:
    """Seconds from navigation to the chart drawn, one per run."""
    seconds = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                page = context.new_page()
                page.goto(url + PAGE)
                page.wait_for_function("window.__chartReady !== undefined", timeout=30_000)
                drawn = page.evaluate("document.getElementById('chart').dataset")
                if drawn["candles"] != "1000" or drawn["panes"] != "3":
                    raise RuntimeError(f"the chart is not what was asked: {drawn}")
                seconds.append(page.evaluate("window.__chartReady") / 1000)
                marks = page.evaluate(
                    "Object.fromEntries(performance.getEntriesByType('mark')"
                    ".map(m => [m.name, Math.round(m.startTime)]))"
                )
                print(
                    f"  data at {marks.get('chart:data')} ms, series set at "
                    f"{marks.get('chart:set')} ms, drawn at {seconds[-1] * 1000:.0f} ms"
                )
                context.close()
        finally:
            browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="page loads (the first is cold)")
    args = parser.parse_args()
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing: run scripts/setup")
    with tempfile.TemporaryDirectory() as folder, running_sim() as sim:
        url = f"sqlite:///{folder}/klinewatch.sqlite3"
        migrate.upgrade(url)
        sim.reset(now_ms=NOW_MS)
        fill_database(url, sim)
        with running_stack(sim, url) as stack:
            runs = measure(stack.url, max(2, args.runs))
    for i, value in enumerate(runs):
        print(f"run {i + 1}: {value:.3f} s{' (cold)' if i == 0 else ''}")
    print_figures(
        {
            "chart_1000_render_s": round(statistics.median(runs[1:]), 3),
            "chart_1000_render_cold_s": round(runs[0], 3),
            "chart_1000_render_max_s": round(max(runs), 3),
            "runs": len(runs),
        }
    )


if __name__ == "__main__":
    main()

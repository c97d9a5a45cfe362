"""A candle that closes on the simulator's clock reaches an open chart over the
WebSocket once the warehouse stores it (as the scheduler's update would)."""

from __future__ import annotations

import httpx

from tests.browser.conftest import Tab
from tests.browser.stack import HOUR_MS, NOW_MS, TOKEN


def test_a_new_candle_from_the_simulator_clock_appears_on_an_open_chart(tab: Tab) -> None:
    tab.open("/chart?exchange=binance&market_type=spot&symbol=BTCUSDT&interval=1h")
    tab.page.wait_for_selector("#live-dot.on")  # the WebSocket is open
    chart = tab.page.locator("#chart")
    before = int(chart.get_attribute("data-candles") or 0)
    last_closed = NOW_MS // HOUR_MS * HOUR_MS - HOUR_MS
    assert tab.page.evaluate("Date.parse(document.getElementById('chart').dataset.lastOpen)") == (
        last_closed
    )
    clock = tab.stack.sim.ctx.clock
    clock.set(NOW_MS + HOUR_MS, speed=0.0)  # the next 1h candle closes on the exchange
    try:
        started = httpx.post(
            f"{tab.stack.url}/api/v1/backfills",
            json={"market_type": "spot", "symbol": "BTCUSDT", "interval": "1h", "days": 1},
            headers={"X-API-Token": TOKEN},
        )
        assert started.status_code == 202, started.text
        tab.page.wait_for_function(
            "Date.parse(document.getElementById('chart').dataset.lastOpen) === "
            f"{last_closed + HOUR_MS}"
        )
    finally:
        clock.set(NOW_MS, speed=0.0)
    assert int(chart.get_attribute("data-candles") or 0) == before + 1
    assert tab.errors == []

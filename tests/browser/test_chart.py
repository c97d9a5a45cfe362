"""The chart page: pickers redraw it, overlays and panes come from the indicators API,
scrolling back loads older candles, a stale answer is marked, and a backfill started
from the page shows its progress until the new series is drawn."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from klinewatch.sim.faults import Fault, FaultKind
from tests.browser.conftest import Tab
from tests.browser.stack import BEHIND, TOKEN

READY = "#chart[data-state=ready]"


def chart(tab: Tab) -> dict[str, str]:
    data: dict[str, str] = tab.page.locator("#chart").evaluate("node => ({...node.dataset})")
    return data


def wait_for_series(tab: Tab, series: str) -> None:
    tab.page.wait_for_selector(f'#chart[data-state=ready][data-series="{series}"]')


def test_changing_symbol_and_interval_redraws_the_chart(tab: Tab) -> None:
    tab.open("/chart?exchange=binance&market_type=spot&symbol=BTCUSDT&interval=1h")
    first = chart(tab)
    assert first["series"] == "binance:spot:BTCUSDT:1h"
    assert int(first["candles"]) == 500
    assert int(first["panes"]) == 3  # candles + MACD + RSI
    assert {"ma7", "boll_upper", "macd_histogram", "rsi"} <= set(first["lines"].split(","))

    tab.page.fill("#pick-symbol", "ETHUSDT")
    tab.page.dispatch_event("#pick-symbol", "change")
    wait_for_series(tab, "binance:spot:ETHUSDT:4h")  # ETHUSDT spot is stored at 4h and 1d
    assert tab.page.locator("#pick-interval option").all_inner_texts() == ["4h", "1d"]
    tab.page.select_option("#pick-interval", "1d")
    wait_for_series(tab, "binance:spot:ETHUSDT:1d")
    redrawn = chart(tab)
    assert redrawn["lastOpen"] != first["lastOpen"]
    assert "symbol=ETHUSDT" in tab.page.url and "interval=1d" in tab.page.url

    tab.page.uncheck("input[name=pane][value=MACD]")
    tab.page.wait_for_function("document.getElementById('chart').dataset.panes === '2'")
    assert "macd" not in chart(tab)["lines"].split(",")
    assert tab.errors == []


def test_scrolling_back_loads_older_candles(tab: Tab) -> None:
    tab.open("/chart?exchange=binance&market_type=spot&symbol=BTCUSDT&interval=1h&limit=300")
    assert chart(tab)["candles"] == "300"  # the oldest of them is off screen: no load yet
    box = tab.page.locator("#chart").bounding_box()
    assert box is not None
    y = box["y"] + 200
    for _ in range(2):  # drag the candles to the right: back in time
        tab.page.mouse.move(box["x"] + 80, y)
        tab.page.mouse.down()
        tab.page.mouse.move(box["x"] + box["width"] - 120, y, steps=8)
        tab.page.mouse.up()
    tab.page.wait_for_function("Number(document.getElementById('chart').dataset.candles) > 300")
    assert tab.errors == []


@pytest.fixture
def exchange_down(tab: Tab) -> Iterator[None]:
    """Binance futures candles answer 503 (the series ``BEHIND`` is hours behind)."""
    faults = tab.stack.sim.ctx.faults
    fault = faults.add(Fault(FaultKind.HTTP_503, route="/fapi/v1/klines"))
    try:
        yield
    finally:
        faults.remove(fault.id)


@pytest.mark.usefixtures("exchange_down")
def test_a_stale_answer_is_marked(tab: Tab) -> None:
    market, symbol, interval = BEHIND
    tab.open(f"/chart?market_type={market}&symbol={symbol}&interval={interval}&overlays=&panes=")
    assert chart(tab)["stale"] == "true"
    assert tab.page.locator("#stale-banner").is_visible()
    tab.shot("chart-stale")


def test_a_backfill_started_from_the_page_shows_progress_then_the_series(tab: Tab) -> None:
    tab.open("/chart?exchange=binance&market_type=spot&symbol=BTCUSDT&interval=1h")
    tab.page.click("#backfill summary")
    tab.page.select_option("#bf-market", "futures")
    tab.page.fill("#bf-symbol", "btcusdt")
    tab.page.select_option("#bf-interval", "1d")
    tab.page.fill("#bf-days", "120")
    tab.page.click("#bf-start")
    tab.page.fill("#token-input", TOKEN)  # asked once, kept for the tab
    tab.page.click("#token-ok")
    tab.page.wait_for_selector("#backfill form[data-state=done]")
    assert tab.page.locator("#bf-progress").get_attribute("value") == tab.page.locator(
        "#bf-progress"
    ).get_attribute("max")
    wait_for_series(tab, "binance:futures:BTCUSDT:1d")
    assert int(chart(tab)["candles"]) >= 100
    jobs = httpx.get(f"{tab.stack.url}/api/v1/backfills").json()["data"]
    assert jobs[0]["state"] == "done" and jobs[0]["summary"]["candles_added"] >= 100
    tab.shot("backfill")
    assert tab.errors == []

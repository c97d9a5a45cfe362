"""Every page loads in headless Chromium with no console error and shows its data; a
screenshot of each is kept (test-artifacts/browser/)."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import Tab
from tests.browser.figures import expected_figures, recorded_markets


def first_monitor_id(tab: Tab) -> int:
    page = httpx.get(f"{tab.stack.url}/api/volume-trap/monitors/", params={"page_size": 1})
    return int(page.json()["data"]["results"][0]["id"])


@pytest.mark.parametrize(
    ("name", "path", "shows"),
    [
        ("dashboard", "/", "#pairs tbody tr"),
        ("chart", "/chart?symbol=BTCUSDT&interval=1h&market_type=spot", "#legend span"),
        ("monitors", "/monitors", "#monitors tbody tr"),
        ("mappings", "/mappings", "section.mapping"),
        ("settings", "/settings", "#settings-form .form-row"),
        ("status", "/status", "#component-table tbody tr"),
    ],
)
def test_every_page_loads_without_console_errors(
    tab: Tab, name: str, path: str, shows: str
) -> None:
    tab.open(path)
    assert tab.page.locator(shows).count() > 0
    assert tab.page.locator("#top nav a.active").count() == 1
    tab.shot(name)
    assert tab.errors == []


def test_a_monitor_page_marks_its_trigger_key_level_and_transitions(tab: Tab) -> None:
    monitor = first_monitor_id(tab)
    tab.open(f"/monitors/{monitor}", ready="#chart[data-state=ready]")
    detail = httpx.get(f"{tab.stack.url}/api/volume-trap/monitors/{monitor}/").json()["data"]
    items = tab.page.locator("#timeline ol.timeline > li")
    assert items.count() == len(detail["transitions"])
    assert int(tab.page.locator("#chart").get_attribute("data-markers") or 0) >= 1
    assert tab.page.locator("#timeline .detectors li[data-detector=rvol]").count() >= 1
    tab.shot("monitor")
    assert tab.errors == []


def shown_figures(tab: Tab, rows: str) -> list[tuple[str, str, str]]:
    """(symbol, market cap, FDV) of every row, as displayed."""
    cells: list[tuple[str, str, str]] = tab.page.locator(rows).evaluate_all(
        "rows => rows.map(r => [r.dataset.symbol || r.querySelector('td a').textContent,"
        " r.querySelector('[data-col=market_cap]').textContent,"
        " r.querySelector('[data-col=fdv]').textContent])"
    )
    return [(symbol, cap, fdv) for symbol, cap, fdv in cells]


def test_the_dashboard_shows_the_recorded_market_cap_of_each_mapped_pair(tab: Tab) -> None:
    recorded = recorded_markets(tab.stack)
    tab.open("/")
    markets = tab.page.locator("#pairs tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.market)"
    )
    shown = shown_figures(tab, "#pairs tbody tr")
    expected = [
        (symbol, *expected_figures(tab.stack, market, symbol, recorded))
        for (symbol, _, _), market in zip(shown, markets, strict=True)
    ]
    assert shown == expected
    caps = {cap for _, cap, _ in shown}
    assert "--" in caps and caps - {"--"}  # some coins were recorded, some not
    assert tab.page.locator("#transitions tbody tr").count() > 0
    assert tab.errors == []


def test_the_monitor_list_shows_the_recorded_market_cap_of_each_mapped_symbol(tab: Tab) -> None:
    recorded = recorded_markets(tab.stack)
    tab.open("/monitors")
    shown = shown_figures(tab, "#monitors tbody tr")
    expected = [(s, *expected_figures(tab.stack, "spot", s, recorded)) for s, _, _ in shown]
    assert shown == expected
    assert {cap for _, cap, _ in shown} - {"--"}
    assert tab.errors == []


def test_the_language_switch_shows_chinese(tab: Tab) -> None:
    tab.open("/monitors")
    tab.page.click("#lang-switch")
    tab.page.wait_for_selector("#main[data-state=ready]")
    assert tab.page.locator("#top nav a.active").inner_text() == "监控池"
    assert tab.page.locator("#market-tabs button.active").inner_text() == "现货"
    tab.shot("monitors-zh")
    assert tab.errors == []

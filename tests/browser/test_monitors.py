"""The monitor list: tabs and filters narrow it to what the API selects, headers sort it."""

from __future__ import annotations

import httpx

from tests.browser.conftest import Tab

LIST = "#monitor-list[data-state=ready]"


def rows(tab: Tab) -> list[dict[str, str]]:
    found: list[dict[str, str]] = tab.page.locator("#monitors tbody tr").evaluate_all(
        "rows => rows.map(r => ({...r.dataset}))"
    )
    return found


def api_count(tab: Tab, **params: str) -> int:
    answer = httpx.get(f"{tab.stack.url}/api/volume-trap/monitors/", params=params)
    return int(answer.json()["data"]["count"])


def test_a_status_filter_narrows_the_list(tab: Tab) -> None:
    tab.open("/monitors")
    everything = rows(tab)
    assert len(everything) == api_count(tab, market_type="spot")
    assert len({r["status"] for r in everything}) >= 3

    tab.page.select_option("#filter-status", "confirmed_abandonment")
    tab.page.wait_for_function(
        "document.querySelectorAll('#monitors tbody tr').length > 0 && [...document"
        ".querySelectorAll('#monitors tbody tr')].every(r => r.dataset.status === "
        "'confirmed_abandonment')"
    )
    narrowed = rows(tab)
    assert 0 < len(narrowed) < len(everything)
    assert len(narrowed) == api_count(tab, market_type="spot", status="confirmed_abandonment")
    assert "status=confirmed_abandonment" in tab.page.url

    tab.page.select_option("#filter-interval", "1d")
    tab.page.wait_for_selector("#monitor-list p.muted")  # no confirmed 1d monitor
    assert tab.errors == []


def test_the_futures_tab_and_sorting_by_rvol(tab: Tab) -> None:
    tab.open("/monitors")
    tab.page.click("#market-tabs button[data-market=futures]")
    tab.page.wait_for_function(
        f"document.getElementById('monitor-list').dataset.count === "
        f"'{api_count(tab, market_type='futures')}'"
    )
    tab.page.click("#market-tabs button[data-market=spot]")
    tab.page.wait_for_selector("#market-tabs button.active[data-market=spot]")
    tab.page.click("th[data-sort=rvol]")
    tab.page.wait_for_selector("th.sorted[data-sort=rvol]")
    ordered = httpx.get(
        f"{tab.stack.url}/api/volume-trap/monitors/",
        params={"market_type": "spot", "ordering": "-rvol", "page_size": 50},
    ).json()["data"]["results"]
    assert [r["id"] for r in rows(tab)] == [str(r["id"]) for r in ordered]
    assert tab.errors == []

"""The settings form: an invalid value is refused beside its field and nothing changes;
a valid one is saved."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import Tab
from tests.browser.stack import TOKEN

FIELD = '.form-row[data-path="market_data.default_klines_limit"]'


def config(tab: Tab) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{tab.stack.url}/api/v1/system/config").json()["data"]
    return data


def test_an_invalid_setting_shows_its_error_and_changes_nothing(tab: Tab) -> None:
    before = config(tab)
    tab.open("/settings")
    tab.page.fill(f"{FIELD} input", "5000")  # the limit is 1 to 1000
    tab.page.click("#settings-save")
    tab.page.fill("#token-input", TOKEN)
    tab.page.click("#token-ok")
    error = tab.page.locator(f"{FIELD} .field-error")
    error.wait_for()
    tab.page.wait_for_function(
        f"document.querySelector('{FIELD} .field-error').textContent.length > 0"
    )
    assert "1000" in error.inner_text()
    assert tab.page.locator(f"{FIELD} input").get_attribute("aria-invalid") == "true"
    assert tab.page.locator(".form-row .field-error:not(:empty)").count() == 1
    tab.shot("settings-error")
    after = config(tab)
    assert (after["market_data"], after["last_updated"]) == (
        before["market_data"],
        before["last_updated"],
    )

    tab.page.fill(f"{FIELD} input", "300")  # the token is not asked again in this tab
    tab.page.click("#settings-save")
    tab.page.wait_for_selector("#settings-banner.ok")
    assert config(tab)["market_data"]["default_klines_limit"] == 300
    assert tab.page.locator(".form-row .field-error:not(:empty)").count() == 0
    httpx.put(
        f"{tab.stack.url}/api/v1/system/config",
        json={
            "market_data": {"default_klines_limit": before["market_data"]["default_klines_limit"]}
        },
        headers={"X-API-Token": TOKEN},
    ).raise_for_status()

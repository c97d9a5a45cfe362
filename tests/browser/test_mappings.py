"""Reviewing a mapping: one click on a candidate confirms it in the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from klinewatch.storage.engine import transaction
from klinewatch.storage.models import TokenMapping
from tests.browser.conftest import Tab
from tests.browser.stack import TOKEN


def stored(tab: Tab, asset: str) -> tuple[str | None, str]:
    with transaction(tab.stack.sessions) as session:
        row = session.execute(
            select(TokenMapping.coingecko_id, TokenMapping.match_status).where(
                TokenMapping.base_asset == asset
            )
        ).one()
    return row[0], row[1]


@pytest.fixture
def review_restored(tab: Tab) -> Iterator[None]:
    """PEPE waits for review again afterwards (the pages test shows it)."""
    yield
    with transaction(tab.stack.sessions) as session:
        session.execute(
            update(TokenMapping)
            .where(TokenMapping.base_asset == "PEPE")
            .values(coingecko_id="pepe-token", match_status="needs_review")
        )


@pytest.mark.usefixtures("review_restored")
def test_confirming_a_candidate_changes_the_mapping_in_the_database(tab: Tab) -> None:
    assert stored(tab, "PEPE") == ("pepe-token", "needs_review")
    tab.open("/mappings")
    card = tab.page.locator('section.mapping[data-asset="PEPE"]')
    assert card.locator(".candidate[data-id]").count() == 2
    assert "$910M" in card.locator('.candidate[data-id="pepe"]').inner_text()
    card.locator('.candidate[data-id="pepe"] button.use-candidate').click()
    tab.page.fill("#token-input", TOKEN)
    tab.page.click("#token-ok")
    tab.page.wait_for_selector("#mapping-notice:not([hidden])")
    assert "pepe" in tab.page.locator("#mapping-notice").inner_text()
    tab.page.wait_for_selector('#mapping-list[data-state=ready][data-count="0"]')
    assert stored(tab, "PEPE") == ("pepe", "manual_confirmed")
    assert tab.errors == []

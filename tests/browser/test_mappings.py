"""Reviewing a mapping: one click on a candidate confirms it in the database. The row
under review is one the real generation left for a person: PEPE, a symbol many coins of
the recorded coins list share, none of them in the recorded markets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from klinewatch.storage.engine import transaction
from klinewatch.storage.models import TokenMapping
from tests.browser.conftest import Tab
from tests.browser.figures import compact_usd
from tests.browser.stack import TOKEN

ASSET = "PEPE"
CHOSEN = "pepe"  # the coin Binance lists as PEPE


def stored(tab: Tab, asset: str) -> dict[str, Any]:
    with transaction(tab.stack.sessions) as session:
        row = session.scalars(select(TokenMapping).where(TokenMapping.base_asset == asset)).one()
        return {
            "coingecko_id": row.coingecko_id,
            "match_status": row.match_status,
            "evidence": row.evidence,
            "alternatives": row.alternatives,
        }


@pytest.fixture
def review_restored(tab: Tab) -> Iterator[dict[str, Any]]:
    """The mapping as the generation left it; it waits for review again afterwards (the
    pages test shows it)."""
    before = stored(tab, ASSET)
    yield before
    with transaction(tab.stack.sessions) as session:
        session.execute(
            update(TokenMapping)
            .where(TokenMapping.base_asset == ASSET)
            .values(
                coingecko_id=before["coingecko_id"],
                match_status=before["match_status"],
                evidence=before["evidence"],
            )
        )


def test_confirming_a_candidate_changes_the_mapping_in_the_database(
    tab: Tab, review_restored: dict[str, Any]
) -> None:
    assert review_restored["match_status"] == "needs_review"
    candidates = {c["coingecko_id"]: c for c in review_restored["alternatives"]}
    assert CHOSEN in candidates and len(candidates) > 1
    tab.open("/mappings")
    tab.page.wait_for_selector("#mapping-list[data-state=ready]")
    waiting = int(tab.page.locator("#mapping-list").get_attribute("data-count") or 0)
    card = tab.page.locator(f'section.mapping[data-asset="{ASSET}"]')
    assert card.locator(".candidate[data-id]").count() == len(candidates)
    chosen = candidates[CHOSEN]
    line = card.locator(f'.candidate[data-id="{CHOSEN}"]').inner_text()
    assert chosen["name"] in line and compact_usd(chosen["volume_24h"]) in line
    card.locator(f'.candidate[data-id="{CHOSEN}"] button.use-candidate').click()
    tab.page.fill("#token-input", TOKEN)
    tab.page.click("#token-ok")
    tab.page.wait_for_selector("#mapping-notice:not([hidden])")
    assert CHOSEN in tab.page.locator("#mapping-notice").inner_text()
    tab.page.wait_for_selector(f'#mapping-list[data-state=ready][data-count="{waiting - 1}"]')
    after = stored(tab, ASSET)
    assert (after["coingecko_id"], after["match_status"]) == (CHOSEN, "manual_confirmed")
    assert tab.errors == []

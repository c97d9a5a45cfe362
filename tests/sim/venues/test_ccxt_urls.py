"""``ccxt_api_urls``: every API entry of an exchange moves to one base, paths kept."""

from __future__ import annotations

import ccxt
import pytest

from klinewatch.sim.venues.ccxt_urls import ccxt_api_urls


@pytest.mark.parametrize("exchange_id", ["okx", "bybit", "bitget"])
def test_every_api_entry_points_at_the_base(exchange_id: str) -> None:
    base = f"http://127.0.0.1:9999/{exchange_id}"
    urls = ccxt_api_urls(exchange_id, base + "/")
    assert set(urls) == set(getattr(ccxt, exchange_id)().urls["api"])
    assert set(urls.values()) == {base}


def test_a_path_after_the_host_is_kept() -> None:
    urls = ccxt_api_urls("gate", "https://proxy.example")
    assert urls["public"]["spot"] == "https://proxy.example/api/v4"


@pytest.mark.parametrize(
    ("exchange_id", "base"),
    [("binance", "http://x"), ("no-such-exchange", "http://x"), ("okx", "ftp://x"), ("okx", "x")],
)
def test_refuses_what_it_cannot_rewrite_faithfully(exchange_id: str, base: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        ccxt_api_urls(exchange_id, base)

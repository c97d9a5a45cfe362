"""``/api/v1/prices``, ``/api/v1/prices/validate-min-amount`` and ``/api/v1/portfolio/value``
over the app, on SQLite + the in-process cache and PostgreSQL + Redis, in front of the
simulator (its clock is the app's and stands still at ``NOW_MS``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import pytest

from klinewatch.sim.faults import Fault
from klinewatch.sim.testing import RunningSim
from klinewatch.sim.venues.debank import DeBank
from tests.api.conftest import Api, running_api

PRICES = "/api/v1/prices"
MIN_AMOUNT = "/api/v1/prices/validate-min-amount"
PORTFOLIO = "/api/v1/portfolio/value"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TEN_THOUSAND = [a + b + c for a in ALNUM for b in ALNUM for c in ALNUM][:10_000]  # short: a URL


@pytest.fixture
def api(sim: RunningSim, database_url: str) -> Iterator[Api]:
    sim.ctx.options.coingecko_calls_per_min = 1_000_000  # the session shares one window
    with running_api(
        sim, database_url, price_source_api_key="sim-key", coingecko_api_key="sim-key"
    ) as running:
        yield running


def debank(api: Api, pair: str) -> Decimal:
    quote = DeBank(api.sim.ctx).quote(pair, api.sim.ctx.clock.now_ms())
    assert quote is not None
    return Decimal(str(quote.price))


def down(api: Api, *sources: str) -> None:
    for source in sources:
        api.sim.ctx.faults.add(Fault.from_mapping({"kind": "down", "exchange": source}))


def requests(api: Api, route: str) -> int:
    clients = api.sim.ctx.stats.snapshot()["clients"]
    return sum(int(r.get(route, {}).get("requests", 0)) for r in clients.values())


def post(api: Api, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return api.client.post(path, json=body, headers=headers)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def refused(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "INVALID_PARAMS"
    assert body["error"]["details"]["field"] == field, body
    error: dict[str, Any] = body["error"]
    return error


def by_symbol(prices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["symbol"]: p for p in prices}


# --- GET /api/v1/prices ---------------------------------------------------------------


def test_prices_name_their_source_and_age(api: Api) -> None:
    answer = data(api.get(PRICES, symbols="btc,ETH,USDT,SOL"))
    prices = by_symbol(answer["prices"])
    assert list(prices) == ["BTC", "ETH", "USDT", "SOL"]
    assert prices["BTC"]["source"] == "debank"
    assert Decimal(prices["BTC"]["price"]) == debank(api, "BTCUSDT")
    assert (prices["USDT"]["source"], prices["USDT"]["price"]) == ("par", "1")
    assert (prices["SOL"]["source"], prices["SOL"]["price"]) == ("coingecko", "46.9")
    assert all(p["age_s"] == 0 and p["is_stale"] is False for p in prices.values())
    assert answer["notice"] is None


def test_a_second_call_within_30_seconds_is_served_from_the_cache(api: Api) -> None:
    data(api.get(PRICES, symbols="BTC,ETH"))
    api.sim.ctx.clock.advance(20_000)
    prices = by_symbol(data(api.get(PRICES, symbols="BTC,ETH"))["prices"])
    assert {p["source"] for p in prices.values()} == {"cache"}
    assert {p["origin"] for p in prices.values()} == {"debank"}
    assert {p["age_s"] for p in prices.values()} == {20.0}


def test_sources_down_serve_stale_prices_with_a_toast_then_nothing_with_a_banner(
    api: Api,
) -> None:
    data(api.get(PRICES, symbols="BTC"))
    down(api, "debank", "coingecko")
    api.sim.ctx.clock.advance(60_000)
    stale = data(api.client.get(PRICES, params={"symbols": "BTC"}, headers=ZH))
    (btc,) = stale["prices"]
    assert (btc["source"], btc["is_stale"], btc["age_s"]) == ("cache", True, 60.0)
    assert stale["notice"] == {
        "code": "PRICES_STALE",
        "message": "价格获取失败，显示数据可能不准确",
    }
    api.sim.ctx.clock.advance(300_001)  # failing for over 5 minutes since the first failure
    gone = data(api.get(PRICES, symbols="BTC"))
    (btc,) = gone["prices"]
    assert btc["status"] == "unavailable" and btc["price"] is None and btc["source"] is None
    assert btc["message"] == "Cannot get the current price, please try again later"
    assert gone["notice"]["code"] == "NETWORK_DEGRADED"


def test_the_app_refreshes_the_tracked_symbols_in_the_background(
    sim: RunningSim, database_url: str
) -> None:
    settings = {"price_source_api_key": "sim-key", "coingecko_api_key": "sim-key"}
    with running_api(
        sim, database_url, background=True, price_symbols="BTC,PEPE", **settings
    ) as api:
        assert not api.ctx.tasks["price_refresh"].done()
        service = api.client.app.state.prices  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            service.kept.local((symbol, None)) for symbol in ("BTC", "PEPE")
        ):
            time.sleep(0.05)
        api.sim.ctx.clock.advance(1_000)
        prices = by_symbol(data(api.get(PRICES, symbols="BTC,PEPE"))["prices"])
        assert {p["source"] for p in prices.values()} == {"cache"}  # refreshed before we asked
        assert {p["age_s"] for p in prices.values()} == {1.0}
        assert requests(api, "/debank/v1/token/list_by_ids") == 1


# --- POST /api/v1/prices/validate-min-amount ------------------------------------------


def test_min_amount_uses_the_live_price(api: Api) -> None:
    eth = debank(api, "ETHUSDT")
    small = data(post(api, MIN_AMOUNT, {"amount": "0.001", "symbol": "ETH"}, ZH))
    worth = Decimal("0.001") * eth
    assert small["valid"] is False and Decimal(small["usdt_equivalent"]) == worth
    shown = worth.quantize(Decimal("0.01"), ROUND_DOWN)  # cut, never rounded up to 10
    assert small["error"] == f"最小金额不能低于 10 USDT 等值（当前约 {shown} USDT）"
    assert small["price"]["source"] == "debank" and small["min_usdt"] == "10"
    enough = data(post(api, MIN_AMOUNT, {"amount": 1, "symbol": "eth", "network": "ERC20"}))
    assert enough["valid"] is True and enough["error"] is None
    assert enough["network"] == "erc20" and enough["amount"] == "1"


def test_usdt_is_compared_directly(api: Api) -> None:
    below = data(post(api, MIN_AMOUNT, {"amount": "9.99", "symbol": "USDT"}, ZH))
    assert below["valid"] is False and below["error"] == "最小金额不能低于 10 USDT"
    assert below["price"] is None and below["usdt_equivalent"] == "9.99"
    assert data(post(api, MIN_AMOUNT, {"amount": 10, "symbol": "USDT"}))["valid"] is True


def test_without_a_price_the_amount_is_invalid(api: Api) -> None:
    down(api, "debank", "coingecko")
    answer = data(post(api, MIN_AMOUNT, {"amount": "5", "symbol": "BTC"}, ZH))
    assert answer["valid"] is False and answer["usdt_equivalent"] is None
    assert answer["error"] == "无法获取当前价格，请稍后重试" and answer["display"] == "≈ --"


# --- POST /api/v1/portfolio/value -----------------------------------------------------


def test_portfolio_total_lists_failures_without_failing(api: Api) -> None:
    holdings = [
        {"symbol": "ETH", "balance": "1.2345678", "network": "eth"},
        {"symbol": "SOL", "balance": 10},
        {"symbol": "NOTACOIN", "balance": "3"},
        {"symbol": "USDT", "balance": "100.5"},
    ]
    answer = data(post(api, PORTFOLIO, {"holdings": holdings}, ZH))
    eth = debank(api, "ETHUSDT")
    total = Decimal("1.2345678") * eth + Decimal("469") + Decimal("100.5")
    assert Decimal(answer["total_usdt"]) == total
    assert answer["display"] == f"${total:,.2f} *"
    assert answer["unknown"] == ["NOTACOIN"] and answer["failed"] == []
    assert answer["has_error"] is True and answer["error_message"] == "部分代币价格获取失败"
    rows = by_symbol(answer["holdings"])
    assert rows["NOTACOIN"]["status"] == "unknown" and rows["NOTACOIN"]["display"] == "≈ --"
    assert rows["SOL"]["display"] == "≈ $469.00" and rows["USDT"]["price"] == "1"


def test_portfolio_with_every_price_failed_shows_dashes(api: Api) -> None:
    down(api, "debank", "coingecko")
    body = {"holdings": [{"symbol": "BTC", "balance": "1"}, {"symbol": "ETH", "balance": "2"}]}
    answer = data(post(api, PORTFOLIO, body))
    assert answer["display"] == "--" and answer["total_usdt"] is None
    assert answer["failed"] == ["BTC", "ETH"] and answer["notice"] is not None


def test_a_zero_portfolio_is_zero_dollars(api: Api) -> None:
    answer = data(post(api, PORTFOLIO, {"holdings": [{"symbol": "USDT", "balance": "0"}]}))
    assert answer["display"] == "$0.00" and answer["total_usdt"] == "0"


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "symbols"), ({"symbols": ""}, "symbols"), ({"symbols": "BTC,E$H"}, "symbols"),
     ({"symbols": ",".join(TEN_THOUSAND)}, "symbols"),
     ({"symbols": "BTC", "network": "mars"}, "network")],
)  # fmt: skip
def test_bad_price_queries_are_refused_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    before = api.sim.ctx.stats.snapshot()["totals"]["requests"]
    refused(api.client.get(PRICES, params=params), field)
    assert api.sim.ctx.stats.snapshot()["totals"]["requests"] == before  # no source asked


def test_an_unknown_symbol_is_refused_by_name_in_the_callers_language(api: Api) -> None:
    error = refused(
        api.client.get(PRICES, params={"symbols": "BTC,NOTACOIN"}, headers=ZH), "symbols"
    )
    assert error["details"]["unknown"] == ["NOTACOIN"]
    assert "不支持的代币：NOTACOIN" in error["message"]
    error = refused(post(api, MIN_AMOUNT, {"amount": "1", "symbol": "NOTACOIN"}), "symbol")
    assert "Unsupported token: NOTACOIN" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"amount": "-1", "symbol": "ETH"}, "amount"), ({"amount": "abc", "symbol": "ETH"}, "amount"),
     ({"amount": -0.5, "symbol": "ETH"}, "amount"), ({"amount": True, "symbol": "ETH"}, "amount"),
     ({"amount": "NaN", "symbol": "ETH"}, "amount"), ({"symbol": "ETH"}, "amount"),
     ({"amount": "1"}, "symbol"), ({"amount": "1", "symbol": 5}, "symbol"),
     ({"amount": "1", "symbol": "E$H"}, "symbol"), ({"amount": "1", "symbol": "ETH", "x": 1}, "x"),
     ({"amount": "1", "symbol": "ETH", "network": "mars"}, "network"), ([1, 2], "(root)")],
)  # fmt: skip
def test_bad_min_amount_bodies_are_refused_naming_the_field(
    api: Api, body: Any, field: str
) -> None:
    refused(post(api, MIN_AMOUNT, body), field)


def test_a_body_that_is_not_json_is_refused(api: Api) -> None:
    response = api.client.post(
        MIN_AMOUNT, content=b"{amount: 1", headers={"Content-Type": "application/json"}
    )
    refused(response, "(root)")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"holdings": []}, "holdings"), ({}, "holdings"), ({"holdings": "ETH"}, "holdings"),
     ({"holdings": [{"symbol": "ETH", "balance": "1"}, {"symbol": "BTC", "balance": "-5"}]},
      "holdings[1].balance"),
     ({"holdings": [{"symbol": "ETH", "balance": "x"}]}, "holdings[0].balance"),
     ({"holdings": [{"symbol": "", "balance": "1"}]}, "holdings[0].symbol"),
     ({"holdings": [{"symbol": "ETH"}]}, "holdings[0]"), ({"holdings": [7]}, "holdings[0]"),
     ({"holdings": [{"symbol": "ETH", "balance": "1"}] * 501}, "holdings")],
)  # fmt: skip
def test_bad_holdings_are_refused_naming_the_place(api: Api, body: Any, field: str) -> None:
    refused(post(api, PORTFOLIO, body), field)

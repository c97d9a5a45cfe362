"""``/api/v1/mappings`` and ``/api/v1/market-cap`` over the app, on both stacks, with
the simulator's CoinGecko (the real coin list) behind the id check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from klinewatch.sim.testing import RunningSim
from klinewatch.storage.engine import transaction
from klinewatch.storage.models import CoinMarketData, Contract, TokenMapping
from tests.api.conftest import TOKEN, Api, running_api

PEPE_CANDIDATES = [
    {"coingecko_id": "pepe", "name": "Pepe", "symbol": "pepe", "volume_24h": 5.0e8,
     "market_cap_rank": 40},
    {"coingecko_id": "pepe-on-solana", "name": "Pepe on Solana", "symbol": "pepe",
     "volume_24h": None, "market_cap_rank": None},
]  # fmt: skip


def contract(market: str, symbol: str, base: str) -> Contract:
    return Contract(
        exchange="binance",
        market_type=market,
        symbol=symbol,
        base_asset=base,
        quote_asset="USDT",
        status="TRADING",
        contract_type="PERPETUAL" if market == "futures" else None,
    )


def mapping(base: str, coin: str, status: str, coin_id: str | None, **kw: Any) -> TokenMapping:
    return TokenMapping(
        exchange="binance",
        base_asset=base,
        coin_symbol=coin,
        multiplier=kw.get("multiplier", 1),
        coingecko_id=coin_id,
        match_status=status,
        evidence=kw.get("evidence", {"rule": "unique_symbol"}),
        alternatives=kw.get("alternatives", []),
    )


@pytest.fixture
def api(sim: RunningSim, database_url: str) -> Iterator[Api]:
    with running_api(sim, database_url, coingecko_api_key="demo-key") as running:
        with transaction(running.ctx.runtime.sessions) as session:
            session.add_all(
                [
                    contract("spot", "BTCUSDT", "BTC"),
                    contract("spot", "PEPEUSDT", "PEPE"),
                    contract("futures", "1000PEPEUSDT", "1000PEPE"),
                    mapping("BTC", "BTC", "auto_matched", "bitcoin",
                            evidence={"rule": "volume_over_2x_runner_up"}),
                    mapping("PEPE", "PEPE", "needs_review", None,
                            evidence={"rule": "ambiguous", "count": 2},
                            alternatives=PEPE_CANDIDATES),
                    mapping("1000PEPE", "PEPE", "needs_review", None, multiplier=1000,
                            evidence={"rule": "ambiguous", "count": 2},
                            alternatives=PEPE_CANDIDATES),
                    CoinMarketData(coingecko_id="bitcoin", symbol="btc", market_cap=4.7e11,
                                   fully_diluted_valuation=5.2e11, total_volume=2.1e10,
                                   market_cap_rank=1, fetched_at=datetime.now(UTC)),
                ]
            )  # fmt: skip
        yield running


def stored(api: Api) -> dict[str, tuple[str | None, str]]:
    with transaction(api.ctx.runtime.sessions) as session:
        return {
            m.base_asset: (m.coingecko_id, m.match_status)
            for m in session.scalars(select(TokenMapping))
        }


def confirm(api: Api, symbol: str, body: Any = None, token: str | None = TOKEN) -> httpx.Response:
    headers = {"X-API-Token": token} if token is not None else {}
    return api.client.post(f"/api/v1/mappings/{symbol}/confirm", json=body, headers=headers)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    return dict(body["error"])


def test_review_list_shows_candidates_with_volume_and_rank(api: Api) -> None:
    response = api.get("/api/v1/mappings", status="needs_review")
    assert response.status_code == 200
    rows = response.json()["data"]
    assert [r["base_asset"] for r in rows] == ["1000PEPE", "PEPE"]
    first = rows[0]
    assert (first["coin_symbol"], first["multiplier"], first["status"]) == (
        "PEPE",
        1000,
        "needs_review",
    )
    assert first["candidates"] == PEPE_CANDIDATES
    assert set(first) >= {
        "base_asset", "exchange", "coin_symbol", "multiplier", "coingecko_id", "status",
        "evidence", "candidates", "updated_at",
    }  # fmt: skip


def test_list_filters_by_market_type_and_pair_symbol(api: Api) -> None:
    futures = api.get("/api/v1/mappings", market_type="futures").json()["data"]
    assert [r["base_asset"] for r in futures] == ["1000PEPE"]
    btc = api.get("/api/v1/mappings", symbol="BTCUSDT").json()["data"]
    assert [(r["base_asset"], r["coingecko_id"]) for r in btc] == [("BTC", "bitcoin")]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "done"}, "status"), ({"market_type": "swap"}, "market_type"),
     ({"symbol": "BTC USDT!"}, "symbol")],
)  # fmt: skip
def test_bad_list_filters_are_400_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = api.get("/api/v1/mappings", **params)
    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == field


def test_confirm_a_candidate_makes_it_manual_confirmed(api: Api) -> None:
    response = confirm(api, "PEPE", {"coingecko_id": "pepe"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["base_asset"], data["coingecko_id"], data["status"]) == (
        "PEPE",
        "pepe",
        "manual_confirmed",
    )
    assert data["evidence"]["rule"] == "manual"
    assert stored(api)["PEPE"] == ("pepe", "manual_confirmed")


def test_confirm_without_an_id_keeps_the_current_one(api: Api) -> None:
    response = confirm(api, "BTCUSDT")
    assert response.status_code == 200
    assert stored(api)["BTC"] == ("bitcoin", "manual_confirmed")


def test_confirm_an_id_from_coingecko_list_outside_the_candidates(api: Api) -> None:
    response = confirm(api, "1000PEPE", {"coingecko_id": "pepe-token"})
    assert response.status_code == 200
    assert stored(api)["1000PEPE"] == ("pepe-token", "manual_confirmed")


@pytest.mark.parametrize(
    ("symbol", "body", "token", "status", "field"),
    [
        ("PEPE", {"coingecko_id": "pepe"}, None, 401, "X-API-Token"),
        ("PEPE", {"coingecko_id": "pepe"}, "wrong-token", 401, "X-API-Token"),
        ("NOSUCHASSET", {"coingecko_id": "pepe"}, TOKEN, 404, "symbol"),
        ("PEPE", {"coingecko_id": "no-such-coin-at-all"}, TOKEN, 400, "coingecko_id"),
        ("PEPE", {"coingecko_id": "Not An Id!"}, TOKEN, 400, "coingecko_id"),
        ("PEPE", None, TOKEN, 400, "coingecko_id"),  # nothing to confirm yet
        ("PEPE", {"coingecko_id": 5}, TOKEN, 400, "coingecko_id"),
        ("PEPE", {"id": "pepe"}, TOKEN, 400, "(root)"),
    ],
)
def test_refused_confirmations_change_nothing(
    api: Api, symbol: str, body: Any, token: str | None, status: int, field: str
) -> None:
    before = stored(api)
    response = confirm(api, symbol, body, token)
    assert response.status_code == status
    assert error_of(response)["details"]["field"] == field
    assert stored(api) == before


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/api/v1/mappings/PEPE/confirm",
        content=b"{not json",
        headers={"X-API-Token": TOKEN, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "(root)"


def test_market_cap_per_symbol_with_fetched_at_and_stale_flag(api: Api) -> None:
    response = api.get("/api/v1/market-cap", symbols="BTC,ETHUSDT,PEPEUSDT,BTCUSDT")
    assert response.status_code == 200
    rows = {r["symbol"]: r for r in response.json()["data"]}
    assert list(rows) == ["BTC", "ETHUSDT", "PEPEUSDT", "BTCUSDT"]
    btc = rows["BTC"]
    assert (btc["coingecko_id"], btc["market_cap"], btc["fdv"], btc["market_cap_rank"]) == (
        "bitcoin",
        4.7e11,
        5.2e11,
        1,
    )
    assert btc["is_stale"] is False and btc["fetched_at"] is not None
    assert rows["BTCUSDT"]["market_cap"] == 4.7e11
    for unknown in ("ETHUSDT", "PEPEUSDT"):  # no mapping / a mapping still in review
        assert rows[unknown]["market_cap"] is None and rows[unknown]["is_stale"] is True


def test_figures_older_than_twice_the_refresh_period_are_stale(api: Api) -> None:
    with transaction(api.ctx.runtime.sessions) as session:
        row = session.get_one(CoinMarketData, "bitcoin")
        row.fetched_at = datetime.now(UTC) - timedelta(hours=3)
    [btc] = api.get("/api/v1/market-cap", symbols="BTC").json()["data"]
    assert btc["market_cap"] == 4.7e11 and btc["is_stale"] is True


@pytest.mark.parametrize("symbols", [None, "", ",", "BTC,bad symbol!"])
def test_bad_market_cap_symbols_are_400(api: Api, symbols: str | None) -> None:
    response = api.get("/api/v1/market-cap", symbols=symbols)
    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "symbols"


def test_the_monitor_list_rows_carry_market_cap_and_fdv() -> None:
    from klinewatch.services.volume_trap_views import monitor_record
    from klinewatch.storage.models import VolumeTrapMonitor
    from klinewatch.storage.volume_trap_queries import Valuation

    row = VolumeTrapMonitor(
        id=1, exchange="binance", market_type="spot", symbol="OMUSDT", interval="1h",
        status="pending", trigger_open_time_ms=0, key_level=1.0, rvol=9.0,
        amplitude_pct=30.0, drawdown_pct=0.0, last_transition_open_time_ms=0,
        last_evaluated_open_time_ms=0, later_bursts=[],
    )  # fmt: skip
    record = monitor_record(row, Valuation("mantra-dao", 2.5e8, 4.0e8))
    assert (record["market_cap"], record["fdv"], record["coingecko_id"]) == (
        2.5e8,
        4.0e8,
        "mantra-dao",
    )
    assert monitor_record(row, None)["fdv"] is None

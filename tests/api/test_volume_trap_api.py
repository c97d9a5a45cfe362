"""``/api/volume-trap`` on both backends, over monitors a real scan of recorded candles
(data/sample) stored: filters, ordering, pagination, detail, statistics, and every bad
input a 400 naming its field.

The app is the router alone with the project's error envelopes (``api.errors``) and
``app.state.sessions``, as ``create_app`` wires it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.api import errors
from klinewatch.api.routers import volume_trap
from klinewatch.services.volume_trap import scan
from klinewatch.services.volume_trap_views import ORDERINGS
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.models import CoinMarketData, TokenMapping
from tests.fixtures.databases import BACKENDS, _pg_admin, _pg_url
from tests.integration.test_volume_trap_scan import NOW, add_contract, put, rows

URL = "/api/volume-trap"
# (market, symbol stored as, recorded symbol, interval, candles kept): the cut series
# end with a monitor still pending (RIVER, OM 1d) or suspected (OM 1h).
SERIES = (
    ("spot", "OMUSDT", "OMUSDT", "1h", 12025),
    ("spot", "OMUSDT", "OMUSDT", "1d", None),
    ("spot", "BIOUSDT", "BIOUSDT", "1h", None),
    ("spot", "PEPEUSDT", "PEPEUSDT", "1h", None),
    ("spot", "KITEUSDT", "KITEUSDT", "1h", None),
    ("futures", "RIVERUSDT", "RIVERUSDT", "1h", 1460),
    ("futures", "HYPEUSDT", "HYPEUSDT", "1h", None),
)
ORDER_KEYS = {"trigger_time": "trigger_open_time_ms", "rvol": "rvol", "drawdown": "drawdown_pct"}


def populate(sessions: sessionmaker[Session], store: SeriesStore) -> None:
    for market, symbol, recorded, interval, keep in SERIES:
        if interval == "1h":
            add_contract(sessions, market, symbol)
        candles = store.get("binance", market, recorded, interval)
        put_interval(sessions, market, symbol, interval, candles.take(slice(0, keep)))
    for market in ("spot", "futures"):
        for interval in ("1h", "1d"):
            summary = scan(sessions, "binance", market, interval, clock=NOW)
            assert not summary.errors
    with transaction(sessions) as session:
        session.add_all(
            [
                TokenMapping(
                    exchange="binance", base_asset="OM", coin_symbol="om",
                    coingecko_id="mantra-dao", match_status="auto_matched",
                ),
                TokenMapping(
                    exchange="binance", base_asset="PEPE", coin_symbol="pepe",
                    coingecko_id="pepe", match_status="needs_review",
                ),
                CoinMarketData(
                    coingecko_id="mantra-dao", symbol="om", market_cap=2.5e8,
                    fully_diluted_valuation=4.0e8,
                ),
                CoinMarketData(coingecko_id="pepe", symbol="pepe", market_cap=1e9),
            ]
        )  # fmt: skip


def put_interval(
    sessions: sessionmaker[Session], market: str, symbol: str, interval: str, candles: Any
) -> None:
    if interval == "1h":
        put(sessions, market, symbol, candles)
        return
    with transaction(sessions) as session:
        write_candles(session, SeriesKey("binance", market, symbol, interval), candles)


@pytest.fixture(scope="module", params=BACKENDS)
def sessions_with_monitors(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_dir: Path
) -> Iterator[sessionmaker[Session]]:
    """One database per backend for the module: the API only reads."""
    name = f"kw_test_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("vt-api") / "klinewatch.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{request.getfixturevalue("pg_template")}"')
        url = _pg_url(name)
    engine = build_engine(url)
    sessions = session_factory(engine)
    populate(sessions, SeriesStore(sample_dir))
    yield sessions
    engine.dispose()
    if request.param == "postgresql":
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def client(sessions_with_monitors: sessionmaker[Session]) -> Iterator[TestClient]:
    app = FastAPI()
    errors.install(app)
    app.include_router(volume_trap.router)
    app.state.sessions = sessions_with_monitors
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def stored(sessions_with_monitors: sessionmaker[Session]) -> list[dict[str, Any]]:
    return rows(sessions_with_monitors, "SELECT * FROM volume_trap_monitors ORDER BY id")


def data(response: Any) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def every_page(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    first = data(client.get(f"{URL}/monitors/", params=params))
    found = list(first["results"])
    for page in range(2, first["pages"] + 1):
        found += data(client.get(f"{URL}/monitors/", params={**params, "page": page}))["results"]
    assert len(found) == first["count"]
    return found


def test_the_list_shows_every_monitor_newest_trigger_first(
    client: TestClient, stored: list[dict[str, Any]]
) -> None:
    page = data(client.get(f"{URL}/monitors/"))
    assert (page["count"], page["page"], page["page_size"]) == (len(stored), 1, 20)
    assert page["pages"] == -(-len(stored) // 20) and len(page["results"]) == 20
    newest = sorted(stored, key=lambda m: (-m["trigger_open_time_ms"], -m["id"]))[:20]
    assert [r["id"] for r in page["results"]] == [m["id"] for m in newest]
    assert {m["status"] for m in stored} == {
        "pending", "suspected_abandonment", "confirmed_abandonment", "invalidated", "expired"
    }  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [
        {"market_type": "futures"},
        {"status": "confirmed_abandonment"},
        {"status": "pending", "market_type": "spot"},
        {"interval": "1d"},
        {"exchange": "binance", "status": "invalidated"},
        {"symbol": "omusdt"},
        {"symbol": "OM/USDT", "interval": "1h", "status": "suspected_abandonment"},
        {"exchange": "okx"},
    ],
)
def test_filters_select_exactly_the_matching_monitors(
    client: TestClient, stored: list[dict[str, Any]], params: dict[str, str]
) -> None:
    wanted = {k: v.upper().replace("/", "") if k == "symbol" else v for k, v in params.items()}
    expected = {m["id"] for m in stored if all(m[k] == v for k, v in wanted.items())}
    assert {r["id"] for r in every_page(client, page_size=7, **params)} == expected


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_ordering_and_pages_walk_every_monitor_once_in_order(
    client: TestClient, stored: list[dict[str, Any]], ordering: str
) -> None:
    column = ORDER_KEYS[ordering.lstrip("-")]
    sign = -1 if ordering.startswith("-") else 1
    expected = sorted(stored, key=lambda m: (sign * m[column], sign * m["id"]))
    walked = every_page(client, ordering=ordering, page_size=7)
    assert [r["id"] for r in walked] == [m["id"] for m in expected]


def test_market_cap_and_fdv_only_through_a_confirmed_mapping(client: TestClient) -> None:
    om = every_page(client, symbol="OMUSDT", page_size=50)
    assert {(r["coingecko_id"], r["market_cap"], r["fully_diluted_valuation"]) for r in om} == {
        ("mantra-dao", 2.5e8, 4.0e8)
    }
    pepe = every_page(client, symbol="PEPEUSDT")  # its mapping still needs review
    assert pepe and {(r["market_cap"], r["coingecko_id"]) for r in pepe} == {(None, None)}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("market_type=swap", "market_type"),
        ("status=done", "status"),
        ("interval=7x", "interval"),
        ("exchange=kraken", "exchange"),
        ("ordering=price", "ordering"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=9999", "page"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("symbol=", "symbol"),
        ("symbol=BTC%00USDT", "symbol"),
        ("symbol=%27%3B--", "symbol"),
    ],
)
def test_bad_list_input_is_a_400_naming_the_field(
    client: TestClient, query: str, field: str
) -> None:
    response = client.get(f"{URL}/monitors/?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["details"]["field"] == field
    assert body["error"]["code"] == "INVALID_PARAMS"


def test_an_empty_result_is_one_empty_page_not_an_error(client: TestClient) -> None:
    page = data(client.get(f"{URL}/monitors/", params={"symbol": "NOSUCHUSDT"}))
    assert (page["count"], page["pages"], page["results"]) == (0, 1, [])


def test_the_detail_has_the_trigger_key_level_transitions_and_candles(
    client: TestClient, sessions_with_monitors: sessionmaker[Session], stored: list[dict[str, Any]]
) -> None:
    validated = [m for m in stored if m["status"] == "confirmed_abandonment"]
    m = next(m for m in validated if m["symbol"] == "OMUSDT" and m["interval"] == "1h")
    detail = data(client.get(f"{URL}/monitors/{m['id']}/"))
    trigger = detail["trigger_candle"]
    assert detail["trigger_time"] == trigger["open_time"]
    assert detail["key_level"] == pytest.approx((trigger["high"] + trigger["low"]) / 2)
    moves = [(t["from_status"], t["to_status"]) for t in detail["transitions"]]
    assert moves == [
        (None, "pending"),
        ("pending", "suspected_abandonment"),
        ("suspected_abandonment", "confirmed_abandonment"),
    ]
    for move in detail["transitions"]:
        assert len(move["detector_values"]) == 8 and move["reason"]
    stored_moves = rows(
        sessions_with_monitors,
        f"SELECT count(*) AS n FROM volume_trap_state_transitions WHERE monitor_id = {m['id']}",
    )
    assert stored_moves == [{"n": 3}]

    candles = detail["candles"]
    times = [c["open_time"] for c in candles]
    assert times == sorted(times) and trigger["open_time"].replace(".000", "") in times
    hours = (m["last_transition_open_time_ms"] - m["trigger_open_time_ms"]) // 3_600_000
    assert len(candles) == 48 + hours + 1 + 48
    tight = data(client.get(f"{URL}/monitors/{m['id']}/", params={"before": 0, "after": 0}))
    assert len(tight["candles"]) == hours + 1


def test_the_detail_lists_later_bursts_with_their_snapshots(
    client: TestClient, stored: list[dict[str, Any]]
) -> None:
    import json

    def bursts(m: dict[str, Any]) -> list[Any]:
        value = m["later_bursts"]
        return json.loads(value) if isinstance(value, str) else value

    m = next(m for m in stored if bursts(m))
    detail = data(client.get(f"{URL}/monitors/{m['id']}/"))
    assert len(detail["later_bursts"]) == len(bursts(m))
    shots = detail["later_burst_snapshots"]
    assert [s["open_time"] for s in shots] == detail["later_bursts"]
    assert all(s["detector_values"]["rvol"]["passed"] for s in shots)


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/monitors/999999/", 404, "monitor_id"),
        ("/monitors/abc/", 400, "monitor_id"),
        ("/monitors/0/", 400, "monitor_id"),
        ("/monitors/99999999999999999999999/", 400, "monitor_id"),
        ("/monitors/1/?before=1001", 400, "before"),
        ("/monitors/1/?after=-1", 400, "after"),
    ],
)
def test_bad_or_unknown_detail_ids(client: TestClient, path: str, status: int, field: str) -> None:
    response = client.get(URL + path)
    assert response.status_code == status, response.text
    assert response.json()["error"]["details"]["field"] == field


def test_statistics_count_per_status_and_market_and_the_share_of_each_phase(
    client: TestClient, sessions_with_monitors: sessionmaker[Session], stored: list[dict[str, Any]]
) -> None:
    stats = data(client.get(f"{URL}/statistics/"))
    assert stats["total"] == len(stored)
    for status, n in stats["by_status"].items():
        assert n == sum(m["status"] == status for m in stored)
    for market, counts in stats["by_market_type"].items():
        for status, n in counts.items():
            assert n == sum(m["status"] == status and m["market_type"] == market for m in stored)

    moves = rows(
        sessions_with_monitors,
        "SELECT from_status, to_status FROM volume_trap_state_transitions",
    )
    confirmation, validation = stats["phases"]
    confirmed = sum(t["to_status"] == "suspected_abandonment" for t in moves)
    validated = sum(t["to_status"] == "confirmed_abandonment" for t in moves)
    ended = {
        phase: sum(
            t["from_status"] == phase and t["to_status"] in ("invalidated", "expired")
            for t in moves
        )
        for phase in ("pending", "suspected_abandonment")
    }
    assert confirmation["entered"] == len(stored)
    assert confirmation["advanced"] == validation["entered"] == confirmed
    assert confirmation["share"] == round(confirmed / (confirmed + ended["pending"]), 4)
    assert validation["share"] == round(validated / (validated + ended["suspected_abandonment"]), 4)
    for phase in (confirmation, validation):
        assert phase["entered"] == phase["advanced"] + phase["ended"] + phase["active"]

    spot = data(client.get(f"{URL}/statistics/", params={"market_type": "spot"}))
    assert spot["total"] == sum(m["market_type"] == "spot" for m in stored)
    assert list(spot["by_market_type"]) == ["spot"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("market_type=swap", "market_type"), ("interval=2x", "interval"), ("exchange=x", "exchange")],
)
def test_bad_statistics_input_is_a_400_naming_the_field(
    client: TestClient, query: str, field: str
) -> None:
    response = client.get(f"{URL}/statistics/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == field


def test_nothing_is_written_by_reading(
    client: TestClient, sessions_with_monitors: sessionmaker[Session]
) -> None:
    def snapshot() -> Any:
        with transaction(sessions_with_monitors) as session:
            return session.execute(
                text("SELECT max(updated_at), count(*) FROM volume_trap_monitors")
            ).one()

    before = snapshot()
    client.get(f"{URL}/monitors/?page=9999")
    client.get(f"{URL}/statistics/")
    assert snapshot() == before

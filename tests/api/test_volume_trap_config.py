"""The volume-trap thresholds through the system config: validated by the core's rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from klinewatch.api.app import create_app
from klinewatch.settings import Settings
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.models import SystemConfig

TOKEN = "t0ken-for-tests"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, api_tokens=[TOKEN])  # type: ignore[list-item]
    with TestClient(create_app(settings, background=False)) as c:
        yield c


def stored_section(database_url: str) -> dict[str, object]:
    engine = build_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            row = session.scalar(select(SystemConfig))
            return dict(row.volume_trap) if row is not None else {}
    finally:
        engine.dispose()


def test_thresholds_update_and_read_back(client: TestClient, database_url: str) -> None:
    before = client.get("/api/v1/system/config").json()["data"]["volume_trap"]
    assert before["rvol_min"] == 8
    answer = client.put(
        "/api/v1/system/config",
        json={"volume_trap": {"rvol_min": 6}},
        headers={"X-API-Token": TOKEN},
    )
    assert answer.status_code == 200, answer.text
    assert client.get("/api/v1/system/config").json()["data"]["volume_trap"]["rvol_min"] == 6
    assert stored_section(database_url)["rvol_min"] == 6


@pytest.mark.parametrize(
    ("update", "field"),
    [({"rvol_min": -1}, "volume_trap.rvol_min"), ({"no_such_threshold": 1}, "volume_trap")],
)
def test_out_of_range_threshold_is_400_naming_the_field_and_nothing_changes(
    client: TestClient, database_url: str, update: dict[str, object], field: str
) -> None:
    before = client.get("/api/v1/system/config").json()["data"]["volume_trap"]
    answer = client.put(
        "/api/v1/system/config", json={"volume_trap": update}, headers={"X-API-Token": TOKEN}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "INVALID_CONFIG"
    assert error["details"]["field"].startswith(field)
    assert client.get("/api/v1/system/config").json()["data"]["volume_trap"] == before

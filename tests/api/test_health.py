"""The liveness page served by ``create_app``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from klinewatch.api.app import create_app
from klinewatch.settings import Settings


def test_health_reports_the_database(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url), background=False)
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["components"]["database"]["status"] == "healthy"
    assert body["data"]["components"]["database"]["backend"] in {"sqlite", "postgresql"}

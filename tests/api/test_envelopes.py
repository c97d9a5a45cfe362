"""Every answer is an envelope: errors of every kind, the per-client rate limit, and an
unexpected failure that never shows its stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi.testclient import TestClient

from klinewatch.api.app import AppContext, create_app
from tests.api.conftest import Api, api_settings, running_api


def test_unknown_routes_and_methods_answer_in_the_envelope(api: Api) -> None:
    missing = api.get("/api/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = api.client.delete("/api/v1/system/config")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in wrong.headers["allow"]


def test_a_missing_parameter_is_named(api: Api) -> None:
    answer = api.get("/api/v1/market/klines", timeframe="1h")
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"field": "symbol"}


def test_an_unexpected_failure_is_a_500_without_a_trace(sim: Any, tmp_path: Any) -> None:
    from klinewatch.storage import migrate

    database_url = f"sqlite:///{tmp_path / 'kw.sqlite3'}"
    migrate.upgrade(database_url)

    @asynccontextmanager
    async def break_klines(ctx: AppContext) -> AsyncIterator[None]:
        async def broken(*args: Any) -> Any:
            raise RuntimeError("secret internals /etc/passwd line 42")

        ctx.market.klines_body = broken  # type: ignore[method-assign]
        yield

    app = create_app(api_settings(database_url, None), lifespan_hooks=[break_klines])
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/market/klines?symbol=BTCUSDT&timeframe=1h")
    assert answer.status_code == 500
    assert answer.json() == {
        "success": False,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "internal error; it has been logged",
            "details": {},
        },
    }
    assert "secret internals" not in answer.text and "Traceback" not in answer.text


def test_each_client_is_limited_per_minute(sim: Any, database_url: str) -> None:
    with running_api(sim, database_url, api_rate_limit_per_min=3) as api:
        statuses = [api.get("/api/v1/system/config").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = api.get("/api/v1/market/klines", symbol="BTCUSDT", timeframe="1h")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1
        assert api.get("/health").status_code == 200  # liveness is never limited
        assert api.get("/metrics").status_code == 200
        assert api.get("/").status_code == 200  # nor are the dashboard's pages
        assert api.get("/api/v1/market/ticker", symbol="BTCUSDT").status_code == 429


def test_the_openapi_document_has_no_422_and_documents_the_envelopes(api: Api) -> None:
    schema = api.get("/openapi.json").json()
    klines = schema["paths"]["/api/v1/market/klines"]["get"]
    assert "422" not in klines["responses"]
    assert {"200", "400", "404", "429", "503"} <= set(klines["responses"])
    put = schema["paths"]["/api/v1/system/config"]["put"]
    assert "401" in put["responses"]
    assert put["security"] == [{"APIKeyHeader": []}]
    assert api.get("/docs").status_code == 200

"""``GET|PUT /api/v1/system/config``: the seed's defaults, deep-merged partial updates,
refusals naming the field with nothing stored, tokens, encrypted secrets, and changes
taking effect without a restart (in this worker and, by polling, in another)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from klinewatch.storage.engine import transaction
from klinewatch.storage.models import SystemConfig
from tests.api.conftest import NOW_MS, SECRET_KEY, Api, running_api


def stored_row(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    with transaction(api.ctx.runtime.sessions) as s:
        row = s.scalars(select(SystemConfig)).one()
        return dict(row.market_data), dict(row.encrypted_secrets)


def test_the_defaults_are_the_seeds(api: Api) -> None:
    data = api.get("/api/v1/system/config").json()["data"]
    md = data["market_data"]
    assert md["default_exchange"] == "binance"
    assert md["enabled_exchanges"] == ["binance", "okx", "bybit", "bitget"]
    assert md["cache_config"]["ttl"] == {
        "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400
    }  # fmt: skip
    assert (md["update_mode"], md["update_interval_seconds"], md["auto_failover"]) == (
        "interval",
        5,
        True,
    )
    assert data["current_exchange"] == "binance"
    assert data["secrets"]["coingecko_api_key"] == {"configured": False, "source": None}
    assert data["last_updated"].endswith("Z") or "+00:00" in data["last_updated"]


def test_a_partial_update_is_deep_merged(api: Api) -> None:
    answer = api.put_config(
        {"market_data": {"cache_config": {"ttl": {"1m": 30}}, "update_mode": "n_periods"}}
    )
    assert answer.status_code == 200, answer.text
    md = answer.json()["data"]["market_data"]
    assert md["cache_config"]["ttl"]["1m"] == 30
    assert md["cache_config"]["ttl"]["1h"] == 3600  # untouched sibling
    assert md["cache_config"]["max_size_mb"] == 512
    assert md["update_mode"] == "n_periods"
    assert api.get("/api/v1/system/config").json()["data"]["market_data"] == md
    assert stored_row(api)[0] == md


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"market_data": {"cache_config": {"ttl": {"1m": 5}}}}, "market_data.cache_config.ttl.1m"),
        ({"market_data": {"default_klines_limit": 5000}}, "market_data.default_klines_limit"),
        ({"market_data": {"default_exchange": "kraken"}}, "market_data.default_exchange"),
        ({"market_data": {"enabled_exchanges": []}}, "market_data.enabled_exchanges"),
        ({"market_data": {"update_mode": "sometimes"}}, "market_data.update_mode"),
        ({"market_data": {"auto_failover": "yes"}}, "market_data.auto_failover"),
        ({"market_data": {"no_such_thing": 1}}, "market_data.no_such_thing"),
        ({"market_data": {"enabled_exchanges": ["okx"]}}, "market_data.default_exchange"),
        ({"volume": 1}, "volume"),
        ({"market_data": [1, 2]}, "market_data"),
        ({"secrets": {"binance_proxy": "not a url"}}, "secrets.binance_proxy"),
        ({"secrets": {"password": "x"}}, "secrets.password"),
        ([1, 2, 3], "(root)"),
    ],
)
def test_an_invalid_update_names_the_field_and_changes_nothing(
    api: Api, body: Any, field: str
) -> None:
    before = stored_row(api)
    shown = api.get("/api/v1/system/config").json()["data"]
    answer = api.put_config(body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID_CONFIG"
    assert error["details"]["field"] == field
    assert stored_row(api) == before
    assert api.get("/api/v1/system/config").json()["data"] == shown


def test_malformed_json_is_refused(api: Api) -> None:
    answer = api.client.put(
        "/api/v1/system/config",
        content=b'{"market_data": {',
        headers={"X-API-Token": "test-token-0123456789", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "INVALID_CONFIG",
        "message": "the body is not JSON",
        "details": {"field": "(root)"},
    }


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_write_needs_a_token(api: Api, token: str | None) -> None:
    before = stored_row(api)
    answer = api.put_config({"market_data": {"default_klines_limit": 100}}, token=token)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "UNAUTHORIZED"
    assert answer.json()["error"]["details"]["field"] == "X-API-Token"
    assert stored_row(api) == before


def test_without_configured_tokens_writes_are_disabled(sim: Any, database_url: str) -> None:
    with running_api(sim, database_url, api_tokens=[]) as api:
        answer = api.put_config({"market_data": {}}, token="anything")
        assert answer.status_code == 401
        assert "KLINEWATCH_API_TOKENS" in answer.json()["error"]["message"]


def test_secrets_are_stored_encrypted_and_never_shown(api: Api) -> None:
    secret = "cg-secret-key-abcdef"
    proxy = "http://user:pa55word@proxy.example:3128"
    answer = api.put_config({"secrets": {"coingecko_api_key": secret, "binance_proxy": proxy}})
    assert answer.status_code == 200, answer.text
    assert secret not in answer.text and "pa55word" not in answer.text
    shown = api.get("/api/v1/system/config")
    assert secret not in shown.text and "pa55word" not in shown.text
    assert shown.json()["data"]["secrets"]["coingecko_api_key"] == {
        "configured": True,
        "source": "config",
    }
    _, tokens = stored_row(api)
    assert secret not in str(tokens) and "pa55word" not in str(tokens)
    assert Fernet(SECRET_KEY.encode()).decrypt(tokens["coingecko_api_key"].encode()) == (
        secret.encode()
    )
    assert api.ctx.config.secret("binance_proxy") == proxy
    assert api.put_config({"secrets": {"coingecko_api_key": None}}).status_code == 200
    assert "coingecko_api_key" not in stored_row(api)[1]
    assert api.ctx.config.secret("binance_proxy") == proxy  # the other one stays


def test_a_secret_cannot_be_stored_without_a_key(sim: Any, database_url: str) -> None:
    with running_api(sim, database_url, secret_key=None) as api:
        answer = api.put_config({"secrets": {"price_source_api_key": "k"}})
        assert answer.status_code == 400
        assert answer.json()["error"]["details"]["field"] == "secrets.price_source_api_key"
        assert "KLINEWATCH_SECRET_KEY" in answer.json()["error"]["message"]


def test_a_new_ttl_applies_to_the_next_cache_entry(api: Api) -> None:
    api.seed("BTCUSDT", "1h", until_ms=NOW_MS)
    assert api.put_config({"market_data": {"cache_config": {"ttl": {"1h": 20}}}}).status_code == 200
    assert api.klines(symbol="BTCUSDT", timeframe="1h").json()["data"]["data_source"] == "database"
    assert api.klines(symbol="BTCUSDT", timeframe="1h").json()["data"]["data_source"] == "cache"
    if api.redis is None:  # the in-process cache runs on the app's (simulated) clock
        api.sim.ctx.clock.set(NOW_MS + 21_000, speed=0)
    else:
        pttl = api.run(_pttl, api, "klines:binance:spot:BTCUSDT:1h:latest:200")
        assert 0 < pttl <= 20_000
        return
    assert api.klines(symbol="BTCUSDT", timeframe="1h").json()["data"]["data_source"] == "database"


async def _pttl(api: Api, key: str) -> int:
    client = api.ctx.cache._client  # type: ignore[attr-defined]
    value: int = await client.pttl(api.ctx.settings.cache_prefix + key)
    return value


def test_another_worker_sees_the_change_without_a_restart(sim: Any, database_url: str) -> None:
    with running_api(sim, database_url) as first, running_api(sim, database_url) as second:
        assert first.put_config({"market_data": {"default_klines_limit": 123}}).status_code == 200
        assert second.ctx.config.market_data.default_klines_limit == 200
        assert second.run(second.ctx.config.refresh) is True
        assert second.ctx.config.market_data.default_klines_limit == 123
        shown = second.get("/api/v1/system/config").json()["data"]["market_data"]
        assert shown["default_klines_limit"] == 123

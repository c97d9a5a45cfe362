"""The system-config singleton: seed defaults, every validation rule, deep-merged updates."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klinewatch.domain.market_config import (
    InvalidConfig,
    apply_update,
    deep_merge,
    default_config,
    ttl_for,
    validate_config,
)
from klinewatch.errors import ConfigurationError, InvalidInput

# Seed 001 section 4.1, verbatim.
SEED_DEFAULTS: dict[str, Any] = {
    "default_exchange": "binance",
    "enabled_exchanges": ["binance", "okx", "bybit", "bitget"],
    "default_klines_limit": 200,
    "cache_config": {
        "ttl": {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400},
        "max_size_mb": 512,
    },
    "update_mode": "interval",
    "update_interval_seconds": 5,
    "n_periods": 1,
    "auto_failover": True,
    "rate_limit_fallback": True,
    "historical_data_days": {"1m": 7, "5m": 30, "15m": 30, "1h": 90, "4h": 365, "1d": 365},
}


def md(**fields: Any) -> dict[str, Any]:
    """An update of ``market_data`` fields."""
    return {"market_data": fields}


def test_defaults_are_the_seeds_plus_the_documented_additions() -> None:
    market_data = default_config()["market_data"]
    assert {k: market_data[k] for k in SEED_DEFAULTS} == SEED_DEFAULTS
    assert market_data["hot_pairs"] == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    assert market_data["rate_limited_for_s"] == 3600  # seed 3.4: marked for one hour
    assert market_data["max_stale_age_s"] == 86400  # seed 3.4: stale data up to 24 h
    assert market_data["health_check"] == {
        "interval_s": 60,
        "timeout_s": 10,
        "failures_to_unhealthy": 3,
        "successes_to_recover": 2,
    }
    validate_config(default_config())


def test_default_config_is_a_fresh_copy_each_time() -> None:
    first = default_config()
    first["market_data"]["enabled_exchanges"].append("kraken")
    assert (
        default_config()["market_data"]["enabled_exchanges"] == SEED_DEFAULTS["enabled_exchanges"]
    )


BAD_UPDATES: list[tuple[dict[str, Any], str]] = [
    # seed 3.5, the five rules
    (md(default_exchange="kraken"), "market_data.default_exchange"),
    (md(default_exchange=1), "market_data.default_exchange"),
    (md(enabled_exchanges=[]), "market_data.enabled_exchanges"),
    (md(enabled_exchanges="binance"), "market_data.enabled_exchanges"),
    (md(enabled_exchanges=["binance", 3]), "market_data.enabled_exchanges.1"),
    (md(default_klines_limit=0), "market_data.default_klines_limit"),
    (md(default_klines_limit=1001), "market_data.default_klines_limit"),
    (md(default_klines_limit="200"), "market_data.default_klines_limit"),
    (md(default_klines_limit=200.0), "market_data.default_klines_limit"),
    (md(default_klines_limit=True), "market_data.default_klines_limit"),
    (md(cache_config={"ttl": {"1m": 9}}), "market_data.cache_config.ttl.1m"),
    (md(cache_config={"ttl": {"1m": 3601}}), "market_data.cache_config.ttl.1m"),
    (md(cache_config={"ttl": {"1m": "60"}}), "market_data.cache_config.ttl.1m"),
    (md(update_mode="cron"), "market_data.update_mode"),
    # the same kinds of rule, extended to every field
    (md(enabled_exchanges=["okx", "okx"]), "market_data.enabled_exchanges"),
    (md(enabled_exchanges=["binance", "kraken"]), "market_data.enabled_exchanges.1"),
    (md(cache_config={"ttl": {"5m": 3601}}), "market_data.cache_config.ttl.5m"),
    (md(cache_config={"ttl": {"15m": 5}}), "market_data.cache_config.ttl.15m"),
    (md(cache_config={"ttl": {"1h": 3601}}), "market_data.cache_config.ttl.1h"),
    (md(cache_config={"ttl": {"4h": 14401}}), "market_data.cache_config.ttl.4h"),
    (md(cache_config={"ttl": {"1d": 86401}}), "market_data.cache_config.ttl.1d"),
    (md(cache_config={"ttl": {"2h": 600}}), "market_data.cache_config.ttl.2h"),
    (md(cache_config={"max_size_mb": 0}), "market_data.cache_config.max_size_mb"),
    (md(cache_config=5), "market_data.cache_config"),
    (md(update_interval_seconds=0), "market_data.update_interval_seconds"),
    (md(update_interval_seconds=3601), "market_data.update_interval_seconds"),
    (md(n_periods=0), "market_data.n_periods"),
    (md(n_periods=101), "market_data.n_periods"),
    (md(auto_failover="true"), "market_data.auto_failover"),
    (md(auto_failover=1), "market_data.auto_failover"),
    (md(rate_limit_fallback=None), "market_data.rate_limit_fallback"),
    (md(historical_data_days={"1m": 0}), "market_data.historical_data_days.1m"),
    (md(historical_data_days={"1d": 3651}), "market_data.historical_data_days.1d"),
    (md(hot_pairs=["btc/usdt"]), "market_data.hot_pairs.0"),
    (md(hot_pairs=["BTCUSDT", "BTCUSDT"]), "market_data.hot_pairs"),
    (md(hot_pairs=[f"AB{i}USDT" for i in range(51)]), "market_data.hot_pairs"),
    (md(rate_limited_for_s=0), "market_data.rate_limited_for_s"),
    (md(rate_limited_for_s=86401), "market_data.rate_limited_for_s"),
    (md(max_stale_age_s=-1), "market_data.max_stale_age_s"),
    (md(health_check={"interval_s": 4}), "market_data.health_check.interval_s"),
    (md(health_check={"timeout_s": 0}), "market_data.health_check.timeout_s"),
    (md(health_check={"timeout_s": 60}), "market_data.health_check.timeout_s"),
    (
        md(health_check={"failures_to_unhealthy": 0}),
        "market_data.health_check.failures_to_unhealthy",
    ),
    (
        md(health_check={"successes_to_recover": 21}),
        "market_data.health_check.successes_to_recover",
    ),
    # across fields
    (md(enabled_exchanges=["okx"]), "market_data.default_exchange"),
    # unknown keys at every level, and non-objects
    (md(cache_config={"ttl": {"m1": 60}}), "market_data.cache_config.ttl.m1"),
    (md(health_check={"retries": 3}), "market_data.health_check.retries"),
    (md(defualt_exchange="okx"), "market_data.defualt_exchange"),
    ({"scheduler": {}}, "scheduler"),
    ({"market_data": "binance"}, "market_data"),
]


@pytest.mark.parametrize(("update", "field"), BAD_UPDATES)
def test_a_bad_update_names_the_field_and_changes_nothing(
    update: dict[str, Any], field: str
) -> None:
    current = default_config()
    before = copy.deepcopy(current)
    with pytest.raises(InvalidConfig) as caught:
        apply_update(current, update)
    assert caught.value.field == field
    assert caught.value.details == {"field": field}
    assert caught.value.code == "INVALID_CONFIG"
    assert caught.value.message.startswith(field)
    assert current == before


def test_an_unknown_key_is_called_unknown() -> None:
    with pytest.raises(InvalidConfig, match="unknown setting"):
        apply_update(default_config(), md(colour="blue"))


def test_the_first_bad_field_in_schema_order_is_named() -> None:
    with pytest.raises(InvalidConfig) as caught:
        apply_update(default_config(), md(update_mode="cron", default_klines_limit=0))
    assert caught.value.field == "market_data.default_klines_limit"


def test_invalid_config_is_both_a_configuration_error_and_bad_input() -> None:
    with pytest.raises(InvalidConfig) as caught:
        validate_config({"market_data": {"n_periods": 0}})
    assert isinstance(caught.value, ConfigurationError)  # a stored one stops the process
    assert isinstance(caught.value, InvalidInput)  # an update is answered 400


def test_a_non_object_is_refused_at_the_root() -> None:
    with pytest.raises(InvalidConfig) as caught:
        apply_update(default_config(), ["market_data"])  # type: ignore[arg-type]
    assert caught.value.field == "(root)"
    with pytest.raises(InvalidConfig):
        validate_config("{}")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "update",
    [
        md(cache_config={"ttl": {"1m": 10}}),
        md(cache_config={"ttl": {"1m": 3600}}),
        md(cache_config={"ttl": {"1d": 86400}}),
        md(default_klines_limit=1),
        md(default_klines_limit=1000),
        md(enabled_exchanges=["bitget"], default_exchange="bitget"),
        md(hot_pairs=[]),
        md(hot_pairs=["BTC/USDT", "BTC-USDT-SWAP", "1000PEPEUSDT"]),
        md(max_stale_age_s=0),
        md(health_check={"interval_s": 11, "timeout_s": 10}),
    ],
)
def test_boundary_values_are_accepted(update: dict[str, Any]) -> None:
    apply_update(default_config(), update)


def test_the_seed_put_example_merges_into_the_stored_config() -> None:
    update = md(default_exchange="okx", update_mode="n_periods", n_periods=1)
    result = apply_update(default_config(), update)["market_data"]
    assert (result["default_exchange"], result["update_mode"]) == ("okx", "n_periods")
    assert result["cache_config"] == SEED_DEFAULTS["cache_config"]
    assert result["enabled_exchanges"] == SEED_DEFAULTS["enabled_exchanges"]


def test_a_nested_partial_update_keeps_its_siblings() -> None:
    result = apply_update(default_config(), md(cache_config={"ttl": {"1m": 30}}))
    cache = result["market_data"]["cache_config"]
    assert cache["ttl"] == {**SEED_DEFAULTS["cache_config"]["ttl"], "1m": 30}
    assert cache["max_size_mb"] == 512
    assert {k: v for k, v in result["market_data"].items() if k != "cache_config"} == {
        k: v for k, v in default_config()["market_data"].items() if k != "cache_config"
    }


def test_lists_are_replaced_not_appended() -> None:
    result = apply_update(default_config(), md(enabled_exchanges=["binance", "okx"]))
    assert result["market_data"]["enabled_exchanges"] == ["binance", "okx"]


def test_an_empty_update_returns_the_same_document() -> None:
    current = default_config()
    assert apply_update(current, {}) == current


def test_updates_compose() -> None:
    once = apply_update(default_config(), md(n_periods=3))
    twice = apply_update(once, md(cache_config={"max_size_mb": 64}))
    assert twice["market_data"]["n_periods"] == 3
    assert twice["market_data"]["cache_config"]["max_size_mb"] == 64


def test_deep_merge_mutates_neither_input_and_shares_nothing() -> None:
    base = {"a": {"b": [1, 2], "c": 1}, "d": 1}
    update = {"a": {"c": 2, "e": {"f": [3]}}}
    base_before, update_before = copy.deepcopy(base), copy.deepcopy(update)
    merged = deep_merge(base, update)
    assert merged == {"a": {"b": [1, 2], "c": 2, "e": {"f": [3]}}, "d": 1}
    merged["a"]["b"].append(9)
    merged["a"]["e"]["f"].append(9)
    assert base == base_before and update == update_before


def test_deep_merge_replaces_a_scalar_with_an_object_and_back() -> None:
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


LEAVES: list[tuple[tuple[str, ...], int, int]] = [
    (("cache_config", "ttl", "1m"), 10, 3600),
    (("cache_config", "ttl", "4h"), 10, 14400),
    (("cache_config", "max_size_mb"), 1, 65536),
    (("default_klines_limit",), 1, 1000),
    (("n_periods",), 1, 100),
    (("historical_data_days", "5m"), 1, 3650),
    (("health_check", "failures_to_unhealthy"), 1, 20),
]


@given(leaf=st.sampled_from(LEAVES), data=st.data())
def test_a_valid_single_leaf_update_changes_exactly_that_leaf(
    leaf: tuple[tuple[str, ...], int, int], data: st.DataObject
) -> None:
    path, lo, hi = leaf
    value = data.draw(st.integers(lo, hi))
    update: Any = value
    for part in reversed(path):
        update = {part: update}
    result = apply_update(default_config(), {"market_data": update})
    expected = default_config()
    node = expected["market_data"]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert result == expected


@pytest.mark.parametrize(
    ("interval", "ttl"),
    [
        ("1m", 60),
        ("1h", 3600),
        ("3m", 60),
        ("30m", 900),
        ("2h", 3600),
        ("1w", 86400),
        ("1M", 86400),
    ],
)
def test_ttl_for_any_interval_falls_back_to_the_shorter_timeframe(interval: str, ttl: int) -> None:
    assert ttl_for(validate_config(default_config()).market_data, interval) == ttl

"""The system-config singleton (seed 001 sections 3.5 and 4.1) as pure, validated data.

The stored document is ``{"market_data": {...}}``. A PUT sends a partial document that
is deep-merged into the current one; the *merged* result is validated as a whole and
either replaces the stored one or is refused with ``InvalidConfig`` naming the first bad
field as a dotted path (``market_data.cache_config.ttl.1m``). Nothing is mutated.

The rules are declarative (pydantic, ``extra="forbid"``, strict types, so ``"5"`` is not
an integer and ``1`` is not a boolean) and cover every field: the seed's five rules plus
ranges for the rest. Two rules span fields and are checked after the models:
``default_exchange`` must be enabled, and a health check's timeout must be shorter than
its interval.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from klinewatch.domain.intervals import INTERVALS
from klinewatch.errors import ConfigurationError, InvalidInput

Exchange = Literal["binance", "okx", "bybit", "bitget"]
UpdateMode = Literal["interval", "n_periods"]
TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "1h", "4h", "1d")
HOUR_S = 3600
DAY_S = 24 * HOUR_S


class InvalidConfig(ConfigurationError, InvalidInput):
    """A config document or update that breaks a rule: HTTP 400 ``INVALID_CONFIG``.

    A ``ConfigurationError`` (a stored config that fails stops the process) and an
    ``InvalidInput`` (a user's update that fails is a 400 naming ``field``).
    """

    code = "INVALID_CONFIG"


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TtlConfig(_Rules):
    """Cache TTL per timeframe (s): at least 10 s, at most one hour or one candle."""

    m1: int = Field(60, alias="1m", ge=10, le=HOUR_S)
    m5: int = Field(300, alias="5m", ge=10, le=HOUR_S)
    m15: int = Field(900, alias="15m", ge=10, le=HOUR_S)
    h1: int = Field(HOUR_S, alias="1h", ge=10, le=HOUR_S)
    h4: int = Field(4 * HOUR_S, alias="4h", ge=10, le=4 * HOUR_S)
    d1: int = Field(DAY_S, alias="1d", ge=10, le=DAY_S)


class CacheConfig(_Rules):
    ttl: TtlConfig = Field(default_factory=TtlConfig)
    max_size_mb: int = Field(512, ge=1, le=65_536)


Days = Annotated[int, Field(ge=1, le=3650)]


class HistoryDays(_Rules):
    """How far back each timeframe is kept (days, 1 to 10 years)."""

    m1: Days = Field(7, alias="1m")
    m5: Days = Field(30, alias="5m")
    m15: Days = Field(30, alias="15m")
    h1: Days = Field(90, alias="1h")
    h4: Days = Field(365, alias="4h")
    d1: Days = Field(365, alias="1d")


class HealthCheck(_Rules):
    """Seed 001 section 3.3: probe every 60 s, 3 failures down, 2 successes back up."""

    interval_s: int = Field(60, ge=5, le=HOUR_S)
    timeout_s: int = Field(10, ge=1, le=120)
    failures_to_unhealthy: int = Field(3, ge=1, le=20)
    successes_to_recover: int = Field(2, ge=1, le=20)


Symbol = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,20}(?:[/-][A-Z0-9]{2,20}){0,2}$")]


def _all_exchanges() -> list[Exchange]:
    return ["binance", "okx", "bybit", "bitget"]


class MarketDataConfig(_Rules):
    default_exchange: Exchange = "binance"
    enabled_exchanges: list[Exchange] = Field(default_factory=_all_exchanges, min_length=1)
    default_klines_limit: int = Field(200, ge=1, le=1000)
    cache_config: CacheConfig = Field(default_factory=CacheConfig)
    update_mode: UpdateMode = "interval"
    update_interval_seconds: int = Field(5, ge=1, le=HOUR_S)
    n_periods: int = Field(1, ge=1, le=100)
    auto_failover: bool = True
    rate_limit_fallback: bool = True
    historical_data_days: HistoryDays = Field(default_factory=HistoryDays)
    # Beyond section 4.1: section 7.1's warm-up pairs, section 3.4's fallback settings.
    hot_pairs: list[Symbol] = Field(
        default_factory=lambda: ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"], max_length=50
    )
    rate_limited_for_s: int = Field(HOUR_S, ge=1, le=DAY_S)
    max_stale_age_s: int = Field(DAY_S, ge=0, le=30 * DAY_S)
    health_check: HealthCheck = Field(default_factory=HealthCheck)

    @field_validator("enabled_exchanges", "hot_pairs")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("items must be unique")
        return value


class SystemConfig(_Rules):
    """The whole singleton document."""

    market_data: MarketDataConfig = Field(default_factory=MarketDataConfig)


def default_config() -> dict[str, Any]:
    """The seed's defaults as a fresh JSON-ready document."""
    return dump(SystemConfig())


def dump(config: SystemConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


def validate_config(document: Mapping[str, Any]) -> SystemConfig:
    """The typed config, or ``InvalidConfig`` naming the first bad field."""
    if not isinstance(document, Mapping):
        raise InvalidConfig("the config must be an object", field="(root)")
    try:
        config = SystemConfig.model_validate(dict(document))
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        reason = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidConfig(f"{field}: {reason}", field=field) from None
    _check_across_fields(config.market_data)
    return config


def _check_across_fields(md: MarketDataConfig) -> None:
    if md.default_exchange not in md.enabled_exchanges:
        raise InvalidConfig(
            f"market_data.default_exchange: {md.default_exchange} is not enabled",
            field="market_data.default_exchange",
        )
    if md.health_check.timeout_s >= md.health_check.interval_s:
        raise InvalidConfig(
            "market_data.health_check.timeout_s: must be shorter than interval_s",
            field="market_data.health_check.timeout_s",
        )


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: objects merge key by key, anything else (lists too) replaces.

    Neither input is modified and the result shares no mutable part with them.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_update(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The validated, normalized document after a partial update, or ``InvalidConfig``.

    ``current`` is left untouched either way, so a refused update changes nothing.
    """
    if not isinstance(update, Mapping):
        raise InvalidConfig("the update must be an object", field="(root)")
    return dump(validate_config(deep_merge(current, update)))


def ttl_for(config: MarketDataConfig, interval: str) -> int:
    """Cache TTL for any kline interval: its own, else that of the longest configured
    timeframe no longer than it (a shorter TTL errs on the side of fresh data)."""
    ttl = config.cache_config.ttl.model_dump(by_alias=True)
    if interval in ttl:
        return int(ttl[interval])
    length = INTERVALS[interval].nominal_ms
    shorter = [tf for tf in TIMEFRAMES if INTERVALS[tf].nominal_ms <= length]
    return int(ttl[shorter[-1] if shorter else TIMEFRAMES[0]])

"""Where the scheduler reads the system config (seed 001 section 4.1).

The scheduler asks a ``ConfigSource`` before every planning step, so a config changed
through the API takes effect at the next step without a restart. The composition roots
pass ``stored_config_source`` (the singleton row, through ``SystemConfigService``); the
default source answers the seed's defaults (tests, and anything run without a database
config).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from klinewatch.domain.intervals import Interval
from klinewatch.domain.market_config import MarketDataConfig, default_config, validate_config
from klinewatch.scheduler.triggers import DEFAULT_DELAY_MS, Schedule
from klinewatch.services.system_config import SystemConfigService

ConfigSource = Callable[[], Awaitable[MarketDataConfig]]
_FALLBACK_DAYS = {"1m": 7, "3m": 30, "5m": 30, "15m": 30, "30m": 90}


async def default_config_source() -> MarketDataConfig:
    """The seed's default market-data config (validated, as a stored one would be)."""
    return validate_config(default_config()).market_data


def stored_config_source(service: SystemConfigService, *, refresh: bool) -> ConfigSource:
    """The stored config (``service`` already loaded). With ``refresh`` every read first
    checks the row for a newer version (a standalone scheduler); without, whoever owns
    ``service`` keeps it fresh (the API app polls it)."""

    async def source() -> MarketDataConfig:
        if refresh:
            await service.refresh()
        return service.market_data

    return source


def fixed_config_source(config: MarketDataConfig) -> ConfigSource:
    """A source that always answers ``config`` (tests, ``--mode`` overrides)."""

    async def source() -> MarketDataConfig:
        return config

    return source


def schedule_of(config: MarketDataConfig, delay_ms: int = DEFAULT_DELAY_MS) -> Schedule:
    return Schedule(
        mode=config.update_mode,
        every_s=config.update_interval_seconds,
        n_periods=config.n_periods,
        delay_ms=delay_ms,
    )


def history_days(config: MarketDataConfig, interval: Interval) -> int:
    """How far back an update of ``interval`` reaches: the config's own days for its six
    timeframes, else a default by length (a year from 1h up)."""
    days: dict[str, int] = config.historical_data_days.model_dump(by_alias=True)
    if interval.name in days:
        return int(days[interval.name])
    return _FALLBACK_DAYS.get(interval.name, 365)

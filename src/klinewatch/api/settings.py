"""Settings only the HTTP API reads, on top of ``klinewatch.settings.Settings``.

``create_app`` takes any ``Settings``; a plain one gets these fields from the
environment (``KLINEWATCH_API_RATE_LIMIT_PER_MIN``, ...) or their defaults.
"""

from __future__ import annotations

from pydantic import Field

from klinewatch.settings import Settings

DEFAULT_RATE_LIMIT_PER_MIN = 60
DEFAULT_CONFIG_POLL_S = 2.0


class ApiSettings(Settings):
    api_rate_limit_per_min: int = Field(
        default=DEFAULT_RATE_LIMIT_PER_MIN,
        ge=1,
        description="Requests per minute one client (IP) may make to each worker.",
    )
    near_cache_ttl_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a worker keeps its own copy of a value read from Redis "
        "(0: never); another worker's invalidation reaches it within this time.",
    )
    config_poll_s: float = Field(
        default=DEFAULT_CONFIG_POLL_S,
        gt=0,
        description="How often a worker looks for a config change made by another one.",
    )


def api_settings(settings: Settings) -> ApiSettings:
    """The API's view of ``settings``: its own fields from the environment (or their
    defaults), every other one as given."""
    if isinstance(settings, ApiSettings):
        return settings
    return ApiSettings(**settings.model_dump())

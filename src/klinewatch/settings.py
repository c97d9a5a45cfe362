"""Process settings from the environment and ``.env`` (prefix ``KLINEWATCH_``).

Settings are built by the composition roots (CLI, API app, scheduler) and passed down;
nothing builds them at import time, so tests can run many configurations in one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DB_PATH = Path("var") / "klinewatch.sqlite3"


class Settings(BaseSettings):
    """Every knob of klinewatch; secrets are ``SecretStr`` so they never reach a log."""

    model_config = SettingsConfigDict(
        env_prefix="KLINEWATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DB_PATH}",
        description="SQLAlchemy URL: a SQLite file by default, postgresql://... in production.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means the in-process cache."
    )
    cache_prefix: str = Field(
        default="klinewatch:",
        pattern=r"^[A-Za-z0-9_.:\-]*$",
        description="Prefix of every Redis key and channel (deployments may share a Redis); "
        "the API and the scheduler must agree on it to share cached values.",
    )

    binance_spot_url: str = "https://api.binance.com"
    binance_futures_url: str = "https://fapi.binance.com"
    binance_archive_url: str = "https://data.binance.vision"
    okx_url: str = "https://www.okx.com"
    bybit_url: str = "https://api.bybit.com"
    bitget_url: str = "https://api.bitget.com"
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    price_source_url: str = "https://pro-openapi.debank.com"

    binance_proxy: SecretStr | None = Field(default=None, description="HTTP(S) proxy for Binance.")
    okx_proxy: SecretStr | None = None
    bybit_proxy: SecretStr | None = None
    bitget_proxy: SecretStr | None = None

    coingecko_api_key: SecretStr | None = None
    price_source_api_key: SecretStr | None = None
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Tokens accepted in X-API-Token for writes."
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key that encrypts secrets stored in the config."
    )

    quote_assets: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["USDT"])
    weight_safety_margin: float = Field(default=0.8, gt=0.0, le=1.0)
    binance_spot_weight_limit: int = Field(
        default=6000,
        ge=1,
        description="REQUEST_WEIGHT per minute per IP (exchangeInfo may lower it).",
    )
    binance_futures_weight_limit: int = Field(default=2400, ge=1)
    weight_window_s: float = Field(
        default=60.0,
        gt=0.0,
        description="Length of a weight window; change it only to match a "
        "simulator run with --time-scale.",
    )
    archive_enabled: bool = True
    http_timeout_s: float = Field(default=10.0, gt=0.0)
    coingecko_timeout_s: float = Field(default=30.0, gt=0.0)
    coingecko_calls_per_min: int = Field(
        default=50, ge=1, description="CoinGecko's limit; klinewatch paces at 90% of it."
    )
    coingecko_batch_pause_s: float = Field(
        default=1.2, ge=0.0, description="Pause between coins/markets batches of 250 ids."
    )
    market_data_refresh_s: float = Field(
        default=3600.0, gt=0.0, description="How often the scheduler refreshes market cap/FDV."
    )
    price_fresh_s: float = Field(
        default=30.0, gt=0.0, description="A cached price younger than this is served as fresh."
    )
    price_max_stale_s: float = Field(
        default=300.0,
        gt=0.0,
        description="When every price source fails, a price up to this old is served, stale.",
    )
    price_refresh_s: float = Field(
        default=60.0, gt=0.0, description="How often the tracked symbols' prices are refreshed."
    )
    price_timeout_s: float = Field(
        default=3.0, gt=0.0, description="How long one price source may take before the next."
    )
    price_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["BTC", "ETH"],
        description="Symbols the background refresh keeps fresh besides those asked for.",
    )
    log_format: str = Field(default="console", pattern="^(console|json)$")
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("api_tokens", "quote_assets", "price_symbols", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Accept ``a,b,c`` in the environment as well as a JSON list."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)  # a NoDecode field's JSON list
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

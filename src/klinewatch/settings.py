"""Process settings from the environment and ``.env`` (prefix ``KLINEWATCH_``).

Settings are built by the composition roots (CLI, API app, scheduler) and passed down;
nothing builds them at import time, so tests can run many configurations in one process.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    api_tokens: list[SecretStr] = Field(
        default_factory=list, description="Tokens accepted in X-API-Token for writes."
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key that encrypts secrets stored in the config."
    )

    quote_assets: list[str] = Field(default_factory=lambda: ["USDT"])
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
    log_format: str = Field(default="console", pattern="^(console|json)$")
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("api_tokens", "quote_assets", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Accept ``a,b,c`` in the environment as well as a JSON list."""
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

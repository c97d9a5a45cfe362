"""Response models: they document the envelopes in OpenAPI (``/docs``). Bodies are
rendered by the services (cached bytes), so these models describe them exactly and the
contract test (schemathesis) checks every answer against them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from klinewatch.api.errors import JSON

Source = Literal["cache", "database", "api"]


class ErrorInfo(BaseModel):
    code: str = Field(examples=["INVALID_PARAMS"])
    message: str
    details: dict[str, Any] = Field(
        description="Context; ``field`` names the offending parameter for 400s."
    )


class ErrorEnvelope(BaseModel):
    success: Literal[False]
    error: ErrorInfo


class Candle(BaseModel):
    open_time: datetime
    close_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trade_count: int


class KlinesData(BaseModel):
    exchange: str
    market_type: str
    symbol: str
    timeframe: str
    candles: list[Candle] = Field(description="Closed candles, oldest first.")
    data_source: Source
    is_stale: bool = Field(
        description="True when the exchange could not be asked and the stored data lacks "
        "candles it should have by now."
    )
    last_update: datetime


class KlinesEnvelope(BaseModel):
    success: Literal[True]
    data: KlinesData


class IndicatorsData(BaseModel):
    exchange: str
    market_type: str
    symbol: str
    timeframe: str
    open_times: list[datetime] = Field(description="Open time of the candle of each value.")
    indicators: dict[str, dict[str, list[float | None]]] = Field(
        description='Per family, its series: {"MACD": {"macd": [...], "macd_signal": [...]}}; '
        "null where TA-Lib has no value yet (its lookback at the start of the history)."
    )
    params: dict[str, dict[str, Any]]
    data_source: Source
    is_stale: bool
    calculated_at: datetime


class IndicatorsEnvelope(BaseModel):
    success: Literal[True]
    data: IndicatorsData


class TickerData(BaseModel):
    exchange: str
    market_type: str
    symbol: str
    last: float
    bid: float | None
    ask: float | None
    volume_24h: float
    quote_volume_24h: float
    change_24h: float = Field(description="Percent change over 24 hours.")
    high_24h: float
    low_24h: float
    timestamp: datetime
    data_source: Source
    is_stale: bool


class TickerEnvelope(BaseModel):
    success: Literal[True]
    data: TickerData


class SecretState(BaseModel):
    configured: bool
    source: Literal["config", "environment"] | None


class ConfigData(BaseModel):
    market_data: dict[str, Any] = Field(description="Seed 001 section 4.1, validated.")
    volume_trap: dict[str, Any] = Field(
        description="The volume-trap thresholds and phase rules (spec volume-trap.md)."
    )
    secrets: dict[str, SecretState] = Field(description="Never shown in clear.")
    current_exchange: str
    last_updated: datetime


class ConfigEnvelope(BaseModel):
    success: Literal[True]
    data: ConfigData


class ComponentHealth(BaseModel):
    status: Literal["healthy", "unhealthy"]
    error: str | None = None
    model_config = {"extra": "allow"}


class MarketHealth(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    current_exchange: str
    components: dict[str, ComponentHealth]


class MarketHealthEnvelope(BaseModel):
    success: bool
    data: MarketHealth


def responses(*statuses: int, ok: type[BaseModel] | None = None) -> dict[int | str, Any]:
    """The ``responses=`` of a route: its success model and the error envelopes."""
    out: dict[int | str, Any] = {}
    if ok is not None:
        out[200] = {"model": ok, "content": {JSON: {}}}
    for status in (*statuses, 429, 500):
        out[status] = {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]}
    return out


_DESCRIPTIONS = {
    400: "INVALID_PARAMS or INVALID_CONFIG, naming the field",
    401: "UNAUTHORIZED: no or wrong X-API-Token",
    404: "DATA_NOT_AVAILABLE",
    429: "RATE_LIMITED (this client, or the exchange with nothing fresh enough stored)",
    500: "INTERNAL_ERROR (no trace is ever returned)",
    503: "EXCHANGE_UNAVAILABLE, NETWORK_ERROR or DATABASE_UNAVAILABLE",
}

"""The volume-trap thresholds: one frozen, validated model that the system config holds.

Every number of the volume-trap spec (``shared/spec/volume-trap.md``) is a field here
with the spec's default, so no threshold is a literal buried in a detector.
``from_mapping`` is the one way in from stored or user-sent JSON and names the offending
field, so the settings page can point at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core.core_schema import ValidationInfo

from klinewatch.errors import InvalidInput


class Detector(StrEnum):
    """The eight detectors, named as they appear in config and stored snapshots."""

    RVOL = "rvol"
    AMPLITUDE = "amplitude"
    VOLUME_RETENTION = "volume_retention"
    KEY_LEVEL_BREACH = "key_level_breach"
    PRICE_EFFICIENCY = "price_efficiency"
    MA_CROSS = "ma_cross"
    OBV_DIVERGENCE = "obv_divergence"
    ATR_COMPRESSION = "atr_compression"


class Phase(StrEnum):
    DISCOVERY = "discovery"
    CONFIRMATION = "confirmation"
    VALIDATION = "validation"


# Discovery runs over every candle of a history at once, so it may only use the
# detectors that have a vectorised form and need no trigger candle.
DISCOVERY_DETECTORS = frozenset({Detector.RVOL, Detector.AMPLITUDE})


class PhaseRule(BaseModel):
    """A phase passes when every ``all_of`` detector passes and, if ``any_of`` is not
    empty, at least one of those does."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    all_of: tuple[Detector, ...] = ()
    any_of: tuple[Detector, ...] = ()

    @field_validator("all_of", "any_of")
    @classmethod
    def _no_repeats(cls, value: tuple[Detector, ...]) -> tuple[Detector, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a detector is listed twice")
        return value

    @field_validator("any_of")
    @classmethod
    def _disjoint_and_not_empty(
        cls, value: tuple[Detector, ...], info: ValidationInfo
    ) -> tuple[Detector, ...]:
        all_of: tuple[Detector, ...] = info.data.get("all_of", ())
        if set(value) & set(all_of):
            raise ValueError("a detector is in both all_of and any_of")
        if not value and not all_of:
            raise ValueError("a phase needs at least one detector")
        return value

    def detectors(self) -> tuple[Detector, ...]:
        return self.all_of + self.any_of


def _int(default: int, minimum: int) -> Any:
    return Field(default=default, ge=minimum, strict=True)


def _positive(default: float) -> Any:
    return Field(default=default, gt=0)


class VolumeTrapParams(BaseModel):
    """Thresholds and windows of the eight detectors, the phase rules and the expiry.

    Windows count candles. ``atr_window`` is not in the spec: Wilder's ATR is recursive,
    so its value depends on where the computation starts; ATR at candle i is therefore
    computed over the ``atr_window`` candles ending at i (the seed keeps under 0.2 %
    weight after 100), which makes it a function of those candles only.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, validate_default=True
    )

    rvol_window: int = _int(20, 1)
    rvol_min: float = _positive(8.0)
    amplitude_window: int = _int(20, 1)
    amplitude_min_pct: float = Field(default=10.0, ge=0)
    amplitude_ratio_min: float = _positive(3.0)
    retention_min_candles: int = _int(3, 1)
    retention_max: float = _positive(0.15)
    breach_min_pct: float = Field(default=1.0, ge=0)
    efficiency_max: float = Field(default=0.3, ge=0, le=1)
    ma_fast: int = _int(7, 1)
    ma_slow: int = _int(25, 2)
    obv_window: int = _int(20, 3)
    obv_price_slope_min: float = -0.1
    atr_period: int = _int(14, 1)
    atr_window: int = _int(100, 2)
    atr_ratio_max: float = _positive(0.5)
    expiry_candles: int = _int(60, 1)
    discovery: PhaseRule = Field(
        default=PhaseRule(all_of=(Detector.RVOL, Detector.AMPLITUDE)), strict=False
    )
    confirmation: PhaseRule = Field(
        default=PhaseRule(
            all_of=(Detector.VOLUME_RETENTION, Detector.KEY_LEVEL_BREACH),
            any_of=(Detector.PRICE_EFFICIENCY,),
        ),
        strict=False,
    )
    validation: PhaseRule = Field(
        default=PhaseRule(
            all_of=(Detector.MA_CROSS,),
            any_of=(Detector.OBV_DIVERGENCE, Detector.ATR_COMPRESSION),
        ),
        strict=False,
    )

    @field_validator("ma_slow")
    @classmethod
    def _slow_after_fast(cls, value: int, info: ValidationInfo) -> int:
        if value <= info.data.get("ma_fast", 0):
            raise ValueError("ma_slow must be longer than ma_fast")
        return value

    @field_validator("atr_window")
    @classmethod
    def _window_holds_a_period(cls, value: int, info: ValidationInfo) -> int:
        if value <= info.data.get("atr_period", 0):
            raise ValueError("atr_window must be longer than atr_period")
        return value

    @field_validator("discovery")
    @classmethod
    def _discovery_is_vectorised(cls, value: PhaseRule) -> PhaseRule:
        extra = set(value.detectors()) - DISCOVERY_DETECTORS
        if extra:
            names = ", ".join(sorted(extra))
            raise ValueError(f"discovery may use only rvol and amplitude, not {names}")
        return value

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Self:
        """Validate stored or user-sent values; missing keys take the defaults."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "volume_trap"
            raise InvalidInput(f"{field}: {first['msg']}", field=field) from e

    def to_mapping(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def rule(self, phase: Phase) -> PhaseRule:
        return {
            Phase.DISCOVERY: self.discovery,
            Phase.CONFIRMATION: self.confirmation,
            Phase.VALIDATION: self.validation,
        }[phase]

    def lookback_candles(self) -> int:
        """Candles a scan needs before the trigger (and before the first candle it
        evaluates) so that every indicator sees its full window."""
        return max(
            self.rvol_window,
            self.amplitude_window,
            self.ma_slow,
            self.obv_window,
            self.atr_window,
        )

    def max_monitor_candles(self) -> int:
        """The longest a monitor can stay active after its trigger: two phases, each
        expiring after ``expiry_candles`` without a transition."""
        return 2 * self.expiry_candles

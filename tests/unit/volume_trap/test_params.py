"""The thresholds as config: the spec's defaults, validation that names the bad field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from klinewatch.domain.volume_trap.params import Detector, Phase, PhaseRule, VolumeTrapParams
from klinewatch.errors import InvalidInput


def test_defaults_are_the_spec_table() -> None:
    p = VolumeTrapParams()
    assert (p.rvol_window, p.rvol_min) == (20, 8.0)
    assert (p.amplitude_min_pct, p.amplitude_ratio_min, p.amplitude_window) == (10.0, 3.0, 20)
    assert (p.retention_max, p.retention_min_candles) == (0.15, 3)
    assert (p.breach_min_pct, p.efficiency_max) == (1.0, 0.3)
    assert (p.ma_fast, p.ma_slow, p.obv_window, p.obv_price_slope_min) == (7, 25, 20, -0.1)
    assert (p.atr_period, p.atr_ratio_max, p.expiry_candles) == (14, 0.5, 60)
    assert p.rule(Phase.DISCOVERY) == PhaseRule(all_of=(Detector.RVOL, Detector.AMPLITUDE))
    assert p.confirmation.all_of == (Detector.VOLUME_RETENTION, Detector.KEY_LEVEL_BREACH)
    assert p.confirmation.any_of == (Detector.PRICE_EFFICIENCY,)
    assert p.validation.all_of == (Detector.MA_CROSS,)
    assert p.validation.any_of == (Detector.OBV_DIVERGENCE, Detector.ATR_COMPRESSION)


def test_a_stored_mapping_round_trips_and_missing_keys_take_defaults() -> None:
    p = VolumeTrapParams.from_mapping(
        {"rvol_min": 6, "confirmation": {"all_of": ["volume_retention"], "any_of": []}}
    )
    assert p.rvol_min == 6.0
    assert p.confirmation.all_of == (Detector.VOLUME_RETENTION,)
    assert p.expiry_candles == 60
    assert VolumeTrapParams.from_mapping(p.to_mapping()) == p


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rvol_min": 0}, "rvol_min"),
        ({"rvol_min": "8"}, "rvol_min"),
        ({"rvol_min": float("inf")}, "rvol_min"),
        ({"rvol_window": 2.5}, "rvol_window"),
        ({"expiry_candles": True}, "expiry_candles"),
        ({"efficiency_max": 1.5}, "efficiency_max"),
        ({"ma_fast": 30}, "ma_slow"),
        ({"atr_window": 14}, "atr_window"),
        ({"surprise": 1}, "surprise"),
        ({"validation": {"all_of": ["ma_cross", "ma_cross"]}}, "validation.all_of"),
        ({"validation": {"all_of": ["nope"]}}, "validation.all_of.0"),
        ({"validation": {"all_of": ["ma_cross"], "any_of": ["ma_cross"]}}, "validation.any_of"),
        ({"confirmation": {"all_of": [], "any_of": []}}, "confirmation.any_of"),
        ({"confirmation": {"all_of": []}}, "confirmation.any_of"),
        ({"discovery": {"all_of": ["rvol", "ma_cross"]}}, "discovery"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        VolumeTrapParams.from_mapping(data)
    assert err.value.field == field
    assert err.value.code == "INVALID_PARAMS"


def test_params_are_frozen() -> None:
    p = VolumeTrapParams()
    with pytest.raises(ValidationError):
        p.rvol_min = 1.0  # type: ignore[misc]


def test_the_lookback_covers_every_window() -> None:
    p = VolumeTrapParams(atr_window=30, ma_slow=40, obv_window=50)
    assert p.lookback_candles() == 50
    assert p.max_monitor_candles() == 2 * p.expiry_candles

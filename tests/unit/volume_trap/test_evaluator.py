"""The condition evaluator: all_of / any_of per phase, short data, the vectorised rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klinewatch.domain.volume_trap import detectors as d
from klinewatch.domain.volume_trap.evaluator import (
    Board,
    Outcome,
    Unavailable,
    discovery_mask,
    evaluate,
    snapshot_record,
)
from klinewatch.domain.volume_trap.params import Detector, Phase, PhaseRule, VolumeTrapParams
from tests.unit.volume_trap.factory import Build, random_candles

A, B, C, D = (
    Detector.VOLUME_RETENTION,
    Detector.KEY_LEVEL_BREACH,
    Detector.PRICE_EFFICIENCY,
    Detector.MA_CROSS,
)
RULE = PhaseRule(all_of=(A, B), any_of=(C, D))


def results(**passed: bool | None) -> dict[Detector, Outcome]:
    """True/False: a result that passed or failed; None: unavailable."""
    out: dict[Detector, Outcome] = {}
    for name, ok in passed.items():
        detector = Detector(name)
        out[detector] = (
            Unavailable("too short")
            if ok is None
            else d.ObvResult(passed=ok, obv_slope=0.0, price_slope=0.0)
        )
    return out


@pytest.mark.parametrize(
    ("a", "b", "c", "dd", "expected"),
    [
        (True, True, True, False, True),
        (True, True, False, True, True),
        (True, True, False, False, False),
        (True, False, True, True, False),
        (False, True, True, True, False),
        (True, True, None, True, True),
        (True, None, True, True, False),
        (True, True, None, None, False),
    ],
)
def test_all_of_every_one_and_any_of_at_least_one(
    a: bool, b: bool | None, c: bool | None, dd: bool | None, expected: bool
) -> None:
    given_ = results(volume_retention=a, key_level_breach=b, price_efficiency=c, ma_cross=dd)
    decision = evaluate(Phase.CONFIRMATION, RULE, given_.__getitem__)
    assert decision.passed is expected


def test_an_empty_any_of_leaves_the_decision_to_all_of() -> None:
    rule = PhaseRule(all_of=(A,))
    given_ = results(volume_retention=True)
    assert evaluate(Phase.CONFIRMATION, rule, given_.__getitem__).passed


def test_a_failed_all_of_stops_asking_and_the_reason_says_what_failed() -> None:
    asked: list[Detector] = []
    given_ = results(volume_retention=False, key_level_breach=True)

    def outcome(detector: Detector) -> Outcome:
        asked.append(detector)
        return given_[detector]

    decision = evaluate(Phase.CONFIRMATION, RULE, outcome)
    assert asked == [A]
    assert decision.reason() == "confirmation not met: volume_retention failed"


def test_unavailable_data_is_named_in_the_reason_not_hidden() -> None:
    given_ = results(volume_retention=True, key_level_breach=None)
    reason = evaluate(Phase.CONFIRMATION, RULE, given_.__getitem__).reason()
    assert "key_level_breach unavailable (too short)" in reason


def test_board_reports_short_data_per_detector_and_runs_each_once() -> None:
    c = Build().flat(25).candle(100, 120, 100, 118, 2000).candles()
    board = Board(c, 25, 25, VolumeTrapParams())
    snap = board.snapshot()
    assert set(snap) == set(Detector)
    assert snap[Detector.RVOL].passed
    retention = snap[Detector.VOLUME_RETENTION]
    assert isinstance(retention, Unavailable)
    assert "3 candles after the trigger" in retention.reason
    assert board.outcome(Detector.RVOL) is snap[Detector.RVOL]


def test_the_discovery_rule_from_config_drives_the_vectorised_mask() -> None:
    wide_not_loud = Build().flat(20).candle(100, 120, 100, 110, 100).candles()
    both = VolumeTrapParams()
    either = VolumeTrapParams(discovery=PhaseRule(any_of=(Detector.RVOL, Detector.AMPLITUDE)))
    assert not discovery_mask(wide_not_loud, both)[20]
    assert discovery_mask(wide_not_loud, either)[20]
    assert not discovery_mask(wide_not_loud, either)[:20].any()  # no baseline yet


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rvol_min=st.sampled_from([2.0, 4.0, 8.0]))
def test_the_mask_equals_the_per_candle_decision_everywhere(seed: int, rvol_min: float) -> None:
    c = random_candles(seed, 150)
    p = VolumeTrapParams(rvol_min=rvol_min, amplitude_ratio_min=1.5, amplitude_min_pct=2.0)
    mask = discovery_mask(c, p)
    for t in range(len(c)):
        board = Board(c, t, t, p)
        assert mask[t] == evaluate(Phase.DISCOVERY, p.discovery, board.outcome).passed


def test_snapshot_record_is_json_safe() -> None:
    snap: dict[Detector, Outcome] = {
        Detector.RVOL: d.RvolResult(passed=True, volume=5.0, baseline=0.0, ratio=math.inf),
        Detector.MA_CROSS: Unavailable("ma_cross needs 1 candles after the trigger, has 0"),
    }
    record = snapshot_record(snap)
    assert record["rvol"] == {"passed": True, "volume": 5.0, "baseline": 0.0, "ratio": None}
    assert record["ma_cross"]["passed"] is False
    assert np.isfinite([v for v in record["rvol"].values() if isinstance(v, float)]).all()

"""The condition evaluator: detector results to a decision per phase.

A phase passes when every ``all_of`` detector passes and, if ``any_of`` is not empty, at
least one of those does. A detector that lacks data is recorded as ``Unavailable`` with
its reason and counts as not passed: the decision says so rather than guessing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from klinewatch.domain.candles import Candles
from klinewatch.domain.volume_trap import detectors as d
from klinewatch.domain.volume_trap.params import Detector, Phase, PhaseRule, VolumeTrapParams


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A detector that could not run (``DataInsufficient``): why, in its words."""

    reason: str

    @property
    def passed(self) -> bool:
        return False

    def values(self) -> dict[str, d.Value | str]:
        return {"passed": False, "unavailable": self.reason}


Outcome = d.DetectorResult | Unavailable
Snapshot = Mapping[Detector, Outcome]

_RUN: dict[Detector, Callable[[Candles, int, int, VolumeTrapParams], d.DetectorResult]] = {
    Detector.RVOL: lambda c, k, t, p: d.rvol(c, t, p),
    Detector.AMPLITUDE: lambda c, k, t, p: d.amplitude(c, t, p),
    Detector.VOLUME_RETENTION: d.volume_retention,
    Detector.KEY_LEVEL_BREACH: d.key_level_breach,
    Detector.PRICE_EFFICIENCY: d.price_efficiency,
    Detector.MA_CROSS: d.ma_cross,
    Detector.OBV_DIVERGENCE: lambda c, k, t, p: d.obv_divergence(c, t, p),
    Detector.ATR_COMPRESSION: d.atr_compression,
}


@dataclass(slots=True)
class Board:
    """The detectors at one candle ``t`` of a monitor triggered at ``k``, each run at
    most once and only when asked: a phase asks for its own detectors, a transition's
    snapshot for all eight."""

    candles: Candles
    k: int
    t: int
    params: VolumeTrapParams
    _seen: dict[Detector, Outcome] = field(default_factory=dict, init=False, repr=False)

    def outcome(self, detector: Detector) -> Outcome:
        found = self._seen.get(detector)
        if found is None:
            try:
                found = _RUN[detector](self.candles, self.k, self.t, self.params)
            except d.DataInsufficient as e:
                found = Unavailable(e.message)
            self._seen[detector] = found
        return found

    def snapshot(self) -> dict[Detector, Outcome]:
        return {detector: self.outcome(detector) for detector in Detector}


@dataclass(frozen=True, slots=True)
class Decision:
    """A phase's verdict and the outcomes it rests on."""

    phase: Phase
    passed: bool
    outcomes: Mapping[Detector, Outcome]

    def reason(self) -> str:
        """One line for the transition record, e.g. ``confirmation passed: ...``."""
        parts = []
        for detector, outcome in self.outcomes.items():
            if isinstance(outcome, Unavailable):
                parts.append(f"{detector} unavailable ({outcome.reason})")
            else:
                parts.append(f"{detector} {'passed' if outcome.passed else 'failed'}")
        verdict = "passed" if self.passed else "not met"
        return f"{self.phase} {verdict}: {', '.join(parts)}"


def evaluate(phase: Phase, rule: PhaseRule, outcome: Callable[[Detector], Outcome]) -> Decision:
    """Apply ``rule``; ``outcome`` supplies a detector's result (e.g. ``Board.outcome``).

    Stops asking at the first failed ``all_of`` detector, so a phase that fails early
    costs one detector.
    """
    seen: dict[Detector, Outcome] = {}
    for detector in rule.all_of:
        seen[detector] = outcome(detector)
        if not seen[detector].passed:
            return Decision(phase, False, seen)
    if not rule.any_of:
        return Decision(phase, True, seen)
    for detector in rule.any_of:
        seen[detector] = outcome(detector)
    passed = any(seen[detector].passed for detector in rule.any_of)
    return Decision(phase, passed, seen)


def discovery_mask(candles: Candles, params: VolumeTrapParams) -> d.Mask:
    """The discovery rule for every candle at once (False where data is short).

    Uses the same kernels and threshold functions as ``detectors.rvol`` and
    ``detectors.amplitude``, so ``mask[t]`` equals the one-candle decision bit for bit.
    """
    c = candles
    _, ratio = d.rvol_series(c.volume, params.rvol_window)
    amp, _, amp_ratio = d.amplitude_series(c.open, c.high, c.low, params.amplitude_window)
    masks = {
        Detector.RVOL: d.rvol_passes(ratio, params),
        Detector.AMPLITUDE: d.amplitude_passes(amp, amp_ratio, params),
    }
    rule = params.discovery
    result = np.ones(len(c), dtype=np.bool_)
    for detector in rule.all_of:
        result &= masks[detector]
    if rule.any_of:
        anyone = np.zeros(len(c), dtype=np.bool_)
        for detector in rule.any_of:
            anyone |= masks[detector]
        result &= anyone
    return result


def snapshot_record(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """The snapshot as JSON-safe data: detector name to its values; infinities and NaN
    (a zero baseline) become ``None`` because JSON has no such numbers."""
    return {
        str(detector): {
            name: None if isinstance(v, float) and not math.isfinite(v) else v
            for name, v in outcome.values().items()
        }
        for detector, outcome in snapshot.items()
    }

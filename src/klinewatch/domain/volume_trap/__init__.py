"""The volume-trap monitor's pure core (spec: shared/spec/volume-trap.md).

    params      VolumeTrapParams: every threshold, the phase rules, ``from_mapping``
    detectors   the eight detectors, one candle at a time and (RVOL, amplitude) vectorised
    evaluator   all_of / any_of rules to a Decision; Board runs detectors lazily
    lifecycle   Status, Event, the transition table, next_state, invalidation, expiry
    scan        advance(): a series' candles and state in, the steps to persist out

Errors: ``DataInsufficient`` (ERR_DATA_INSUFFICIENT) and ``InvalidTransition``
(ERR_INVALID_TRANSITION), both ``InvalidInput``.
"""

from klinewatch.domain.volume_trap.detectors import DataInsufficient, DetectorResult
from klinewatch.domain.volume_trap.evaluator import (
    Board,
    Decision,
    Outcome,
    Snapshot,
    Unavailable,
    discovery_mask,
    evaluate,
    snapshot_record,
)
from klinewatch.domain.volume_trap.lifecycle import (
    TRANSITIONS,
    Event,
    InvalidTransition,
    Monitor,
    Status,
    next_state,
)
from klinewatch.domain.volume_trap.params import Detector, Phase, PhaseRule, VolumeTrapParams
from klinewatch.domain.volume_trap.scan import (
    LaterBurst,
    ScanResult,
    SeriesState,
    Step,
    Transition,
    advance,
    history_before_cursor,
)

__all__ = [
    "TRANSITIONS",
    "Board",
    "DataInsufficient",
    "Decision",
    "Detector",
    "DetectorResult",
    "Event",
    "InvalidTransition",
    "LaterBurst",
    "Monitor",
    "Outcome",
    "Phase",
    "PhaseRule",
    "ScanResult",
    "SeriesState",
    "Snapshot",
    "Status",
    "Step",
    "Transition",
    "Unavailable",
    "VolumeTrapParams",
    "advance",
    "discovery_mask",
    "evaluate",
    "history_before_cursor",
    "next_state",
    "snapshot_record",
]

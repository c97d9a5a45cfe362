"""A monitor's life: the state machine as an explicit table, invalidation and expiry.

    (none) --discover--> pending --confirm--> suspected_abandonment --validate--> confirmed
                          |     |                     |     |
                    invalidate  expire          invalidate  expire
                          v     v                     v     v
                  invalidated  expired        invalidated  expired

``confirmed_abandonment``, ``invalidated`` and ``expired`` are final: nothing leaves
them. Any pair not in ``TRANSITIONS`` is refused with ``InvalidTransition``, so a bug or
a hand-edited row cannot move a monitor somewhere the spec does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from klinewatch.domain.candles import Candles
from klinewatch.errors import InvalidInput


class Status(StrEnum):
    PENDING = "pending"
    SUSPECTED_ABANDONMENT = "suspected_abandonment"
    CONFIRMED_ABANDONMENT = "confirmed_abandonment"
    INVALIDATED = "invalidated"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL


class Event(StrEnum):
    DISCOVER = "discover"
    CONFIRM = "confirm"
    VALIDATE = "validate"
    INVALIDATE = "invalidate"
    EXPIRE = "expire"


FINAL: Final = frozenset({Status.CONFIRMED_ABANDONMENT, Status.INVALIDATED, Status.EXPIRED})
ACTIVE: Final = frozenset({Status.PENDING, Status.SUSPECTED_ABANDONMENT})

TRANSITIONS: Final = MappingProxyType(
    {
        (None, Event.DISCOVER): Status.PENDING,
        (Status.PENDING, Event.CONFIRM): Status.SUSPECTED_ABANDONMENT,
        (Status.PENDING, Event.INVALIDATE): Status.INVALIDATED,
        (Status.PENDING, Event.EXPIRE): Status.EXPIRED,
        (Status.SUSPECTED_ABANDONMENT, Event.VALIDATE): Status.CONFIRMED_ABANDONMENT,
        (Status.SUSPECTED_ABANDONMENT, Event.INVALIDATE): Status.INVALIDATED,
        (Status.SUSPECTED_ABANDONMENT, Event.EXPIRE): Status.EXPIRED,
    }
)


class InvalidTransition(InvalidInput):
    """A move the state table does not allow (from a final state, or skipping a phase)."""

    code = "ERR_INVALID_TRANSITION"


def next_state(current: Status | None, event: Event) -> Status:
    """The state ``event`` leads to from ``current`` (``None``: no monitor yet)."""
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise InvalidTransition(
            f"{event} is not allowed from {current or 'no monitor'}",
            field="status",
            current=None if current is None else str(current),
            event=str(event),
        ) from None


def is_invalidated(candles: Candles, k: int, t: int) -> bool:
    """The move continued: a close above the trigger's high means it was not a trap."""
    return bool(candles.close[t] > candles.high[k])


def is_expired(candles_since_last_transition: int, expiry_candles: int) -> bool:
    """No transition within ``expiry_candles`` candles of the last one. The scan asks
    after the phase rule, so a transition on exactly that candle still counts."""
    return candles_since_last_transition >= expiry_candles


@dataclass(frozen=True, slots=True)
class Monitor:
    """One burst followed through the phases: the row the service stores.

    Candles are referred to by open time, never by index, because a live scan and a
    replay hold arrays that start at different candles.
    """

    status: Status
    trigger_open_time_ms: int
    trigger_open: float
    trigger_high: float
    trigger_low: float
    trigger_close: float
    trigger_volume: float
    key_level: float
    rvol: float
    amplitude_pct: float
    drawdown_pct: float
    last_transition_open_time_ms: int
    last_evaluated_open_time_ms: int
    later_bursts: tuple[int, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

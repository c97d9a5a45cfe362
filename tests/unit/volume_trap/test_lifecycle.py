"""The state table pair by pair, invalidation and expiry at their boundaries."""

from __future__ import annotations

import itertools

import pytest

from klinewatch.domain.volume_trap.lifecycle import (
    ACTIVE,
    FINAL,
    TRANSITIONS,
    Event,
    InvalidTransition,
    Status,
    is_expired,
    is_invalidated,
    next_state,
)
from klinewatch.errors import InvalidInput
from tests.unit.volume_trap.factory import Build

FROM: list[Status | None] = [None, *Status]
ALLOWED = {
    (None, Event.DISCOVER): Status.PENDING,
    (Status.PENDING, Event.CONFIRM): Status.SUSPECTED_ABANDONMENT,
    (Status.PENDING, Event.INVALIDATE): Status.INVALIDATED,
    (Status.PENDING, Event.EXPIRE): Status.EXPIRED,
    (Status.SUSPECTED_ABANDONMENT, Event.VALIDATE): Status.CONFIRMED_ABANDONMENT,
    (Status.SUSPECTED_ABANDONMENT, Event.INVALIDATE): Status.INVALIDATED,
    (Status.SUSPECTED_ABANDONMENT, Event.EXPIRE): Status.EXPIRED,
}


def test_the_table_is_exactly_the_specs() -> None:
    assert dict(TRANSITIONS) == ALLOWED


@pytest.mark.parametrize(("pair", "target"), list(ALLOWED.items()), ids=str)
def test_each_allowed_transition(pair: tuple[Status | None, Event], target: Status) -> None:
    assert next_state(*pair) is target


REFUSED = [pair for pair in itertools.product(FROM, Event) if pair not in ALLOWED]


@pytest.mark.parametrize("pair", REFUSED, ids=str)
def test_every_other_pair_is_refused(pair: tuple[Status | None, Event]) -> None:
    with pytest.raises(InvalidTransition) as err:
        next_state(*pair)
    assert err.value.code == "ERR_INVALID_TRANSITION"
    assert isinstance(err.value, InvalidInput)


def test_every_state_refuses_something_and_finals_refuse_everything() -> None:
    assert {state for state, _ in REFUSED} == set(FROM)
    for state in FINAL:
        assert state.is_final
        assert all((state, event) in REFUSED for event in Event)
    assert set(Status) == ACTIVE | FINAL
    assert not ACTIVE & FINAL


def test_skipping_a_phase_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="validate is not allowed from pending"):
        next_state(Status.PENDING, Event.VALIDATE)


def test_invalidated_only_by_a_close_strictly_above_the_trigger_high() -> None:
    c = Build().candle(100, 110, 90, 105, 1).closes([110.0, 110.01]).candles()
    assert not is_invalidated(c, 0, 1)  # at the high: still a possible trap
    assert is_invalidated(c, 0, 2)


def test_expired_after_exactly_the_configured_candles_without_a_transition() -> None:
    assert not is_expired(59, 60)
    assert is_expired(60, 60)

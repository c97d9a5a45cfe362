"""CoinGecko's call pacer with time injected: a ``FixedClock`` and a sleep that only
moves it, so every wait is exact and nothing sleeps for real."""

from __future__ import annotations

import asyncio

from klinewatch.clock import FixedClock
from klinewatch.exchanges.coingecko import CallPacer

T0 = 1_700_000_012_345  # deliberately not a minute boundary
MINUTE = 60_000


class Time:
    def __init__(self) -> None:
        self.clock = FixedClock(T0)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(round(seconds * 1000))


def sent_times(pacer: CallPacer, time: Time, calls: int) -> list[int]:
    async def run() -> list[int]:
        times = []
        for _ in range(calls):
            await pacer.acquire()
            times.append(time.clock.now_ms())
        return times

    return asyncio.run(run())


def test_calls_go_at_once_while_the_window_has_room() -> None:
    time = Time()
    pacer = CallPacer(calls=45, clock=time.clock, sleep=time.sleep)
    assert sent_times(pacer, time, 45) == [T0] * 45
    assert time.sleeps == []


def test_no_sixty_seconds_ever_hold_more_than_the_allowed_calls() -> None:
    time = Time()
    pacer = CallPacer(calls=45, clock=time.clock, sleep=time.sleep)
    times = sent_times(pacer, time, 200)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + MINUTE) <= 45
    # and any clock-aligned minute (CoinGecko's window, whatever its phase) holds fewer
    for phase in range(0, MINUTE, 7_919):
        per_window: dict[int, int] = {}
        for t in times:
            per_window[(t + phase) // MINUTE] = per_window.get((t + phase) // MINUTE, 0) + 1
        assert max(per_window.values()) <= 45


def test_the_46th_call_waits_for_the_first_to_leave_the_window() -> None:
    time = Time()
    pacer = CallPacer(calls=45, clock=time.clock, sleep=time.sleep)
    times = sent_times(pacer, time, 46)
    assert times[-1] == T0 + MINUTE + 1


def test_a_429_pause_holds_every_caller_until_retry_after_has_passed() -> None:
    time = Time()
    pacer = CallPacer(calls=45, clock=time.clock, sleep=time.sleep)
    sent_times(pacer, time, 1)
    pacer.pause(7.5)
    assert sent_times(pacer, time, 1) == [T0 + 7_500]


def test_a_shorter_window_matches_a_time_scaled_simulator() -> None:
    time = Time()
    pacer = CallPacer(calls=3, window_s=1.2, clock=time.clock, sleep=time.sleep)
    times = sent_times(pacer, time, 7)
    assert times == [T0] * 3 + [T0 + 1_201] * 3 + [T0 + 2_402]

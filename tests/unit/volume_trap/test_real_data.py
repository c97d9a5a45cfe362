"""The whole pipeline over recorded Binance candles (data/sample): what it finds must
follow from the spec's formulas, and a live run must agree with the replay."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from klinewatch.domain.candles import Candles
from klinewatch.domain.volume_trap import (
    Detector,
    Event,
    LaterBurst,
    ScanResult,
    Status,
    Transition,
    VolumeTrapParams,
    next_state,
)
from klinewatch.sim.store import SeriesStore
from tests.unit.volume_trap.factory import ref_amplitude, ref_rvol
from tests.unit.volume_trap.test_scan import live, replay

P = VolumeTrapParams()
SERIES = [("spot", "OMUSDT"), ("futures", "SPACEUSDT"), ("futures", "RIVERUSDT")]


@pytest.fixture(scope="module")
def store(sample_dir: Path) -> SeriesStore:
    return SeriesStore(sample_dir)


@pytest.fixture(scope="module")
def runs(store: SeriesStore) -> dict[str, tuple[Candles, ScanResult]]:
    out = {}
    for market, symbol in SERIES:
        c = store.get("binance", market, symbol, "1h")
        out[symbol] = (c, replay(c))
    return out


def day(open_time_ms: int) -> date:
    return datetime.fromtimestamp(open_time_ms / 1000, UTC).date()


def reference_bursts(c: Candles) -> set[int]:
    """Open times where the spec's discovery formulas hold, computed plainly."""
    v = c.volume.tolist()
    amps = [ref_amplitude(c, i) for i in range(len(c))]
    found = set()
    for t in range(20, len(c)):
        baseline = statistics.fmean(amps[t - 20 : t])
        if ref_rvol(v, t) >= 8 and amps[t] >= 10 and amps[t] / baseline >= 3:
            found.add(int(c.open_time_ms[t]))
    return found


@pytest.mark.parametrize("symbol", [s for _, s in SERIES])
def test_every_burst_is_a_discovery_or_a_later_burst_and_nothing_else(
    runs: dict[str, tuple[Candles, ScanResult]], symbol: str
) -> None:
    c, r = runs[symbol]
    seen = {
        s.open_time_ms
        for s in r.steps
        if isinstance(s, LaterBurst) or (isinstance(s, Transition) and s.event is Event.DISCOVER)
    }
    assert seen == reference_bursts(c)


@pytest.mark.parametrize("symbol", [s for _, s in SERIES])
def test_every_transition_is_justified_by_its_snapshot(
    runs: dict[str, tuple[Candles, ScanResult]], symbol: str
) -> None:
    c, r = runs[symbol]
    index = {int(t): i for i, t in enumerate(c.open_time_ms)}
    history: dict[int, list[Transition]] = defaultdict(list)
    for s in r.steps:
        if isinstance(s, Transition):
            history[s.monitor.trigger_open_time_ms].append(s)
    for trigger, moves in history.items():
        status: Status | None = None
        last = index[trigger]
        for move in moves:
            assert next_state(status, move.event) is move.to_status
            snap, t = move.snapshot, index[move.open_time_ms]
            if move.event is Event.CONFIRM:
                assert snap[Detector.VOLUME_RETENTION].passed
                assert snap[Detector.KEY_LEVEL_BREACH].passed
                assert snap[Detector.PRICE_EFFICIENCY].passed
            elif move.event is Event.VALIDATE:
                assert snap[Detector.MA_CROSS].passed
                assert snap[Detector.OBV_DIVERGENCE].passed or snap[Detector.ATR_COMPRESSION].passed
            elif move.event is Event.INVALIDATE:
                assert c.close[t] > move.monitor.trigger_high
            elif move.event is Event.EXPIRE:
                assert t - last == P.expiry_candles
            status, last = move.to_status, t
        assert moves[0].event is Event.DISCOVER


def test_omusdt_crash_of_2025_04_13_is_discovered_and_expires_without_abandonment(
    runs: dict[str, tuple[Candles, ScanResult]],
) -> None:
    """OM fell about 90 % within hours. The crash candle is the burst; volume stayed far
    above 15 % of it for days, so retention never passes, the monitor never reaches
    suspected, and it expires 60 candles later: a crash is not an abandoned trap."""
    c, r = runs["OMUSDT"]
    index = {int(t): i for i, t in enumerate(c.open_time_ms)}
    crash_day = date(2025, 4, 13)
    moves = [
        s
        for s in r.steps
        if isinstance(s, Transition) and day(s.monitor.trigger_open_time_ms) == crash_day
    ]
    assert [m.to_status for m in moves] == [Status.PENDING, Status.EXPIRED]
    k = index[moves[0].open_time_ms]
    assert c.close[k] < c.open[k] / 2  # the trigger is the crash candle itself
    assert ref_rvol(c.volume.tolist(), k) >= 8
    assert index[moves[1].open_time_ms] - k == P.expiry_candles
    assert not moves[1].snapshot[Detector.VOLUME_RETENTION].passed
    laters = [s for s in r.steps if isinstance(s, LaterBurst) and day(s.open_time_ms) == crash_day]
    assert laters
    assert moves[1].monitor.later_bursts == tuple(s.open_time_ms for s in laters)


def test_some_omusdt_bursts_do_end_in_confirmed_abandonment(
    runs: dict[str, tuple[Candles, ScanResult]],
) -> None:
    _, r = runs["OMUSDT"]
    ends = {s.to_status for s in r.steps if isinstance(s, Transition) and s.to_status.is_final}
    assert ends == {Status.CONFIRMED_ABANDONMENT, Status.INVALIDATED, Status.EXPIRED}


def test_spaceusdt_hourly_never_reaches_rvol_eight_so_nothing_opens(
    runs: dict[str, tuple[Candles, ScanResult]],
) -> None:
    """Its violent moves came in the first hours after listing, before any 20-candle
    baseline exists; afterwards no hour had 8x its prior volume."""
    c, r = runs["SPACEUSDT"]
    v = c.volume.tolist()
    assert max(ref_rvol(v, t) for t in range(20, len(c))) < P.rvol_min
    assert r.steps == ()
    assert r.state.monitor is None


@pytest.mark.parametrize(
    ("market", "symbol", "since"),
    [
        ("futures", "RIVERUSDT", None),
        ("futures", "SPACEUSDT", None),
        ("spot", "OMUSDT", datetime(2025, 3, 1, tzinfo=UTC)),
    ],
)
def test_live_hour_by_hour_equals_the_replay_on_real_series(
    store: SeriesStore, market: str, symbol: str, since: datetime | None
) -> None:
    c = store.get("binance", market, symbol, "1h")
    if since is not None:  # a four-month window around the crash keeps the test quick
        c = c.between(
            int(since.timestamp() * 1000), int(since.timestamp() * 1000) + 120 * 86_400_000
        )
    expected = replay(c)
    steps, state = live(c, [P.lookback_candles()] + [1] * len(c))
    assert repr(steps) == repr(list(expected.steps))
    assert state == expected.state

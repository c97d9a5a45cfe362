"""The volume-trap scan on both backends over real recorded candles (data/sample):
idempotent, a live candle-by-candle run equal to a replay, a failed write leaving no
partial rows, and the invalidation/expiry check alone.

Windows (1h candles, indices into the recorded series):
    OMUSDT spot [10450, 10660): a burst at 10601, a later burst at 10602, at 10603 an
        invalidation and a new burst on the same candle, then confirmation (10641) and
        validation (10642).
    RIVERUSDT futures [880, 1090): a burst at 1015, later bursts at 1017, 1056 and 1057,
        expiry at 1075.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.clock import FixedClock
from klinewatch.domain.candles import Candles
from klinewatch.domain.market_config import InvalidConfig
from klinewatch.domain.volume_trap import (
    SeriesState,
    Transition,
    VolumeTrapParams,
    advance,
    snapshot_record,
)
from klinewatch.services.ingestion import UpdateSummary
from klinewatch.services.volume_trap import (
    ScanOptions,
    ScanSummary,
    check_invalidations,
    load_params,
    scan,
    volume_trap_hook,
)
from klinewatch.services.volume_trap_writer import SeriesRun, StepWriter
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.engine import transaction
from klinewatch.storage.models import Contract, SystemConfig
from klinewatch.storage.volume_trap import Target, TrapKey

NOW = FixedClock(1_790_000_000_000)  # 2026-09: every recorded candle has closed
OM = ("spot", "OMUSDT", 10450, 10660)
RIVER = ("futures", "RIVERUSDT", 880, 1090)
INITIAL = 140  # candles stored before the live run starts (above the 100 of lookback)


@pytest.fixture(scope="module")
def store(sample_dir: Path) -> SeriesStore:
    return SeriesStore(sample_dir)


def window(store: SeriesStore, spec: tuple[str, str, int, int]) -> Candles:
    market, symbol, start, end = spec
    return store.get("binance", market, symbol, "1h").take(slice(start, end))


def add_contract(sessions: sessionmaker[Session], market: str, symbol: str) -> None:
    with transaction(sessions) as session:
        session.add(
            Contract(
                exchange="binance",
                market_type=market,
                symbol=symbol,
                base_asset=symbol.removesuffix("USDT"),
                quote_asset="USDT",
                status="TRADING",
            )
        )


def put(sessions: sessionmaker[Session], market: str, symbol: str, candles: Candles) -> None:
    with transaction(sessions) as session:
        write_candles(session, SeriesKey("binance", market, symbol, "1h"), candles)


def scan_now(sessions: sessionmaker[Session], market: str, **options: Any) -> ScanSummary:
    summary = scan(sessions, "binance", market, "1h", ScanOptions(**options), clock=NOW)
    assert not summary.errors, summary.errors
    return summary


def rows(sessions: sessionmaker[Session], sql: str) -> list[dict[str, Any]]:
    with transaction(sessions) as session:
        return [dict(r._mapping) for r in session.execute(text(sql))]


def state(sessions: sessionmaker[Session], symbol: str) -> dict[str, Any]:
    """Everything the scan stored for one series, without ids and wall-clock times."""
    where = f"m.symbol = '{symbol}'"
    monitors = rows(
        sessions,
        "SELECT m.status, m.trigger_open_time_ms, m.trigger_high, m.key_level, m.rvol, "
        "m.amplitude_pct, m.drawdown_pct, m.last_transition_open_time_ms, "
        "m.last_evaluated_open_time_ms, m.later_bursts "
        f"FROM volume_trap_monitors m WHERE {where} ORDER BY m.trigger_open_time_ms",
    )
    transitions = rows(
        sessions,
        "SELECT m.trigger_open_time_ms AS monitor, t.from_status, t.to_status, t.open_time_ms, "
        "t.reason, t.detector_values FROM volume_trap_state_transitions t "
        f"JOIN volume_trap_monitors m ON m.id = t.monitor_id WHERE {where} "
        "ORDER BY t.open_time_ms, m.trigger_open_time_ms",
    )
    snapshots = rows(
        sessions,
        "SELECT m.trigger_open_time_ms AS monitor, i.open_time_ms, i.detector_values "
        f"FROM volume_trap_indicators i JOIN volume_trap_monitors m ON m.id = i.monitor_id "
        f"WHERE {where} ORDER BY i.open_time_ms, m.trigger_open_time_ms",
    )
    cursor = rows(
        sessions,
        f"SELECT cursor_open_time_ms FROM volume_trap_scan_cursors WHERE symbol = '{symbol}'",
    )
    return {
        "monitors": monitors,
        "transitions": [{**t, "detector_values": _json(t["detector_values"])} for t in transitions],
        "snapshots": [{**s, "detector_values": _json(s["detector_values"])} for s in snapshots],
        "cursor": cursor,
    }


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def replay_reference(
    sessions: sessionmaker[Session], market: str, candles: Candles, symbol: str = "REPLAYUSDT"
) -> str:
    """The same candles stored under another symbol and scanned in one go."""
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, candles)
    scan_now(sessions, market, symbols=[symbol])
    return symbol


def live_run(
    sessions: sessionmaker[Session], market: str, symbol: str, candles: Candles, upto: int
) -> None:
    """Store the first ``INITIAL`` candles, scan, then one candle at a time up to ``upto``."""
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, candles.take(slice(0, INITIAL)))
    scan_now(sessions, market, symbols=[symbol])
    for i in range(INITIAL, upto):
        put(sessions, market, symbol, candles.take(slice(i, i + 1)))
        scan_now(sessions, market, symbols=[symbol])


def drop_refusal(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("DROP TRIGGER IF EXISTS refuse"))
        else:
            session.execute(text("DROP TRIGGER IF EXISTS refuse ON volume_trap_state_transitions"))
            session.execute(text("DROP FUNCTION IF EXISTS refuse()"))


@pytest.mark.parametrize("spec", [OM, RIVER], ids=["OMUSDT", "RIVERUSDT"])
def test_a_live_candle_by_candle_run_equals_a_history_replay(
    sessions: sessionmaker[Session], store: SeriesStore, spec: tuple[str, str, int, int]
) -> None:
    market, symbol, *_ = spec
    candles = window(store, spec)
    live_run(sessions, market, symbol, candles, len(candles))
    replayed = replay_reference(sessions, market, candles)
    live = state(sessions, symbol)
    assert live == state(sessions, replayed)

    core = advance(candles, SeriesState(), VolumeTrapParams(), from_series_start=True)
    moves = [s for s in core.steps if isinstance(s, Transition)]
    assert [(t["open_time_ms"], t["to_status"]) for t in live["transitions"]] == [
        (s.open_time_ms, s.to_status.value) for s in moves
    ]
    assert [t["detector_values"] for t in live["transitions"]] == [
        snapshot_record(s.snapshot) for s in moves
    ]
    assert len(live["snapshots"]) == len(core.steps) >= 4


@pytest.mark.parametrize(("spec", "rewind_at"), [(OM, 150), (RIVER, 160)], ids=["OM", "RIVER"])
def test_from_date_rewinds_and_replays_to_the_same_state(
    sessions: sessionmaker[Session],
    store: SeriesStore,
    spec: tuple[str, str, int, int],
    rewind_at: int,
) -> None:
    """RIVER is rewound inside an active monitor (its later bursts after the date are
    forgotten and found again), OM before a burst."""
    market, symbol, _, _ = spec
    candles = window(store, spec)
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, candles)
    scan_now(sessions, market)
    before = state(sessions, symbol)
    from_ms = int(candles.open_time_ms[rewind_at])
    again = scan_now(sessions, market, from_ms=from_ms)
    assert again.candles == len(candles) - rewind_at
    assert again.discovered + again.later_bursts > 0
    assert state(sessions, symbol) == before
    for table in ("volume_trap_state_transitions", "volume_trap_indicators"):
        orphans = rows(
            sessions,
            f"SELECT count(*) AS n FROM {table} WHERE monitor_id NOT IN "
            "(SELECT id FROM volume_trap_monitors)",
        )
        assert orphans == [{"n": 0}]


def test_a_second_scan_changes_nothing(sessions: sessionmaker[Session], store: SeriesStore) -> None:
    for market, symbol, *_ in (OM, RIVER):
        add_contract(sessions, market, symbol)
        put(sessions, market, symbol, window(store, (market, symbol, *_)))
    first = [scan_now(sessions, "spot"), scan_now(sessions, "futures")]
    assert sum(s.discovered for s in first) >= 3
    tables = ("volume_trap_monitors", "volume_trap_indicators", "volume_trap_state_transitions")
    everything = {t: rows(sessions, f"SELECT * FROM {t} ORDER BY id") for t in tables}
    cursors = rows(sessions, "SELECT * FROM volume_trap_scan_cursors ORDER BY symbol")
    second = [scan_now(sessions, "spot"), scan_now(sessions, "futures")]
    assert [(s.scanned, s.discovered, s.candles) for s in second] == [(0, 0, 0), (0, 0, 0)]
    assert {t: rows(sessions, f"SELECT * FROM {t} ORDER BY id") for t in tables} == everything
    assert rows(sessions, "SELECT * FROM volume_trap_scan_cursors ORDER BY symbol") == cursors


@pytest.fixture
def failing(sessions: sessionmaker[Session], request: pytest.FixtureRequest) -> Iterator[str]:
    """A trigger in the database that refuses transitions to ``request.param``: the
    failure happens inside the write, after the monitor's row and its snapshot."""
    status: str = request.param
    engine: Any = sessions.kw["bind"]
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON volume_trap_state_transitions "
                    f"WHEN NEW.to_status = '{status}' BEGIN SELECT RAISE(ABORT, 'injected'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.to_status = '{status}' THEN RAISE EXCEPTION 'injected'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON volume_trap_state_transitions "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    yield status
    drop_refusal(sessions)


@pytest.mark.parametrize(
    "failing",
    ["suspected_abandonment", "invalidated"],  # one step on its candle; two (with a burst)
    indirect=True,
)
def test_a_failed_transition_write_leaves_no_partial_rows_and_the_next_scan_completes_it(
    sessions: sessionmaker[Session], store: SeriesStore, failing: str
) -> None:
    market, symbol, *_ = OM
    candles = window(store, OM)
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, candles)
    broken = scan(sessions, "binance", market, "1h", clock=NOW)
    assert "injected" in broken.errors[symbol]

    failed_at = 10641 if failing == "suspected_abandonment" else 10603
    t = int(candles.open_time_ms[failed_at - OM[2]])
    after = state(sessions, symbol)
    assert [m for m in after["monitors"] if m["last_evaluated_open_time_ms"] >= t] == []
    assert [s for s in after["snapshots"] if s["open_time_ms"] >= t] == []
    assert [x for x in after["transitions"] if x["open_time_ms"] >= t] == []
    assert after["cursor"][0]["cursor_open_time_ms"] < t
    active = [m for m in after["monitors"] if m["status"] == "pending"]
    assert [m["last_evaluated_open_time_ms"] for m in active] == [
        after["cursor"][0]["cursor_open_time_ms"]
    ]

    drop_refusal(sessions)
    scan_now(sessions, market)
    assert state(sessions, symbol) == state(sessions, replay_reference(sessions, market, candles))


def test_check_invalidations_applies_only_endings(
    sessions: sessionmaker[Session], store: SeriesStore
) -> None:
    """RIVER's monitor expires (after three later bursts) and OM's first one is
    invalidated on a candle that also bursts: the check writes the endings, leaves the
    burst and OM's later confirmation to the scan, and the scan then agrees."""
    om, river = window(store, OM), window(store, RIVER)
    for (market, symbol, start, _), candles, upto in ((OM, om, 10602), (RIVER, river, 1016)):
        add_contract(sessions, market, symbol)
        put(sessions, market, symbol, candles.take(slice(0, upto - start)))
        scan_now(sessions, market)
        put(sessions, market, symbol, candles.take(slice(upto - start, None)))

    checked = {s.market_type: s for s in check_invalidations(sessions, clock=NOW)}
    assert (checked["futures"].expired, checked["futures"].later_bursts) == (1, 3)
    assert (checked["spot"].invalidated, checked["spot"].later_bursts) == (1, 1)
    assert checked["spot"].discovered == checked["spot"].confirmed == 0
    assert check_invalidations(sessions, clock=NOW) == []  # nothing active is left

    for _, symbol, *_ in (OM, RIVER):
        assert state(sessions, symbol)["monitors"][-1]["status"] in ("expired", "invalidated")
    scan_now(sessions, "spot")
    scan_now(sessions, "futures")
    assert state(sessions, "OMUSDT") == state(sessions, replay_reference(sessions, "spot", om))
    reference = replay_reference(sessions, "futures", river, "REFERENCEUSDT")
    assert state(sessions, "RIVERUSDT") == state(sessions, reference)


def test_check_invalidations_leaves_a_monitor_whose_next_event_is_a_phase(
    sessions: sessionmaker[Session], store: SeriesStore
) -> None:
    om = window(store, OM)
    add_contract(sessions, "spot", "OMUSDT")
    put(sessions, "spot", "OMUSDT", om.take(slice(0, 10610 - OM[2])))
    scan_now(sessions, "spot")
    put(sessions, "spot", "OMUSDT", om.take(slice(10610 - OM[2], None)))
    before = state(sessions, "OMUSDT")
    [checked] = check_invalidations(sessions, market_type="spot", interval="1h", clock=NOW)
    assert (checked.pairs, checked.scanned, checked.invalidated, checked.expired) == (1, 0, 0, 0)
    assert state(sessions, "OMUSDT") == before


def test_a_scan_that_finds_the_cursor_moved_writes_nothing(
    sessions: sessionmaker[Session], store: SeriesStore
) -> None:
    market, symbol, *_ = RIVER
    candles = window(store, RIVER)
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, candles)
    core = advance(candles, SeriesState(), VolumeTrapParams(), from_series_start=True)
    with transaction(sessions) as session:
        series_id = session.execute(text("SELECT id FROM kline_series")).scalar_one()
        contract_id = session.execute(text("SELECT id FROM contracts")).scalar_one()
    key = TrapKey("binance", market, symbol, "1h")
    stale = SeriesRun(key, Target(symbol, series_id, contract_id), None, None)
    with transaction(sessions) as session:  # another scan got there first
        session.execute(
            text(
                "INSERT INTO volume_trap_scan_cursors (exchange, market_type, symbol, "
                "\"interval\", cursor_open_time_ms, updated_at) VALUES ('binance', 'futures', "
                "'RIVERUSDT', '1h', 5, CURRENT_TIMESTAMP)"
            )
        )
    with StepWriter(sessions) as writer:
        assert not writer.write(stale, core.steps)
    assert "another scan" in writer.failures[symbol]
    assert rows(sessions, "SELECT count(*) AS n FROM volume_trap_monitors") == [{"n": 0}]


def test_thresholds_come_from_the_system_config_and_bad_ones_are_refused(
    sessions: sessionmaker[Session], store: SeriesStore
) -> None:
    assert load_params(sessions) == VolumeTrapParams()  # no row yet: the defaults
    with transaction(sessions) as session:
        session.add(SystemConfig(id=1, volume_trap={"rvol_min": 1000.0}))
    assert load_params(sessions).rvol_min == 1000.0
    market, symbol, *_ = RIVER
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, window(store, RIVER))
    assert scan_now(sessions, market).discovered == 0  # no burst is 1000 times the mean

    with transaction(sessions) as session:
        session.execute(text("UPDATE system_config SET volume_trap = '{\"rvol_min\": -1}'"))
    with pytest.raises(InvalidConfig) as caught:
        scan(sessions, "binance", market, "1h", clock=NOW)
    assert caught.value.field == "volume_trap.rvol_min"


def test_the_scheduler_hook_scans_the_updated_group(
    sessions: sessionmaker[Session], store: SeriesStore
) -> None:
    market, symbol, *_ = RIVER
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, window(store, RIVER))
    hook = volume_trap_hook(sessions)
    idle = asyncio.run(hook(UpdateSummary("binance", market, "1h", pairs=1)))
    assert idle.scanned == 0  # an update that stored nothing triggers no scan
    update = UpdateSummary(
        "binance", market, "1h", pairs=1, candles_added=len(window(store, RIVER))
    )
    summary = asyncio.run(hook(update))
    assert (summary.pairs, summary.scanned, summary.discovered, summary.expired) == (1, 1, 1, 1)
    assert asyncio.run(hook(UpdateSummary("binance", market, "1h"))).scanned == 0


@pytest.fixture
def kept_logging() -> Iterator[None]:
    """The commands configure structlog to the runner's stderr, closed after each
    invocation: put the configuration back for the tests that follow."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("kept_logging")
def test_the_commands_print_the_three_phase_result_and_name_bad_options(
    sessions: sessionmaker[Session], store: SeriesStore, database_url: str
) -> None:
    from typer.testing import CliRunner

    from klinewatch.cli.main import app

    market, symbol, *_ = OM
    add_contract(sessions, market, symbol)
    put(sessions, market, symbol, window(store, OM))
    runner = CliRunner()
    env = {"KLINEWATCH_DATABASE_URL": database_url}
    scanned = runner.invoke(app, ["scan-volume-traps", "-i", "1h", "-m", "spot"], env=env)
    assert scanned.exit_code == 0, scanned.output
    assert "discovered" in scanned.output and "validated" in scanned.output
    assert state(sessions, symbol)["monitors"]
    checked = runner.invoke(app, ["check-invalidations", "-m", "spot"], env=env)
    assert checked.exit_code == 0, checked.output

    before = state(sessions, symbol)
    for args, named in (
        (["-i", "7x"], "interval"),
        (["-m", "swap"], "market type"),
        (["--from", "yesterday"], "--from"),
        (["--exchange", "kraken"], "--exchange"),
    ):
        refused = runner.invoke(app, ["scan-volume-traps", *args], env=env)
        assert refused.exit_code == 2
        assert named in refused.output
    assert state(sessions, symbol) == before

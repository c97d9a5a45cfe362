"""The storage suite: every test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import HOUR_MS
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.ledger import LedgerRepository
from klinewatch.storage.models import Exchange, SystemConfig, VolumeTrapMonitor

KEY = SeriesKey("binance", "spot", "BTCUSDT", "1h")


@pytest.fixture(scope="module")
def btc_1h(sample_dir: object) -> Candles:
    return SeriesStore(sample_dir).get("binance", "spot", "BTCUSDT", "1h")  # type: ignore[arg-type]


def write(sessions: sessionmaker[Session], candles: Candles, key: SeriesKey = KEY) -> int:
    with transaction(sessions) as session:
        return write_candles(session, key, candles).added


def read_all(sessions: sessionmaker[Session], key: SeriesKey = KEY) -> Candles:
    with transaction(sessions) as session:
        repo = KlineRepository(session)
        series_id = repo.find_series(key.exchange, key.market_type, key.symbol, key.interval)
        assert series_id is not None
        return repo.read(series_id)


def test_write_is_exact_and_idempotent(sessions: sessionmaker[Session], btc_1h: Candles) -> None:
    assert write(sessions, btc_1h) == len(btc_1h)
    assert write(sessions, btc_1h) == 0
    assert read_all(sessions).equals(btc_1h)


def test_batch_with_inner_duplicates_and_stored_overlap_writes_every_new_row(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    first = btc_1h.take(slice(0, 1000))
    assert write(sessions, first) == 1000
    overlap = btc_1h.take(slice(500, 2000))
    batch = Candles.concat([overlap, overlap.take(slice(0, 300)), btc_1h.take(slice(1990, 2000))])
    assert write(sessions, batch) == 1000  # rows 1000..1999, each once
    assert read_all(sessions).equals(btc_1h.take(slice(0, 2000)))


def test_latest_n_and_ranges_read_back_in_order(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    write(sessions, btc_1h)
    with transaction(sessions) as session:
        repo = KlineRepository(session)
        sid = repo.find_series(*vars_of(KEY))
        assert sid is not None
        latest = repo.read(sid, limit=200, newest=True)
        assert latest.equals(btc_1h.take(slice(len(btc_1h) - 200, None)))
        start, end = int(btc_1h.open_time_ms[100]), int(btc_1h.open_time_ms[150])
        assert repo.read(sid, start, end).equals(btc_1h.take(slice(100, 150)))
        assert np.array_equal(repo.open_times(sid, start, end), btc_1h.open_time_ms[100:150])
        assert repo.count(sid) == len(btc_1h)


def vars_of(key: SeriesKey) -> tuple[str, str, str, str]:
    return key.exchange, key.market_type, key.symbol, key.interval


def test_bad_candles_are_rejected_with_reasons_and_the_rest_written(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    batch = btc_1h.take(slice(0, 10))
    cols = [col.copy() for col in batch.columns()]
    cols[2][1], cols[3][1] = 1.0, 2.0  # high < low
    cols[5][2] = -5.0  # negative volume
    cols[0][3] += 1  # off the grid
    with transaction(sessions) as session:
        result = write_candles(session, KEY, Candles(*cols))
    assert result.added == 7
    assert sorted(r.reason for r in result.rejected) == [
        "a volume or count is negative",
        "high is below low",
        "open time is off the 1h grid",
    ]
    assert len(read_all(sessions)) == 7


def test_series_are_separate_per_market_type_and_interval(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    chunk = btc_1h.take(slice(0, 100))
    futures = SeriesKey("binance", "futures", "BTCUSDT", "1h")
    assert write(sessions, chunk) == 100
    assert write(sessions, chunk, futures) == 100
    assert read_all(sessions, futures).equals(chunk)


def test_concurrent_writers_never_duplicate(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    chunk = btc_1h.take(slice(0, 5000))
    results: list[int] = []

    def worker(part: Candles) -> None:
        results.append(write(sessions, part))

    if sessions.kw["bind"].dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    threads = [
        threading.Thread(target=worker, args=(chunk.take(slice(i * 1000, 5000)),)) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_all(sessions).equals(chunk)
    assert sum(results) == 5000


def test_ledger_merges_touching_ranges_per_kind(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        sid = KlineRepository(session).ensure_series(*vars_of(KEY))
        ledger = LedgerRepository(session)
        ledger.record(sid, "empty", [(0, 2 * HOUR_MS), (5 * HOUR_MS, 6 * HOUR_MS)])
        ledger.record(sid, "empty", [(2 * HOUR_MS, 3 * HOUR_MS)])
        ledger.record(sid, "fetched", [(0, 10 * HOUR_MS)])
        assert ledger.ranges(sid, "empty") == [(0, 3 * HOUR_MS), (5 * HOUR_MS, 6 * HOUR_MS)]
        assert ledger.ranges(sid, "fetched") == [(0, 10 * HOUR_MS)]


def test_exchanges_are_seeded_and_config_is_a_singleton(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        names = set(session.scalars(select(Exchange.name)))
        assert names == {"binance", "okx", "bybit", "bitget"}
        session.add(SystemConfig(id=1, market_data={"default_exchange": "binance"}))
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.add(SystemConfig(id=2))
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(SystemConfig)) == 1


def monitor(status: str) -> VolumeTrapMonitor:
    return VolumeTrapMonitor(
        exchange="binance",
        market_type="spot",
        symbol="OMUSDT",
        interval="4h",
        status=status,
        trigger_open_time_ms=0,
        trigger_open=1,
        trigger_high=2,
        trigger_low=0.5,
        trigger_close=1.5,
        trigger_volume=10,
        key_level=1.25,
        rvol=9,
        amplitude_pct=12,
        last_transition_open_time_ms=0,
        last_evaluated_open_time_ms=0,
    )


def test_one_active_monitor_per_series(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.add_all([monitor("pending"), monitor("invalidated"), monitor("expired")])
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.add(monitor("suspected_abandonment"))
    with transaction(sessions) as session:
        count = session.execute(text("SELECT count(*) FROM volume_trap_monitors")).scalar_one()
        assert count == 3

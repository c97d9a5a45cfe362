"""Batched writes of many series: the same guarantees as one series at a time."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import runs_of_open_times
from klinewatch.domain.intervals import HOUR_MS, parse_interval
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.batch_write import (
    ensure_series_many,
    insert_many,
    ledger_ranges_many,
    record_many,
)
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.models import KlineRange
from klinewatch.storage.stored_runs import stored_runs_many


@pytest.fixture(scope="module")
def om(sample_dir: object) -> Candles:
    return SeriesStore(sample_dir).get("binance", "spot", "OMUSDT", "1h")  # type: ignore[arg-type]


def test_many_series_with_overlaps_and_repeats_store_each_new_row_once(
    sessions: sessionmaker[Session], om: Candles
) -> None:
    with transaction(sessions) as session:
        ids = ensure_series_many(session, "binance", "spot", "1h", ["AUSDT", "BUSDT", "CUSDT"])
        assert sorted(ids) == ["AUSDT", "BUSDT", "CUSDT"]
        again = ensure_series_many(session, "binance", "spot", "1h", ["BUSDT", "DUSDT"])
        assert again["BUSDT"] == ids["BUSDT"] and len(set(again.values()) | set(ids.values())) == 4
        a, b, c = ids["AUSDT"], ids["BUSDT"], ids["CUSDT"]
        first = insert_many(session, [(a, om.take(slice(0, 100))), (b, om.take(slice(0, 50)))])
        assert first == [100, 50]
        repeat = Candles.concat([om.take(slice(40, 120)), om.take(slice(60, 70))])
        second = insert_many(session, [(a, repeat), (b, repeat), (c, om.take(slice(0, 10)))])
        assert second == [20, 70, 10]
        repo = KlineRepository(session)
        assert repo.read(a).equals(om.take(slice(0, 120)))
        assert repo.read(b).equals(om.take(slice(0, 120)))
        assert repo.count(c) == 10


def test_rows_expected_new_that_are_stored_already_are_still_written_once(
    sessions: sessionmaker[Session], om: Candles
) -> None:
    """A backfill skips the look-up of stored keys; a row another writer stored meanwhile
    must neither fail the batch nor be stored twice."""
    with transaction(sessions) as session:
        ids = ensure_series_many(session, "binance", "spot", "1h", ["AUSDT", "BUSDT"])
        a, b = ids["AUSDT"], ids["BUSDT"]
        assert insert_many(session, [(a, om.take(slice(10, 20)))]) == [10]  # "the other writer"
        added = insert_many(
            session, [(a, om.take(slice(0, 30))), (b, om.take(slice(0, 5)))], expect_new=True
        )
        assert added == [20, 5]
        assert insert_many(session, [(b, om.take(slice(5, 8)))], expect_new=True) == [3]
        repo = KlineRepository(session)
        assert repo.read(a).equals(om.take(slice(0, 30)))
        assert repo.read(b).equals(om.take(slice(0, 8)))


def test_ledger_rows_of_many_series_merge_per_series(sessions: sessionmaker[Session]) -> None:
    h = HOUR_MS
    with transaction(sessions) as session:
        ids = ensure_series_many(session, "binance", "spot", "1h", ["AUSDT", "BUSDT"])
        a, b = ids["AUSDT"], ids["BUSDT"]
        record_many(session, "fetched", {a: [(0, 2 * h)], b: [(5 * h, 6 * h)]})
        record_many(session, "fetched", {a: [(2 * h, 3 * h), (7 * h, 8 * h)], b: [(4 * h, 5 * h)]})
        record_many(session, "empty", {a: [(3 * h, 4 * h)]})
        fetched = ledger_ranges_many(session, [a, b], "fetched")
        assert fetched == {a: [(0, 3 * h), (7 * h, 8 * h)], b: [(4 * h, 6 * h)]}
        assert ledger_ranges_many(session, [a, b], "empty") == {a: [(3 * h, 4 * h)], b: []}


def test_a_merge_that_changes_nothing_writes_nothing_and_one_that_grows_keeps_one_row(
    sessions: sessionmaker[Session],
) -> None:
    h = HOUR_MS
    with transaction(sessions) as session:
        a = ensure_series_many(session, "binance", "spot", "1h", ["AUSDT"])["AUSDT"]
        record_many(session, "fetched", {a: [(0, 10 * h), (20 * h, 30 * h)]})
        before = ledger_rows(session, a)
        record_many(session, "fetched", {a: [(2 * h, 5 * h), (20 * h, 30 * h)]})  # inside
        assert ledger_rows(session, a) == before
        record_many(session, "fetched", {a: [(10 * h, 11 * h)]})  # grows the first range
        after = ledger_rows(session, a)
        assert [(s, e) for _, s, e in after] == [(0, 11 * h), (20 * h, 30 * h)]
        assert [i for i, _, _ in after] == [i for i, _, _ in before]  # rewritten in place
        record_many(session, "fetched", {a: [(11 * h, 20 * h)]})  # bridges both
        assert [(s, e) for _, s, e in ledger_rows(session, a)] == [(0, 30 * h)]


def ledger_rows(session: Session, series_id: int) -> list[tuple[int, int, int]]:
    rows = session.execute(
        select(KlineRange.id, KlineRange.start_ms, KlineRange.end_ms)
        .where(KlineRange.series_id == series_id)
        .order_by(KlineRange.start_ms)
    ).all()
    return [(int(i), int(s), int(e)) for i, s, e in rows]


def test_runs_of_stored_candles_of_many_series_come_from_one_query(
    sessions: sessionmaker[Session], om: Candles
) -> None:
    with transaction(sessions) as session:
        ids = ensure_series_many(session, "binance", "spot", "1h", ["AUSDT", "BUSDT", "CUSDT"])
        a, b, c = ids["AUSDT"], ids["BUSDT"], ids["CUSDT"]
        holed = om.take(np.r_[0:10, 12:20, 25:26, 30:40])
        insert_many(session, [(a, holed), (b, om.take(slice(0, 40)))])
        lo, hi = int(om.open_time_ms[5]), int(om.open_time_ms[35])
        runs = stored_runs_many(session, [a, b, c], HOUR_MS, lo, hi)
    inside = holed.between(lo, hi).open_time_ms
    assert runs[a] == runs_of_open_times(inside, parse_interval("1h"))
    assert runs[a] == [
        (lo, int(om.open_time_ms[10])),
        (int(om.open_time_ms[12]), int(om.open_time_ms[20])),
        (int(om.open_time_ms[25]), int(om.open_time_ms[26])),
        (int(om.open_time_ms[30]), hi),
    ]
    assert runs[b] == [(lo, hi)]
    assert runs[c] == []

"""Batched writes of many series: the same guarantees as one series at a time."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import HOUR_MS
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.batch_write import (
    ensure_series_many,
    insert_many,
    ledger_ranges_many,
    record_many,
)
from klinewatch.storage.engine import transaction
from klinewatch.storage.klines import KlineRepository


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

"""Many series' candles and ledger rows in a handful of statements.

An incremental update stores one candle for each of hundreds of series; one transaction
and a few statements per series would cost more than the requests themselves. Here a
batch of (series, candles) parts becomes: one keyed look-up of what is already stored,
one binary COPY of the rest (PostgreSQL) or one ``INSERT OR IGNORE`` executemany
(SQLite), and for the ledger one read, one delete and one insert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import psycopg
from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.orm import Session

from klinewatch.domain.candles import Candles
from klinewatch.domain.gaps import Range, merge_ranges
from klinewatch.storage.klines import KLINE_COLUMNS, KlineRepository, copy_rows_pg
from klinewatch.storage.models import KlineRange

Part = tuple[int, Candles]


def insert_many(session: Session, parts: Sequence[Part]) -> list[int]:
    """Store the new rows of every part; return how many each part added."""
    parts = [(sid, c.sorted_unique()) for sid, c in parts]
    if session.get_bind().dialect.name != "postgresql":
        repo = KlineRepository(session)
        return [repo.insert_new(sid, candles) for sid, candles in parts]
    fresh = _without_stored(session, parts)
    rows = Candles.concat([c for _, c in fresh])
    if len(rows) == 0:
        return [0] * len(parts)
    ids = np.concatenate([np.full(len(c), sid, dtype=np.int64) for sid, c in fresh])
    savepoint = session.begin_nested()
    try:
        copy_rows_pg(session, "klines", ids, rows)
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()  # a concurrent writer got there first: let the database decide
        return _insert_on_conflict(session, parts)
    savepoint.commit()
    return [len(c) for _, c in fresh]


def _without_stored(session: Session, parts: list[Part]) -> list[Part]:
    """Drop rows whose key is stored already: one indexed join over all parts' spans."""
    spans = [(sid, int(c.open_time_ms[0]), int(c.open_time_ms[-1])) for sid, c in parts if len(c)]
    if not spans:
        return parts
    values = ", ".join(f"({sid}, {lo}, {hi})" for sid, lo, hi in spans)
    stored = session.execute(
        text(
            "SELECT k.series_id, k.open_time_ms FROM klines k JOIN (VALUES "
            + values
            + ") AS v(sid, lo, hi) ON k.series_id = v.sid AND k.open_time_ms BETWEEN v.lo AND v.hi"
        )
    ).all()
    if not stored:
        return parts
    by_series: dict[int, list[int]] = defaultdict(list)
    for sid, open_ms in stored:
        by_series[int(sid)].append(int(open_ms))
    out: list[Part] = []
    for sid, candles in parts:
        known = by_series.get(sid)
        out.append((sid, candles.take(~np.isin(candles.open_time_ms, known)) if known else candles))
    return out


def _insert_on_conflict(session: Session, parts: list[Part]) -> list[int]:
    ids = np.concatenate([np.full(len(c), sid, dtype=np.int64) for sid, c in parts])
    session.execute(
        text("CREATE TEMP TABLE IF NOT EXISTS klines_incoming (LIKE klines) ON COMMIT DELETE ROWS")
    )
    session.execute(text("TRUNCATE klines_incoming"))
    copy_rows_pg(session, "klines_incoming", ids, Candles.concat([c for _, c in parts]))
    added = session.execute(
        text(
            f"INSERT INTO klines SELECT {', '.join(KLINE_COLUMNS)} FROM klines_incoming "
            "ON CONFLICT DO NOTHING RETURNING series_id"
        )
    ).scalars()
    counts: dict[int, int] = defaultdict(int)
    for sid in added:
        counts[int(sid)] += 1
    return [counts.pop(sid, 0) for sid, _ in parts]


def ledger_ranges_many(
    session: Session, series_ids: Sequence[int], kind: str
) -> dict[int, list[Range]]:
    """Every series' ranges of one kind, in one query."""
    out: dict[int, list[Range]] = {sid: [] for sid in series_ids}
    if not series_ids:
        return out
    rows = session.execute(
        select(KlineRange.series_id, KlineRange.start_ms, KlineRange.end_ms)
        .where(KlineRange.kind == kind, KlineRange.series_id.in_(bindparam("ids", expanding=True)))
        .order_by(KlineRange.series_id, KlineRange.start_ms),
        {"ids": list(series_ids)},
    ).all()
    for sid, start, end in rows:
        out[int(sid)].append((int(start), int(end)))
    return out


def record_many(
    session: Session, kind: str, ranges: dict[int, list[Range]], source: str = "rest"
) -> None:
    """Add ranges to many series' ledgers, merged with the rows they touch."""
    ranges = {sid: [r for r in rs if r[0] < r[1]] for sid, rs in ranges.items()}
    ranges = {sid: rs for sid, rs in ranges.items() if rs}
    if not ranges:
        return
    current = session.execute(
        select(KlineRange.id, KlineRange.series_id, KlineRange.start_ms, KlineRange.end_ms).where(
            KlineRange.kind == kind, KlineRange.series_id.in_(bindparam("ids", expanding=True))
        ),
        {"ids": list(ranges)},
    ).all()
    stale: list[int] = []
    merged: list[KlineRange] = []
    existing: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for row_id, sid, start, end in current:
        existing[int(sid)].append((int(row_id), int(start), int(end)))
    for sid, new in ranges.items():
        lo, hi = min(r[0] for r in new), max(r[1] for r in new)
        touching = [(i, s, e) for i, s, e in existing[sid] if s <= hi and e >= lo]
        stale.extend(i for i, _, _ in touching)
        for start, end in merge_ranges([*new, *((s, e) for _, s, e in touching)]):
            merged.append(
                KlineRange(series_id=sid, kind=kind, start_ms=start, end_ms=end, source=source)
            )
    if stale:
        session.execute(delete(KlineRange).where(KlineRange.id.in_(stale)))
    session.add_all(merged)
    session.flush()


def ensure_series_many(
    session: Session, exchange: str, market_type: str, interval: str, symbols: Sequence[str]
) -> dict[str, int]:
    """Ids of many series of one market and interval, creating the missing ones."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from klinewatch.storage.models import KlineSeries

    def known() -> dict[str, int]:
        rows = session.execute(
            select(KlineSeries.symbol, KlineSeries.id).where(
                KlineSeries.exchange == exchange,
                KlineSeries.market_type == market_type,
                KlineSeries.interval == interval,
                KlineSeries.symbol.in_(bindparam("symbols", expanding=True)),
            ),
            {"symbols": list(symbols)},
        ).all()
        return {str(symbol): int(sid) for symbol, sid in rows}

    found = known() if symbols else {}
    missing = [s for s in dict.fromkeys(symbols) if s not in found]
    if missing:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        rows = [
            {"exchange": exchange, "market_type": market_type, "symbol": s, "interval": interval}
            for s in missing
        ]
        session.execute(insert(KlineSeries).values(rows).on_conflict_do_nothing())
        found = known()
    return found

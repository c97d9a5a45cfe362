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

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from klinewatch.domain.gaps import Range, merge_ranges
from klinewatch.storage.klines import KlineRepository, Part, insert_many_pg
from klinewatch.storage.models import KlineRange


def insert_many(session: Session, parts: Sequence[Part]) -> list[int]:
    """Store the new rows of every part; return how many each part added."""
    parts = [(sid, c.sorted_unique()) for sid, c in parts]
    if session.get_bind().dialect.name == "postgresql":
        return insert_many_pg(session, parts)
    repo = KlineRepository(session)
    return [repo.insert_new(sid, candles) for sid, candles in parts]


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

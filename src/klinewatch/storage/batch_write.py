"""Many series' candles and ledger rows in a handful of statements.

An incremental update stores one candle for each of hundreds of series; one transaction
and a few statements per series would cost more than the requests themselves. Here a
batch of (series, candles) parts becomes: one keyed look-up of what is already stored,
one binary COPY of the rest (PostgreSQL) or one ``INSERT OR IGNORE`` executemany
(SQLite), and for the ledger one read, one delete and one insert.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from klinewatch.domain.gaps import Range, merge_ranges
from klinewatch.storage.klines import KlineRepository, Part, insert_many_pg
from klinewatch.storage.models import KlineRange, utcnow

_RANGES = cast(Table, KlineRange.__table__)


def insert_many(session: Session, parts: Sequence[Part], *, expect_new: bool = False) -> list[int]:
    """Store the new rows of every part; return how many each part added. With
    ``expect_new`` (rows planned from the missing ranges) PostgreSQL skips the look-up of
    stored keys and lets a conflict, should one occur, take the slower exact path."""
    parts = [(sid, c.sorted_unique()) for sid, c in parts]
    if session.get_bind().dialect.name == "postgresql":
        return insert_many_pg(session, parts, expect_new=expect_new)
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
    """Add ranges to many series' ledgers, merged with the rows they touch.

    One read of the rows the new ranges may touch, then only what changed: a merged range
    rewrites a row it absorbed in place (the usual case: a series' range grows by the
    candles just fetched), surplus absorbed rows are deleted, extra ranges inserted, and a
    range already covered writes nothing."""
    ranges = {sid: [r for r in rs if r[0] < r[1]] for sid, rs in ranges.items()}
    ranges = {sid: rs for sid, rs in ranges.items() if rs}
    if not ranges:
        return
    current = session.execute(
        select(_RANGES.c.id, _RANGES.c.series_id, _RANGES.c.start_ms, _RANGES.c.end_ms).where(
            _RANGES.c.kind == kind, _RANGES.c.series_id.in_(bindparam("ids", expanding=True))
        ),
        {"ids": list(ranges)},
    ).all()
    existing: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for row_id, sid, start, end in current:
        existing[int(sid)].append((int(start), int(end), int(row_id)))
    changes = _LedgerChanges(kind, source)
    for sid, new in ranges.items():
        changes.merge(sid, new, existing[sid])
    changes.apply(session)


@dataclass
class _LedgerChanges:
    """What merging new ranges into ledger rows changes, applied in one statement each."""

    kind: str
    source: str
    now: datetime = field(default_factory=utcnow)
    updates: list[dict[str, object]] = field(default_factory=list)
    inserts: list[dict[str, object]] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)

    def merge(self, sid: int, new: list[Range], rows: list[tuple[int, int, int]]) -> None:
        """``rows``: the series' (start, end, id) of this kind."""
        lo, hi = min(r[0] for r in new), max(r[1] for r in new)
        touching = sorted(row for row in rows if row[0] <= hi and row[1] >= lo)
        merged = merge_ranges([*new, *(row[:2] for row in touching)])
        for rng, row in itertools.zip_longest(merged, touching):
            if rng is None:
                self.stale.append(row[2])
            elif row is None:
                self.inserts.append(
                    {"series_id": sid, "kind": self.kind, "start_ms": rng[0], "end_ms": rng[1],
                     "source": self.source, "recorded_at": self.now}
                )  # fmt: skip
            elif rng != row[:2]:
                self.updates.append(
                    {"row_id": row[2], "new_start": rng[0], "new_end": rng[1],
                     "new_source": self.source, "now": self.now}
                )  # fmt: skip

    def apply(self, session: Session) -> None:
        if self.stale:
            session.execute(
                delete(_RANGES).where(_RANGES.c.id.in_(bindparam("ids", expanding=True))),
                {"ids": self.stale},
            )
        if self.updates:
            session.execute(
                update(_RANGES)
                .where(_RANGES.c.id == bindparam("row_id"))
                .values(
                    start_ms=bindparam("new_start"),
                    end_ms=bindparam("new_end"),
                    source=bindparam("new_source"),
                    recorded_at=bindparam("now"),
                ),
                self.updates,
            )
        if self.inserts:
            session.execute(insert(_RANGES), self.inserts)


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

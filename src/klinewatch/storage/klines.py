"""Candle storage: series, bulk idempotent writes, reads as columnar arrays.

The write adds only rows not stored yet and says how many it added. PostgreSQL: the
stored keys of the batch's span are read from the primary key, the new rows are sent with
one binary COPY straight into ``klines`` (as fast as a plain COPY), and should another
writer race us to a key, the batch is re-sent through a temporary table with
``ON CONFLICT DO NOTHING``. SQLite: one ``INSERT OR IGNORE`` executemany in the caller's
transaction. A duplicate inside the batch or against stored rows never drops a new row.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from klinewatch.domain.candles import COLUMNS, INT_COLUMNS, Candles
from klinewatch.storage.kline_reads import Span, read_spans
from klinewatch.storage.models import Kline, KlineSeries

KLINE_COLUMNS = ("series_id", *COLUMNS)
_COPY_SQL = "COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)".format
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER = struct.pack(">h", -1)
_COPY_CHUNK_ROWS = 50_000


def _binary_dtype() -> np.dtype[np.void]:
    fields: list[tuple[str, str]] = [
        ("nfields", ">i2"),
        ("len_series_id", ">i4"),
        ("series_id", ">i4"),
    ]
    for name in COLUMNS:
        fields.append((f"len_{name}", ">i4"))
        fields.append((name, ">i8" if name in INT_COLUMNS else ">f8"))
    return np.dtype(fields)


_BINARY_ROW = _binary_dtype()


def pgcopy_binary(series_id: int | npt.NDArray[np.int64], candles: Candles) -> bytes:
    """Rows in PostgreSQL's binary COPY format, built column-wise by NumPy; ``series_id``
    is one id for every row or one per row."""
    rows = np.empty(len(candles), dtype=_BINARY_ROW)
    rows["nfields"] = len(KLINE_COLUMNS)
    rows["len_series_id"] = 4
    rows["series_id"] = series_id
    for name in COLUMNS:
        rows[f"len_{name}"] = 8
        rows[name] = getattr(candles, name)
    return rows.tobytes()


def copy_rows_pg(
    session: Session, table: str, series_id: int | npt.NDArray[np.int64], candles: Candles
) -> None:
    """Binary COPY of ``candles`` into ``table`` (``klines`` or a temp table like it)."""
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    sql = _COPY_SQL(table=table, cols=", ".join(KLINE_COLUMNS))
    with cursor.copy(sql) as copy:
        copy.write(_PGCOPY_HEADER)
        for start in range(0, len(candles), _COPY_CHUNK_ROWS):
            chunk = slice(start, start + _COPY_CHUNK_ROWS)
            ids = series_id if isinstance(series_id, int) else series_id[chunk]
            copy.write(pgcopy_binary(ids, candles.take(chunk)))
        copy.write(_PGCOPY_TRAILER)


class KlineRepository:
    """Candles of every series; never commits (the caller's transaction decides)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def ensure_series(self, exchange: str, market_type: str, symbol: str, interval: str) -> int:
        """The id of a series, created on first use (safe against a concurrent creator)."""
        key = {
            "exchange": exchange,
            "market_type": market_type,
            "symbol": symbol,
            "interval": interval,
        }
        found = self.find_series(exchange, market_type, symbol, interval)
        if found is not None:
            return found
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        self.session.execute(insert(KlineSeries).values(**key).on_conflict_do_nothing())
        found = self.find_series(exchange, market_type, symbol, interval)
        assert found is not None
        return found

    def find_series(
        self, exchange: str, market_type: str, symbol: str, interval: str
    ) -> int | None:
        return self.session.scalar(
            select(KlineSeries.id).where(
                KlineSeries.exchange == exchange,
                KlineSeries.market_type == market_type,
                KlineSeries.symbol == symbol,
                KlineSeries.interval == interval,
            )
        )

    def insert_new(self, series_id: int, candles: Candles) -> int:
        """Store the rows not stored yet; return how many were added."""
        batch = candles.sorted_unique()
        if len(batch) == 0:
            return 0
        if self.dialect == "postgresql":
            return self._insert_new_pg(series_id, batch)
        return self._insert_new_sqlite(series_id, batch)

    def _insert_new_pg(self, series_id: int, batch: Candles) -> int:
        return insert_many_pg(self.session, [(series_id, batch)])[0]

    def _insert_new_sqlite(self, series_id: int, batch: Candles) -> int:
        raw = self.session.connection().connection.driver_connection
        placeholders = ", ".join("?" * len(KLINE_COLUMNS))
        sql = f"INSERT OR IGNORE INTO klines ({', '.join(KLINE_COLUMNS)}) VALUES ({placeholders})"
        columns = [col.tolist() for col in batch.columns()]
        rows = zip([series_id] * len(batch), *columns, strict=True)
        cursor = raw.cursor()  # type: ignore[union-attr]
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)

    def open_times(self, series_id: int, start_ms: int, end_ms: int) -> npt.NDArray[np.int64]:
        """Stored open times in ``[start_ms, end_ms)``, oldest first, from the key alone."""
        rows = self.session.execute(
            select(Kline.open_time_ms)
            .where(
                Kline.series_id == series_id,
                Kline.open_time_ms >= start_ms,
                Kline.open_time_ms < end_ms,
            )
            .order_by(Kline.open_time_ms)
        ).scalars()
        return np.fromiter(rows, dtype=np.int64)

    def read(
        self,
        series_id: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> Candles:
        """Candles oldest first in ``[start_ms, end_ms)``; with ``newest`` the last ``limit``.

        Read as NumPy columns, with no object per row (``kline_reads``)."""
        span = Span(start_ms, end_ms, limit, newest)
        return read_spans(self.session, series_id, [span])[0]

    def count(self, series_id: int) -> int:
        result = self.session.execute(
            text("SELECT count(*) FROM klines WHERE series_id = :s"), {"s": series_id}
        ).scalar_one()
        return int(result)

    def delete_range(self, series_id: int, start_ms: int, end_ms: int) -> int:
        """Remove the rows opened in ``[start_ms, end_ms)`` (a repair replaces them in the
        same transaction); return how many were removed."""
        result = self.session.execute(
            text(
                "DELETE FROM klines WHERE series_id = :s "
                "AND open_time_ms >= :a AND open_time_ms < :b"
            ),
            {"s": series_id, "a": start_ms, "b": end_ms},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def list_series(self, exchange: str, market_type: str, interval: str) -> dict[str, int]:
        """``{symbol: series_id}`` of every stored series of one exchange, market, interval."""
        rows = self.session.execute(
            select(KlineSeries.symbol, KlineSeries.id)
            .where(
                KlineSeries.exchange == exchange,
                KlineSeries.market_type == market_type,
                KlineSeries.interval == interval,
            )
            .order_by(KlineSeries.symbol)
        ).all()
        return {str(symbol): int(series_id) for symbol, series_id in rows}


Part = tuple[int, Candles]


def insert_many_pg(
    session: Session, parts: Sequence[Part], *, expect_new: bool = False
) -> list[int]:
    """PostgreSQL: read the parts' stored keys in one indexed join, binary-COPY the rest
    straight into ``klines``; should another writer race us to a key, re-send the parts
    through a temporary table with ``ON CONFLICT DO NOTHING``. Parts are sorted, unique.

    ``expect_new``: the caller planned these rows from what is missing (a backfill), so
    the look-up would find nothing: skip it and COPY at once; a stored key then costs
    the fallback, never a duplicate."""
    fresh = parts if expect_new else _without_stored(session, parts)
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


def _without_stored(session: Session, parts: Sequence[Part]) -> Sequence[Part]:
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


def _insert_on_conflict(session: Session, parts: Sequence[Part]) -> list[int]:
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

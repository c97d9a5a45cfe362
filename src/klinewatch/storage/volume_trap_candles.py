"""The candles a volume-trap scan needs, for thousands of series in a few statements.

For each series: every closed candle after its cursor, plus ``history`` candles at or
before it (the core's lookback), or the whole series when it has no cursor yet. On
PostgreSQL that is one statement: a ``LATERAL`` join per series, each column of every
candle aggregated into one array in binary form (``array_send``) that NumPy reads
without a Python object per value. On SQLite (in process, no round trips) one indexed
read per series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from klinewatch.domain.candles import Candles
from klinewatch.storage.klines import KlineRepository
from klinewatch.storage.models import Kline

# What the detectors read; close times are not needed (and would cost an eighth more).
COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class CandleRequest:
    """Candles of one series: every one after ``cut_ms`` plus ``history`` at or before
    it; ``cut_ms`` None asks for the whole series."""

    series_id: int
    cut_ms: int | None
    history: int


class ScanCandles:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def newest_open_times(self, series_ids: Sequence[int], end_ms: int) -> dict[int, int]:
        """The newest open time at or before ``end_ms`` of each series that has one
        (PostgreSQL: one backward index probe per series, in one statement)."""
        if not series_ids:
            return {}
        if self.dialect == "postgresql":
            sql = (
                "SELECT s.id, (SELECT k.open_time_ms FROM klines k WHERE k.series_id = s.id "
                "AND k.open_time_ms <= %(end)s ORDER BY k.open_time_ms DESC LIMIT 1) "
                "FROM unnest(%(ids)s::int[]) AS s(id)"
            )
            with self._cursor() as cursor:
                rows = cursor.execute(sql, {"ids": list(series_ids), "end": end_ms}).fetchall()
            return {int(sid): int(t) for sid, t in rows if t is not None}
        out: dict[int, int] = {}
        for sid in series_ids:
            newest = self.session.scalar(
                select(func.max(Kline.open_time_ms)).where(
                    Kline.series_id == sid, Kline.open_time_ms <= end_ms
                )
            )
            if newest is not None:
                out[sid] = int(newest)
        return out

    def load(self, requests: Sequence[CandleRequest], end_ms: int) -> dict[int, Candles]:
        """Closed candles (open time at or before ``end_ms``) per series, oldest first."""
        if not requests:
            return {}
        if self.dialect == "postgresql":
            return self._load_pg(requests, end_ms)
        klines = KlineRepository(self.session)
        out = {}
        for r in requests:
            parts = []
            if r.cut_ms is not None and r.history > 0:
                parts.append(
                    klines.read(r.series_id, end_ms=r.cut_ms + 1, limit=r.history, newest=True)
                )
            start = None if r.cut_ms is None else r.cut_ms + 1
            parts.append(klines.read(r.series_id, start_ms=start, end_ms=end_ms + 1))
            out[r.series_id] = Candles.concat(parts)
        return out

    def _load_pg(self, requests: Sequence[CandleRequest], end_ms: int) -> dict[int, Candles]:
        """One statement, one result row. JIT is off: compiling costs more than it saves."""
        picked = ", ".join(COLUMNS)
        arrays = ", ".join(f"array_send(array_agg({c}))" for c in ("series_id", *COLUMNS))
        sql = (
            f"SELECT {arrays} FROM unnest(%(ids)s::int[], %(cuts)s::bigint[], %(hist)s::int[]) "
            f"AS s(id, cut, hist) CROSS JOIN LATERAL ("
            f"(SELECT series_id, {picked} FROM klines WHERE series_id = s.id "
            "AND open_time_ms <= s.cut ORDER BY open_time_ms DESC LIMIT s.hist) UNION ALL "
            f"(SELECT series_id, {picked} FROM klines WHERE series_id = s.id "
            "AND open_time_ms > s.cut AND open_time_ms <= %(end)s)) AS k"
        )
        params = {
            "ids": [r.series_id for r in requests],
            "cuts": [-1 if r.cut_ms is None else r.cut_ms for r in requests],
            "hist": [0 if r.cut_ms is None else r.history for r in requests],
            "end": end_ms,
        }
        self.session.execute(text("SET LOCAL jit = off"))
        with self._cursor() as cursor:
            blobs = cursor.execute(sql, params).fetchone()
        out = {r.series_id: Candles.empty() for r in requests}
        if blobs is None or blobs[0] is None:
            return out
        sids = _binary_array(blobs[0], ">i4")
        columns = {
            name: _binary_array(blob, ">i8" if name.endswith("_ms") else ">f8")
            for name, blob in zip(COLUMNS, blobs[1:], strict=True)
        }
        order = np.lexsort((columns["open_time_ms"], sids))
        sids = sids[order]
        bounds = np.flatnonzero(np.diff(sids)) + 1
        for part in np.split(np.arange(len(sids)), bounds):
            rows = {name: values[order[part]] for name, values in columns.items()}
            out[int(sids[part[0]])] = Candles.from_columns(**rows)
        return out

    def previous_open(self, series_id: int, before_ms: int) -> tuple[int, float] | None:
        """Open time and close of the newest candle opened before ``before_ms``."""
        row = self.session.execute(
            select(Kline.open_time_ms, Kline.close)
            .where(Kline.series_id == series_id, Kline.open_time_ms < before_ms)
            .order_by(Kline.open_time_ms.desc())
            .limit(1)
        ).first()
        return None if row is None else (int(row[0]), float(row[1]))

    def _cursor(self) -> Any:
        """A psycopg cursor in this session's transaction, with binary results."""
        driver = self.session.connection().connection.driver_connection
        return driver.cursor(binary=True)  # type: ignore[union-attr]


def _binary_array(blob: bytes, kind: str) -> npt.NDArray[Any]:
    """A one-dimensional array without nulls from ``array_send``: a 20-byte header, then
    each element as its length (int32) and its value."""
    rows = np.frombuffer(blob, dtype=np.dtype([("n", ">i4"), ("v", kind)]), offset=20)
    return rows["v"].astype(kind.replace(">", "="))

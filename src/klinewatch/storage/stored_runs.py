"""Runs of consecutive stored candles, of many series in one query.

Planning an update needs the holes of every series that has some. Loading each series'
open times to find them costs a query and thousands of rows per series; the database
finds the runs itself instead ("gaps and islands": within a run, open time minus
``step`` x its rank is constant) and returns a handful of rows per series.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from klinewatch.domain.gaps import Range

_RUNS = text(
    "SELECT series_id, min(open_time_ms), max(open_time_ms) FROM ("
    " SELECT series_id, open_time_ms,"
    "  open_time_ms - :step * row_number() OVER (PARTITION BY series_id ORDER BY open_time_ms)"
    "  AS run"
    " FROM klines WHERE series_id IN :ids AND open_time_ms >= :lo AND open_time_ms < :hi"
    ") AS ranked GROUP BY series_id, run ORDER BY series_id, 2"
).bindparams(bindparam("ids", expanding=True))


def stored_runs_many(
    session: Session, series_ids: Sequence[int], step_ms: int, start_ms: int, end_ms: int
) -> dict[int, list[Range]]:
    """Per series, the ranges ``[first, last + step)`` of consecutive stored candles
    opened in ``[start_ms, end_ms)``, oldest first (``step_ms``: a fixed interval's
    length; candles are on its grid)."""
    out: dict[int, list[Range]] = {sid: [] for sid in series_ids}
    if not series_ids:
        return out
    rows = session.execute(
        _RUNS,
        {"ids": list(series_ids), "step": step_ms, "lo": start_ms, "hi": end_ms},
    ).all()
    for sid, first, last in rows:
        out[int(sid)].append((int(first), int(last) + step_ms))
    return out

"""Candle reads straight into NumPy columns, several spans of a series in one statement.

The API's database-served answers are mostly time spent reading rows: through
SQLAlchemy a 1,000-candle read costs ~5.7 ms, almost all of it one Python object per
row and per value (a binary ``COPY`` still hands over one message per row). Here
PostgreSQL concatenates each column of a span into one ``bytea`` of big-endian values
(``string_agg(float8send(close), '')``), which NumPy reads as it is; its cost grows with
the columns asked for, so a caller reads only those it uses (indicators: 3 of 11).
SQLite (in process, no round trip) hands its rows to NumPy in one ``fetchall``.

Several spans are one statement (``UNION ALL``, each row tagged with its span), so a
window, the warm-up candles before it and the series' oldest candle cost one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import COLUMNS, INT_COLUMNS, Candles

Columns = dict[str, npt.NDArray[Any]]
_EMPTY = Candles.empty()


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads, each statement its own snapshot (autocommit): what a
    transaction gives a reader under READ COMMITTED anyway, without the BEGIN and COMMIT
    round trips, so a one-statement read costs one. Only for reads: a write through it
    would stay at once, outside any unit of work (``engine.transaction`` is for those)."""
    with factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


@dataclass(frozen=True, slots=True)
class Span:
    """Candles opened in ``[start_ms, end_ms)`` (either bound optional): the oldest
    ``limit`` of them, or with ``newest`` the newest ``limit``; returned oldest first."""

    start_ms: int | None = None
    end_ms: int | None = None
    limit: int | None = None
    newest: bool = False


def read_spans(
    session: Session, series_id: int, spans: Sequence[Span], columns: Sequence[str] = COLUMNS
) -> list[Candles]:
    """The candles of each span, in one statement; spans may overlap. Only ``columns``
    (and ``open_time_ms``) are read: the others are 0 in what comes back."""
    names = ["open_time_ms", *(c for c in columns if c != "open_time_ms")]
    if not spans:
        return []
    raw = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        found = _aggregated(raw, series_id, spans, names)
    else:
        found = _fetched(raw, series_id, spans, names)
    out = []
    for index in range(len(spans)):
        part = found.get(index)
        if part is None:
            out.append(Candles.empty())
            continue
        order = np.argsort(part["open_time_ms"], kind="stable")
        out.append(Candles.from_columns(**{name: part[name][order] for name in names}))
    return out


def _union(
    series_id: int, spans: Sequence[Span], names: Sequence[str], mark: str
) -> tuple[str, list[int]]:
    """The spans' rows, each tagged with its span's index, as one ``UNION ALL``."""
    picked = ", ".join(names)
    parts, params = [], []
    for index, span in enumerate(spans):
        where, values = [f"series_id = {mark}"], [series_id]
        if span.start_ms is not None:
            where.append(f"open_time_ms >= {mark}")
            values.append(span.start_ms)
        if span.end_ms is not None:
            where.append(f"open_time_ms < {mark}")
            values.append(span.end_ms)
        sql = (
            f"SELECT {index} AS span, {picked} FROM klines WHERE {' AND '.join(where)} "
            f"ORDER BY open_time_ms {'DESC' if span.newest else 'ASC'}"
        )
        if span.limit is not None:
            sql += f" LIMIT {mark}"
            values.append(span.limit)
        parts.append(f"SELECT * FROM ({sql}) AS s{index}")
        params.extend(values)
    return " UNION ALL ".join(parts), params


def _aggregated(
    raw: Any, series_id: int, spans: Sequence[Span], names: Sequence[str]
) -> dict[int, Columns]:
    """PostgreSQL: one row per span that has candles, each column one ``bytea``."""
    union, params = _union(series_id, spans, names, "%s")
    send = {name: "int8send" if name in INT_COLUMNS else "float8send" for name in names}
    blobs = ", ".join(f"string_agg({send[name]}(k.{name}), '')" for name in names)
    sql = f"SELECT k.span, {blobs} FROM ({union}) AS k GROUP BY k.span"
    with raw.cursor(binary=True) as cursor:
        rows = cursor.execute(sql, params).fetchall()
    return {
        int(span): {
            name: np.frombuffer(blob, dtype=">i8" if name in INT_COLUMNS else ">f8")
            for name, blob in zip(names, blobs, strict=True)
        }
        for span, *blobs in rows
    }


def _fetched(
    raw: Any, series_id: int, spans: Sequence[Span], names: Sequence[str]
) -> dict[int, Columns]:
    """SQLite: one ``fetchall`` into a float table (times and counts stay exact: every
    integer here is far below 2**53)."""
    union, params = _union(series_id, spans, names, "?")
    rows = raw.execute(union, params).fetchall()
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names) + 1)
    tags = table[:, 0].astype(np.int64)
    return {
        int(index): {name: table[tags == index, i + 1] for i, name in enumerate(names)}
        for index in np.unique(tags)
    }


@dataclass(frozen=True, slots=True)
class WindowRead:
    """A window, the candles just before it (oldest first) and the series' oldest
    stored open time (None without a warm-up, or for an empty series)."""

    candles: Candles
    before: Candles
    first_open_ms: int | None


def read_window(
    session: Session,
    series_id: int,
    window: Span,
    warmup: int = 0,
    columns: Sequence[str] = COLUMNS,
) -> WindowRead:
    """``window`` and, with ``warmup``, up to that many candles just before it and the
    series' oldest open time, in one statement (what indicators start from). A window
    read newest first must be open at its start (``start_ms`` None)."""
    if warmup <= 0:
        return WindowRead(read_spans(session, series_id, [window], columns)[0], _EMPTY, None)
    oldest = Span(limit=1)
    if window.newest:
        if window.start_ms is not None:
            raise ValueError("a warm-up needs a newest-first window open at its start")
        wider = Span(end_ms=window.end_ms, limit=_plus(window.limit, warmup), newest=True)
        rows, first = read_spans(session, series_id, [wider, oldest], columns)
        cut = 0 if window.limit is None else max(0, len(rows) - window.limit)
        candles, before = rows.take(slice(cut, None)), rows.take(slice(0, cut))
    elif window.start_ms is None:  # from the series' first candle: nothing before it
        candles, first = read_spans(session, series_id, [window, oldest], columns)
        before = _EMPTY
    else:
        previous = Span(end_ms=window.start_ms, limit=warmup, newest=True)
        candles, before, first = read_spans(session, series_id, [window, previous, oldest], columns)
    return WindowRead(candles, before, int(first.open_time_ms[0]) if len(first) else None)


def _plus(limit: int | None, more: int) -> int | None:
    return None if limit is None else limit + more

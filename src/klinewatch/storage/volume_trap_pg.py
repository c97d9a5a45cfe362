"""One step of a volume-trap scan written in one PostgreSQL statement.

A scan writes hundreds of transitions, each its own transaction; as separate statements
one costs six round trips (BEGIN, monitor, snapshot, transition, cursor, COMMIT). Here
data-modifying CTEs chain them into one statement, run in autocommit, so one round trip:

    gate  the cursor's compare-and-set (insert when the series has none yet)
    m     the monitor's insert or update, only if ``gate`` matched
    s, t  the snapshot and the transition record of the monitor ``m`` returns

A statement is atomic: it writes everything or nothing, and when the cursor had moved
(another scan) ``m`` matches no row, nothing is written and ``CursorMoved`` is raised.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

import orjson
import psycopg
from sqlalchemy import Connection, Table, TextClause, text
from sqlalchemy.dialects import postgresql

from klinewatch.errors import StorageError
from klinewatch.storage.models import VolumeTrapMonitor, utcnow
from klinewatch.storage.volume_trap import (
    MONITOR_FIELDS,
    StepRecord,
    TrapKey,
    cursor_moved,
    monitor_values,
)

_MONITORS = cast(Table, VolumeTrapMonitor.__table__)
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
_JSON_FIELDS = frozenset({"later_bursts"})
_WHERE_KEY = (
    "exchange = :exchange AND market_type = :market_type AND symbol = :symbol "
    'AND "interval" = :interval'
)


def _typed(name: str) -> str:
    """``:name`` cast to its column's type, so no parameter's type is left to guess."""
    return f"CAST(:{name} AS {_MONITORS.c[name].type.compile(dialect=_DIALECT)})"


@cache
def statement(discover: bool, first_cursor: bool, transition: bool) -> TextClause:
    if first_cursor:
        gate = (
            'INSERT INTO volume_trap_scan_cursors (exchange, market_type, symbol, "interval", '
            "cursor_open_time_ms, updated_at) VALUES (:exchange, :market_type, :symbol, "
            ":interval, :new_cursor, :now) ON CONFLICT DO NOTHING RETURNING 1 AS ok"
        )
    else:
        gate = (
            "UPDATE volume_trap_scan_cursors SET cursor_open_time_ms = :new_cursor, "
            f"updated_at = :now WHERE {_WHERE_KEY} AND cursor_open_time_ms = :old_cursor "
            "RETURNING 1 AS ok"
        )
    fields = ", ".join(MONITOR_FIELDS)
    if discover:
        values = ", ".join(_typed(name) for name in MONITOR_FIELDS)
        monitor = (
            'INSERT INTO volume_trap_monitors (exchange, market_type, symbol, "interval", '
            f"contract_id, {fields}, created_at, updated_at) SELECT :exchange, :market_type, "
            f":symbol, :interval, CAST(:contract_id AS INTEGER), {values}, :now, :now "
            "FROM gate RETURNING id"
        )
    else:
        sets = ", ".join(f"{name} = {_typed(name)}" for name in MONITOR_FIELDS)
        monitor = (
            f"UPDATE volume_trap_monitors SET {sets}, updated_at = :now WHERE id = :monitor_id "
            "AND EXISTS (SELECT 1 FROM gate) RETURNING id"
        )
    parts = [
        f"gate AS ({gate})",
        f"m AS ({monitor})",
        "s AS (INSERT INTO volume_trap_indicators (monitor_id, open_time_ms, detector_values, "
        "created_at) SELECT id, :open_time_ms, CAST(:snapshot AS JSON), :now FROM m)",
    ]
    if transition:
        parts.append(
            "t AS (INSERT INTO volume_trap_state_transitions (monitor_id, from_status, "
            "to_status, open_time_ms, reason, detector_values, created_at) SELECT id, "
            "CAST(:from_status AS VARCHAR), :to_status, :open_time_ms, :reason, "
            "CAST(:snapshot AS JSON), :now FROM m)"
        )
    return text(f"WITH {', '.join(parts)} SELECT id FROM m")


@cache
def _driver_sql(discover: bool, first_cursor: bool, transition: bool) -> str:
    """The statement in psycopg's own placeholders: it runs on the driver connection,
    since SQLAlchemy's per-execution work would cost a third of the write here."""
    return str(statement(discover, first_cursor, transition).compile(dialect=_PSYCOPG))


def write_step_alone(
    connection: Connection,
    key: TrapKey,
    contract_id: int | None,
    monitor_id: int | None,
    step: StepRecord,
    cursor: tuple[int | None, int],
) -> int:
    """Write ``step`` and move the cursor from ``cursor[0]`` to ``cursor[1]`` in one
    statement on an autocommit ``connection``; returns the monitor's id. A database
    error is a ``StorageError`` (nothing was written)."""
    if not step.discover and monitor_id is None:
        raise StorageError(f"{key.symbol}: a step of a monitor that is not stored")
    old, new = cursor
    params: dict[str, Any] = {
        "exchange": key.exchange,
        "market_type": key.market_type,
        "symbol": key.symbol,
        "interval": key.interval,
        "old_cursor": old,
        "new_cursor": new,
        "now": utcnow(),
        "contract_id": contract_id,
        "monitor_id": monitor_id,
        "open_time_ms": step.open_time_ms,
        "snapshot": orjson.dumps(step.detector_values).decode(),
        "from_status": None if step.transition is None else step.transition[0],
        "to_status": None if step.transition is None else step.transition[1],
        "reason": None if step.transition is None else step.transition[2],
    }
    for name, value in monitor_values(step.monitor).items():
        params[name] = orjson.dumps(value).decode() if name in _JSON_FIELDS else value
    sql = _driver_sql(step.discover, old is None, step.transition is not None)
    driver: Any = connection.connection.driver_connection
    try:
        row = driver.execute(sql, params, prepare=True).fetchone()
    except psycopg.Error as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise StorageError(f"{key.symbol}: the step's write failed: {reason}") from e
    found = None if row is None else row[0]
    if found is None:
        raise cursor_moved(key.exchange, key.market_type, key.interval, [key.symbol])
    return int(found)

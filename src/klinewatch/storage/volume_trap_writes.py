"""Volume-trap writes, in the caller's transaction (never committed here).

Core statements throughout: the ORM's unit of work costs more than the database for
rows written once. The cursor moves compare-and-set (``move_cursor``): a scan that
finds it moved by another scan of the same series writes nothing (``CursorMoved``)
rather than record a transition twice. The one-statement write of a step on
PostgreSQL is ``volume_trap_pg``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from klinewatch.domain.volume_trap import Monitor
from klinewatch.errors import StorageError
from klinewatch.storage.models import (
    VolumeTrapIndicators,
    VolumeTrapMonitor,
    VolumeTrapScanCursor,
    VolumeTrapStateTransition,
    utcnow,
)
from klinewatch.storage.volume_trap import StepRecord, TrapKey, cursor_moved, monitor_values

_MONITORS = cast(Table, VolumeTrapMonitor.__table__)
_SNAPSHOTS = cast(Table, VolumeTrapIndicators.__table__)
_TRANSITIONS = cast(Table, VolumeTrapStateTransition.__table__)
_CURSORS = cast(Table, VolumeTrapScanCursor.__table__)
_KEY = ("exchange", "market_type", "symbol", "interval")
# PostgreSQL: many cursors or monitors in one statement over arrays (a multi-row VALUES
# would be a statement of thousands of parameters that the driver parses every time).
_SCOPE_PG = 'exchange = :exchange AND market_type = :market_type AND "interval" = :interval'
_ADD_CURSORS_PG = text(
    'INSERT INTO volume_trap_scan_cursors (exchange, market_type, symbol, "interval", '
    "cursor_open_time_ms, updated_at) SELECT :exchange, :market_type, u.s, :interval, u.c, "
    ":now FROM unnest(CAST(:symbols AS VARCHAR[]), CAST(:new AS BIGINT[])) AS u(s, c) "
    "ON CONFLICT DO NOTHING RETURNING symbol"
)
_MOVE_CURSORS_PG = text(
    "UPDATE volume_trap_scan_cursors AS t SET cursor_open_time_ms = u.new, updated_at = :now "
    "FROM unnest(CAST(:symbols AS VARCHAR[]), CAST(:old AS BIGINT[]), CAST(:new AS BIGINT[])) "
    f"AS u(s, old, new) WHERE {_SCOPE_PG} AND t.symbol = u.s AND t.cursor_open_time_ms = u.old"
)
_TOUCH_PG = text(
    "UPDATE volume_trap_monitors AS m SET last_evaluated_open_time_ms = u.t, "
    "drawdown_pct = u.d, updated_at = :now FROM unnest(CAST(:ids AS INTEGER[]), "
    "CAST(:last AS BIGINT[]), CAST(:drawdown AS DOUBLE PRECISION[])) AS u(id, t, d) "
    "WHERE m.id = u.id"
)


class VolumeTrapWrites:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def relax_durability(self) -> None:
        """Let this transaction's commit return before its WAL reaches the disk
        (PostgreSQL). Still atomic; a server crash may lose the last few such commits,
        which the next scan recomputes from the candles (the cursor moves in the same
        transactions). The scan's final commit is a normal one and flushes them all."""
        if self.dialect == "postgresql":
            self.session.execute(text("SET LOCAL synchronous_commit = off"))

    def write_step(
        self, key: TrapKey, contract_id: int | None, monitor_id: int | None, step: StepRecord
    ) -> int:
        """The monitor row, the snapshot, the transition record; returns the monitor id."""
        if step.discover:
            monitor_id = self.insert_monitor(key, contract_id, step.monitor)
        elif monitor_id is None:
            raise StorageError(f"{key.symbol}: a step of a monitor that is not stored")
        else:
            self.update_monitor(monitor_id, step.monitor)
        self.add_snapshot(monitor_id, step.open_time_ms, step.detector_values)
        if step.transition is not None:
            before, after, reason = step.transition
            values = step.detector_values
            self.add_transition(monitor_id, before, after, step.open_time_ms, reason, values)
        return monitor_id

    def insert_monitor(self, key: TrapKey, contract_id: int | None, monitor: Monitor) -> int:
        now = utcnow()
        statement = insert(_MONITORS).returning(_MONITORS.c.id)
        values = {
            **monitor_values(monitor),
            "exchange": key.exchange,
            "market_type": key.market_type,
            "symbol": key.symbol,
            "interval": key.interval,
            "contract_id": contract_id,
            "created_at": now,
            "updated_at": now,
        }
        return int(self._execute(statement, values).scalar_one())

    def update_monitor(self, monitor_id: int, monitor: Monitor) -> None:
        statement = update(_MONITORS).where(_MONITORS.c.id == bindparam("m_id"))
        self._execute(
            statement, {"m_id": monitor_id, "updated_at": utcnow(), **monitor_values(monitor)}
        )

    def add_snapshot(self, monitor_id: int, open_time_ms: int, values: dict[str, Any]) -> None:
        row = {
            "monitor_id": monitor_id,
            "open_time_ms": open_time_ms,
            "detector_values": values,
            "created_at": utcnow(),
        }
        self._execute(insert(_SNAPSHOTS), row)

    def add_transition(
        self,
        monitor_id: int,
        from_status: str | None,
        to_status: str,
        open_time_ms: int,
        reason: str,
        values: dict[str, Any],
    ) -> None:
        row = {
            "monitor_id": monitor_id,
            "from_status": from_status,
            "to_status": to_status,
            "open_time_ms": open_time_ms,
            "reason": reason,
            "detector_values": values,
            "created_at": utcnow(),
        }
        self._execute(insert(_TRANSITIONS), row)

    def move_cursor(self, key: TrapKey, expected: int | None, new: int | None) -> None:
        """Set the cursor to ``new`` (None: remove it) if it still is ``expected``."""
        if expected is None and new is None:
            return
        if new is None:
            c = _CURSORS.c
            where = [c[name] == getattr(key, name) for name in _KEY] + [
                c.cursor_open_time_ms == expected
            ]
            changed = self.session.connection().execute(delete(_CURSORS).where(*where)).rowcount
        else:
            changed = self.move_cursors(
                key.exchange, key.market_type, key.interval, [(key.symbol, expected, new)]
            )
        if changed != 1:
            raise cursor_moved(key.exchange, key.market_type, key.interval, [key.symbol])

    def move_cursors(
        self,
        exchange: str,
        market_type: str,
        interval: str,
        moves: Sequence[tuple[str, int | None, int]],
    ) -> int:
        """Compare-and-set many cursors, (symbol, expected or None, new) each, in two
        statements; ``CursorMoved`` if any had moved. Returns how many moved."""
        now = utcnow()
        scope = {"exchange": exchange, "market_type": market_type, "interval": interval}
        created = [
            {**scope, "symbol": s, "cursor_open_time_ms": new, "updated_at": now}
            for s, old, new in moves
            if old is None
        ]
        changed = [
            {"s": s, "old": old, "new": new, "now": now} for s, old, new in moves if old is not None
        ]
        done = 0
        if created and self.dialect == "postgresql":  # one statement, not a VALUES per row
            values = {
                "symbols": [r["symbol"] for r in created],
                "new": [r["cursor_open_time_ms"] for r in created],
            }
            done += len(
                self.session.execute(_ADD_CURSORS_PG, {**scope, **values, "now": now}).all()
            )
        elif created:
            add = sqlite_insert(_CURSORS).on_conflict_do_nothing().returning(_CURSORS.c.symbol)
            done += len(self.session.connection().execute(add, created).all())
        if changed and self.dialect == "postgresql":
            arrays = {
                "symbols": [r["s"] for r in changed],
                "old": [r["old"] for r in changed],
                "new": [r["new"] for r in changed],
            }
            done += (
                self.session.connection()
                .execute(_MOVE_CURSORS_PG, {**scope, **arrays, "now": now})
                .rowcount
            )
        elif changed:
            c = _CURSORS.c
            statement = (
                update(_CURSORS)
                .where(
                    *(c[name] == scope[name] for name in scope),
                    c.symbol == bindparam("s"),
                    c.cursor_open_time_ms == bindparam("old"),
                )
                .values(cursor_open_time_ms=bindparam("new"), updated_at=bindparam("now"))
            )
            done += self.session.connection().execute(statement, changed).rowcount
        if done != len(moves):
            raise cursor_moved(exchange, market_type, interval, [s for s, _, _ in moves])
        return done

    def touch_monitors(self, touches: Iterable[tuple[int, Monitor]]) -> None:
        """Record where each active monitor was last evaluated, in one statement."""
        now = utcnow()
        rows = [(i, m.last_evaluated_open_time_ms, m.drawdown_pct) for i, m in touches]
        if not rows:
            return
        if self.dialect == "postgresql":
            ids, last, drawdown = (list(column) for column in zip(*rows, strict=True))
            params = {"ids": ids, "last": last, "drawdown": drawdown, "now": now}
            self.session.connection().execute(_TOUCH_PG, params)
            return
        statement = (
            update(_MONITORS)
            .where(_MONITORS.c.id == bindparam("m_id"))
            .values(
                last_evaluated_open_time_ms=bindparam("last"),
                drawdown_pct=bindparam("dd"),
                updated_at=bindparam("now"),
            )
        )
        params_list = [{"m_id": i, "last": t, "dd": d, "now": now} for i, t, d in rows]
        self.session.connection().execute(statement, params_list)

    def _execute(self, statement: Any, values: dict[str, Any]) -> Any:
        return self.session.connection().execute(statement, values)
